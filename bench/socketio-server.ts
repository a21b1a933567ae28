/**
 * A plain Socket.IO v4 server, the comparison point most users know: Node's http server, the
 * default `ws` engine, websocket and polling transports, and an echo handler.
 *
 *   node --import tsx bench/socketio-server.ts [port]   (or PORT=…; 0 or nothing = any free port)
 *
 * Prints one JSON line once listening: {"listening":<port>}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['websocket', 'polling'],
  serveClient: false,
});

io.on('connection', (socket) => {
  socket.on('echo', (...args: unknown[]) => {
    socket.emit('echo', ...args);
  });
});

httpServer.listen(requested, '127.0.0.1', () => {
  const { port } = httpServer.address() as AddressInfo;
  console.log(JSON.stringify({ listening: port }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
