// The hixie-76 build of web-socket-js (/hixie76/…) on its Flash path, running in Ruffle, in
// Debian's headless Chromium: WebSocketMain.swf's Flash socket goes through flashgate's socket
// proxy back to the gateway's own port, where its draft-76 handshake and frames arrive as raw
// bytes, and it joins the same rooms as native WebSocket, RFC 6455 web-socket-js and SockJS.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { logTexts, openDemo, waitForConnected } = require('./harness');
const { crossOrigin, openClient, settled, send, messages } = require('./clients');

const TIMEOUT = { timeout: 120000 };
const setup = crossOrigin();

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

// The gateway's "websocket handshake" log lines of one transport on one route.
function handshakes(gateway, transport, route) {
  return gateway.log().split('\n').filter((line) => line.includes('websocket handshake')
    && line.includes(`transport=${transport} `) && line.includes(`route=${route} `));
}

test('hixie-76 web-socket-js under Ruffle, native WebSocket, RFC 6455 web-socket-js under Ruffle and SockJS share a broadcast room, in order', TIMEOUT, async () => {
  const { gateway, browser } = setup;
  const room = 'drafts';
  const hixie = await hixiePage(browser, gateway);
  await openHixie(hixie, 'hixie', `ws://${gateway.addr}/chat?room=${room}`);
  // The Flash socket went through the socket proxy (Ruffle's native WebSocket on /socket) to
  // the gateway's own port, and spoke draft 76 there: one hixie-76 session on /chat.
  assert.strictEqual(handshakes(gateway, 'hixie76', '/chat').length, 1, gateway.log());
  assert.match(handshakes(gateway, 'hixie76', '/chat')[0], /draft=Hixie76 .*backend="?broadcast"?/);
  assert.ok(handshakes(gateway, 'rfc6455', '/socket').some((line) => /backend="?proxy"? target=127\.0\.0\.1:\d+/.test(line)),
    'Ruffle reached the proxy');
  assert.ok(hixie.requested.includes('/hixie76/WebSocketMain.swf'), hixie.requested.join(' '));
  for (const file of ['/WebSocketMain.swf', '/web_socket.js', '/swfobject.js']) {
    assert.ok(!hixie.requested.includes(file), `${file} (the RFC 6455 build) is not on the page`);
  }

  const page = await setup.pages.page(browser, gateway);
  await openClient(page, 'native', 'websocket', `ws://${gateway.addr}/chat?room=${room}`);
  const sockjs = await openClient(page, 'sockjs', 'sockjs', `${gateway.url}/chat?room=${room}`, { transports: ['xhr-streaming'] });
  assert.strictEqual(sockjs.transport, 'xhr-streaming');
  const flash = await openDemo(browser, `${gateway.url}/ruffle.html`);
  assert.strictEqual(await flash.textContent('#transport'), 'Flash (web-socket-js)');
  await flash.fill('#room', room);
  await flash.click('#join');
  await waitForConnected(flash, new RegExp(`room=${room}&flash=1$`));

  // Sent without waiting for one another: everyone gets all of them in the room's one order.
  const said = { hixie: [], native: [], sockjs: [], flash: [] };
  for (let i = 0; i < 3; i++) {
    for (const who of ['hixie', 'native', 'sockjs']) {
      const text = `${who} ${i} ✓ grüße`;
      said[who].push(text);
      await send(who === 'hixie' ? hixie : page, who, [text]);
    }
    const text = `flash ${i} ✓ grüße`;
    said.flash.push(text);
    await flash.fill('#message', text);
    await flash.click('#send');
  }
  const total = 12;
  const seen = {};
  seen.hixie = await messages(hixie, 'hixie', total, 30000);
  for (const who of ['native', 'sockjs']) seen[who] = await messages(page, who, total, 30000);
  await flash.waitForFunction((n) => document.querySelectorAll('#log li.in').length >= n, total, { timeout: 30000 });
  seen.flash = await logTexts(flash, 'in');
  for (const who of Object.keys(seen)) {
    assert.strictEqual(seen[who].length, total, `${who} saw ${seen[who].join(' | ')}`);
    assert.deepStrictEqual(seen[who], seen.native, `${who} and the native client saw the same order`);
  }
  for (const who of Object.keys(said)) {
    assert.deepStrictEqual(seen.native.filter((t) => t.startsWith(`${who} `)), said[who], `${who}'s messages in the order sent`);
  }
  // Nothing more comes, and every client is still open.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepStrictEqual(await hixie.evaluate(() => [clients.hixie.messages.length, clients.hixie.closed, clients.hixie.errors]), [total, null, 0]);
  assert.deepStrictEqual(await page.evaluate(() => [clients.native.messages.length, clients.sockjs.messages.length]), [total, total]);
  assert.strictEqual(await flash.textContent('#state'), 'open');
  assert.match(gateway.log(), /websocket handshake .*transport=flash route=\/chat/);
  assert.deepStrictEqual(troubles(hixie), []);
  assert.deepStrictEqual(page.errors, []);
  assert.deepStrictEqual(flash.errors, []);
  await flash.close();
  await page.close();
  await hixie.close();
});

test('hixie-76 web-socket-js under Ruffle echoes non-ASCII text and a 70,000-character message', TIMEOUT, async () => {
  const { gateway, browser } = setup;
  const before = handshakes(gateway, 'hixie76', '/echo').length;
  const hixie = await hixiePage(browser, gateway);
  await openHixie(hixie, 'echo', `ws://${gateway.addr}/echo`);
  assert.strictEqual(handshakes(gateway, 'hixie76', '/echo').length, before + 1);
  const texts = ['grüße ✓ 日本語 𝄞 😀 “quotes” <tags> & 100% \\ "', 'e'.repeat(70000), 'a✓日𝄞'.repeat(14000), 'after them'];
  await send(hixie, 'echo', texts);
  const got = await messages(hixie, 'echo', texts.length, 30000);
  assert.strictEqual(got.length, texts.length, `got ${got.map((t) => t.length).join(', ')} characters`);
  for (let i = 0; i < texts.length; i++) {
    assert.ok(got[i] === texts[i], `message ${i}: sent ${texts[i].length} characters, got back ${got[i].length}: ${got[i].slice(0, 40)}`);
  }
  assert.deepStrictEqual(await hixie.evaluate(() => [clients.echo.closed, clients.echo.errors, clients.echo.socket.readyState]), [null, 0, 1]);
  assert.deepStrictEqual(troubles(hixie), []);
  await hixie.close();
});
