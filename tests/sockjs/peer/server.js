// The SockJS reference server (sockjs-node) with the services the SockJS protocol's test
// suite expects, set up as sockjs-node's documentation shows. Usage: node server.js PORT
'use strict';
const http = require('http');
const sockjs = require('sockjs');

const port = Number(process.argv[2]);
const server = http.createServer();
const common = { sockjs_url: '/sockjs/sockjs.min.js', response_limit: 4096, log: () => {} };

function service(prefix, options, onConnection) {
  const sock = sockjs.createServer(Object.assign({}, common, options));
  sock.on('connection', onConnection);
  sock.installHandlers(server, { prefix });
}

const echo = (conn) => conn.on('data', (message) => conn.write(message));
service('/echo', {}, echo);
service('/disabled_websocket_echo', { websocket: false }, echo);
service('/cookie_needed_echo', { jsessionid: true }, echo);
service('/close', {}, (conn) => conn.close(3000, 'Go away!'));

server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
