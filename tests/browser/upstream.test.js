// Every client family, in Debian's headless Chromium, reaches each kind of upstream server
// through flashgate: a WebSocket server (Node's `ws`, tests/upstream/peer/server.js), a TCP
// echo and a Flash XMLSocket echo, all started by the test. The families: native WebSocket,
// web-socket-js (RFC 6455) and the hixie-76 web-socket-js under Ruffle, and sockjs-client on
// each of its transports.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startGatewayWithPort, launchBrowser } = require('./harness');
const { startClientPages, gatewayPage, openClient, send } = require('./clients');
const { hixiePage, troubles, openHixie } = require('./hixie76-page');
const { startWsServer, startTcpEcho } = require('./upstream-servers');

const TIMEOUT = { timeout: 90000 };
const TEXTS = ['grüße ✓ 日本語 𝄞 😀', '<msg to="all">&amp; "q" \\ \'</msg>', 'plain ASCII'];
const BYTES = [0, 1, 10, 13, 127, 128, 255];
const ROUTES = { ws: '/up-ws', tcp: '/up-tcp', xml: '/up-xml' };

// What text-only clients get for binary: the documented data: URL of the bytes.
const dataUrl = (bytes) => `data:application/octet-stream;base64,${Buffer.from(bytes).toString('base64')}`;
const utf8 = (text) => [...Buffer.from(text, 'utf8')];

const setup = {};

test.before(async () => {
  setup.ws = await startWsServer();
  setup.tcp = await startTcpEcho();
  setup.xml = await startTcpEcho({ xmlsocket: true });
  setup.pages = await startClientPages();
  setup.gateway = await startGatewayWithPort((port) => [
    '--allow-origin', setup.pages.origin, '--allow-origin', `http://127.0.0.1:${port}`,
    '--route', ['/socket=proxy', `${ROUTES.ws}=ws://127.0.0.1:${setup.ws.port}/`,
      `${ROUTES.tcp}=tcp://127.0.0.1:${setup.tcp.port}`, `${ROUTES.xml}=tcp+xmlsocket://127.0.0.1:${setup.xml.port}`].join(','),
  ]);
  setup.browser = await launchBrowser();
});

test.after(async () => {
  if (setup.browser) await setup.browser.close();
  if (setup.pages) await setup.pages.close();
  if (setup.gateway) assert.strictEqual(await setup.gateway.stop(), 0, 'flashgate exits 0 on SIGTERM');
  for (const server of [setup.ws, setup.tcp, setup.xml]) if (server) await server.close();
});

// What client `name` on `page` has received once it has `count` messages (or has closed):
// texts as they are, binary as {bytes}.
async function received(page, name, count, timeout = 20000) {
  await page.waitForFunction(([n, c]) => clients[n].messages.length >= c || clients[n].closed, [name, count], { timeout });
  return page.evaluate((n) => clients[n].messages.map((m) => (typeof m === 'string' ? m : { bytes: Array.from(new Uint8Array(m)) })), name);
}

function sendBytes(page, name, bytes) {
  return page.evaluate(([n, b]) => clients[n].socket.send(new Uint8Array(b)), [name, bytes]);
}

async function closeAll(page, names) {
  await page.evaluate((list) => list.forEach((n) => clients[n].socket.close()), names);
  await page.waitForFunction((list) => list.every((n) => clients[n].closed), names, { timeout: 10000 });
}

