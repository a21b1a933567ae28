/**
 * A plain Socket.IO v4 server, the comparison point most users know: Node's http server, the
 * default `ws` engine, websocket and polling transports, and an echo handler (acked or not).
 *
 *   node --import tsx bench/socketio-server.ts [port]   (or PORT=…; 0 or nothing = any free port)
 *
 * Prints one JSON line once listening: {"listening":<port>,"engine":"socket.io <version>"}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Server } from 'socket.io';

const version = (createRequire(import.meta.url)('socket.io/package.json') as { version: string }).version;

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket', 'polling'],
  serveClient: false,
});

io.on('connection', (socket) => {
  // With an ack callback (`42N["echo",…]`) the echo is the ack (`43N[…]`), as the gateway's
  // Socket.IO dialect answers; without one, an `echo` event back.
  socket.on('echo', (...args: unknown[]) => {
    const ack = args.at(-1);
    if (typeof ack === 'function') (ack as (...a: unknown[]) => void)(...args.slice(0, -1));
    else socket.emit('echo', ...args);
  });
});

httpServer.listen(requested, '127.0.0.1', () => {
  const { port } = httpServer.address() as AddressInfo;
  console.log(JSON.stringify({ listening: port, engine: `socket.io ${version}` }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
