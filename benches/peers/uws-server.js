// uWebSockets.js: echo on every path, and a broadcast room on /chat (sender included).
// Usage: node uws-server.js PORT
'use strict';
const uWS = require('@trufflesuite/uws-js-unofficial');

const port = Number(process.argv[2]);
const app = uWS.App();
app.ws('/chat', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 0,
  open: (ws) => ws.subscribe('room'),
  message: (ws, message, isBinary) => app.publish('room', message, isBinary),
});
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, message, isBinary) => ws.send(message, isBinary),
});
app.listen('127.0.0.1', port, (token) => {
  if (!token) { console.error(`cannot listen on ${port}`); process.exit(1); }
  console.log(`listening 127.0.0.1:${uWS.us_socket_local_port(token)}`);
});
