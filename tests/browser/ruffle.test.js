// web-socket-js on its Flash path, running in Ruffle, through flashgate's socket proxy, in
// Debian's headless Chromium: the same backend as native browsers.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startGateway, launchBrowser, logTexts, waitForLog, openDemo, waitForConnected } = require('./harness');

let gateway;
let browser;

test.before(async () => {
  gateway = await startGateway();
  browser = await launchBrowser();
});

test.after(async () => {
  if (browser) await browser.close();
  if (gateway) assert.strictEqual(await gateway.stop(), 0, 'flashgate exits 0 on SIGTERM');
});

async function send(page, text, button = '#send') {
  await page.fill('#message', text);
  await page.click(button);
}

async function switchTo(page, route, room) {
  if (room) await page.fill('#room', room);
  await page.selectOption('#route', route);
  if (room) await page.click('#join');
  await waitForConnected(page, route === 'echo' ? /\/echo\?flash=1$|\/echo$/ : new RegExp(`room=${room}`));
}

test('web-socket-js really runs on Flash in Ruffle and reaches the gateway through the proxy', async () => {
  const page = await openDemo(browser, `${gateway.url}/ruffle.html`);
  const flash = await page.evaluate(() => ({
    implementation: !!window.WebSocket.__isFlashImplementation,
    bridge: !!(window.WebSocket.__flash && window.WebSocket.__flash.tagName),
    player: window.RufflePlayer && typeof window.RufflePlayer.newest === 'function',
  }));
  assert.deepStrictEqual(flash, { implementation: true, bridge: true, player: true });
  assert.strictEqual(await page.textContent('#transport'), 'Flash (web-socket-js)');
  assert.strictEqual(await page.textContent('#flash-version'), '32.0.0');
  assert.strictEqual(await page.isDisabled('#send-binary'), true, 'web-socket-js sends text only');
  const log = gateway.log();
  assert.match(log, /websocket handshake .*transport=rfc6455 route=\/socket backend="?proxy"? target=127\.0\.0\.1:\d+/);
  assert.match(log, /websocket handshake .*transport=flash route=\/chat/);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('echo through Flash: 1, 125, 126, 65535 and 70000 characters, and non-ASCII text', async () => {
  const page = await openDemo(browser, `${gateway.url}/ruffle.html`);
  await switchTo(page, 'echo');
  for (const text of ['a', 'b'.repeat(125), 'c'.repeat(126), 'd'.repeat(65535), 'e'.repeat(70000),
    'grüße ✓ 日本語 𝄞 “quotes” <tags> & 100%']) {
    await send(page, text);
    await waitForLog(page, 'in', text, 20000);
  }
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('a Flash client and a native client in one room see each other, in order', async () => {
  const flash = await openDemo(browser, `${gateway.url}/ruffle.html`);
  const native = await openDemo(browser, `${gateway.url}/`);
  await switchTo(flash, 'chat', 'mixed');
  await switchTo(native, 'chat', 'mixed');
  assert.strictEqual(await native.textContent('#transport'), 'native WebSocket');
  // Record what reaches web-socket-js itself, to see the raw form of binary messages.
  await flash.evaluate(() => {
    window.rawMessages = [];
    const instances = window.WebSocket.__instances;
    Object.keys(instances).forEach((id) => instances[id].addEventListener('message', (e) => window.rawMessages.push(e.data)));
  });
  const said = [];
  for (let i = 0; i < 6; i++) {
    const [from, text] = i % 2 ? [native, `native ${i}`] : [flash, `flash ${i} ✓`];
    await send(from, text);
    said.push(text);
    await waitForLog(flash, 'in', text, 20000);
    await waitForLog(native, 'in', text, 20000);
  }
  assert.deepStrictEqual(await logTexts(flash, 'in'), said);
  assert.deepStrictEqual(await logTexts(native, 'in'), said);

  // Binary from the native client reaches the Flash client as the data: URL, never a binary
  // frame (web-socket-js would close with 1003).
  await send(native, 'AB', '#send-binary');
  await waitForLog(native, 'in', 'binary 2 bytes: 41 42');
  await waitForLog(flash, 'in', 'binary 2 bytes: 41 42', 20000);
  const raw = await flash.evaluate(() => window.rawMessages);
  assert.strictEqual(raw[raw.length - 1], 'data:application/octet-stream;base64,QUI=');
  assert.strictEqual(await flash.textContent('#state'), 'open');
  await flash.close();
  await native.close();
});

test('the SWF is served cross-origin with CORS for allowed origins only', async () => {
  // localhost and 127.0.0.1 are two origins for the browser; both are the gateway's own.
  const page = await browser.newPage();
  await page.goto(`http://localhost:${gateway.port}/legacy.html`);
  const fetched = await page.evaluate(async (url) => {
    const response = await fetch(url);
    const body = new Uint8Array(await response.arrayBuffer());
    return { status: response.status, type: response.headers.get('content-type'), magic: String.fromCharCode(body[1], body[2]) };
  }, `http://127.0.0.1:${gateway.port}/WebSocketMain.swf`);
  assert.deepStrictEqual(fetched, { status: 200, type: 'application/x-shockwave-flash', magic: 'WS' });
  await page.close();

  const strict = await startGateway(['--allow-origin', 'http://games.example']);
  try {
    const other = await browser.newPage();
    await other.goto(`http://localhost:${strict.port}/legacy.html`);
    const refused = await other.evaluate((url) => fetch(url).then(() => 'fetched', (err) => err.name), `http://127.0.0.1:${strict.port}/WebSocketMain.swf`);
    assert.strictEqual(refused, 'TypeError', 'the browser refuses a SWF without CORS for its origin');
    await other.close();
  } finally {
    await strict.stop();
  }
});

test('a proxy target not on the allow-list is refused and logged', async () => {
  const page = await browser.newPage();
  await page.goto(`${gateway.url}/legacy.html`);
  const code = await page.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve('opened');
    ws.onclose = (e) => resolve(e.code);
  }), `ws://127.0.0.1:${gateway.port}/socket?target=127.0.0.1:22`);
  assert.strictEqual(code, 1006, 'the handshake is refused');
  assert.match(gateway.log(), /backend refused the client.*127\.0\.0\.1:22 is not allowed/);
  await page.close();
});

test('when the target goes away the Flash socket closes within 3 s', async () => {
  const target = await startGateway(['--allow-origin', '*']);
  // The front gateway proxies to itself (for the page's own socket) and to the target.
  const front = await startGateway(['--proxy-target', `self,127.0.0.1:${target.port}`]);
  try {
    const tab = await openDemo(browser, `${front.url}/ruffle.html`);
    // A Flash socket to the target, through the front gateway's proxy.
    await tab.evaluate((url) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      window.targetSocket = { events: [] };
      ws.onopen = () => { window.targetSocket.events.push('open'); ws.send('hello target'); };
      ws.onmessage = (e) => { window.targetSocket.events.push(`message ${e.data}`); resolve(); };
      ws.onclose = (e) => { window.targetSocket.closedAt = Date.now(); window.targetSocket.code = e.code; };
      setTimeout(() => reject(new Error('no echo from the target')), 25000);
    }), `ws://127.0.0.1:${target.port}/echo`);
    assert.deepStrictEqual(await tab.evaluate(() => window.targetSocket.events), ['open', 'message hello target']);
    assert.match(target.log(), /websocket handshake .*transport=flash route=\/echo/);

    const killedAt = Date.now();
    await target.stop('SIGKILL');
    await tab.waitForFunction(() => window.targetSocket.closedAt, null, { timeout: 10000 });
    const closedAt = await tab.evaluate(() => window.targetSocket.closedAt);
    assert.ok(closedAt - killedAt < 3000, `closed after ${closedAt - killedAt} ms`);
    await tab.close();
  } finally {
    await target.stop('SIGKILL');
    await front.stop();
  }
});

