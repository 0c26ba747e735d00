// A test page on another origin than the gateway's, with sockjs-client and flashgate.js from
// the gateway, and helpers to drive clients on it from the tests.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startPageServer, startGatewayWithPort, launchBrowser } = require('./harness');

// What the pages record of each socket they open.
const TRACK = `
  var clients = {};
  function track(name, socket) {
    var c = clients[name] = { socket: socket, messages: [], opened: false, closed: null, errors: 0, events: [] };
    socket.onopen = function () { c.opened = true; c.events.push("open"); };
    socket.onmessage = function (e) { c.messages.push(e.data); };
    socket.onerror = function () { c.errors++; c.events.push("error"); };
    socket.onclose = function (e) {
      c.closed = { code: e.code, reason: e.reason, wasClean: e.wasClean };
      c.events.push("close");
    };
    return c;
  }`;

// The page for gateway `gw` (an http:// URL), with sockjs-client unless `withSockjs` is false.
// In it, `track(name, socket)` records what a socket (SockJS, WebSocket or FlashGate) does in
// `clients[name]`.
function clientPage(gw, withSockjs) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>flashgate clients</title>
${withSockjs ? `<script src="${gw}/sockjs/sockjs.min.js"></script>` : ''}
<script src="${gw}/flashgate.js"></script>
<script>
  var GATEWAY = ${JSON.stringify(gw)};
${TRACK}
</script>
</head><body><p>flashgate clients</p></body></html>`;
}

// Starts the page server; `server.page(browser, gateway, {init, sockjs})` opens the page for
// a running gateway (`init`: a script to run before the page's own, e.g. to take WebSocket
// away; `sockjs: false`: a page without sockjs-client). The page records the paths it
// requested from the gateway in `page.requested`.
async function startClientPages() {
  const server = await startPageServer((url) => (url.pathname === '/'
    ? clientPage(url.searchParams.get('gw'), url.searchParams.get('sockjs') !== '0') : null));
  server.page = async (browser, gateway, { init, sockjs = true } = {}) => {
    const page = await browser.newPage();
    page.errors = [];
    page.requested = [];
    page.on('pageerror', (err) => page.errors.push(err.message));
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.host === gateway.addr) page.requested.push(url.pathname);
    });
    if (init) await page.addInitScript(init);
    await page.goto(`${server.url}/?gw=${encodeURIComponent(gateway.url)}${sockjs ? '' : '&sockjs=0'}`);
    return page;
  };
  return server;
}

// A page on the gateway's own origin (its /assets.json, a document with nothing of its own
// that runs scripts) with flashgate.js and `track`: for Flash, whose SWF must come from the
// page's host, and Ruffle, whose socket proxy is on the page's host.
async function gatewayPage(browser, gateway) {
  const page = await browser.newPage();
  page.errors = [];
  page.requested = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('request', (request) => page.requested.push(new URL(request.url()).pathname));
  await page.goto(`${gateway.url}/assets.json`);
  await page.addScriptTag({ url: '/flashgate.js' });
  await page.addScriptTag({ content: TRACK });
  return page;
}

// Starts a client on `page`: kind "sockjs" (new SockJS(url, null, options)), "websocket" or
// "flashgate" (new FlashGate(url, options)).
function startClient(page, name, kind, url, options = {}) {
  return page.evaluate(([n, k, u, o]) => {
    const make = { sockjs: () => new SockJS(u, null, o), websocket: () => new WebSocket(u), flashgate: () => new FlashGate(u, o) };
    track(n, make[k]());
  }, [name, kind, url, options]);
}

// Waits until client `name` has opened or closed; resolves with what it is.
async function settled(page, name, timeout = 20000) {
  await page.waitForFunction((n) => clients[n].opened || clients[n].closed, name, { timeout });
  return page.evaluate((n) => ({
    opened: clients[n].opened,
    closed: clients[n].closed,
    events: clients[n].events,
    readyState: clients[n].socket.readyState,
    transport: clients[n].socket.transport || null,
    attempts: clients[n].socket.attempts || null,
    url: clients[n].socket.url,
  }), name);
}

// Starts a client and resolves once it is open (rejects with how it closed, if it did).
async function openClient(page, name, kind, url, options = {}, timeout = 20000) {
  await startClient(page, name, kind, url, options);
  const state = await settled(page, name, timeout);
  if (!state.opened) throw new Error(`${name} did not open: ${JSON.stringify(state)}`);
  return state;
}

function send(page, name, texts) {
  return page.evaluate(([n, list]) => { list.forEach((t) => clients[n].socket.send(t)); }, [name, texts]);
}

// Waits until client `name` has received `count` messages; resolves with them.
async function messages(page, name, count, timeout = 20000) {
  await page.waitForFunction(([n, c]) => clients[n].messages.length >= c || clients[n].closed, [name, count], { timeout });
  return page.evaluate((n) => clients[n].messages, name);
}

// For a test file: the client pages on their own origin, a gateway that allows them and its
// own origin (its pages, and the iframe page of SockJS's iframe transports), and a browser;
// set up before the file's tests and torn down after (the gateway must exit 0 on SIGTERM).
// The returned object's fields are filled in before the first test runs.
function crossOrigin() {
  const setup = {};
  test.before(async () => {
    setup.pages = await startClientPages();
    setup.gateway = await startGatewayWithPort((port) => ['--allow-origin', setup.pages.origin, '--allow-origin', `http://127.0.0.1:${port}`]);
    setup.browser = await launchBrowser();
  });
  test.after(async () => {
    if (setup.browser) await setup.browser.close();
    if (setup.pages) await setup.pages.close();
    if (setup.gateway) assert.strictEqual(await setup.gateway.stop(), 0, 'flashgate exits 0 on SIGTERM');
  });
  return setup;
}

module.exports = { TRACK, startClientPages, gatewayPage, startClient, settled, openClient, send, messages, crossOrigin };
