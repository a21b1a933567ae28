/**
 * A hand-rolled WebSocket echo server on the `ws` package (Node's http server), the comparison point
 * for teams that would write their own: the same hello frame as bench/bare-uws.ts, then each
 * message echoed verbatim. No sessions, no protocol.
 *
 *   node --import tsx bench/ws-server.ts [port]   (or PORT=…; 0 or nothing = any free port)
 *
 * Prints one JSON line once listening: {"listening":<port>,"engine":"ws <version>"}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);
const version = (createRequire(import.meta.url)('ws/package.json') as { version: string }).version;
const hello = JSON.stringify({ type: 'open', sid: 'bare-0000000000000000', token: 'bare.0000000000000000', pingMs: 25000 });

const httpServer = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', engine: `ws ${version}` }));
  } else res.writeHead(404).end();
});
const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false, maxPayload: 1 << 20 });
wss.on('connection', (ws) => {
  ws.send(hello);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

httpServer.listen(requested, '127.0.0.1', () => {
  const { port } = httpServer.address() as AddressInfo;
  console.log(JSON.stringify({ listening: port, engine: `ws ${version}` }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
