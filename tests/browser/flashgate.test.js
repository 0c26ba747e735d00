// web/flashgate.js in Debian's headless Chromium against the real gateway: it lands on each
// transport when the ones before it are taken from the page, forbidden or fail, and behaves
// like a WebSocket on each.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { crossOrigin, gatewayPage, startClient, settled, openClient, send, messages } = require('./clients');

const TIMEOUT = { timeout: 90000 };
const setup = crossOrigin();

const TEXTS = ['grüße ✓ 日本語 𝄞 "quoted" \\ </script>', '\u0000\u001f\u2028\u2029\ufff0\uffff', 'x'.repeat(70 * 1024), ''];

// Echoes TEXTS through client `name` and checks what comes back.
async function echoes(page, name) {
  await send(page, name, TEXTS);
  const got = await messages(page, name, TEXTS.length);
  assert.deepStrictEqual(got.map((t) => t.length), TEXTS.map((t) => t.length));
  assert.ok(got.every((t, i) => t === TEXTS[i]), 'the texts come back as sent');
}

// Takes the browser's WebSocket from the page, as IE 6-9 and old Android browsers have none.
function noWebSocket() {
  delete window.WebSocket;
  delete window.MozWebSocket;
}

test('a current browser gets the native WebSocket, from a ws:// or an http:// URL', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  for (const [name, url] of [['ws', `ws://${setup.gateway.addr}/echo`], ['http', `${setup.gateway.url}/echo`]]) {
    const opened = await openClient(page, name, 'flashgate', url);
    assert.strictEqual(opened.transport, 'websocket');
    assert.strictEqual(opened.url, `ws://${setup.gateway.addr}/echo`);
    assert.strictEqual(opened.readyState, 1);
    assert.match(opened.attempts.join('\n'), /^websocket: open after \d+ ms$/);
    await echoes(page, name);
  }
  assert.deepStrictEqual(await page.evaluate(() => [FlashGate.CONNECTING, FlashGate.OPEN, FlashGate.CLOSING, FlashGate.CLOSED,
    new FlashGate('/echo', { transports: [] }).readyState]), [0, 1, 2, 3, 0]);
  // A close code a page may not send throws, as with a WebSocket, and the socket stays open.
  assert.deepStrictEqual(await page.evaluate(() => {
    try { clients.ws.socket.close(1001); return 'closed'; } catch (e) { return [e.name, clients.ws.socket.readyState]; }
  }), ['InvalidAccessError', 1]);
  // A clean close from the page, as a WebSocket reports it.
  await page.evaluate(() => clients.ws.socket.close(1000, 'done'));
  await page.waitForFunction(() => clients.ws.closed, null, { timeout: 10000 });
  assert.deepStrictEqual(await page.evaluate(() => [clients.ws.closed, clients.ws.socket.readyState, clients.ws.errors]),
    [{ code: 1000, reason: 'done', wasClean: true }, 3, 0]);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('without WebSocket and Flash it loads sockjs-client from the gateway and streams', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway, { init: noWebSocket, sockjs: false });
  assert.strictEqual(await page.evaluate(() => typeof window.SockJS), 'undefined');
  const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/echo`);
  assert.strictEqual(opened.transport, 'sockjs:xhr-streaming');
  assert.strictEqual(opened.url, `${setup.gateway.url}/echo`);
  assert.deepStrictEqual(opened.attempts.slice(0, 2), ['websocket: this browser has none', 'flash: no Flash Player (Ruffle not asked for)']);
  assert.ok(page.requested.includes('/sockjs/sockjs.min.js'), page.requested.join(' '));
  assert.ok(!page.requested.includes('/web_socket.js'), 'nothing of web-socket-js without Flash');
  await echoes(page, 'fg');
  assert.match(setup.gateway.log(), /sockjs session opened .*transport=sockjs-xhr-streaming/);
  await page.evaluate(() => clients.fg.socket.close(1000, 'bye'));
  await page.waitForFunction(() => clients.fg.closed, null, { timeout: 10000 });
  assert.deepStrictEqual(await page.evaluate(() => clients.fg.closed), { code: 1000, reason: 'bye', wasClean: true });
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('options force SockJS, pass SockJS its own transports, and forbid transports', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  const url = `ws://${setup.gateway.addr}/echo`;
  const cases = [
    // SockJS alone may use its own WebSocket transport.
    [{ transports: ['sockjs'] }, 'sockjs:websocket'],
    [{ transports: ['sockjs'], sockjs: { transports: ['xhr-polling'] } }, 'sockjs:xhr-polling'],
    [{ sockjs: { transports: ['jsonp-polling'] }, forbid: ['websocket', 'flash'] }, 'sockjs:jsonp-polling'],
    // WebSocket forbidden: SockJS keeps off it too.
    [{ forbid: ['websocket'] }, 'sockjs:xhr-streaming'],
  ];
  for (let i = 0; i < cases.length; i++) {
    const [options, transport] = cases[i];
    const opened = await openClient(page, `c${i}`, 'flashgate', url, options);
    assert.strictEqual(opened.transport, transport, JSON.stringify(options));
    await echoes(page, `c${i}`);
  }
  await page.close();
});

