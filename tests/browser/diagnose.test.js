// /diagnose.html in Debian's headless Chromium against the real gateway: with everything in
// place, then with each way of connecting taken away in turn as a real old browser or a
// network lacks it (no WebSocket, no JSON or EventSource, no Ruffle, no SWF, SockJS's URLs
// blocked one kind at a time), and with the gateway gone. Each case checks what the page
// says in its table, its summary, and the report for support staff, which must agree.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const acorn = require('acorn');
const { repo, startGateway, launchBrowser } = require('./harness');

const TIMEOUT = { timeout: 90000 };
const SOCKJS = ['websocket', 'xhr-streaming', 'xdr-streaming', 'eventsource', 'iframe-eventsource', 'htmlfile',
  'iframe-htmlfile', 'xhr-polling', 'xdr-polling', 'iframe-xhr-polling', 'jsonp-polling'];
// XDomainRequest is IE 8-10's own. htmlfile works here: the page is on the gateway's origin,
// where sockjs-client runs it in an iframe instead of IE's ActiveX htmlfile.
const IE_ONLY = ['xdr-streaming', 'xdr-polling'];
const IN_CHROMIUM = SOCKJS.filter((t) => !IE_ONLY.includes(t));

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

async function newPage(prepare) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  if (prepare) await prepare(page);
  return page;
}

// Waits until the page says done; resolves with each row ({status, rtt, detail}), the
// summary and the report, after checking that the report says what the table says.
async function results(page, addr = gateway.addr, timeout = 80000) {
  await page.waitForFunction(() => document.getElementById('state').textContent === 'done'
    && document.body.className === 'done', null, { timeout });
  const seen = await page.evaluate(() => {
    const rows = {};
    for (const tr of document.querySelectorAll('#checks tr[id^="check-"]')) {
      const td = tr.querySelectorAll('td');
      rows[tr.id.slice(6)] = { label: tr.querySelector('th').textContent, status: td[0].textContent,
        data: tr.getAttribute('data-status'), rtt: td[1].textContent, detail: td[2].textContent };
    }
    return { rows, summary: document.getElementById('summary').textContent, report: document.getElementById('report').value,
      href: location.href, agent: navigator.userAgent };
  });
  const lines = seen.report.split('\n');
  assert.deepStrictEqual(lines.slice(0, 3), ['flashgate browser check', `Page: ${seen.href}`, `Gateway: ${addr}`]);
  assert.match(lines[3], /^Date: \w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d /);
  assert.strictEqual(lines[4], `Browser: ${seen.agent}`);
  assert.strictEqual(lines[5], `Summary: ${seen.summary}`);
  for (const [id, row] of Object.entries(seen.rows)) {
    assert.strictEqual(row.data, row.status, id);
    assert.ok(row.detail.length > 10, `${id} says what happened: ${JSON.stringify(row)}`);
    const rtt = /^(\d+) ms$/.exec(row.rtt);
    if (row.status === 'works') assert.ok(rtt, `${id}: a round trip in ms, not ${JSON.stringify(row.rtt)}`);
    else assert.strictEqual(row.rtt, '', `${id}: no round trip when it does not work`);
    const line = `${row.label}: ${row.status}${rtt ? ` (round trip ${rtt[1]} ms)` : ''} - ${row.detail}`;
    assert.ok(lines.includes(line), `the report has ${JSON.stringify(line)}:\n${seen.report}`);
    row.ms = rtt ? Number(rtt[1]) : null;
  }
  return seen;
}

async function diagnose(query = '', prepare) {
  const page = await newPage(prepare);
  await page.goto(`${gateway.url}/diagnose.html${query}`);
  const seen = await results(page);
  assert.deepStrictEqual(page.errors, []);
  await page.close();
  return seen;
}

function statuses(rows, ids) {
  return Object.fromEntries(ids.map((id) => [id, rows[id].status]));
}

function sockjsStatuses(rows) {
  return Object.fromEntries(SOCKJS.map((t) => [t, rows[`sockjs-${t}`].status]));
}