test('flashgate-compat.js changes nothing in a browser without native WebSocket', async () => {
  const script = `${gateway.url}/flashgate-compat.js`;
  const probe = async (removeWebSocket) => {
    const page = await browser.newPage();
    if (removeWebSocket) await page.addInitScript(() => { delete window.WebSocket; });
    await page.goto(`${gateway.url}/assets.json`);
    const result = await page.evaluate(async (src) => {
      await new Promise((resolve, reject) => {
        const tag = document.createElement('script');
        tag.src = src;
        tag.onload = resolve;
        tag.onerror = reject;
        document.head.appendChild(tag);
      });
      const before = Object.getOwnPropertyDescriptor(window, 'WebSocket');
      function Polyfill() {}
      window.WebSocket = Polyfill;
      return {
        hooked: !!(before && before.get),
        replacedAsIs: window.WebSocket === Polyfill,
      };
    }, script);
    await page.close();
    return result;
  };
  // Like IE8-11 with Flash Player: no native WebSocket, so web_socket.js's own is left alone.
  assert.deepStrictEqual(await probe(true), { hooked: false, replacedAsIs: true });
  // A current browser: the polyfill is wrapped so that Ruffle keeps the native WebSocket.
  assert.deepStrictEqual(await probe(false), { hooked: true, replacedAsIs: false });
});
