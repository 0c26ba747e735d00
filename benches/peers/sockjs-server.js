// sockjs-node 0.3.24, the SockJS reference server, set up as its README shows: an http
// server with one SockJS service per prefix, every option at its default but `log` (a no-op
// instead of console.log). /echo echoes each message; /chat is a broadcast room (sender
// included) kept in a Set, as sockjs-node's broadcast example keeps its connections. Both
// also take plain WebSockets at PREFIX/websocket. Usage: node sockjs-server.js PORT
'use strict';
const http = require('http');
const sockjs = require('sockjs');

const port = Number(process.argv[2]);
const server = http.createServer();
const options = { log: () => {} };

const echo = sockjs.createServer(options);
echo.on('connection', (conn) => {
  conn.on('data', (message) => conn.write(message));
});
echo.installHandlers(server, { prefix: '/echo' });

const room = new Set();
const chat = sockjs.createServer(options);
chat.on('connection', (conn) => {
  room.add(conn);
  conn.on('close', () => room.delete(conn));
  conn.on('data', (message) => {
    for (const member of room) member.write(message);
  });
});
chat.installHandlers(server, { prefix: '/chat' });

server.listen(port, '127.0.0.1', () => console.log(`listening 127.0.0.1:${server.address().port}`));
