// A small Flash socket policy server in Node, as people write them: answer
// <policy-file-request/> with the policy and a NUL, then close. Usage: node policy-server.js PORT
'use strict';
const net = require('net');

const policy = '<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd">\n' +
  '<cross-domain-policy>\n  <allow-access-from domain="*" to-ports="8080"/>\n</cross-domain-policy>\n\0';
const server = net.createServer((socket) => {
  let request = '';
  socket.setTimeout(3000, () => socket.destroy());
  socket.on('data', (chunk) => {
    request += chunk;
    if (request.indexOf('<policy-file-request/>') === 0 && /\0|\n/.test(request)) socket.end(policy);
    else if (request.length > 64) socket.destroy();
  });
  socket.on('error', () => {});
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log(`listening 127.0.0.1:${server.address().port}`));
