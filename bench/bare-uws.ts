/**
 * The baseline for the benchmarks: the same uWebSockets.js package the gateway uses, with no
 * sessions, no framing logic and no JSON — it echoes each message verbatim. Like the gateway it
 * sends one text frame first (a stand-in for `open`, of similar size) so the load generator
 * treats both servers the same way.
 *
 *   node --import tsx bench/bare-uws.ts [port]      (or PORT=…; 0 or nothing = any free port)
 *
 * Prints one JSON line once listening: {"listening":<port>,"engine":"native"|"fallback"}.
 */
import uWS from 'uWebSockets.js';

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);
const engine = uWS.App.toString().includes('[native code]') ? 'native' : 'fallback';
const hello = JSON.stringify({ type: 'open', sid: 'bare-0000000000000000', token: 'bare.0000000000000000', pingMs: 25000 });

const app = uWS.App()
  .ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 1 << 20,
    // Long enough that idle connections in the memory test are never dropped; uWS pings at
    // half of it and the load generator answers.
    idleTimeout: 120,
    open: (ws) => {
      ws.send(hello, false);
    },
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .get('/healthz', (res) => {
    res.writeHeader('content-type', 'application/json').end(JSON.stringify({ status: 'ok', engine }));
  });

app.listen('127.0.0.1', requested, (listenSocket) => {
  if (!listenSocket) {
    console.error(`bare-uws: cannot listen on port ${requested}`);
    process.exit(1);
  }
  const port = uWS.us_socket_local_port(listenSocket);
  console.log(JSON.stringify({ listening: port, engine }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
