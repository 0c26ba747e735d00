// The hixie-76 build of web-socket-js (/hixie76/…) on its Flash path under Ruffle, on a page
// of the gateway's own origin: its Flash socket goes through the socket proxy back to the
// gateway's port, where it speaks draft 76. For hixie76.test.js and upstream.test.js.
'use strict';
const assert = require('node:assert');
const { settled } = require('./clients');

// What the page records of each socket it opens (as clients.js's pages do).
const TRACK = `
  window.clients = {};
  window.track = function (name, socket) {
    var c = clients[name] = { socket: socket, messages: [], opened: false, closed: null, errors: 0, events: [] };
    socket.onopen = function () { c.opened = true; c.events.push("open"); };
    socket.onmessage = function (e) { c.messages.push(e.data); };
    socket.onerror = function () { c.errors++; c.events.push("error"); };
    socket.onclose = function (e) { c.closed = { code: e.code }; c.events.push("close"); };
    return c;
  };`;

// A page on the gateway's own origin (the SWF must come from the page's host, and Ruffle's
// socket proxy is on it) running the hixie-76 web-socket-js under Ruffle. That build defines
// window.WebSocket only where the browser has none (as in the browsers that ran Flash Player),
// so the native one is taken away while web_socket.js loads, then handed to
// /flashgate-compat.js, which keeps it for Ruffle's own connections to the socket proxy and
// wraps the Flash WebSocket (for its message events, which current browsers refuse to build
// the old way). In the page, `track(name, new WebSocket(url))` starts a client on Flash.
async function hixiePage(browser, gateway) {
  const page = await browser.newPage();
  page.errors = [];
  page.console = [];
  page.requested = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('console', (message) => page.console.push(`${message.type()}: ${message.text()} (${message.location().url})`));
  page.on('request', (request) => page.requested.push(new URL(request.url()).pathname));
  page.failed = [];
  page.on('response', (response) => { if (response.status() >= 400) page.failed.push(`${response.status()} ${new URL(response.url()).pathname}`); });
  await page.goto(`${gateway.url}/assets.json`);
  await page.addScriptTag({ content: `
    window.RufflePlayer = window.RufflePlayer || {};
    window.RufflePlayer.config = { autoplay: "on", unmuteOverlay: "hidden", splashScreen: false };` });
  await page.addScriptTag({ url: '/ruffle/ruffle.js' });
  await page.addScriptTag({ url: '/ruffle-config.js' });
  await page.evaluate(() => {
    window.NativeWebSocket = window.WebSocket;
    delete window.WebSocket;
  });
  await page.addScriptTag({ url: '/hixie76/swfobject.js' });
  await page.addScriptTag({ content: 'WEB_SOCKET_SWF_LOCATION = "/hixie76/WebSocketMain.swf";' });
  await page.addScriptTag({ url: '/hixie76/web_socket.js' });
  await page.evaluate(() => {
    window.FlashWebSocket = window.WebSocket;
    window.WebSocket = window.NativeWebSocket;
  });
  await page.addScriptTag({ url: '/flashgate-compat.js' });
  await page.addScriptTag({ content: TRACK });
  const ready = await page.evaluate(() => {
    window.WebSocket = window.FlashWebSocket;
    // web_socket.js embeds its SWF on the window's load event, which has passed.
    window.WebSocket.__initialize();
    return {
      ruffle: typeof window.RufflePlayer.newest === 'function',
      flashPlayer: window.swfobject.getFlashPlayerVersion().major,
      flashWebSocket: typeof window.WebSocket.__onFlashInitialized === 'function',
      nativeKept: window.WebSocket !== window.NativeWebSocket,
    };
  });
  assert.deepStrictEqual(ready, { ruffle: true, flashPlayer: 32, flashWebSocket: true, nativeKept: true });
  return page;
}

// What a hixie-76 page has reported wrong: web-socket-js catches errors in its event handling
// and logs them to the console, so console errors count as much as page errors. The document's
// own favicon request (which has no page events) is the one failed load left out.
function troubles(page) {
  const consoleErrors = page.console.filter((line) => line.startsWith('error: ') && !/^error: Failed to load resource: .* \(http:[^ ]*\/favicon\.ico\)$/.test(line));
  return [...page.errors, ...page.failed, ...consoleErrors];
}

// Starts a hixie-76 web-socket-js client `name` on `page` and resolves once it is open (Ruffle
// starts, the SWF calls back, the Flash socket connects through the proxy and handshakes).
async function openHixie(page, name, url) {
  await page.evaluate(([n, u]) => { track(n, new WebSocket(u)); }, [name, url]);
  // web-socket-js reports its troubles on the console only: show them with the failure.
  const state = await settled(page, name, 45000).catch((err) => ({ error: err.message }));
  if (!state.opened) throw new Error(`${name} did not open: ${JSON.stringify(state)}\nconsole:\n${page.console.join('\n')}`);
}

module.exports = { hixiePage, troubles, openHixie };
