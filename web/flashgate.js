// flashgate.js: one client for every browser. `new FlashGate(url, options)` behaves like a
// WebSocket (onopen, onmessage, onclose, onerror, send, close, readyState) and picks the
// first transport that opens, in this order:
//   "websocket"  the browser's own WebSocket;
//   "flash"      web-socket-js (WebSocketMain.swf) on Flash Player 10 or later, or on Ruffle
//                when options.ruffle is set (Ruffle runs where a native WebSocket exists);
//   "sockjs"     sockjs-client, loaded from the gateway when the page does not have SockJS,
//                which then picks streaming, then polling (transport "sockjs:<its name>").
// A transport that fails to open (or, for "websocket" and "flash", does not open in time)
// hands over to the next; once one is open, its close is the FlashGate's close.
//
//   var socket = new FlashGate("ws://gateway.example:8080/chat?room=lobby");
//   socket.onmessage = function (event) { show(event.data); };
//
// url: the route's URL, ws:// or http:// (wss:// or https://) alike, or a path on the page's
// own host. options (all optional):
//   transports: ["sockjs"]        which of the three to try, in this order
//   forbid: ["websocket"]         which never to try
//   sockjs: {transports: [...]}   options for SockJS itself (its `transports` list, timeout...)
//   ruffle: true                  try Flash on Ruffle (loaded from the gateway) too
//   swf: URL                      WebSocketMain.swf (default: the gateway's; Flash calls a
//                                 page only from a SWF on the page's own host)
//   assets: URL                   where the gateway's scripts are (default: the route's host)
//   sockjsUrl: URL                sockjs-client (default: assets + "/sockjs/sockjs.min.js")
//   websocketTimeout: 6000        ms for a native WebSocket to open before the next is tried
//   flashTimeout: 10000           ms for Flash (it waits up to 3 s for each policy it asks)
// Plain ECMAScript 3, for Internet Explorer 6 and later. Where the browser has no JSON
// (IE 6-7), a small one is installed before sockjs-client, which needs it.
(function (window, document) {
  var CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
  var ORDER = ["websocket", "flash", "sockjs"];
  // sockjs-client 1.6's transports other than its WebSocket one.
  var SOCKJS_WITHOUT_WEBSOCKET = ["xdr-streaming", "xhr-streaming", "eventsource",
    "iframe-eventsource", "htmlfile", "iframe-htmlfile", "xdr-polling", "xhr-polling",
    "iframe-xhr-polling", "jsonp-polling"];
  var SCRIPT_TIMEOUT = 15000;

  function isFlash(impl) { return !!(impl && impl.__isFlashImplementation); }

  // The browser's own WebSocket, even after web_socket.js has replaced window.WebSocket.
  var savedNative = isFlash(window.WebSocket) ? null : (window.WebSocket || window.MozWebSocket || null);
  function nativeWebSocket() {
    if (window.WebSocket && !isFlash(window.WebSocket)) { return window.WebSocket; }
    if (window.MozWebSocket) { return window.MozWebSocket; }
    return savedNative;
  }

  function indexOf(list, item) {
    for (var i = 0; i < list.length; i++) { if (list[i] === item) { return i; } }
    return -1;
  }

  function copy(object) {
    var out = {};
    if (object) { for (var key in object) { if (object.hasOwnProperty(key)) { out[key] = object[key]; } } }
    return out;
  }

  function now() { return new Date().getTime(); }

  // url -> {secure, host, rest (path and query)}; a path is taken on the page's own host.
  function parseUrl(url) {
    var match = /^(wss?|https?):\/\/([^\/?#]+)([^#]*)/i.exec(url);
    if (!match) {
      if (String(url).charAt(0) !== "/") { throw new Error("FlashGate: not a ws://, http:// or /path URL: " + url); }
      return { secure: window.location.protocol === "https:", host: window.location.host, rest: String(url).split("#")[0] };
    }
    var scheme = match[1].toLowerCase();
    var rest = match[3];
    if (rest === "" || rest.charAt(0) === "?") { rest = "/" + rest; }
    return { secure: scheme === "wss" || scheme === "https", host: match[2], rest: rest };
  }

  function addQuery(url, pair) { return url + (url.indexOf("?") < 0 ? "?" : "&") + pair; }

  // Scripts, loaded once per page; `ready()`, where given, tells whether a script did what it
  // is for (IE 6-8 report a missing script as loaded) or was on the page already.
  var scripts = {};
  function loadScript(src, ready, done) {
    if (ready && ready()) { done(true); return; }
    var entry = scripts[src];
    if (entry && entry.state !== "loading") { done(entry.state === "loaded" && (!ready || ready())); return; }
    if (entry) { entry.waiting.push(done); return; }
    entry = scripts[src] = { state: "loading", waiting: [done] };
    var head = document.getElementsByTagName("head")[0] || document.documentElement;
    var script = document.createElement("script");
    var timer = null;
    function finish(loaded) {
      if (entry.state !== "loading") { return; }
      entry.state = loaded ? "loaded" : "failed";
      script.onload = script.onreadystatechange = script.onerror = null;
      if (timer) { clearTimeout(timer); }
      var ok = loaded && (!ready || ready());
      var waiting = entry.waiting;
      entry.waiting = [];
      for (var i = 0; i < waiting.length; i++) { waiting[i](ok); }
    }
    script.type = "text/javascript";
    script.charset = "UTF-8";
    script.onload = function () { finish(true); };
    script.onreadystatechange = function () {
      if (script.readyState === "loaded" || script.readyState === "complete") { finish(true); }
    };
    script.onerror = function () { finish(false); };
    timer = setTimeout(function () { finish(false); }, SCRIPT_TIMEOUT);
    script.src = src;
    // insertBefore: IE 6 misplaces an appended child when the page has a <base>.
    head.insertBefore(script, head.firstChild);
  }

  // Loads each of [src, ready] in turn; done(true) when all are ready.
  function loadScripts(list, done) {
    var i = 0;
    function next(ok) {
      if (!ok) { done(false); return; }
      if (i === list.length) { done(true); return; }
      var item = list[i++];
      loadScript(item[0], item[1], next);
    }
    next(true);
  }

  // The major version of a real Flash Player (or of Ruffle, once it is on the page), 0 if none.
  function flashPlayerMajor() {
    var nav = window.navigator, match;
    if (window.swfobject && window.swfobject.getFlashPlayerVersion) {
      var seen = window.swfobject.getFlashPlayerVersion().major;
      if (seen) { return seen; }
    }
    if (nav && nav.plugins && nav.mimeTypes) {
      var plugin = nav.plugins["Shockwave Flash"];
      var mime = nav.mimeTypes["application/x-shockwave-flash"];
      if (plugin && mime && mime.enabledPlugin && (match = /(\d+)\./.exec(plugin.description || ""))) {
        return parseInt(match[1], 10);
      }
    }
    if (window.ActiveXObject) {
      try {
        var player = new window.ActiveXObject("ShockwaveFlash.ShockwaveFlash");
        if ((match = /(\d+),/.exec(player.GetVariable("$version")))) { return parseInt(match[1], 10); }
      } catch (e) {}
    }
    return 0;
  }

  function rufflePresent() { return !!(window.RufflePlayer && window.RufflePlayer.newest); }
  // Ruffle needs WebAssembly, and a native WebSocket to reach the gateway's socket proxy.
  function ruffleCanRun() { return !!(window.WebAssembly && nativeWebSocket()); }

  // Makes web-socket-js ready; done(null) when it is, done(reason) when Flash cannot be had.
  function prepareFlash(gate, done) {
    var o = gate._options, base = gate._assets;
    if (isFlash(window.WebSocket)) { done(null); return; }
    var real = flashPlayerMajor() >= 10;
    var ruffle = !real && o.ruffle && ruffleCanRun();
    if (!real && !ruffle) {
      done(o.ruffle ? "no Flash Player, and Ruffle cannot run here" : "no Flash Player (Ruffle not asked for)");
      return;
    }
    var list = [];
    if (ruffle) {
      var player = window.RufflePlayer = window.RufflePlayer || {};
      var config = player.config = player.config || {};
      // WebSocketMain.swf is an invisible, silent 1x1 bridge: let Ruffle start it at once.
      if (config.autoplay === undefined) { config.autoplay = "on"; }
      if (config.unmuteOverlay === undefined) { config.unmuteOverlay = "hidden"; }
      if (config.splashScreen === undefined) { config.splashScreen = false; }
      list.push([base + "/ruffle/ruffle.js", rufflePresent]);
      list.push([base + "/ruffle-config.js", null]);
    }
    if (nativeWebSocket()) {
      // web_socket.js is about to replace a native WebSocket: see flashgate-compat.js.
      list.push([base + "/flashgate-compat.js", null]);
      window.WEB_SOCKET_FORCE_FLASH = true;
    }
    list.push([base + "/swfobject.js", function () { return !!window.swfobject; }]);
    if (!window.WEB_SOCKET_SWF_LOCATION || o.swf) { window.WEB_SOCKET_SWF_LOCATION = o.swf || base + "/WebSocketMain.swf"; }
    loadScripts(list, function (ok) {
      if (!ok) { done("could not load " + (ruffle ? "Ruffle or " : "") + "swfobject.js"); return; }
      if (window.swfobject.getFlashPlayerVersion().major < 10) {
        done("swfobject.js finds no Flash Player 10 (load Ruffle before swfobject.js)");
        return;
      }
      loadScript(base + "/web_socket.js", function () { return isFlash(window.WebSocket); }, function (loaded) {
        done(loaded ? null : "could not load web_socket.js");
      });
    });
  }

  // --- JSON for browsers without it (IE 6-7), as much as sockjs-client uses --------------

  function quote(text) {
    return '"' + text.replace(/[\\"\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0604\u070f\u17b4\u17b5\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufeff\ufff0-\uffff]/g, function (c) {
      if (c === '"' || c === "\\") { return "\\" + c; }
      var hex = c.charCodeAt(0).toString(16);
      return "\\u" + "0000".substring(hex.length) + hex;
    }) + '"';
  }

  function stringify(value) {
    var parts = [], key, i;
    if (value === null) { return "null"; }
    switch (typeof value) {
    case "undefined": return undefined;
    case "string": return quote(value);
    case "number": return isFinite(value) ? String(value) : "null";
    case "boolean": return String(value);
    case "function": return undefined;
    }
    if (Object.prototype.toString.call(value) === "[object Array]") {
      for (i = 0; i < value.length; i++) {
        var item = stringify(value[i]);
        parts.push(item === undefined ? "null" : item);
      }
      return "[" + parts.join(",") + "]";
    }
    for (key in value) {
      if (value.hasOwnProperty(key)) {
        var member = value[key] === undefined ? undefined : stringify(value[key]);
        if (member !== undefined) { parts.push(quote(key) + ":" + member); }
      }
    }
    return "{" + parts.join(",") + "}";
  }

  // Checked as json2.js does before it evaluates: only JSON's tokens may remain.
  function parse(text) {
    text = String(text).replace(/[\u2028\u2029]/g, function (c) { return c === "\u2028" ? "\\u2028" : "\\u2029"; });
    var bare = text.replace(/\\(?:["\\\/bfnrt]|u[0-9a-fA-F]{4})/g, "@")
      .replace(/"[^"\\\n\r]*"|true|false|null|-?\d+(?:\.\d*)?(?:[eE][+\-]?\d+)?/g, "]")
      .replace(/(?:^|:|,)(?:\s*\[)+/g, "");
    if (!/^[\],:{}\s]*$/.test(bare)) { throw new SyntaxError("JSON.parse: bad JSON"); }
    return eval("(" + text + ")");
  }

  function ensureJson() {
    if (!window.JSON) { window.JSON = { parse: parse, stringify: stringify }; }
  }

  // --- FlashGate --------------------------------------------------------------------------

  function FlashGate(url, options) {
    if (!(this instanceof FlashGate)) { return new FlashGate(url, options); }
    var o = this._options = copy(options);
    var parsed = parseUrl(url);
    this._ws = (parsed.secure ? "wss://" : "ws://") + parsed.host + parsed.rest;
    this._http = (parsed.secure ? "https://" : "http://") + parsed.host + parsed.rest;
    this._assets = String(o.assets || (parsed.secure ? "https://" : "http://") + parsed.host).replace(/\/+$/, "");
    this.url = this._ws;
    this.readyState = CONNECTING;
    // The transport in use once open: "websocket", "flash" or "sockjs:<name>".
    this.transport = null;
    // What each transport tried did, e.g. "websocket: closed (1006) before opening".
    this.attempts = [];
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    var wanted = o.transports ? [].concat(o.transports) : ORDER;
    var forbid = o.forbid ? [].concat(o.forbid) : [];
    this._plan = [];
    for (var i = 0; i < wanted.length; i++) {
      if (indexOf(ORDER, wanted[i]) < 0) { throw new Error("FlashGate: unknown transport " + wanted[i]); }
      if (indexOf(forbid, wanted[i]) < 0 && indexOf(this._plan, wanted[i]) < 0) { this._plan.push(wanted[i]); }
    }
    // SockJS keeps off WebSocket when a WebSocket was forbidden or failed here.
    this._noWebSocket = indexOf(forbid, "websocket") >= 0;
    this._socket = null;
    var self = this;
    setTimeout(function () { self._next(); }, 0);
  }

  FlashGate.CONNECTING = FlashGate.prototype.CONNECTING = CONNECTING;
  FlashGate.OPEN = FlashGate.prototype.OPEN = OPEN;
  FlashGate.CLOSING = FlashGate.prototype.CLOSING = CLOSING;
  FlashGate.CLOSED = FlashGate.prototype.CLOSED = CLOSED;
  FlashGate.transports = ORDER.concat();

  FlashGate.prototype.send = function (data) {
    if (this.readyState === CONNECTING) { throw new Error("InvalidStateError: FlashGate is not open yet"); }
    if (this.readyState !== OPEN) { return false; }
    return this._socket.send(data);
  };

  FlashGate.prototype.close = function (code, reason) {
    if (this.readyState === CLOSED || this.readyState === CLOSING) { return; }
    var socket = this._socket;
    if (this.readyState === CONNECTING) {
      // As a WebSocket does: closing before it opened fails the connection.
      this._drop();
      if (socket) { try { socket.close(); } catch (e) {} }
      this._finish({ code: 1006, reason: "closed before it opened", wasClean: false }, true);
      return;
    }
    // As a WebSocket does, a code other than 1000 or 3000-4999 throws, and nothing changes.
    if (code === undefined) { socket.close(); } else { socket.close(code, reason); }
    if (this.readyState === OPEN) { this.readyState = CLOSING; }
  };

  FlashGate.prototype._fire = function (name, fields) {
    var event = copy(fields);
    event.type = name;
    event.target = this;
    var handler = this["on" + name];
    if (typeof handler === "function") { handler.call(this, event); }
  };

  // Lets go of the current socket: nothing it does reaches the page any more.
  FlashGate.prototype._drop = function () {
    var socket = this._socket;
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    this._socket = null;
    if (socket) { socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null; }
    return socket;
  };

  FlashGate.prototype._finish = function (closed, failed) {
    if (this.readyState === CLOSED) { return; }
    this.readyState = CLOSED;
    if (failed) { this._fire("error", {}); }
    this._fire("close", { code: closed.code, reason: closed.reason || "", wasClean: !!closed.wasClean });
  };

  // Tries the next transport of the plan, or fails when none is left.
  FlashGate.prototype._next = function (last) {
    if (this.readyState !== CONNECTING) { return; }
    var name = this._plan.shift();
    if (!name) {
      this._finish(last || { code: 1006, reason: "no transport could connect: " + this.attempts.join("; ") }, true);
      return;
    }
    var self = this;
    if (name === "websocket") {
      var Native = nativeWebSocket();
      if (!Native) { this._skip(name, "this browser has none"); return; }
      this._attach(name, function () { return new Native(self._ws); }, this._options.websocketTimeout || 6000);
    } else if (name === "flash") {
      prepareFlash(this, function (problem) {
        if (self.readyState !== CONNECTING) { return; }
        if (problem) { self._skip(name, problem); return; }
        self._attach(name, function () { return new window.WebSocket(addQuery(self._ws, "flash=1")); },
          self._options.flashTimeout || 10000);
      });
    } else {
      var src = this._options.sockjsUrl || this._assets + "/sockjs/sockjs.min.js";
      ensureJson();
      loadScript(src, function () { return !!window.SockJS; }, function (loaded) {
        if (self.readyState !== CONNECTING) { return; }
        if (!loaded) { self._skip(name, "could not load " + src); return; }
        var options = copy(self._options.sockjs);
        // SockJS's own WebSocket transport is window.WebSocket as it was when SockJS loaded:
        // web-socket-js's, if that had replaced it.
        if (!options.transports && (self._noWebSocket || isFlash(window.WebSocket))) {
          options.transports = SOCKJS_WITHOUT_WEBSOCKET;
        }
        self._attach(name, function () { return new window.SockJS(self._http, null, options); }, 0);
      });
    }
  };

  FlashGate.prototype._skip = function (name, why) {
    this.attempts.push(name + ": " + why);
    this._next();
  };

  // Opens `make()` as transport `name`; past `timeout` ms (0: none) unopened, it is dropped.
  FlashGate.prototype._attach = function (name, make, timeout) {
    var self = this, socket, started = now();
    try {
      socket = make();
    } catch (e) {
      this._skip(name, "could not start: " + (e && e.message ? e.message : e));
      return;
    }
    this._socket = socket;
    if (name !== "sockjs") {
      this.url = name === "flash" ? addQuery(this._ws, "flash=1") : this._ws;
      try { socket.binaryType = "arraybuffer"; } catch (e) {}
    } else {
      this.url = this._http;
    }
    function failed(why, closed) {
      self.attempts.push(name + ": " + why);
      if (name === "websocket") { self._noWebSocket = true; }
      var dropped = self._drop();
      if (dropped) { try { dropped.close(); } catch (e) {} }
      self._next(closed);
    }
    if (timeout) {
      this._timer = setTimeout(function () {
        if (self._socket === socket) { failed("did not open within " + timeout + " ms", null); }
      }, timeout);
    }
    socket.onopen = function () {
      if (self._socket !== socket) { return; }
      if (self._timer) { clearTimeout(self._timer); self._timer = null; }
      self.transport = name === "sockjs" ? "sockjs:" + socket.transport : name;
      self.attempts.push(self.transport + ": open after " + (now() - started) + " ms");
      self.readyState = OPEN;
      self._fire("open", {});
    };
    socket.onmessage = function (event) {
      if (self._socket === socket) { self._fire("message", { data: event.data }); }
    };
    socket.onerror = function () {};
    socket.onclose = function (event) {
      if (self._socket !== socket) { return; }
      var closed = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      if (self.readyState === CONNECTING) {
        failed("closed (" + event.code + (event.reason ? " " + event.reason : "") + ") before opening", closed);
        return;
      }
      self._drop();
      self._finish(closed, !closed.wasClean);
    };
  };

  FlashGate.json = { parse: parse, stringify: stringify };
  window.FlashGate = FlashGate;
})(window, document);
