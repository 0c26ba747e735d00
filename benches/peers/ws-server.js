// Node `ws`: echo on every path, and a broadcast room on /chat (sender included), the same
// behaviour as flashgate's /echo and /chat. Usage: node ws-server.js PORT
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
const room = new Set();
server.on('connection', (ws, req) => {
  if (req.url.startsWith('/chat')) {
    room.add(ws);
    ws.on('close', () => room.delete(ws));
    ws.on('message', (data, isBinary) => {
      for (const member of room) member.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
server.on('listening', () => console.log(`listening 127.0.0.1:${server.address().port}`));
