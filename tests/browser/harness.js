// Starts the real gateway on a free port and Debian's Chromium, for the browser tests.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const repo = path.resolve(__dirname, '..', '..');
const bin = process.env.FLASHGATE_BIN || path.join(repo, 'target', 'release', 'flashgate');
const CHROMIUM = '/usr/bin/chromium';
// Debian's Chromium, headless, with nothing that reaches out to the network.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
];

// Runs flashgate with `args` on `listen` (127.0.0.1:0); resolves once it logs its address.
// The pages are the repository's web/ unless `args` has a --web-dir of its own.
function startGateway(args = [], listen = '127.0.0.1:0') {
  if (!fs.existsSync(bin)) throw new Error(`no flashgate binary at ${bin} (cargo build --release, or set FLASHGATE_BIN)`);
  const webDir = args.includes('--web-dir') ? [] : ['--web-dir', path.join(repo, 'web')];
  const child = spawn(bin, [
    '--listen', listen, '--policy-listen', 'off',
    ...webDir, '--assets-dir', path.join(repo, 'assets'),
    ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  // Never left running: not by a failed start, nor by a test process that exits early.
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', kill);
  let log = '';
  child.once('exit', () => {
    process.removeListener('exit', kill);
    // FLASHGATE_LOG_DIR=dir keeps each gateway's log, to read after a failure.
    if (process.env.FLASHGATE_LOG_DIR) {
      fs.mkdirSync(process.env.FLASHGATE_LOG_DIR, { recursive: true });
      fs.writeFileSync(path.join(process.env.FLASHGATE_LOG_DIR, `flashgate-${child.pid}.log`), log);
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { kill(); reject(new Error(`flashgate did not start:\n${log}`)); }, 10000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const match = /listening listener=main addr=([\d.]+:\d+)/.exec(log);
      if (match && !child.gateway) {
        clearTimeout(timer);
        child.gateway = {
          addr: match[1],
          url: `http://${match[1]}`,
          log: () => log,
          port: Number(match[1].split(':')[1]),
          // Stops it with `signal` (SIGTERM: gracefully) and resolves with the exit code.
          stop: (signal = 'SIGTERM') => new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode);
            child.once('exit', (code) => done(code));
            child.kill(signal);
          }),
        };
        resolve(child.gateway);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`flashgate exited (${code}):\n${log}`));
    });
  });
}

// Serves pages on 127.0.0.1:0, another origin than the gateway's: `page(url)` gives the HTML
// for a request (a URL object). Resolves with {url, origin, close()}.
function startPageServer(page) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const html = page(url);
    if (html === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const origin = `http://127.0.0.1:${server.address().port}`;
      resolve({ url: origin, origin, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

// Runs flashgate on a port known before it starts, for arguments that name its own origin:
// `args(port)`. Tries random ports until one is free (binding decides: no port is picked
// first and bound later).
async function startGatewayWithPort(args) {
  for (let tries = 0; ; tries++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    try {
      return await startGateway(args(port), `127.0.0.1:${port}`);
    } catch (err) {
      if (tries >= 20 || !/already in use/.test(err.message)) throw err;
    }
  }
}

// Debian's Chromium, with `extraArgs` after the usual ones.
async function launchBrowser(extraArgs = []) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test installs it)`);
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30000 });
}

// Texts of the #log entries of a kind ("in", "out", "sys") on the demo page.
function logTexts(page, kind) {
  return page.$$eval(`#log li.${kind}`, (items) => items.map((li) => li.textContent));
}

// Waits until the demo page's log has an entry of `kind` whose text is exactly `text`.
function waitForLog(page, kind, text, timeout = 10000) {
  return page.waitForFunction(
    ([k, t]) => Array.prototype.some.call(document.querySelectorAll(`#log li.${k}`), (li) => li.textContent === t),
    [kind, text], { timeout });
}

// Opens a demo page (index.html or ruffle.html) and waits until its socket is open.
async function openDemo(browser, url, timeout = 30000) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout });
  return page;
}

// The last "sys" line of a demo page: after a (re)connection, the URL it connected to.
function waitForConnected(page, pattern, timeout = 30000) {
  return page.waitForFunction(
    (source) => {
      const lines = document.querySelectorAll('#log li.sys');
      const state = document.getElementById('state').textContent;
      return state === 'open' && lines.length > 0 && new RegExp(source).test(lines[lines.length - 1].textContent);
    },
    pattern.source, { timeout });
}

module.exports = {
  repo, startGateway, startGatewayWithPort, startPageServer, launchBrowser, logTexts, waitForLog, openDemo, waitForConnected,
};
