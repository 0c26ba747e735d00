// diagnose.js: the checks of /diagnose.html. Run in the visitor's own browser, one after
// another, each against the gateway's /echo route with a time limit of its own: the native
// WebSocket; Flash Player or Ruffle, WebSocketMain.swf, web-socket-js and (in Flash Player)
// the socket policy; and SockJS on each of its transports alone. Each check that connects
// sends one message and times its echo. The page shows a status word for each, a summary,
// and a plain-text report for support staff. Plain ES3, for Internet Explorer 6 and later.
// Query options: ?skip=native,flash,sockjs (or a SockJS transport's name), ?ruffle=0 (do
// not try Ruffle), ?timeout=SECONDS (one time limit for every check).
(function (window, document) {
  var secure = window.location.protocol === "https:";
  var HOST = window.location.host;
  var WS_ECHO = (secure ? "wss://" : "ws://") + HOST + "/echo";
  var HTTP_ECHO = (secure ? "https://" : "http://") + HOST + "/echo";
  var SOCKJS = ["websocket", "xhr-streaming", "xdr-streaming", "eventsource", "iframe-eventsource",
    "htmlfile", "iframe-htmlfile", "xhr-polling", "xdr-polling", "iframe-xhr-polling", "jsonp-polling"];
  var ROWS = ["native", "flash-player", "flash-swf", "flash-socket", "flash-policy"];
  for (var n = 0; n < SOCKJS.length; n++) { ROWS.push("sockjs-" + SOCKJS[n]); }
  // Status words by how they look: good (green), bad (red), anything else grey.
  var GOOD = { "works": 1, "found": 1, "loaded": 1, "obtained": 1 };
  var BAD = { "failed": 1, "timed out": 1, "not obtained": 1 };

  function isFlash(impl) { return !!(impl && impl.__isFlashImplementation); }
  // The browser's own WebSocket, kept before web_socket.js replaces window.WebSocket.
  var NativeWebSocket = isFlash(window.WebSocket) ? null : (window.WebSocket || window.MozWebSocket || null);

  function $(id) { return document.getElementById(id); }
  function now() { return new Date().getTime(); }
  function setText(el, text) {
    if (el.textContent !== undefined) { el.textContent = text; } else { el.innerText = text; }
  }
  function getText(el) { return el.textContent !== undefined ? el.textContent : el.innerText; }
  function contains(list, item) {
    for (var i = 0; i < list.length; i++) { if (list[i] === item) { return true; } }
    return false;
  }
  function messageOf(e) { return e && e.message ? e.message : String(e); }

  function param(name) {
    var match = new RegExp("[?&]" + name + "=([^&#]*)").exec(window.location.search);
    return match ? decodeURIComponent(match[1].replace(/\+/g, " ")) : "";
  }
  var SKIP = param("skip") ? param("skip").split(",") : [];
  var LIMIT = parseFloat(param("timeout")) > 0 ? Math.round(parseFloat(param("timeout")) * 1000) : 0;
  function limit(ms) { return LIMIT || ms; }
  function seconds(ms) { return Math.round(ms / 100) / 10 + " s"; }

  // The real Flash Player, looked for before anything is loaded (Ruffle, once on the page,
  // poses as Flash Player 32): its version, "ruffle" for the Ruffle extension, or null.
  function findFlashPlayer() {
    var nav = window.navigator, match;
    if (window.RufflePlayer) { return "ruffle"; }
    if (nav && nav.plugins && nav.mimeTypes) {
      var plugin = nav.plugins["Shockwave Flash"];
      var mime = nav.mimeTypes["application/x-shockwave-flash"];
      if (plugin && mime && mime.enabledPlugin) {
        if (/ruffle/i.test(plugin.filename || "")) { return "ruffle"; }
        if ((match = /(\d+\.\d+)(\s*[rd]\d+)?/.exec(plugin.description || ""))) { return match[1] + (match[2] || ""); }
      }
    }
    if (window.ActiveXObject) {
      try {
        // "WIN 32,0,0,465" -> "32.0.0.465"
        return new window.ActiveXObject("ShockwaveFlash.ShockwaveFlash").GetVariable("$version").replace(/^\D+/, "").split(",").join(".");
      } catch (e) {}
    }
    return null;
  }
  var FLASH_PLAYER = findFlashPlayer();

  // --- the table and the report ------------------------------------------------------------

  var results = {};
  var flashKind = "Flash";
  var flashLog = [];

  function label(id) { return getText($("check-" + id).getElementsByTagName("th")[0]); }

  function show(id, status, detail, rtt) {
    var row = $("check-" + id), cells = row.getElementsByTagName("td");
    results[id] = { status: status, detail: detail || "", rtt: rtt };
    row.className = GOOD[status] ? "good" : BAD[status] ? "bad" : status === "checking" ? "busy" : "";
    row.setAttribute("data-status", status);
    setText(cells[0], status);
    setText(cells[1], typeof rtt === "number" ? rtt + " ms" : "");
    setText(cells[2], detail || "");
    report();
  }

  function summary(done) {
    var works = [], broken = [], i, id, r;
    if (!done) { return "Checking this browser: leave this page open until it says done."; }
    for (i = 0; i < ROWS.length; i++) {
      id = ROWS[i];
      r = results[id];
      if (!r || id === "flash-player" || id === "flash-swf" || id === "flash-policy") { continue; }
      var name = id === "native" ? "native WebSocket" : id === "flash-socket" ? "web-socket-js on " + flashKind : "SockJS " + id.substring(7);
      if (r.status === "works") { works.push(name + " (" + r.rtt + " ms)"); }
      if (BAD[r.status]) { broken.push(name + " (" + r.status + ")"); }
    }
    if (works.length === 0) {
      return "Nothing worked: this browser could not reach the gateway at " + HOST + " in any way" +
        (broken.length ? " (" + broken.join(", ") + ")" : "") + ". Copy the report below and send it to support.";
    }
    return "This browser can use: " + works.join(", ") + "." +
      (broken.length ? " Not working here: " + broken.join(", ") + "." : "");
  }

  var finished = false;
  function report() {
    var lines = ["flashgate browser check", "Page: " + window.location.href, "Gateway: " + HOST,
      "Date: " + new Date().toString(), "Browser: " + window.navigator.userAgent,
      "Summary: " + summary(finished), ""];
    for (var i = 0, r; i < ROWS.length; i++) {
      if (!(r = results[ROWS[i]])) { continue; }
      lines.push(label(ROWS[i]) + ": " + r.status + (typeof r.rtt === "number" ? " (round trip " + r.rtt + " ms)" : "") +
        (r.detail ? " - " + r.detail : ""));
    }
    if (flashLog.length) {
      lines.push("", "web-socket-js said:");
      for (var j = 0; j < flashLog.length && j < 40; j++) { lines.push("  " + flashLog[j]); }
    }
    $("report").value = lines.join("\n");
    setText($("summary"), summary(finished));
  }

  // --- loading scripts, fetching a URL -------------------------------------------------------

  // fn, callable once: later calls do nothing.
  function once(fn) {
    var called = false;
    return function (value) { if (!called) { called = true; fn(value); } };
  }

  var loaded = {};
  // Loads each [src, ready] in turn, once per page (`ready()`, where given, tells whether the
  // script did its work: IE 6-8 report a missing script as loaded); done(null) when all are
  // ready, done(src) at the first that is not.
  function loadScripts(list, done) {
    if (!list.length) { done(null); return; }
    var src = list[0][0], ready = list[0][1], rest = list.slice(1);
    if ((ready && ready()) || loaded[src]) { loadScripts(rest, done); return; }
    var head = document.getElementsByTagName("head")[0] || document.documentElement;
    var script = document.createElement("script");
    var finish = once(function (ok) {
      clearTimeout(timer);
      script.onload = script.onreadystatechange = script.onerror = null;
      if (ok && (!ready || ready())) { loaded[src] = true; loadScripts(rest, done); } else { done(src); }
    });
    var timer = setTimeout(function () { finish(false); }, limit(20000));
    script.type = "text/javascript";
    script.onload = function () { finish(true); };
    script.onreadystatechange = function () {
      if (script.readyState === "loaded" || script.readyState === "complete") { finish(true); }
    };
    script.onerror = function () { finish(false); };
    script.src = src;
    head.insertBefore(script, head.firstChild);
  }

  // done(HTTP status, 0 when no answer came) of a HEAD request for `url` on this host.
  function head(url, done) {
    var xhr, timer, finish = once(function (status) { clearTimeout(timer); done(status); });
    try {
      xhr = window.XMLHttpRequest ? new window.XMLHttpRequest() : new window.ActiveXObject("Microsoft.XMLHTTP");
      xhr.open("HEAD", url + "?check=" + now(), true);
      xhr.onreadystatechange = function () {
        if (xhr.readyState === 4) { var status = 0; try { status = xhr.status; } catch (e) {} finish(status); }
      };
      timer = setTimeout(function () { try { xhr.abort(); } catch (e) {} finish(0); }, limit(10000));
      xhr.send(null);
    } catch (e) {
      finish(0);
    }
  }

  // --- one connection: open, send a probe, time its echo, close ---------------------------

  // `make()` gives a WebSocket-like object; `why(event)` may explain a close in plain words.
  // done({status, rtt, detail, opened}).
  function echo(make, timeout, why, done) {
    var socket, opened = false, started = now(), sent = 0, timer;
    var probe = "flashgate check " + started + " " + Math.floor(Math.random() * 1e9);
    var finish = once(function (result) {
      clearTimeout(timer);
      result.opened = opened;
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        try { socket.close(); } catch (e) {}
      }
      done(result);
    });
    try { socket = make(); } catch (e) { finish({ status: "failed", detail: "It could not even start: " + messageOf(e) + "." }); return; }
    timer = setTimeout(function () {
      finish({ status: "timed out", detail: opened ? "It connected, but the echo did not come back within " + seconds(timeout) + "."
        : "It did not connect within " + seconds(timeout) + "." });
    }, timeout);
    socket.onopen = function () {
      opened = true;
      sent = now();
      try { socket.send(probe); } catch (e) { finish({ status: "failed", detail: "It connected but could not send: " + messageOf(e) + "." }); }
    };
    socket.onmessage = function (event) {
      if (event.data === probe) {
        finish({ status: "works", rtt: now() - sent, detail: "Connected in " + (sent - started) + " ms; the test message came back." });
      }
    };
    socket.onerror = function () {};
    socket.onclose = function (event) {
      var code = "code " + event.code + (event.reason ? " " + event.reason : "");
      var told = why && why(event);
      if (told && told.status) { finish(told); return; }
      finish({ status: "failed", detail: told || (opened ? "It connected, then the connection closed (" + code + ") before the echo came back."
        : "It could not connect: the connection was refused or cut (" + code + ").") });
    };
  }

  // --- the checks --------------------------------------------------------------------------

  function checkNative(next) {
    if (!NativeWebSocket) { show("native", "not available", "This browser has no WebSocket of its own."); next(); return; }
    show("native", "checking", "Connecting to " + WS_ECHO + "...");
    echo(function () { return new NativeWebSocket(WS_ECHO); }, limit(8000), null, function (r) {
      show("native", r.status, r.detail, r.rtt);
      next();
    });
  }

  function rufflePresent() { return !!(window.RufflePlayer && window.RufflePlayer.newest); }
  function ruffleVersion() {
    try { var v = window.RufflePlayer.newest().version; return v ? "Ruffle " + v : "Ruffle"; } catch (e) { return "Ruffle"; }
  }

  // Marks the Flash checks after `id` "not tried", saying why, and goes on.
  function flashStop(id, why, next) {
    for (var i = 4; ROWS[i] !== id; i--) { show(ROWS[i], "not tried", why); }
    next();
  }

  function checkFlash(next) {
    var noFlash = "No Flash Player, and Ruffle (the Flash emulator) ";
    if (FLASH_PLAYER && FLASH_PLAYER !== "ruffle") {
      flashKind = "Flash Player";
      show("flash-player", "found", "Flash Player " + FLASH_PLAYER + " is installed.");
      checkBridge(false, next);
    } else if (rufflePresent()) {
      flashKind = "Ruffle";
      show("flash-player", "found", (FLASH_PLAYER ? "" : "No Flash Player; ") + ruffleVersion() + " (a Flash emulator) is on this page.");
      checkBridge(true, next);
    } else if (param("ruffle") === "0") {
      show("flash-player", "not available", "No Flash Player (Ruffle, the Flash emulator, was not tried: ruffle=0 in the page's address).");
      flashStop("flash-player", "There is no Flash Player.", next);
    } else if (!window.WebAssembly || !NativeWebSocket) {
      show("flash-player", "not available", noFlash + "cannot run in this browser: it needs WebAssembly and WebSocket.");
      flashStop("flash-player", "There is no Flash Player, nor Ruffle.", next);
    } else {
      show("flash-player", "checking", "No Flash Player; loading Ruffle (a Flash emulator) from the gateway...");
      var player = window.RufflePlayer = window.RufflePlayer || {};
      var config = player.config = player.config || {};
      // WebSocketMain.swf is an invisible, silent 1x1 bridge: let Ruffle start it at once.
      config.autoplay = "on";
      config.unmuteOverlay = "hidden";
      config.splashScreen = false;
      loadScripts([["/ruffle/ruffle.js", rufflePresent], ["/ruffle-config.js", null]], function (failed) {
        if (failed) {
          show("flash-player", "not available", noFlash + "could not be loaded from the gateway (" + failed + ").");
          flashStop("flash-player", "There is no Flash Player, and Ruffle did not load.", next);
          return;
        }
        flashKind = "Ruffle";
        show("flash-player", "found", "No Flash Player; " + ruffleVersion() + " (a Flash emulator) was loaded from the gateway instead.");
        checkBridge(true, next);
      });
    }
  }

  // WebSocketMain.swf and web-socket-js, on Flash Player or Ruffle; then the socket policy.
  function checkBridge(ruffle, next) {
    var started = now(), wait = limit(20000), list = [];
    show("flash-swf", "checking", "Loading WebSocketMain.swf...");
    // web_socket.js is about to replace a native WebSocket: see flashgate-compat.js.
    if (NativeWebSocket) { list.push(["/flashgate-compat.js", null]); window.WEB_SOCKET_FORCE_FLASH = true; }
    list.push(["/swfobject.js", function () { return !!window.swfobject; }]);
    list.push(["/web_socket.js", function () { return isFlash(window.WebSocket); }]);
    window.WEB_SOCKET_SWF_LOCATION = "/WebSocketMain.swf";
    window.WEB_SOCKET_DEBUG = true;
    window.WEB_SOCKET_LOGGER = {
      log: function (message) { flashLog.push(String(message).split("\n")[0]); },
      error: function (message) { flashLog.push("error: " + String(message).replace(/\s*\n\s*/g, " ")); }
    };
    // The SWF is asked for first: a missing one is told at once, in plain words.
    head("/WebSocketMain.swf", function (status) {
      if (status !== 200) {
        show("flash-swf", "failed", status ? "The gateway answered " + status + " for /WebSocketMain.swf instead of sending it."
          : "WebSocketMain.swf could not be downloaded from the gateway (no answer).");
        flashStop("flash-swf", "WebSocketMain.swf did not load.", next);
        return;
      }
      loadScripts(list, function (failed) {
        if (failed) {
          show("flash-swf", "failed", window.swfobject && window.swfobject.getFlashPlayerVersion().major < 10
            ? "swfobject.js finds no Flash Player 10 or later." : "web-socket-js could not be loaded from the gateway (" + failed + ").");
          flashStop("flash-swf", "web-socket-js did not load.", next);
          return;
        }
        (function poll() {
          if (window.WebSocket.__flash) {
            show("flash-swf", "loaded", "WebSocketMain.swf started in " + (now() - started) + " ms" + (ruffle ? " under Ruffle." : " in Flash Player."));
            checkFlashSocket(ruffle, next);
          } else if (now() - started < wait) {
            setTimeout(poll, 100);
          } else if (flashLog.join("\n").indexOf("embedSWF failed") >= 0) {
            show("flash-swf", "failed", "swfobject.js could not put WebSocketMain.swf on the page.");
            flashStop("flash-swf", "WebSocketMain.swf did not start.", next);
          } else {
            show("flash-swf", "timed out", "WebSocketMain.swf did not start within " + seconds(wait) + ".");
            flashStop("flash-swf", "WebSocketMain.swf did not start.", next);
          }
        })();
      });
    });
  }

  function checkFlashSocket(ruffle, next) {
    var Flash = window.WebSocket, from = flashLog.length;
    show("flash-socket", "checking", "Connecting to " + WS_ECHO + " through web-socket-js...");
    show("flash-policy", "checking", ruffle ? "" : "Waiting for Flash Player to ask for the socket policy...");
    echo(function () { return new Flash(WS_ECHO + "?flash=1"); }, limit(15000), null, function (r) {
      show("flash-socket", r.status, r.detail, r.rtt);
      if (ruffle) {
        show("flash-policy", "not needed", "Ruffle asks for no socket policy: its sockets go through the gateway's socket proxy.");
      } else if (r.opened) {
        show("flash-policy", "obtained", "Flash Player got the socket policy (from port 843 or the gateway's own port) and was allowed to connect.");
      } else if (flashLog.slice(from).join("\n").indexOf("SecurityError") >= 0) {
        show("flash-policy", "not obtained", "Flash Player got no socket policy allowing this page: port 843 or the gateway's port may be blocked.");
      } else {
        show("flash-policy", "not known", "The connection failed before Flash Player said anything about the policy.");
      }
      next();
    });
  }

  function checkSockjs(name, next) {
    var id = "sockjs-" + name;
    if (!window.SockJS) { show(id, "failed", "sockjs-client (/sockjs/sockjs.min.js) could not be loaded from the gateway."); next(); return; }
    show(id, "checking", "Connecting to " + HTTP_ECHO + " with SockJS on " + name + " alone...");
    var enabled = null, last = null, timeout = limit(10000);
    function make() {
      var sock = new window.SockJS(HTTP_ECHO, null, { transports: [name], timeout: timeout });
      // sockjs-client's own steps, to tell a transport this browser lacks from one that failed.
      var connect = sock._connect, closed = sock._transportClose;
      if (connect) {
        sock._connect = function () {
          if (enabled === null && this._transports) { enabled = this._transports.length > 0; }
          return connect.apply(this, arguments);
        };
      }
      if (closed) {
        sock._transportClose = function (code, reason) {
          last = last || { code: code, reason: reason };
          return closed.apply(this, arguments);
        };
      }
      return sock;
    }
    function why(event) {
      if (event.code === 2000 && enabled === false) {
        return { status: "not available", detail: "sockjs-client says this browser cannot use " + name + "." };
      }
      if (event.code === 1002) { return "The gateway did not answer SockJS's first request (" + HTTP_ECHO + "/info)."; }
      if (last && last.code === 2007) { return { status: "timed out", detail: "It did not connect within " + seconds(timeout) + "." }; }
      if (last) { return "The " + name + " connection failed (code " + last.code + (last.reason ? " " + last.reason : "") + ")."; }
      return null;
    }
    echo(make, timeout + 2000, why, function (r) {
      show(id, r.status, r.detail, r.rtt);
      next();
    });
  }

  // --- running them ------------------------------------------------------------------------

  function run() {
    var step = 0, i;
    finished = false;
    results = {};
    flashLog = [];
    $("again").disabled = true;
    document.body.className = "";
    setText($("state"), "checking");
    for (i = 0; i < ROWS.length; i++) { show(ROWS[i], "waiting", ""); }
    function next() {
      var n = step++;
      if (n < SOCKJS.length + 2) {
        // A fresh stack for each check, and a moment for the page to show the last one.
        setTimeout(function () {
          var name = n === 0 ? "native" : n === 1 ? "flash" : SOCKJS[n - 2];
          if (contains(SKIP, name) || (n > 1 && contains(SKIP, "sockjs"))) {
            for (i = 0; i < ROWS.length; i++) {
              if (ROWS[i] === name || ROWS[i] === "sockjs-" + name || (n === 1 && ROWS[i].indexOf("flash-") === 0)) {
                show(ROWS[i], "skipped", "Skipped (asked for in the page's address).");
              }
            }
            next();
          } else if (n === 0) { checkNative(next); } else if (n === 1) { checkFlash(next); } else { checkSockjs(name, next); }
        }, 10);
        return;
      }
      finished = true;
      report();
      setText($("state"), "done");
      document.body.className = "done";
      $("again").disabled = false;
    }
    next();
  }

  $("again").onclick = run;
  $("select").onclick = function () { var area = $("report"); area.focus(); area.select(); };
  // After the page has loaded: SockJS's iframe and JSONP transports need the whole body.
  if (document.readyState === "complete") { run(); } else { window.onload = run; }
})(window, document);
