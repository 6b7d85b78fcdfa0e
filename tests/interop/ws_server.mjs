// A broadcast feed served by the Node `ws` library, for the interop suites: resume with
// ?cursor=N, sockets terminated without a close frame, and a half-open mode.
//
//   node tests/interop/ws_server.mjs [--port 0] [--rate MSGS_PER_SEC]
//       [--terminate-after N --terminate-count K] [--halfopen-after N]
//
// Prints `listening on 127.0.0.1:PORT` on stdout once it listens, then one line per
// connection opened, terminated, frozen or closed.
//
// ws://ADDR/feed?cursor=N replays the broadcasts after N (all of them without a cursor),
// then the connection joins the broadcast. Messages are {"seq": n, "source": "node-ws"},
// produced at --rate per second.
// --terminate-after N --terminate-count K: each of the first K connections is ended with
//   ws.terminate() (the socket is destroyed, no close frame) after N messages on it.
// --halfopen-after N: the first connection goes half-open after N messages on it: it leaves
//   the broadcast, and its socket is paused (ws._socket.pause()), so nothing is read any
//   more and pings are never answered; it is never closed by the server.
//
// GET /stats answers {"connections", "live", "max_live", "seq", "terminated", "frozen",
// "cursors": [...], "closes": [...]}.
//
// `ws` is loaded from $INTEROP_NODE_MODULES when set (scripts/test-interop.sh sets it), else
// from tests/interop/node_modules.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const modules = process.env.INTEROP_NODE_MODULES ?? join(import.meta.dirname, 'node_modules');
const { WebSocketServer } = createRequire(join(modules, 'noop.js'))('ws');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    rate: { type: 'string', default: '50' },
    'terminate-after': { type: 'string', default: '0' },
    'terminate-count': { type: 'string', default: '0' },
    'halfopen-after': { type: 'string', default: '0' },
  },
});
const rate = Number(args.rate);
const terminateAfter = Number(args['terminate-after']);
const terminateCount = Number(args['terminate-count']);
const halfopenAfter = Number(args['halfopen-after']);

const messages = [];
const clients = new Set();
const stats = {
  connections: 0, live: 0, max_live: 0, seq: 0, terminated: 0, frozen: 0, cursors: [], closes: [],
};

const http = createServer((req, res) => {
  if (new URL(req.url, 'http://x').pathname === '/stats') {
    const body = JSON.stringify({ ...stats, seq: messages.length });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(404).end();
  }
});
const wss = new WebSocketServer({ server: http, path: '/feed' });

/** Sends one message to `client`, then applies the connection's fault when it is due. */
function deliver(client, message) {
  client.ws.send(message);
  client.sent += 1;
  if (client.number <= terminateCount && client.sent >= terminateAfter) {
    console.log(`connection ${client.number} terminated after ${client.sent} messages`);
    stats.terminated += 1;
    clients.delete(client);
    client.ws.terminate();
    return false;
  }
  if (client.number === 1 && halfopenAfter > 0 && client.sent >= halfopenAfter) {
    console.log(`connection ${client.number} half-open after ${client.sent} messages`);
    stats.frozen += 1;
    clients.delete(client);
    client.frozen = true;
    client.ws._socket.pause(); // nothing read any more: pings go unanswered
    return false;
  }
  return true;
}

wss.on('connection', (ws, req) => {
  stats.connections += 1;
  stats.live += 1;
  stats.max_live = Math.max(stats.max_live, stats.live);
  const value = new URL(req.url, 'http://x').searchParams.get('cursor');
  const cursor = value === null ? null : Number(value);
  stats.cursors.push(cursor);
  const client = { ws, number: stats.connections, sent: 0, frozen: false };
  console.log(`connection ${client.number} opened cursor=${cursor}`);
  ws.on('close', (code) => {
    clients.delete(client);
    stats.live -= 1;
    stats.closes.push(code);
    console.log(`connection ${client.number} closed code=${code}`);
  });
  ws.on('error', (error) => console.log(`connection ${client.number} error: ${error.message}`));
  // Replay and join in one synchronous step: no broadcast can fall in between.
  for (let i = cursor ?? 0; i < messages.length; i += 1) {
    if (!deliver(client, messages[i])) return;
  }
  clients.add(client);
});

if (rate > 0) {
  setInterval(() => {
    const message = JSON.stringify({ seq: messages.length + 1, source: 'node-ws' });
    messages.push(message);
    for (const client of [...clients]) deliver(client, message);
  }, 1000 / rate);
}

http.listen(Number(args.port), '127.0.0.1', () => {
  const { address, port } = http.address();
  console.log(`listening on ${address}:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