// Runs one family through all three kinds of server. `family`: {page, transport (the
// X-Flashgate-Transport the server must see), binary (whether it gets binary as binary),
// open(kind, route) (opens a client, resolving with its name on the page)}. Resolves with the
// ws server's handshake, for more checks.
async function everyKind(family) {
  const { page } = family;

  // A WebSocket server: message for message, text as text (and binary as binary, where the
  // client has it), and it learns the client's family.
  const seen = setup.ws.handshakes().length;
  const ws = await family.open('ws', ROUTES.ws);
  const hello = await setup.ws.waitFor(`handshake for ${ws}`, () => setup.ws.handshakes()[seen]);
  assert.strictEqual(hello.headers['x-flashgate-transport'], family.transport, JSON.stringify(hello));
  assert.strictEqual(hello.headers['x-forwarded-for'], '127.0.0.1');
  await send(page, ws, TEXTS);
  const echoed = [...TEXTS];
  if (family.binary) {
    await sendBytes(page, ws, BYTES);
    echoed.push({ bytes: BYTES });
  }
  assert.deepStrictEqual(await received(page, ws, echoed.length), echoed);

  // A TCP server: the bytes of each message, and what it sends back as binary, which
  // text-only clients get as its data: URL. One message at a time, so that each comes back
  // in one read.
  const connection = setup.tcp.connections.length;
  const tcp = await family.open('tcp', ROUTES.tcp);
  const sent = [];
  const back = [];
  const exchange = async (bytes, sender) => {
    await sender();
    sent.push(...bytes);
    back.push(family.binary ? { bytes } : dataUrl(bytes));
    assert.deepStrictEqual(await received(page, tcp, back.length), back);
  };
  for (const text of TEXTS) await exchange(utf8(text), () => send(page, tcp, [text]));
  if (family.binary) await exchange(BYTES, () => sendBytes(page, tcp, BYTES));
  assert.deepStrictEqual([...setup.tcp.connections[connection].bytes], sent, 'the TCP server read the bytes sent');

  // An XMLSocket server: each message NUL-ended there, and each NUL-ended one back as text.
  const xmlConnection = setup.xml.connections.length;
  const xml = await family.open('xml', ROUTES.xml);
  await send(page, xml, TEXTS);
  assert.deepStrictEqual(await received(page, xml, TEXTS.length), TEXTS);
  assert.deepStrictEqual(setup.xml.connections[xmlConnection].messages, TEXTS, 'the XMLSocket server read each message');
  assert.deepStrictEqual([...setup.xml.connections[xmlConnection].bytes].filter((b) => b === 0).length, TEXTS.length);

  // Nothing more comes, and every client is still open until it closes.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepStrictEqual(await page.evaluate((list) => list.map((n) => [clients[n].messages.length, clients[n].closed]), [ws, tcp, xml]),
    [[echoed.length, null], [back.length, null], [TEXTS.length, null]]);
  await closeAll(page, [ws, tcp, xml]);
  return hello;
}

