// TLS on the gateway's main port in Debian's headless Chromium: https:// pages and wss://
// WebSockets, SockJS over https://, and plain http:// on the same port. The certificate
// authority is made here with openssl; Chromium trusts it through its own flag (the CA's
// public key in --ignore-certificate-errors-spki-list), and a Chromium without the flag
// refuses the same page.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startGateway, launchBrowser, logTexts, waitForLog, openDemo, waitForConnected } = require('./harness');

const TIMEOUT = { timeout: 60000 };
let dir;
let pair;
let gateway;
let trusting;

// A CA and a certificate it signs for 127.0.0.1 and localhost, as PEM files in `where`.
function makeCertificates(where) {
  const run = (...args) => execFileSync('openssl', args, { cwd: where, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=flashgate browser test CA');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(where, 'names.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'names.ext');
  // The chain as a deployment sends it, the server's certificate first: Chromium's flag
  // matches the keys of the certificates the server presents.
  const caPem = fs.readFileSync(path.join(where, 'ca.crt'));
  fs.writeFileSync(path.join(where, 'chain.crt'), Buffer.concat([fs.readFileSync(path.join(where, 'server.crt')), caPem]));
  const spki = new crypto.X509Certificate(caPem).publicKey.export({ type: 'spki', format: 'der' });
  return {
    cert: path.join(where, 'chain.crt'),
    key: path.join(where, 'server.key'),
    caSpki: crypto.createHash('sha256').update(spki).digest('base64'),
  };
}

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flashgate-tls-'));
  pair = makeCertificates(dir);
  gateway = await startGateway(['--tls-cert', pair.cert, '--tls-key', pair.key]);
  trusting = await launchBrowser([`--ignore-certificate-errors-spki-list=${pair.caSpki}`]);
});

test.after(async () => {
  if (trusting) await trusting.close();
  if (gateway) assert.strictEqual(await gateway.stop(), 0, 'flashgate exits 0 on SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const httpsUrl = () => `https://127.0.0.1:${gateway.port}`;

test('a Chromium that does not trust the CA refuses the page', TIMEOUT, async () => {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await assert.rejects(page.goto(`${httpsUrl()}/`), /ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await browser.close();
  }
});

test('the demo over https:// chats over wss:// on native WebSocket', TIMEOUT, async () => {
  const page = await openDemo(trusting, `${httpsUrl()}/`);
  assert.strictEqual(await page.evaluate(() => location.protocol), 'https:');
  assert.strictEqual(await page.textContent('#transport'), 'native WebSocket');
  const sys = await logTexts(page, 'sys');
  assert.match(sys[sys.length - 1], /^connected to wss:\/\/127\.0\.0\.1:\d+\/chat\?room=lobby$/);
  await page.selectOption('#route', 'echo');
  await waitForConnected(page, /^connected to wss:.*\/echo$/);
  for (const text of ['over TLS ✓', 'y'.repeat(100000)]) {
    await page.fill('#message', text);
    await page.click('#send');
    await waitForLog(page, 'in', text);
  }
  // The page's own scripts and the third-party ones came over https too.
  const resources = await page.evaluate(() => performance.getEntriesByType('resource').map((r) => r.name));
  assert.ok(resources.length > 0 && resources.every((name) => name.startsWith('https://')), resources.join('\n'));
  assert.deepStrictEqual(page.errors, []);
  await page.close();
});

test('without native WebSocket the https:// demo runs on SockJS over https://', TIMEOUT, async () => {
  const page = await trusting.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.addInitScript(() => { delete window.WebSocket; delete window.MozWebSocket; });
  await page.goto(`${httpsUrl()}/`);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 20000 });
  assert.strictEqual(await page.textContent('#transport'), 'SockJS (xhr-streaming)');
  const sys = await logTexts(page, 'sys');
  assert.match(sys[sys.length - 1], /^connected to https:\/\/127\.0\.0\.1:\d+\/chat\?room=lobby$/);
  await page.fill('#message', 'streamed through TLS');
  await page.click('#send');
  await waitForLog(page, 'in', 'streamed through TLS');
  assert.deepStrictEqual(errors, []);
  await page.close();
});

test('plain http:// on the same port still serves the demo over ws://', TIMEOUT, async () => {
  const page = await openDemo(trusting, `http://127.0.0.1:${gateway.port}/`);
  const sys = await logTexts(page, 'sys');
  assert.match(sys[sys.length - 1], /^connected to ws:\/\/127\.0\.0\.1:\d+\/chat\?room=lobby$/);
  await page.fill('#message', 'plain still');
  await page.click('#send');
  await waitForLog(page, 'in', 'plain still');
  await page.close();
});

test('--tls-only answers plain http:// with a 400 that says to use https://', TIMEOUT, async () => {
  const only = await startGateway(['--tls-cert', pair.cert, '--tls-key', pair.key, '--tls-only']);
  try {
    const page = await trusting.newPage();
    const plain = await page.goto(`http://127.0.0.1:${only.port}/`);
    assert.strictEqual(plain.status(), 400);
    assert.match(await page.textContent('body'), /https:\/\//);
    const secure = await page.goto(`https://127.0.0.1:${only.port}/`);
    assert.strictEqual(secure.status(), 200);
    await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 20000 });
    await page.close();
  } finally {
    assert.strictEqual(await only.stop(), 0);
  }
});