// What each SockJS transport reports when all work but `failing`.
function expectedSockjs(failing = [], absent = IE_ONLY) {
  return Object.fromEntries(SOCKJS.map((t) => [t, absent.includes(t) ? 'not available' : failing.includes(t) ? 'failed' : 'works']));
}

test('with everything in place: native WebSocket, web-socket-js on Ruffle, and every SockJS transport Chromium has', TIMEOUT, async () => {
  const { rows, summary, report } = await diagnose();
  assert.deepStrictEqual(statuses(rows, ['native', 'flash-player', 'flash-swf', 'flash-socket', 'flash-policy']),
    { native: 'works', 'flash-player': 'found', 'flash-swf': 'loaded', 'flash-socket': 'works', 'flash-policy': 'not needed' });
  assert.match(rows['flash-player'].detail, /^No Flash Player; Ruffle 0\.6\.0\S* \(a Flash emulator\) was loaded from the gateway instead\.$/);
  assert.match(rows['flash-swf'].detail, /^WebSocketMain\.swf started in \d+ ms under Ruffle\.$/);
  assert.match(rows['flash-policy'].detail, /Ruffle asks for no socket policy/);
  assert.deepStrictEqual(sockjsStatuses(rows), expectedSockjs());
  for (const t of IE_ONLY) assert.strictEqual(rows[`sockjs-${t}`].detail, `sockjs-client says this browser cannot use ${t}.`);
  assert.strictEqual(summary, `This browser can use: native WebSocket (${rows.native.ms} ms), web-socket-js on Ruffle (${rows['flash-socket'].ms} ms), `
    + `${IN_CHROMIUM.map((t) => `SockJS ${t} (${rows[`sockjs-${t}`].ms} ms)`).join(', ')}.`);
  // What web-socket-js itself said (its WEB_SOCKET_LOGGER) is in the report.
  assert.match(report, /\nweb-socket-js said:\n {2}\[WebSocket\] debug enabled\n {2}\[WebSocket\] policy file: xmlsocket:\/\/127\.0\.0\.1:843\n {2}\[WebSocket\] connected\n/);
  // They really reached the gateway, each on its own transport.
  const log = gateway.log();
  assert.match(log, /websocket handshake .*transport=rfc6455 route=\/echo/);
  assert.match(log, /websocket handshake .*transport=rfc6455 route=\/socket backend="?proxy"?/);
  assert.match(log, /websocket handshake .*transport=flash route=\/echo/);
  assert.match(log, /websocket handshake .*transport=sockjs-websocket route=\/echo/);
  for (const t of ['xhr-streaming', 'eventsource', 'htmlfile', 'xhr-polling', 'jsonp-polling']) {
    assert.match(log, new RegExp(`sockjs session opened .*transport=sockjs-${t}\\b`));
  }
});

test('without native WebSocket (IE 6-9, old Android): it says so, Ruffle cannot run, SockJS works without its websocket', TIMEOUT, async () => {
  const { rows, summary } = await diagnose('', (page) => page.addInitScript(() => {
    delete window.WebSocket;
    window.WebSocket = undefined;
    delete window.MozWebSocket;
  }));
  assert.deepStrictEqual(rows.native, { ...rows.native, status: 'not available', detail: 'This browser has no WebSocket of its own.' });
  assert.strictEqual(rows['flash-player'].status, 'not available');
  assert.strictEqual(rows['flash-player'].detail,
    'No Flash Player, and Ruffle (the Flash emulator) cannot run in this browser: it needs WebAssembly and WebSocket.');
  assert.deepStrictEqual(statuses(rows, ['flash-swf', 'flash-socket', 'flash-policy']),
    { 'flash-swf': 'not tried', 'flash-socket': 'not tried', 'flash-policy': 'not tried' });
  assert.deepStrictEqual(sockjsStatuses(rows), expectedSockjs([], [...IE_ONLY, 'websocket']));
  assert.match(summary, /^This browser can use: SockJS xhr-streaming \(\d+ ms\), /);
  assert.doesNotMatch(summary, /native|web-socket-js|Not working/);
});

