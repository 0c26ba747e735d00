// The demo pages' client: connects to a route (native WebSocket, or web-socket-js when the
// page loaded it), shows the transport, and logs what comes and goes. Plain ES3 for IE8.
// The page defines `demo.forceFlash` before loading it.
(function () {
  var FLASH_BINARY = "data:application/octet-stream;base64,";
  var ws = null;

  function $(id) { return document.getElementById(id); }

  function on(el, name, fn) {
    if (el.addEventListener) { el.addEventListener(name, fn, false); }
    else { el.attachEvent("on" + name, fn); }
  }

  function setText(el, text) {
    if (el.textContent !== undefined) { el.textContent = text; } else { el.innerText = text; }
  }

  function log(kind, text) {
    var list = $("log");
    var item = document.createElement("li");
    item.className = kind;
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
  setText($("transport"), flash ? "Flash (web-socket-js)" : "native WebSocket");
  $("transport").className = "badge" + (flash ? " flash" : "");
  var binaryOk = !flash && !!(window.ArrayBuffer && window.Uint8Array);
  $("send-binary").disabled = !binaryOk;
  var version = $("flash-version");
  if (version && window.swfobject) {
    var v = swfobject.getFlashPlayerVersion();
    setText(version, v.major ? v.major + "." + v.minor + "." + v.release : "none");
  }
  if (demo.forceFlash && !flash) {
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
      else { log("in", data); }
    } else if (window.ArrayBuffer && data instanceof ArrayBuffer) {
      log("in", describeBinary(new Uint8Array(data)));
    } else {
      log("in", "binary message");
    }
  }

  function url() {
    var route = $("route").value;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var query = [];
    if (route === "chat") { query.push("room=" + encodeURIComponent($("room").value || "lobby")); }
    if (flash) { query.push("flash=1"); }
    return scheme + location.host + "/" + route + (query.length ? "?" + query.join("&") : "");
  }

  function connect() {
    if (ws) {
      var old = ws;
      ws = null;
      old.onclose = null;
      old.close();
    }
    var target = url();
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
    // In a room every message, ours included, comes back in the room's order: log it then.
    var echoRoute = $("route").value === "echo";
    if (asBinary) {
      var bytes = utf8Bytes(text);
      ws.send(bytes.buffer);
      if (echoRoute) { log("out", describeBinary(bytes)); }
    } else {
      ws.send(text);
      if (echoRoute) { log("out", text); }
    }
    input.value = "";
    input.focus();
  }

  on($("send"), "click", function () { send(false); });
  on($("send-binary"), "click", function () { send(true); });
  on($("join"), "click", connect);
  on($("route"), "change", function () {
    $("room").disabled = $("route").value !== "chat";
    connect();
  });
  on($("message"), "keydown", function (event) {
    event = event || window.event;
    if (event.keyCode === 13) { send(false); }
  });
  connect();
})();
