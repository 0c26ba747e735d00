// sockjs-client 1.6.1, as the gateway serves it, against the gateway's SockJS endpoint from a
// page on another origin, forced onto each of its transports; and a broadcast room shared by
// SockJS clients, a native WebSocket and web-socket-js under Ruffle.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { logTexts, waitForLog, openDemo, waitForConnected } = require('./harness');
const { crossOrigin, openClient, send, messages } = require('./clients');

const TIMEOUT = { timeout: 90000 };
const setup = crossOrigin();

// Every character of the ranges that SockJS servers must send JSON-escaped.
function range(from, to) {
  let out = '';
  for (let c = from; c <= to; c++) out += String.fromCharCode(c);
  return out;
}
const ESCAPED = range(0x00, 0x1f) + range(0x200c, 0x200f) + range(0x2028, 0x202f) + range(0x2060, 0x206f) + range(0xfff0, 0xffff);
const UNICODE = 'grüße ✓ 日本語 𝄞 😀 “quotes” "double" \\back\\slash/ <b>&amp;</b> \' ';
const LARGE = 'a✓日𝄞 plain text, 0123456789 '.repeat(3000).slice(0, 70 * 1024);
const MESSAGES = [UNICODE, ESCAPED, LARGE, '', 'after the empty one'];

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource', 'iframe-eventsource',
  'iframe-htmlfile', 'iframe-xhr-polling', 'jsonp-polling'];

function describe(text) {
  return text.length > 80 ? `${text.length} characters starting ${JSON.stringify(text.slice(0, 40))}` : JSON.stringify(text);
}

test('the test page is on another origin than the gateway', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  const origins = await page.evaluate(() => [location.origin, new URL(GATEWAY).origin, typeof SockJS, SockJS.version]);
  assert.notStrictEqual(origins[0], origins[1]);
  assert.deepStrictEqual(origins.slice(2), ['function', '1.6.1']);
  await page.close();
});

for (const transport of TRANSPORTS) {
  test(`sockjs-client on ${transport} echoes unicode, the escaped characters, 70 KB and an empty message`, TIMEOUT, async () => {
    const page = await setup.pages.page(setup.browser, setup.gateway);
    const opened = await openClient(page, 'echo', 'sockjs', `${setup.gateway.url}/echo`, { transports: [transport] });
    assert.strictEqual(opened.transport, transport);
    await send(page, 'echo', MESSAGES);
    const got = await messages(page, 'echo', MESSAGES.length);
    assert.strictEqual(got.length, MESSAGES.length, `got ${got.map(describe).join(', ')}`);
    for (let i = 0; i < MESSAGES.length; i++) {
      assert.ok(got[i] === MESSAGES[i], `message ${i}: sent ${describe(MESSAGES[i])}, got back ${describe(got[i])}`);
    }
    // Nothing more comes, and the session is still open.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepStrictEqual(await page.evaluate(() => [clients.echo.messages.length, clients.echo.closed, clients.echo.socket.readyState]),
      [MESSAGES.length, null, 1]);
    // A clean close from the client.
    await page.evaluate(() => clients.echo.socket.close(1000, 'done'));
    await page.waitForFunction(() => clients.echo.closed, null, { timeout: 10000 });
    assert.deepStrictEqual(await page.evaluate(() => clients.echo.closed), { code: 1000, reason: 'done', wasClean: true });
    assert.deepStrictEqual(page.errors, []);
    await page.close();
  });
}

test('a broadcast room: SockJS polling, SockJS streaming, native WebSocket and web-socket-js under Ruffle see each other in order', TIMEOUT, async () => {
  const room = 'four-ways';
  const page = await setup.pages.page(setup.browser, setup.gateway);
  const chat = `${setup.gateway.url}/chat?room=${room}`;
  assert.strictEqual((await openClient(page, 'poll', 'sockjs', chat, { transports: ['xhr-polling'] })).transport, 'xhr-polling');
  assert.strictEqual((await openClient(page, 'stream', 'sockjs', chat, { transports: ['xhr-streaming'] })).transport, 'xhr-streaming');
  await openClient(page, 'native', 'websocket', `ws://${setup.gateway.addr}/chat?room=${room}`);
  const flash = await openDemo(setup.browser, `${setup.gateway.url}/ruffle.html`);
  assert.strictEqual(await flash.textContent('#transport'), 'Flash (web-socket-js)');
  await flash.fill('#room', room);
  await flash.click('#join');
  await waitForConnected(flash, new RegExp(`room=${room}&flash=1$`));

  // Sent without waiting for one another: everyone gets all of them in the room's one order.
  const said = { poll: [], stream: [], native: [], flash: [] };
  for (let i = 0; i < 3; i++) {
    for (const who of ['poll', 'stream', 'native']) {
      const text = `${who} ${i} ✓`;
      said[who].push(text);
      await send(page, who, [text]);
    }
    const text = `flash ${i} ✓`;
    said.flash.push(text);
    await flash.fill('#message', text);
    await flash.click('#send');
  }
  const total = 12;
  const seen = {};
  for (const who of ['poll', 'stream', 'native']) seen[who] = await messages(page, who, total);
  await waitForLog(flash, 'in', said.flash[2], 20000);
  await flash.waitForFunction((n) => document.querySelectorAll('#log li.in').length >= n, total, { timeout: 20000 });
  seen.flash = await logTexts(flash, 'in');
  for (const who of Object.keys(seen)) {
    assert.strictEqual(seen[who].length, total, `${who} saw ${seen[who].join(' | ')}`);
    assert.deepStrictEqual(seen[who], seen.poll, `${who} and the polling client saw the same order`);
  }
  for (const who of Object.keys(said)) {
    assert.deepStrictEqual(seen.poll.filter((t) => t.startsWith(`${who} `)), said[who], `${who}'s messages in the order sent`);
  }
  const log = setup.gateway.log();
  assert.match(log, /websocket handshake .*transport=flash route=\/chat/);
  assert.deepStrictEqual(page.errors, []);
  assert.deepStrictEqual(flash.errors, []);
  await flash.close();
  await page.close();
});
