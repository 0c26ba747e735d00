// flashgate-compat.js: lets web-socket-js 1.0.0 run under Ruffle in current browsers.
// Load it after ruffle.js and /ruffle-config.js, and before web_socket.js:
//
//   <script src="/ruffle/ruffle.js"></script>
//   <script src="/ruffle-config.js"></script>
//   <script src="/flashgate-compat.js"></script>
//   <script src="/swfobject.js"></script>
//   <script src="/web_socket.js"></script>
//
// It fixes two things, and only where the browser has a native WebSocket (browsers that run
// the real Flash Player have none, and there it does nothing at all):
// 1. With WEB_SOCKET_FORCE_FLASH, web_socket.js replaces window.WebSocket with its Flash
//    implementation, and Ruffle's own connection to its socket proxy would then land in it.
//    Connections to a socketProxy URL of the Ruffle configuration keep the native WebSocket.
// 2. web_socket.js builds message events with initMessageEvent(..., null), which current
//    browsers refuse, so onmessage never ran; events are built with new MessageEvent instead.
(function () {
  var Native = window.WebSocket;
  if (!Native || !window.Proxy || !window.Reflect || !window.MessageEvent || !Object.defineProperty) {
    return;
  }

  function sameUrl(a, b) {
    if (a === b) { return true; }
    try { return new URL(a, location.href).href === new URL(b, location.href).href; } catch (e) { return false; }
  }

  // True for the WebSocket URLs Ruffle uses for Flash sockets (its socketProxy setting).
  function isSocketProxyUrl(url) {
    var ruffle = window.RufflePlayer;
    var entries = ruffle && ruffle.config && ruffle.config.socketProxy;
    if (!entries) { return false; }
    for (var i = 0; i < entries.length; i++) {
      if (entries[i] && sameUrl(String(url), String(entries[i].proxyUrl))) { return true; }
    }
    return false;
  }

  function createMessageEvent(type, data) {
    return new MessageEvent(type, { data: data });
  }

  // web_socket.js assigns its methods after window.WebSocket; keep our message events.
  function fixMessageEvents(impl) {
    if (!impl.prototype) { return; }
    Object.defineProperty(impl.prototype, "__createMessageEvent", {
      configurable: true,
      get: function () { return createMessageEvent; },
      set: function () {}
    });
  }

  function wrap(impl) {
    fixMessageEvents(impl);
    return new Proxy(impl, {
      construct: function (target, args, newTarget) {
        if (isSocketProxyUrl(args[0])) { return Reflect.construct(Native, args); }
        return Reflect.construct(target, args, newTarget);
      }
    });
  }

  var current = Native;
  Object.defineProperty(window, "WebSocket", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = value && value !== Native ? wrap(value) : value; }
  });
})();
