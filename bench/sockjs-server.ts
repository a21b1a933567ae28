/**
 * A plain `sockjs` (0.3) server, the reference for the gateway's SockJS dialect: Node's http
 * server, the package's default transports (the load generator uses its WebSocket transport,
 * `<prefix>/<server>/<session>/websocket`), and each message echoed verbatim.
 *
 *   node --import tsx bench/sockjs-server.ts [port] [prefix]   (prefix default /sockjs, as the gateway's)
 *
 * Prints one JSON line once listening: {"listening":<port>,"engine":"sockjs <version>"}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import sockjs from 'sockjs';

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);
const prefix = process.argv[3] ?? '/sockjs';
const version = (createRequire(import.meta.url)('sockjs/package.json') as { version: string }).version;

const echo = sockjs.createServer({ prefix, websocket: true, log: () => undefined, disconnect_delay: 5000, heartbeat_delay: 25000 });
echo.on('connection', (conn) => {
  if (!conn) return;
  conn.on('data', (message: string) => conn.write(message));
});

const httpServer = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', engine: `sockjs ${version}` }));
  } else res.writeHead(404).end();
});
echo.installHandlers(httpServer);

httpServer.listen(requested, '127.0.0.1', () => {
  const { port } = httpServer.address() as AddressInfo;
  console.log(JSON.stringify({ listening: port, engine: `sockjs ${version}` }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
