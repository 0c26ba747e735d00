// The demo and legacy pages in Debian's headless Chromium against the real gateway.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startGateway, launchBrowser, logTexts, waitForLog } = require('./harness');

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

async function demoPage(query = '') {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.errors = errors;
  await page.goto(`${gateway.url}/${query}`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 10000 });
  return page;
}

async function send(page, text, button = '#send') {
  await page.fill('#message', text);
  await page.click(button);
}

test('the demo uses native WebSocket and echoes text, non-ASCII included', async () => {
  const page = await demoPage();
  assert.strictEqual(await page.textContent('#transport'), 'native WebSocket');
  await page.selectOption('#route', 'echo');
  await page.waitForFunction(() => /\/echo$/.test(Array.prototype.slice.call(document.querySelectorAll('#log li.sys')).pop().textContent), null, { timeout: 10000 });
  for (const text of ['hello', 'grüße ✓ 日本語 𝄞', 'x'.repeat(70000)]) {
    await send(page, text);
    await waitForLog(page, 'in', text);
  }
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('binary sent from the page comes back as binary', async () => {
  const page = await demoPage();
  await page.selectOption('#route', 'echo');
  await page.waitForFunction(() => /\/echo$/.test(Array.prototype.slice.call(document.querySelectorAll('#log li.sys')).pop().textContent), null, { timeout: 10000 });
  await send(page, 'AB', '#send-binary');
  await waitForLog(page, 'in', 'binary 2 bytes: 41 42');
  await page.close();
});

test('Enter sends the message', async () => {
  const page = await demoPage('?');
  await page.fill('#room', 'enter-key');
  await page.click('#join');
  await page.waitForFunction(() => /room=enter-key$/.test(Array.prototype.slice.call(document.querySelectorAll('#log li.sys')).pop().textContent), null, { timeout: 10000 });
  await page.fill('#message', 'sent with Enter');
  await page.press('#message', 'Enter');
  await waitForLog(page, 'in', 'sent with Enter');
  await page.close();
});

test('two pages in one room see each other in order; another room sees nothing', async () => {
  const [alice, bob, carol] = [await demoPage(), await demoPage(), await demoPage()];
  await carol.fill('#room', 'elsewhere');
  await carol.click('#join');
  await carol.waitForFunction(() => /room=elsewhere$/.test(Array.prototype.slice.call(document.querySelectorAll('#log li.sys')).pop().textContent), null, { timeout: 10000 });
  const said = [];
  for (let i = 0; i < 5; i++) {
    const [from, text] = i % 2 ? [bob, `bob ${i}`] : [alice, `alice ${i}`];
    await send(from, text);
    said.push(text);
    await waitForLog(alice, 'in', text);
    await waitForLog(bob, 'in', text);
  }
  assert.deepStrictEqual(await logTexts(alice, 'in'), said);
  assert.deepStrictEqual(await logTexts(bob, 'in'), said);
  await send(carol, 'carol here');
  await waitForLog(carol, 'in', 'carol here');
  assert.deepStrictEqual(await logTexts(carol, 'in'), ['carol here']);
  assert.deepStrictEqual(await logTexts(alice, 'in'), said, 'nothing from another room');
  for (const page of [alice, bob, carol]) await page.close();
});

test('?transport=flash without Flash Player says so and stays usable', async () => {
  const page = await demoPage('?transport=flash');
  const sys = await logTexts(page, 'sys');
  assert.ok(sys.some((t) => /Flash was asked for but is not available/.test(t)), sys.join('\n'));
  // web_socket.js and the SWF were really fetched from the gateway.
  const loaded = await page.evaluate(() => typeof window.swfobject === 'object' && window.WEB_SOCKET_SWF_LOCATION);
  assert.strictEqual(loaded, '/WebSocketMain.swf');
  await send(page, 'still works');
  await waitForLog(page, 'in', 'still works');
  await page.close();
});

test('the legacy web-socket-js page echoes through /echo', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${gateway.url}/legacy.html`);
  await page.waitForFunction(() => /onopen/.test(document.getElementById('log').textContent), null, { timeout: 10000 });
  assert.strictEqual(await page.evaluate(() => typeof swfobject.getFlashPlayerVersion), 'function');
  await page.fill('#input', 'classic');
  await page.click('#send');
  await page.waitForFunction(() => /onmessage: classic/.test(document.getElementById('log').textContent), null, { timeout: 10000 });
  assert.deepStrictEqual(errors, []);
  await page.close();
});

test('/assets.json lists the vendor files with nothing missing, and they are served', async () => {
  const page = await browser.newPage();
  const response = await page.goto(`${gateway.url}/assets.json`);
  assert.strictEqual(response.status(), 200);
  const listing = JSON.parse(await response.text());
  assert.deepStrictEqual(listing.missing, []);
  const names = listing.assets.map((a) => a.name);
  for (const name of ['swfobject.js', 'web_socket.js', 'web_socket.min.js', 'WebSocketMain.swf',
    'hixie76/swfobject.js', 'hixie76/web_socket.js', 'hixie76/WebSocketMain.swf', 'hixie76/WebSocketMainInsecure.swf']) {
    assert.ok(names.includes(name), `${name} in ${names}`);
  }
  // A navigation to a SWF would start a download: fetch it the way a page's script would.
  const swf = await page.request.get(`${gateway.url}/WebSocketMain.swf`);
  assert.strictEqual(swf.status(), 200);
  assert.strictEqual(swf.headers()['content-type'], 'application/x-shockwave-flash');
  const listed = listing.assets.find((a) => a.name === 'WebSocketMain.swf');
  assert.strictEqual((await swf.body()).length, listed.size);
  await page.close();
});

test('the gateway logged the browsers\' handshakes as rfc6455', () => {
  assert.match(gateway.log(), /websocket handshake.*transport=rfc6455/);
});
