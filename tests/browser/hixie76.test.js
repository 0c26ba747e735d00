// The hixie-76 build of web-socket-js (/hixie76/…) on its Flash path, running in Ruffle, in
// Debian's headless Chromium: WebSocketMain.swf's Flash socket goes through flashgate's socket
// proxy back to the gateway's own port, where its draft-76 handshake and frames arrive as raw
// bytes, and it joins the same rooms as native WebSocket, RFC 6455 web-socket-js and SockJS.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { logTexts, openDemo, waitForConnected } = require('./harness');
const { crossOrigin, openClient, send, messages } = require('./clients');
const { hixiePage, troubles, openHixie } = require('./hixie76-page');

const TIMEOUT = { timeout: 120000 };
const setup = crossOrigin();

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
