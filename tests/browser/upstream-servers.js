// The user's own servers that upstream.test.js's routes relay to: Node's `ws`
// (tests/upstream/peer/server.js, pinned by its lockfile), a TCP echo and a Flash XMLSocket
// echo, each on 127.0.0.1.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { repo } = require('./harness');

const PEER = path.join(repo, 'tests', 'upstream', 'peer');

// Resolves with what `events()` holds once `find(events())` is truthy, polling; rejects with
// `what` after `timeout` ms.
function poll(what, events, find, timeout) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = find(events());
      if (found) return resolve(found);
      if (Date.now() - started > timeout) return reject(new Error(`no ${what} within ${timeout} ms: ${JSON.stringify(events())}`));
      return setTimeout(check, 20);
    };
    check();
  });
}

// tests/upstream/peer/server.js in its own Node process: it echoes every message with its type
// and closes with CODE and REASON when sent `close:CODE:REASON`. Resolves with {port, events,
// handshakes(), waitFor(what, find, timeout), close()}: `events` is every JSON line it wrote (a
// handshake's {url, headers}, a close's {closed, reason}), in order.
function startWsServer() {
  if (!fs.existsSync(path.join(PEER, 'node_modules', 'ws'))) {
    throw new Error(`Node ws is not installed: run npm ci in ${PEER} (tests/browser/run does)`);
  }
  const child = spawn(process.execPath, [path.join(PEER, 'server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = () => { if (running()) child.kill('SIGKILL'); };
  process.once('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
  const events = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  const waitFor = (what, find, timeout = 10000) => {
    if (!running()) return Promise.reject(new Error(`the ws server has exited: ${JSON.stringify(events)}`));
    return poll(what, () => events, find, timeout);
  };
  return waitFor('port from the ws server', (all) => all.find((e) => e.listening)).then((hello) => ({
    port: hello.listening,
    events,
    handshakes: () => events.filter((e) => e.headers),
    waitFor,
    close: () => new Promise((done) => {
      if (!running()) return done();
      child.once('exit', () => done());
      return child.kill();
    }),
  }));
}

// A TCP echo on 127.0.0.1:0, writing every byte back as it is read; with `xmlsocket`, a Flash
// XMLSocket server instead, which reads NUL-ended messages and writes each back with its NUL.
// Resolves with {port, connections, close()}: `connections` holds, for each connection in
// the order they came, what it sent: `bytes` (a Buffer) and, for XMLSocket, its `messages`.
function startTcpEcho({ xmlsocket = false } = {}) {
  const sockets = new Set();
  const connections = [];
  const server = net.createServer((socket) => {
    const connection = { bytes: Buffer.alloc(0), messages: [] };
    connections.push(connection);
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      connection.bytes = Buffer.concat([connection.bytes, chunk]);
      if (!xmlsocket) {
        socket.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      for (let end = pending.indexOf(0); end >= 0; end = pending.indexOf(0)) {
        const message = pending.subarray(0, end);
        pending = pending.subarray(end + 1);
        connection.messages.push(message.toString('utf8'));
        socket.write(Buffer.concat([message, Buffer.from([0])]));
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      connections,
      close: () => new Promise((done) => {
        for (const socket of sockets) socket.destroy();
        server.close(done);
      }),
    }));
  });
}

module.exports = { startWsServer, startTcpEcho };