test('without WebSocket, JSON, EventSource, postMessage and WebAssembly, as IE 7: the page runs, SockJS on what is left', TIMEOUT, async () => {
  const { rows, summary } = await diagnose('', (page) => page.addInitScript(() => {
    for (const name of ['WebSocket', 'MozWebSocket', 'JSON', 'EventSource', 'WebAssembly']) delete window[name];
    window.postMessage = undefined;
  }));
  assert.strictEqual(rows.native.status, 'not available');
  assert.strictEqual(rows['flash-player'].status, 'not available');
  // Without postMessage sockjs-client has no iframe transports (nor, outside IE, htmlfile).
  assert.deepStrictEqual(sockjsStatuses(rows), expectedSockjs([], SOCKJS.filter((t) => !['xhr-streaming', 'xhr-polling', 'jsonp-polling'].includes(t))));
  assert.match(summary, /^This browser can use: SockJS xhr-streaming \(\d+ ms\), SockJS xhr-polling \(\d+ ms\), SockJS jsonp-polling \(\d+ ms\)\.$/);
});

test('without Flash: no Ruffle asked for, Ruffle not served, the SWF not served, a SWF that never starts', TIMEOUT, async () => {
  const notTried = (why) => ({ 'flash-swf': 'not tried', 'flash-socket': 'not tried', 'flash-policy': 'not tried', why });
  const flashRows = (rows) => ({ ...statuses(rows, ['flash-swf', 'flash-socket', 'flash-policy']), why: rows['flash-socket'].detail });

  let { rows } = await diagnose('?ruffle=0&skip=sockjs');
  assert.strictEqual(rows['flash-player'].status, 'not available');
  assert.match(rows['flash-player'].detail, /^No Flash Player \(Ruffle, the Flash emulator, was not tried/);
  assert.deepStrictEqual(flashRows(rows), notTried('There is no Flash Player.'));
  assert.strictEqual(rows.native.status, 'works');
  assert.strictEqual(rows['sockjs-xhr-polling'].status, 'skipped');

  // Ruffle's files do not come (a proxy or filter that drops them).
  ({ rows } = await diagnose('?skip=sockjs', (page) => page.route('**/ruffle/**', (route) => route.abort())));
  assert.deepStrictEqual(rows['flash-player'], { ...rows['flash-player'], status: 'not available',
    detail: 'No Flash Player, and Ruffle (the Flash emulator) could not be loaded from the gateway (/ruffle/ruffle.js).' });
  assert.deepStrictEqual(flashRows(rows), notTried('There is no Flash Player, and Ruffle did not load.'));

  // The SWF is answered 404.
  ({ rows } = await diagnose('?skip=sockjs', (page) => page.route('**/WebSocketMain.swf*',
    (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' }))));
  assert.strictEqual(rows['flash-player'].status, 'found');
  assert.deepStrictEqual(rows['flash-swf'], { ...rows['flash-swf'], status: 'failed',
    detail: 'The gateway answered 404 for /WebSocketMain.swf instead of sending it.' });
  assert.deepStrictEqual(statuses(rows, ['flash-socket', 'flash-policy']), { 'flash-socket': 'not tried', 'flash-policy': 'not tried' });

  // Something that is not a SWF comes in its place: it never starts, within the time limit.
  ({ rows } = await diagnose('?skip=native,sockjs&timeout=3', (page) => page.route('**/WebSocketMain.swf*',
    (route) => route.fulfill({ status: 200, contentType: 'application/x-shockwave-flash', body: 'this is no SWF' }))));
  assert.deepStrictEqual(rows['flash-swf'], { ...rows['flash-swf'], status: 'timed out', detail: 'WebSocketMain.swf did not start within 3 s.' });
  assert.strictEqual(rows['flash-socket'].status, 'not tried');
  assert.strictEqual(rows.native.status, 'skipped');
});

// Each kind of SockJS URL blocked on the way, and the transports that use it. A blocked
// EventSource is retried by the browser for ever, so those time out; the others fail.
const BLOCKED = [
  { what: 'xhr_streaming', url: /\/echo\/[^/]+\/[^/]+\/xhr_streaming(\?|$)/, fails: ['xhr-streaming'] },
  { what: 'eventsource', url: /\/echo\/[^/]+\/[^/]+\/eventsource(\?|$)/, fails: ['eventsource', 'iframe-eventsource'], status: 'timed out' },
  { what: 'htmlfile', url: /\/echo\/[^/]+\/[^/]+\/htmlfile(\?|$)/, fails: ['htmlfile', 'iframe-htmlfile'] },
  { what: 'xhr (polling)', url: /\/echo\/[^/]+\/[^/]+\/xhr(\?|$)/, fails: ['xhr-polling', 'iframe-xhr-polling'] },
  { what: 'jsonp', url: /\/echo\/[^/]+\/[^/]+\/jsonp(\?|$)/, fails: ['jsonp-polling'] },
  { what: 'the iframe page', url: /\/echo\/iframe[^/]*\.html/, fails: ['iframe-eventsource', 'iframe-htmlfile', 'iframe-xhr-polling'] },
  { what: 'the websocket upgrade', websocket: /\/echo\/[^/]+\/[^/]+\/websocket$/, fails: ['websocket'] },
];

test('SockJS with each kind of its URLs blocked in turn: exactly the transports that use it fail', TIMEOUT, async () => {
  for (const { what, url, websocket, fails, status = 'failed' } of BLOCKED) {
    const { rows, summary } = await diagnose('?skip=native,flash&timeout=4', async (page) => {
      if (url) await page.route(url, (route) => route.abort());
      // A proxy that takes the upgrade and hangs up.
      if (websocket) await page.routeWebSocket(websocket, (ws) => ws.close({ code: 1011, reason: 'blocked' }));
    });
    const expected = expectedSockjs(fails);
    for (const t of fails) expected[t] = status;
    assert.deepStrictEqual(sockjsStatuses(rows), expected, what);
    for (const t of fails) {
      assert.match(rows[`sockjs-${t}`].detail, status === 'failed' ? new RegExp(`^The ${t} connection failed \\(code 10\\d\\d .+\\)\\.$`)
        : /^It did not connect within 4 s\.$/, `${what}: ${t}`);
    }
    assert.match(summary, new RegExp(`Not working here: ${fails.map((t) => `SockJS ${t} \\(${status}\\)`).join(', ')}\\.$`), what);
    assert.deepStrictEqual(statuses(rows, ['native', 'flash-player']), { native: 'skipped', 'flash-player': 'skipped' });
  }
});

test('the gateway stopped while the page is open: checking again, every check fails, saying why, and nothing hangs', TIMEOUT, async () => {
  const own = await startGateway();
  try {
    const page = await newPage();
    await page.goto(`${own.url}/diagnose.html`);
    assert.strictEqual((await results(page, own.addr)).rows.native.status, 'works');
    await own.stop('SIGKILL');
    const started = Date.now();
    await page.click('#again');
    const { rows, summary } = await results(page, own.addr, 60000);
    assert.ok(Date.now() - started < 30000, `done in ${Date.now() - started} ms`);
    assert.strictEqual(rows.native.status, 'failed');
    assert.match(rows.native.detail, /^It could not connect: the connection was refused or cut \(code 1006\)\.$/);
    // Ruffle is still on the page; the SWF no longer comes.
    assert.strictEqual(rows['flash-player'].status, 'found');
    assert.match(rows['flash-player'].detail, /Ruffle .* is on this page\./);
    assert.deepStrictEqual(rows['flash-swf'], { ...rows['flash-swf'], status: 'failed',
      detail: 'WebSocketMain.swf could not be downloaded from the gateway (no answer).' });
    for (const t of SOCKJS) {
      assert.deepStrictEqual(rows[`sockjs-${t}`], { ...rows[`sockjs-${t}`], status: 'failed',
        detail: `The gateway did not answer SockJS's first request (http://${own.addr}/echo/info).` });
    }
    assert.match(summary, new RegExp(`^Nothing worked: this browser could not reach the gateway at ${own.addr.replace(/\./g, '\\.')} in any way `
      + '\\(native WebSocket \\(failed\\), SockJS websocket \\(failed\\), .*SockJS jsonp-polling \\(failed\\)\\)\\. '
      + 'Copy the report below and send it to support\\.$'));
    assert.deepStrictEqual(page.errors, []);
    await page.close();
  } finally {
    await own.stop('SIGKILL');
  }
});

test('a gateway that takes connections and never answers: each check times out on its own limit', TIMEOUT, async () => {
  // Serves the page's own files from the repository and leaves every other request, and
  // every WebSocket upgrade, unanswered.
  const files = { '/diagnose.html': 'web/diagnose.html', '/diagnose.js': 'web/diagnose.js', '/demo.css': 'web/demo.css',
    '/flashgate.js': 'web/flashgate.js', '/sockjs/sockjs.min.js': 'assets/vendor/sockjs/sockjs.min.js' };
  const hanging = [];
  const silent = http.createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) { hanging.push(req.socket); return; }
    const type = file.endsWith('.html') ? 'text/html' : file.endsWith('.css') ? 'text/css' : 'application/javascript';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8` });
    res.end(fs.readFileSync(path.join(repo, file)));
  });
  silent.on('upgrade', (req, socket) => hanging.push(socket));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${silent.address().port}`;
  try {
    const page = await newPage();
    const started = Date.now();
    await page.goto(`http://${addr}/diagnose.html?timeout=1.5&skip=${SOCKJS.filter((t) => t !== 'xhr-polling' && t !== 'jsonp-polling')}`);
    const { rows, summary } = await results(page, addr, 40000);
    assert.ok(Date.now() - started < 30000, `done in ${Date.now() - started} ms`);
    const said = (id) => [rows[id].status, rows[id].detail];
    assert.deepStrictEqual(said('native'), ['timed out', 'It did not connect within 1.5 s.']);
    assert.deepStrictEqual(said('flash-player'),
      ['not available', 'No Flash Player, and Ruffle (the Flash emulator) could not be loaded from the gateway (/ruffle/ruffle.js).']);
    for (const t of ['xhr-polling', 'jsonp-polling']) assert.deepStrictEqual(said(`sockjs-${t}`), ['timed out', 'It did not connect within 3.5 s.']);
    assert.match(summary, /^Nothing worked: this browser could not reach the gateway at 127\.0\.0\.1:\d+ in any way \(native WebSocket \(timed out\), /);
    assert.ok(hanging.length >= 4, `the checks reached the silent server (${hanging.length} requests)`);
    assert.deepStrictEqual(page.errors, []);
    await page.close();
  } finally {
    hanging.forEach((s) => s.destroy());
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  }
});

// IE 6-8 have none of ES5's library functions, and IE 6-7 no JSON: the page's script uses
// none (es3.test.js checks that it parses as ES3).
test('diagnose.js calls no ES5 library function and needs no JSON', () => {
  const ES5 = new Set(['forEach', 'map', 'filter', 'reduce', 'some', 'every', 'lastIndexOf', 'keys', 'create', 'defineProperty',
    'getPrototypeOf', 'bind', 'now', 'trim', 'isArray', 'toISOString', 'addEventListener', 'querySelector', 'querySelectorAll']);
  const found = [];
  const walk = (node) => {
    if (!node || typeof node.type !== 'string') return;
    if (node.type === 'MemberExpression' && !node.computed && ES5.has(node.property.name)) found.push(`${node.loc.start.line}: .${node.property.name}`);
    if (node.type === 'Identifier' && node.name === 'JSON') found.push(`${node.loc.start.line}: JSON`);
    for (const [key, value] of Object.entries(node)) {
      if (key === 'loc') continue;
      if (Array.isArray(value)) value.forEach(walk); else walk(value);
    }
  };
  walk(acorn.parse(fs.readFileSync(path.join(repo, 'web/diagnose.js'), 'utf8'), { ecmaVersion: 3, locations: true }));
  assert.deepStrictEqual(found, []);
});
