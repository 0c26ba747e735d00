// A WebSocket server built on Node's `ws`, as its README shows one, for flashgate's
// upstream tests: it echoes every message with its type, chooses the subprotocol
// `chat.v1` when offered, closes with CODE and REASON when sent `close:CODE:REASON`, and
// writes one JSON line to stdout per event: where it listens, each handshake's headers,
// and each client's close code and reason.
'use strict';
const { WebSocketServer } = require('ws');

const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  handleProtocols: (offered) => (offered.has('chat.v1') ? 'chat.v1' : false),
});

wss.on('listening', () => say({ listening: wss.address().port }));

wss.on('connection', (ws, req) => {
  say({ url: req.url, headers: req.headers });
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text !== null && text.startsWith('close:')) {
      const [, code, ...reason] = text.split(':');
      ws.close(Number(code), reason.join(':'));
      return;
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => say({ closed: code, reason: reason.toString() }));
});
