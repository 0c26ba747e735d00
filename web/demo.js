// The demo pages' client: connects to a route with flashgate.js (native WebSocket, Flash or
// SockJS, whichever opens first), shows the transport, and logs what comes and goes. Plain
// ES3 for IE 6-8. A page may define `demo` before loading it: FlashGate options (ruffle.html
// sets {transports: ["flash"]}). The page's query adds to them: ?transport=flash puts that
// transport first, ?forbid=websocket,flash keeps transports out, ?sockjs=xhr-polling gives
// SockJS its transports, ?ruffle=1 lets Flash run on Ruffle.
(function () {
  var FLASH_BINARY = "data:application/octet-stream;base64,";
  var ws = null;
  // Texts this page sent to its room and has not seen come back yet, oldest first: the room
  // returns them in the same order, which tells our own messages from the others'.
  var pending = [];

  function $(id) { return document.getElementById(id); }

  function on(el, name, fn) {
    if (el.addEventListener) { el.addEventListener(name, fn, false); }
    else { el.attachEvent("on" + name, fn); }
  }

  function setText(el, text) {
    if (el.textContent !== undefined) { el.textContent = text; } else { el.innerText = text; }
  }

  function log(kind, text, mine) {
    var list = $("log");
    var item = document.createElement("li");
    item.className = kind + (mine ? " mine" : "");
    setText(item, text);
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  function setState(text, kind) {
    var el = $("state");
    el.className = "badge " + kind;
    setText(el, text);
  }

  function param(name) {
    var match = new RegExp("[?&]" + name + "=([^&#]*)").exec(location.search);
    return match ? decodeURIComponent(match[1].replace(/\+/g, " ")) : "";
  }

  function names(text) { return text ? text.split(",") : []; }

  // The FlashGate options: the page's, then its query's.
  function options() {
    var o = {}, key, page = window.demo || {};
    for (key in page) { if (page.hasOwnProperty(key)) { o[key] = page[key]; } }
    // FlashGate tries each transport once, where it first stands in the list.
    if (param("transport")) { o.transports = names(param("transport")).concat(o.transports || FlashGate.transports); }
    if (param("forbid")) { o.forbid = names(param("forbid")); }
    if (param("sockjs")) { o.sockjs = { transports: names(param("sockjs")) }; }
    if (param("ruffle") === "1") { o.ruffle = true; }
    return o;
  }

  var LABELS = { websocket: "native WebSocket", flash: "Flash (web-socket-js)" };
  function label(transport) {
    if (LABELS[transport]) { return LABELS[transport]; }
    return transport.indexOf("sockjs:") === 0 ? "SockJS (" + transport.substring(7) + ")" : transport;
  }

  function showTransport(transport) {
    var el = $("transport");
    setText(el, label(transport));
    el.className = "badge " + transport.split(":")[0];
    el.setAttribute("data-transport", transport);
    var binaryOk = transport === "websocket" && !!(window.ArrayBuffer && window.Uint8Array);
    $("send-binary").disabled = !binaryOk;
  }

  $("send-binary").disabled = true;
  var version = $("flash-version");
  if (version && window.swfobject) {
    var v = swfobject.getFlashPlayerVersion();
    setText(version, v.major ? v.major + "." + v.minor + "." + v.release : "none");
  }

  function hex(bytes, count) {
    var out = [];
    for (var i = 0; i < bytes.length && i < count; i++) {
      out.push((bytes[i] < 16 ? "0" : "") + bytes[i].toString(16));
    }
    return out.join(" ") + (bytes.length > count ? " \u2026" : "");
  }

  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function fromBase64(text) {
    var bytes = [], bits = 0, value = 0;
    for (var i = 0; i < text.length; i++) {
      var digit = B64.indexOf(text.charAt(i));
      if (digit < 0) { continue; }
      value = (value << 6) | digit;
      bits += 6;
      if (bits >= 8) { bits -= 8; bytes.push((value >> bits) & 255); }
    }
    return bytes;
  }

  function describeBinary(bytes) {
    return "binary " + bytes.length + " bytes: " + hex(bytes, 24);
  }

  function received(data) {
    if (typeof data === "string") {
      // flashgate sends binary to Flash clients as a data: URL (web-socket-js takes text only).
      if (data.indexOf(FLASH_BINARY) === 0) { log("in", describeBinary(fromBase64(data.substring(FLASH_BINARY.length)))); }
      else {
        var mine = pending.length > 0 && pending[0] === data;
        if (mine) { pending.shift(); }
        log("in", data, mine);
      }
    } else if (window.ArrayBuffer && data instanceof ArrayBuffer) {
      log("in", describeBinary(new Uint8Array(data)));
    } else {
      log("in", "binary message");
    }
  }

  function room() { return $("room").value.replace(/^\s+|\s+$/g, "") || "lobby"; }

  function url() {
    var route = $("route").value;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var query = route === "chat" ? "?room=" + encodeURIComponent(room()) : "";
    return scheme + location.host + "/" + route + query;
  }

  // The attempts before the one that opened (or all of them, when none did).
  function logAttempts(socket, opened) {
    var attempts = socket.attempts;
    for (var i = 0; i < attempts.length - (opened ? 1 : 0); i++) { log("sys", attempts[i]); }
  }

  function connect() {
    // The gateway's rule for room names (it refuses others with 400).
    if ($("route").value === "chat" && !/^[A-Za-z0-9_.\-]{1,64}$/.test(room())) {
      log("sys", "a room name is 1 to 64 letters, digits, '-', '_' or '.'");
      return;
    }
    if (ws) {
      var old = ws;
      ws = null;
      old.onclose = null;
      old.close();
    }
    pending = [];
    setState("connecting", "");
    var preferred = names(param("transport"))[0];
    var socket = new FlashGate(url(), options());
    ws = socket;
    socket.onopen = function () {
      if (ws !== socket) { return; }
      logAttempts(socket, true);
      showTransport(socket.transport);
      if (preferred && socket.transport.split(":")[0] !== preferred) {
        log("sys", preferred + " was asked for but is not available here: using " + label(socket.transport) + ".");
      }
      setState("open", "open");
      log("sys", "connected to " + socket.url);
    };
    socket.onmessage = function (event) {
      if (ws === socket) { received(event.data); }
    };
    socket.onclose = function (event) {
      if (ws !== socket) { return; }
      if (!socket.transport) { logAttempts(socket, false); }
      setState("closed (" + event.code + ")", "closed");
      log("sys", "closed: " + event.code + (event.reason ? " " + event.reason : ""));
    };
  }

  function utf8Bytes(text) {
    var raw = unescape(encodeURIComponent(text));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function send(asBinary) {
    var input = $("message");
    var text = input.value;
    if (!ws || ws.readyState !== 1 || text === "") { return; }
    // An optional name goes in front of text messages: "ana: hello".
    var nick = $("nick") ? $("nick").value.replace(/^\s+|\s+$/g, "") : "";
    // In a room every message, ours included, comes back in the room's order: log it then.
    var echoRoute = $("route").value === "echo";
    if (asBinary) {
      var bytes = utf8Bytes(text);
      ws.send(bytes.buffer);
      if (echoRoute) { log("out", describeBinary(bytes)); }
    } else {
      if (nick !== "") { text = nick + ": " + text; }
      ws.send(text);
      if (echoRoute) { log("out", text); } else { pending.push(text); }
    }
    input.value = "";
    input.focus();
  }

  on($("send"), "click", function () { send(false); });
  on($("send-binary"), "click", function () { send(true); });
  on($("join"), "click", connect);
  function routeChanged() { $("room").disabled = $("route").value !== "chat"; }
  on($("route"), "change", function () {
    routeChanged();
    connect();
  });
  on($("room"), "keydown", function (event) {
    event = event || window.event;
    if (event.keyCode === 13) { connect(); }
  });
  on($("message"), "keydown", function (event) {
    event = event || window.event;
    if (event.keyCode === 13) { send(false); }
  });
  routeChanged();
  connect();
})();
