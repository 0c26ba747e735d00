// A legacy Flash XMLSocket chat server, as Flash-era chat and game servers were: a plain TCP
// server where every message ends with a NUL byte. It greets each client with
// `<welcome id="N"/>`, then writes every message a client sends, as it came, to every client
// connected (the sender included), so that all of them see one order.
'use strict';
const net = require('node:net');

// Starts it on 127.0.0.1:0. Resolves with {port, received, clients(), close()}: `received`
// lists what arrived, as {id, text} in the order the server read it; `clients()` the ids of
// the clients connected.
function startXmlSocketServer() {
  const sockets = new Map();
  const received = [];
  let next = 0;
  const server = net.createServer((socket) => {
    const id = ++next;
    sockets.set(id, socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (let end = pending.indexOf(0); end >= 0; end = pending.indexOf(0)) {
        const message = pending.subarray(0, end);
        pending = pending.subarray(end + 1);
        received.push({ id, text: message.toString('utf8') });
        const out = Buffer.concat([message, Buffer.from([0])]);
        for (const peer of sockets.values()) peer.write(out);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(id));
    socket.write(`<welcome id="${id}"/>\0`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      received,
      clients: () => [...sockets.keys()],
      close: () => new Promise((done) => {
        for (const socket of sockets.values()) socket.destroy();
        server.close(done);
      }),
    }));
  });
}

module.exports = { startXmlSocketServer };