test('a WebSocket that fails to open hands over to SockJS, which then keeps off WebSocket', TIMEOUT, async () => {
  // A WebSocket whose connections are refused, as behind a proxy that drops upgrades.
  const refused = () => {
    const Real = window.WebSocket;
    window.made = 0;
    window.WebSocket = function () { window.made++; return new Real('ws://127.0.0.1:9/'); };
  };
  const page = await setup.pages.page(setup.browser, setup.gateway, { init: refused });
  const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/chat?room=fallback`);
  assert.strictEqual(opened.attempts[0], 'websocket: closed (1006) before opening');
  assert.strictEqual(opened.transport, 'sockjs:xhr-streaming');
  await send(page, 'fg', ['in the room']);
  assert.deepStrictEqual(await messages(page, 'fg', 1), ['in the room']);
  assert.strictEqual(await page.evaluate(() => clients.fg.errors), 0, 'a fallback is no error');
  assert.strictEqual(await page.evaluate(() => window.made), 1, 'SockJS did not try the WebSocket again');
  await page.close();
});

test('a WebSocket that does not open in time hands over to SockJS', TIMEOUT, async () => {
  // A server that takes the connection and never answers the handshake.
  const sockets = [];
  const silent = net.createServer((socket) => sockets.push(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const hang = `ws://127.0.0.1:${silent.address().port}/`;
    const page = await setup.pages.page(setup.browser, setup.gateway, {
      init: `(function (Real) { window.WebSocket = function () { return new Real(${JSON.stringify(hang)}); }; })(window.WebSocket);`,
    });
    const started = Date.now();
    const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/echo`, { websocketTimeout: 1500 });
    assert.ok(Date.now() - started >= 1500, `opened after ${Date.now() - started} ms`);
    assert.strictEqual(opened.attempts[0], 'websocket: did not open within 1500 ms');
    assert.strictEqual(opened.transport, 'sockjs:xhr-streaming');
    assert.ok(sockets.length >= 1, 'the WebSocket was tried');
    await echoes(page, 'fg');
    await page.close();
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('with WebSocket forbidden and Ruffle allowed it runs web-socket-js on Flash in Ruffle', TIMEOUT, async () => {
  const page = await gatewayPage(setup.browser, setup.gateway);
  const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/echo`, { forbid: ['websocket'], ruffle: true }, 40000);
  assert.strictEqual(opened.transport, 'flash');
  assert.strictEqual(opened.url, `ws://${setup.gateway.addr}/echo?flash=1`);
  for (const file of ['/ruffle/ruffle.js', '/ruffle-config.js', '/flashgate-compat.js', '/swfobject.js', '/web_socket.js', '/WebSocketMain.swf']) {
    assert.ok(page.requested.includes(file), `${file} loaded: ${page.requested.join(' ')}`);
  }
  assert.ok(!page.requested.includes('/sockjs/sockjs.min.js'), 'no SockJS when Flash opens');
  assert.deepStrictEqual(await page.evaluate(() => [!!WebSocket.__isFlashImplementation, swfobject.getFlashPlayerVersion().major]), [true, 32]);
  await send(page, 'fg', ['through Flash ✓', 'y'.repeat(70000)]);
  assert.deepStrictEqual((await messages(page, 'fg', 2, 30000)).map((t) => t.length), [15, 70000]);
  assert.match(setup.gateway.log(), /websocket handshake .*transport=flash route=\/echo/);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('Flash that does not open in time (no SWF) hands over to SockJS', TIMEOUT, async () => {
  const page = await gatewayPage(setup.browser, setup.gateway);
  const started = Date.now();
  const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/echo`,
    { forbid: ['websocket'], ruffle: true, swf: '/no-such.swf', flashTimeout: 3000 }, 40000);
  assert.ok(Date.now() - started >= 3000);
  assert.strictEqual(opened.attempts[0], 'flash: did not open within 3000 ms');
  assert.strictEqual(opened.transport, 'sockjs:xhr-streaming');
  await echoes(page, 'fg');
  await page.close();
});

test('with no transport left it reports an error, then a close (1006) saying why', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  await startClient(page, 'none', 'flashgate', `ws://${setup.gateway.addr}/echo`, { transports: ['flash'] });
  const state = await settled(page, 'none');
  assert.deepStrictEqual(state.events, ['error', 'close']);
  assert.strictEqual(state.readyState, 3);
  assert.strictEqual(state.transport, null);
  assert.deepStrictEqual(state.closed, {
    code: 1006, reason: 'no transport could connect: flash: no Flash Player (Ruffle not asked for)', wasClean: false,
  });
  await page.close();
});

test('close() before it opens fails it as a WebSocket would; send() then is an error', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  const result = await page.evaluate((url) => {
    const socket = track('early', new FlashGate(url)).socket;
    let thrown = null;
    try { socket.send('too soon'); } catch (e) { thrown = e.message; }
    socket.close();
    return { thrown, readyState: socket.readyState };
  }, `ws://${setup.gateway.addr}/echo`);
  assert.match(result.thrown, /InvalidStateError/);
  assert.strictEqual(result.readyState, 3);
  const state = await settled(page, 'early');
  assert.deepStrictEqual(state.closed, { code: 1006, reason: 'closed before it opened', wasClean: false });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepStrictEqual(await page.evaluate(() => [clients.early.opened, clients.early.socket.transport]), [false, null]);
  assert.match(await page.evaluate(() => { try { new FlashGate('/echo', { transports: ['pigeon'] }); return 'made'; } catch (e) { return e.message; } }),
    /unknown transport pigeon/);
  await page.close();
});