test('native WebSocket reaches a WebSocket, a TCP and an XMLSocket server', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway, { sockjs: false });
  const hello = await everyKind({
    page,
    transport: 'rfc6455',
    binary: true,
    open: async (kind, route) => {
      await openClient(page, kind, 'websocket', `ws://${setup.gateway.addr}${route}?who=native`);
      await page.evaluate((n) => { clients[n].socket.binaryType = 'arraybuffer'; }, kind);
      return kind;
    },
  });
  // The route's path, then the client's query; the client's origin, as it came.
  assert.strictEqual(hello.url, '/?who=native');
  assert.strictEqual(hello.headers.origin, setup.pages.origin);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('web-socket-js (RFC 6455) under Ruffle reaches a WebSocket, a TCP and an XMLSocket server', TIMEOUT, async () => {
  const page = await gatewayPage(setup.browser, setup.gateway);
  const hello = await everyKind({
    page,
    transport: 'flash',
    binary: false,
    open: async (kind, route) => {
      const opened = await openClient(page, kind, 'flashgate', `ws://${setup.gateway.addr}${route}?who=flash`,
        { transports: ['flash'], ruffle: true }, 40000);
      assert.strictEqual(opened.transport, 'flash');
      return kind;
    },
  });
  assert.strictEqual(hello.url, '/?who=flash&flash=1');
  assert.strictEqual(hello.headers.origin, setup.gateway.url);
  assert.deepStrictEqual(await page.evaluate(() => !!WebSocket.__isFlashImplementation), true);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('the hixie-76 web-socket-js under Ruffle reaches a WebSocket, a TCP and an XMLSocket server', TIMEOUT, async () => {
  const page = await hixiePage(setup.browser, setup.gateway);
  const hello = await everyKind({
    page,
    transport: 'hixie76',
    binary: false,
    open: async (kind, route) => {
      await openHixie(page, kind, `ws://${setup.gateway.addr}${route}?who=hixie`);
      return kind;
    },
  });
  assert.strictEqual(hello.url, '/?who=hixie');
  // Through the socket proxy back to the gateway's own port, where it spoke draft 76.
  const log = setup.gateway.log();
  assert.match(log, new RegExp(`websocket handshake .*route=/socket backend="?proxy"? target=${setup.gateway.addr}`));
  for (const route of Object.values(ROUTES)) {
    assert.match(log, new RegExp(`websocket handshake .*transport=hixie76 draft=Hixie76 .*route=${route} `));
  }
  assert.deepStrictEqual(troubles(page), []);
  await page.close();
});

// sockjs-client's transports as the server hears of them: the iframe ones by what runs in
// the iframe.
const SOCKJS = {
  websocket: 'sockjs-websocket',
  'xhr-streaming': 'sockjs-xhr-streaming',
  'xhr-polling': 'sockjs-xhr-polling',
  eventsource: 'sockjs-eventsource',
  'iframe-eventsource': 'sockjs-eventsource',
  'iframe-htmlfile': 'sockjs-htmlfile',
  'iframe-xhr-polling': 'sockjs-xhr-polling',
  'jsonp-polling': 'sockjs-jsonp-polling',
};

for (const [transport, header] of Object.entries(SOCKJS)) {
  test(`sockjs-client on ${transport} reaches a WebSocket, a TCP and an XMLSocket server`, TIMEOUT, async () => {
    // One page for every transport.
    setup.sockjsPage = setup.sockjsPage || await setup.pages.page(setup.browser, setup.gateway);
    const page = setup.sockjsPage;
    const hello = await everyKind({
      page,
      transport: header,
      binary: false,
      open: async (kind, route) => {
        const name = `${transport} ${kind}`;
        const opened = await openClient(page, name, 'sockjs', `${setup.gateway.url}${route}`, { transports: [transport] });
        assert.strictEqual(opened.transport, transport);
        return name;
      },
    });
    // SockJS sessions add no query: their URLs' queries are SockJS's.
    assert.strictEqual(hello.url, '/');
    assert.deepStrictEqual(page.errors, []);
  });
}

test('close codes pass both ways: the server\'s reach a native WebSocket and a SockJS client, a client\'s the server', TIMEOUT, async () => {
  const page = await setup.pages.page(setup.browser, setup.gateway);
  const closed = (name) => page.waitForFunction((n) => clients[n].closed, name, { timeout: 10000 })
    .then(() => page.evaluate((n) => clients[n].closed, name));

  await openClient(page, 'native', 'websocket', `ws://${setup.gateway.addr}${ROUTES.ws}`);
  await send(page, 'native', ['close:4001:bye ✓ for now']);
  assert.deepStrictEqual(await closed('native'), { code: 4001, reason: 'bye ✓ for now', wasClean: true });

  await openClient(page, 'sockjs', 'sockjs', `${setup.gateway.url}${ROUTES.ws}`, { transports: ['xhr-streaming'] });
  await send(page, 'sockjs', ['close:4002:come back later']);
  assert.deepStrictEqual(await closed('sockjs'), { code: 4002, reason: 'come back later', wasClean: true });

  const seen = setup.ws.events.length;
  await openClient(page, 'leaving', 'websocket', `ws://${setup.gateway.addr}${ROUTES.ws}`);
  await page.evaluate(() => clients.leaving.socket.close(4000, 'done ✓'));
  assert.deepStrictEqual(await closed('leaving'), { code: 4000, reason: 'done ✓', wasClean: true });
  const bye = await setup.ws.waitFor('close from the client',
    (events) => events.slice(seen).find((e) => e.closed === 4000 || e.reason === 'done ✓'));
  assert.deepStrictEqual(bye, { closed: 4000, reason: 'done ✓' });
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});
