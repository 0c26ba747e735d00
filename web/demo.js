// The demo pages' client: connects to a route (native WebSocket, or web-socket-js when the
// page loaded it), shows the transport, and logs what comes and goes. Plain ES3 for IE8.
// The page defines `demo.forceFlash` before loading it.
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

  // Which implementation window.WebSocket is now: web-socket-js marks its own.
  var flash = !!(window.WebSocket && window.WebSocket.__isFlashImplementation);
  if (!window.WebSocket && window.MozWebSocket) { window.WebSocket = window.MozWebSocket; }
  // None at all: no native WebSocket, and web-socket-js found no Flash Player.
  var available = !!window.WebSocket;
  setText($("transport"), flash ? "Flash (web-socket-js)" : available ? "native WebSocket" : "none");
  $("transport").className = "badge" + (flash ? " flash" : "");
  var binaryOk = available && !flash && !!(window.ArrayBuffer && window.Uint8Array);
  $("send-binary").disabled = !binaryOk;
  var version = $("flash-version");
  if (version && window.swfobject) {
    var v = swfobject.getFlashPlayerVersion();
    setText(version, v.major ? v.major + "." + v.minor + "." + v.release : "none");
  }
  if (window.demo && demo.forceFlash && !flash) {
    log("sys", "Flash was asked for but is not available here (no Flash Player >= 10): using native WebSocket.");
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
    var query = [];
    if (route === "chat") { query.push("room=" + encodeURIComponent(room())); }
    if (flash) { query.push("flash=1"); }
    return scheme + location.host + "/" + route + (query.length ? "?" + query.join("&") : "");
  }

  function connect() {
    if (!available) { return; }
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
    var target = url();
    pending = [];
    setState("connecting", "");
    var socket = new WebSocket(target);
    ws = socket;
    if (!flash) { socket.binaryType = "arraybuffer"; }
    socket.onopen = function () {
      if (ws !== socket) { return; }
      setState("open", "open");
      log("sys", "connected to " + target);
    };
    socket.onmessage = function (event) {
      if (ws === socket) { received(event.data); }
    };
    socket.onclose = function (event) {
      if (ws !== socket) { return; }
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
  if (available) {
    connect();
  } else {
    setState("unavailable", "closed");
    $("send").disabled = true;
    log("sys", "This browser has no WebSocket, and web-socket-js needs Flash Player 10 or later.");
  }
})();
