// The demo and legacy pages in Debian's headless Chromium against the real gateway.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startGateway, launchBrowser, logTexts, waitForLog, openDemo, waitForConnected } = require('./harness');

const TIMEOUT = { timeout: 60000 };
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

// The demo page, connected to `route` (and `room`, for chat).
async function demoPage({ route = 'chat', room, query = '' } = {}) {
  const page = await openDemo(browser, `${gateway.url}/${query}`);
  if (route === 'echo') {
    await page.selectOption('#route', 'echo');
    await waitForConnected(page, /\/echo$/);
  } else if (room) {
    await page.fill('#room', room);
    await page.click('#join');
    await waitForConnected(page, new RegExp(`/chat\\?room=${room}$`));
  }
  return page;
}

async function send(page, text, button = '#send') {
  await page.fill('#message', text);
  await page.click(button);
}

test('the demo uses native WebSocket and echoes text, non-ASCII included', TIMEOUT, async () => {
  const page = await demoPage({ route: 'echo' });
  assert.strictEqual(await page.textContent('#transport'), 'native WebSocket');
  assert.strictEqual(await page.textContent('#state'), 'open');
  assert.strictEqual(await page.isDisabled('#room'), true, 'no room on the echo route');
  for (const text of ['hello', 'grüße ✓ 日本語 𝄞 <b>not bold</b> & 100%', ' spaced  out ', 'x'.repeat(70000)]) {
    await send(page, text);
    await waitForLog(page, 'in', text);
    await waitForLog(page, 'out', text);
  }
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('binary sent from the page comes back as binary', TIMEOUT, async () => {
  const page = await demoPage({ route: 'echo' });
  assert.strictEqual(await page.isDisabled('#send-binary'), false);
  await send(page, 'AB', '#send-binary');
  await waitForLog(page, 'in', 'binary 2 bytes: 41 42');
  // UTF-8 bytes, and only the first 24 shown.
  await send(page, 'é'.repeat(13), '#send-binary');
  await waitForLog(page, 'in', `binary 26 bytes: ${Array(12).fill('c3 a9').join(' ')} \u2026`);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('Enter sends the message', TIMEOUT, async () => {
  const page = await demoPage({ room: 'enter-key' });
  await page.fill('#message', 'sent with Enter');
  await page.press('#message', 'Enter');
  await waitForLog(page, 'in', 'sent with Enter');
  assert.strictEqual(await page.inputValue('#message'), '', 'the input is cleared');
  await page.close();
});

test('two pages in one room see each other in order; another room sees nothing', TIMEOUT, async () => {
  const alice = await demoPage({ room: 'pair' });
  const bob = await demoPage({ room: 'pair' });
  const carol = await demoPage({ room: 'elsewhere' });
  const said = [];
  for (let i = 0; i < 6; i++) {
    const [from, text] = i % 2 ? [bob, `bob ${i}`] : [alice, `alice ${i} ✓`];
    await send(from, text);
    said.push(text);
  }
  // Sent without waiting in between: both see all of them, in the same order.
  await waitForLog(alice, 'in', said[said.length - 1]);
  await waitForLog(bob, 'in', said[said.length - 1]);
  const aliceSaw = await logTexts(alice, 'in');
  assert.deepStrictEqual(aliceSaw, await logTexts(bob, 'in'));
  assert.deepStrictEqual(aliceSaw.filter((t) => t.startsWith('alice')), said.filter((t) => t.startsWith('alice')));
  assert.deepStrictEqual(aliceSaw.filter((t) => t.startsWith('bob')), said.filter((t) => t.startsWith('bob')));
  // Each page marks its own messages.
  const mine = (page) => page.$$eval('#log li.in.mine', (items) => items.map((li) => li.textContent));
  assert.deepStrictEqual(await mine(alice), said.filter((t) => t.startsWith('alice')));
  assert.deepStrictEqual(await mine(bob), said.filter((t) => t.startsWith('bob')));

  await send(carol, 'carol here');
  await waitForLog(carol, 'in', 'carol here');
  await send(alice, 'last word');
  await waitForLog(bob, 'in', 'last word');
  assert.deepStrictEqual(await logTexts(carol, 'in'), ['carol here'], 'nothing from the other room');
  assert.ok(!(await logTexts(alice, 'in')).includes('carol here'), 'nothing from the other room');
  for (const page of [alice, bob, carol]) await page.close();
});

test('a bad room name is explained, and the page stays where it was', TIMEOUT, async () => {
  const page = await demoPage({ room: 'before' });
  await page.fill('#room', 'no spaces');
  await page.press('#room', 'Enter');
  await waitForLog(page, 'sys', "a room name is 1 to 64 letters, digits, '-', '_' or '.'");
  assert.strictEqual(await page.textContent('#state'), 'open');
  await page.fill('#room', 'after');
  await page.press('#room', 'Enter');
  await waitForConnected(page, /\/chat\?room=after$/);
  await page.close();
});

test('an optional name goes in front of the message', TIMEOUT, async () => {
  const page = await demoPage({ room: 'names' });
  await page.fill('#nick', '  ana ');
  await send(page, 'hello');
  await waitForLog(page, 'in', 'ana: hello');
  await page.close();
});

test('?transport=flash without Flash Player says so, loads nothing for Flash, and stays usable', TIMEOUT, async () => {
  const requested = [];
  const page = await browser.newPage();
  page.on('request', (request) => requested.push(new URL(request.url()).pathname));
  await page.goto(`${gateway.url}/?transport=flash`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 10000 });
  const sys = await logTexts(page, 'sys');
  assert.ok(sys.includes('flash: no Flash Player (Ruffle not asked for)'), sys.join('\n'));
  assert.ok(sys.includes('flash was asked for but is not available here: using native WebSocket.'), sys.join('\n'));
  assert.strictEqual(await page.textContent('#transport'), 'native WebSocket');
  assert.strictEqual(await page.getAttribute('#transport', 'data-transport'), 'websocket');
  // Without a Flash Player, flashgate.js fetches none of web-socket-js.
  for (const file of ['/swfobject.js', '/web_socket.js', '/WebSocketMain.swf', '/ruffle/ruffle.js']) {
    assert.ok(!requested.includes(file), `${file} was fetched: ${requested.join(' ')}`);
  }
  assert.deepStrictEqual(await page.evaluate(() => [typeof window.swfobject, !!window.WebSocket.__isFlashImplementation]),
    ['undefined', false]);
  await page.fill('#room', 'forced');
  await page.click('#join');
  await waitForConnected(page, /\/chat\?room=forced$/);
  await send(page, 'still works');
  await waitForLog(page, 'in', 'still works');
  await page.close();
});

test('without native WebSocket and Flash the demo runs on SockJS and says so', TIMEOUT, async () => {
  // What IE 8-9 without Flash Player and old Android browsers get.
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.addInitScript(() => { delete window.WebSocket; delete window.MozWebSocket; });
  await page.goto(`${gateway.url}/`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 20000 });
  assert.strictEqual(await page.textContent('#transport'), 'SockJS (xhr-streaming)');
  assert.strictEqual(await page.getAttribute('#transport', 'data-transport'), 'sockjs:xhr-streaming');
  const sys = await logTexts(page, 'sys');
  assert.deepStrictEqual(sys.slice(0, 2), ['websocket: this browser has none', 'flash: no Flash Player (Ruffle not asked for)']);
  assert.match(sys[sys.length - 1], /^connected to http:\/\/127\.0\.0\.1:\d+\/chat\?room=lobby$/);
  assert.strictEqual(await page.isDisabled('#send-binary'), true, 'SockJS carries text only');
  await page.fill('#room', 'sockjs-demo');
  await page.click('#join');
  await waitForConnected(page, /\/chat\?room=sockjs-demo$/);
  await send(page, 'over SockJS ✓');
  await waitForLog(page, 'in', 'over SockJS ✓');
  assert.deepStrictEqual(await page.$$eval('#log li.in.mine', (items) => items.map((li) => li.textContent)), ['over SockJS ✓']);
  assert.deepStrictEqual(errors, []);
  await page.close();
});

test('?transport=sockjs&sockjs=xhr-polling: a polling page and a native one chat in one room', TIMEOUT, async () => {
  const polling = await demoPage({ query: '?transport=sockjs&sockjs=xhr-polling' });
  assert.strictEqual(await polling.textContent('#transport'), 'SockJS (xhr-polling)');
  const native = await demoPage({ room: 'mixed-demo' });
  assert.strictEqual(await native.textContent('#transport'), 'native WebSocket');
  await polling.fill('#room', 'mixed-demo');
  await polling.click('#join');
  await waitForConnected(polling, /\/chat\?room=mixed-demo$/);
  await send(polling, 'from polling');
  await send(native, 'from native');
  for (const page of [polling, native]) {
    await waitForLog(page, 'in', 'from native');
    assert.deepStrictEqual(await logTexts(page, 'in'), ['from polling', 'from native']);
  }
  // Binary from the native page reaches the SockJS page as the gateway's data: URL text.
  await send(native, 'AB', '#send-binary');
  await waitForLog(polling, 'in', 'binary 2 bytes: 41 42');
  for (const page of [polling, native]) await page.close();
});

test('?forbid=websocket&ruffle=1: the demo runs web-socket-js on Flash in Ruffle', TIMEOUT, async () => {
  const page = await openDemo(browser, `${gateway.url}/?forbid=websocket&ruffle=1`, 40000);
  assert.strictEqual(await page.textContent('#transport'), 'Flash (web-socket-js)');
  await page.fill('#room', 'ruffle-demo');
  await page.click('#join');
  await waitForConnected(page, /\/chat\?room=ruffle-demo&flash=1$/);
  await send(page, 'over Flash ✓');
  await waitForLog(page, 'in', 'over Flash ✓', 20000);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('the legacy web-socket-js page echoes through /echo', TIMEOUT, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${gateway.url}/legacy.html`);
  await page.waitForFunction(() => /onopen/.test(document.getElementById('log').textContent), null, { timeout: 10000 });
  assert.strictEqual(await page.textContent('#impl'), 'native WebSocket');
  await page.fill('#input', 'classic ✓');
  await page.press('#input', 'Enter');
  await page.waitForFunction(() => /onmessage: classic ✓/.test(document.getElementById('log').textContent), null, { timeout: 10000 });
  assert.deepStrictEqual(errors, []);
  await page.close();
});

test('a page loading /web_socket.js gets it and window.WebSocket works', TIMEOUT, async () => {
  const page = await browser.newPage();
  const statuses = {};
  page.on('response', (response) => { statuses[new URL(response.url()).pathname] = response.status(); });
  await page.goto(`${gateway.url}/legacy.html`);
  assert.deepStrictEqual([statuses['/swfobject.js'], statuses['/web_socket.js']], [200, 200]);
  const result = await page.evaluate((url) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timed out'), 10000);
    const ws = new window.WebSocket(url);
    ws.onopen = () => ws.send('via window.WebSocket');
    ws.onmessage = (e) => { clearTimeout(timer); ws.close(); resolve(e.data); };
    ws.onclose = (e) => { clearTimeout(timer); resolve(`closed ${e.code}`); };
  }), `ws://${gateway.addr}/echo`);
  assert.strictEqual(result, 'via window.WebSocket');
  assert.strictEqual(await page.evaluate(() => typeof window.WebSocket.__initialize), 'undefined',
    'with a native WebSocket, web_socket.js leaves it in place');
  await page.close();
});

test('/assets.json lists the web-socket-js and sockjs-client files with nothing missing, and they are served', TIMEOUT, async () => {
  const page = await browser.newPage();
  const response = await page.goto(`${gateway.url}/assets.json`);
  assert.strictEqual(response.status(), 200);
  const listing = JSON.parse(await response.text());
  assert.deepStrictEqual(listing.missing, []);
  const vendor = ['swfobject.js', 'web_socket.js', 'web_socket.min.js', 'WebSocketMain.swf',
    'hixie76/swfobject.js', 'hixie76/web_socket.js', 'hixie76/WebSocketMain.swf', 'hixie76/WebSocketMainInsecure.swf',
    'sockjs/sockjs.min.js', 'sockjs/LICENSE'];
  for (const name of vendor) {
    const entry = listing.assets.find((a) => a.name === name);
    assert.ok(entry, `${name} listed`);
    assert.strictEqual(entry.url, `/${name}`);
    assert.match(entry.sha256, /^[0-9a-f]{64}$/);
    // Fetched the way a page's script would: a navigation to a SWF would start a download.
    const file = await page.request.get(`${gateway.url}${entry.url}`);
    assert.strictEqual(file.status(), 200, name);
    assert.strictEqual((await file.body()).length, entry.size, name);
    if (name.endsWith('.swf')) assert.strictEqual(file.headers()['content-type'], 'application/x-shockwave-flash');
    if (name.endsWith('.js')) assert.match(file.headers()['content-type'], /javascript/);
  }
  // The copy the iframe page of SockJS's iframe transports loads is sockjs-client 1.6.1.
  const sockjs = await page.request.get(`${gateway.url}/sockjs/sockjs.min.js`);
  assert.match(await sockjs.text(), /^\/\* sockjs-client v1\.6\.1 /);
  await page.close();
});

test('the page shows the close code when the gateway shuts down', TIMEOUT, async () => {
  const own = await startGateway();
  let stopped = false;
  try {
    const page = await openDemo(browser, `${own.url}/`);
    assert.strictEqual(await own.stop(), 0);
    stopped = true;
    await page.waitForFunction(() => /^closed \(\d+\)$/.test(document.getElementById('state').textContent), null, { timeout: 10000 });
    assert.strictEqual(await page.textContent('#state'), 'closed (1001)');
    await page.close();
  } finally {
    if (!stopped) await own.stop();
  }
});

test('the gateway logged the browsers\' handshakes as rfc6455, and Flash only where the demo ran on Ruffle', () => {
  assert.match(gateway.log(), /websocket handshake.*transport=rfc6455/);
  const flash = gateway.log().split('\n').filter((line) => /websocket handshake.*transport=flash/.test(line));
  assert.ok(flash.length >= 1 && flash.every((line) => /route=\/chat/.test(line)), flash.join('\n'));
});