test('without JSON (as in IE 6-7) it brings its own, and SockJS works on it', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway, {
    init: () => { window.nativeJSON = window.JSON; delete window.JSON; delete window.WebSocket; },
    sockjs: false,
  });
  assert.strictEqual(await page.evaluate(() => typeof window.JSON), 'undefined');
  const opened = await openClient(page, 'fg', 'flashgate', `ws://${setup.gateway.addr}/echo`, { sockjs: { transports: ['jsonp-polling'] } });
  assert.strictEqual(opened.transport, 'sockjs:jsonp-polling');
  assert.strictEqual(await page.evaluate(() => window.JSON.parse === FlashGate.json.parse), true, 'flashgate.js JSON in use');
  await echoes(page, 'fg');
  // Its JSON reads and writes what the native one does.
  const samples = [['a', 1, -2.5e-3, true, false, null, { b: 'c\u2028"\\' }], { x: [], y: {}, z: 'é\u0000' }, 'plain', 0];
  const same = await page.evaluate((list) => list.map((v) => {
    const ours = FlashGate.json.stringify(v);
    return [nativeJSON.stringify(nativeJSON.parse(ours)) === nativeJSON.stringify(v),
      nativeJSON.stringify(FlashGate.json.parse(nativeJSON.stringify(v))) === nativeJSON.stringify(v)];
  }), samples);
  assert.deepStrictEqual(same, samples.map(() => [true, true]));
  assert.match(await page.evaluate(() => { try { FlashGate.json.parse('{"a": alert(1)}'); return 'ran'; } catch (e) { return e.name; } }), /SyntaxError/);
  await page.close();
});
