/**
 * The baseline for the benchmarks: the same uWebSockets.js package the gateway uses, with no
 * sessions, no framing logic and no JSON on the echo path — it echoes each message verbatim. Like
 * the gateway it sends one text frame first (a stand-in for `open`, of similar size) so the load
 * generator treats both servers the same way.
 *
 * For the fan-out benchmark it speaks just enough of the native protocol: `join` [room] subscribes
 * the socket to the room (uWS pub/sub) and answers the ack as a `reply`; `say` [room, text]
 * publishes a `said` frame [room, text, "bare", {}] to the room's subscribers, the sender included.
 * The publishes are queued and made from setImmediate, outside the uWS message handler: a publish
 * made inside a handler is corked with the handler's own output, and past 32 queued messages per
 * subscriber uWS collapses them.
 *
 *   node --import tsx bench/bare-uws.ts [port]      (or PORT=…; 0 or nothing = any free port)
 *
 * Prints one JSON line once listening: {"listening":<port>,"engine":"<the uWS package>"}.
 */
import type * as uWS from 'uWebSockets.js';
import { loadEngine } from '../gateway/uws.ts';

// the build the gateway itself would load on this runtime (gateway/uws.ts), so both run on one engine
const { uws, spec } = loadEngine();

const requested = Number(process.argv[2] ?? process.env.PORT ?? 0);
const engine = spec;
const hello = JSON.stringify({ type: 'open', sid: 'bare-0000000000000000', token: 'bare.0000000000000000', pingMs: 25000 });

// `{"type":"event","event":"` is 25 bytes: the byte after it tells join (j) and say (s) from echo
const EVENT_NAME_AT = 25;
const J = 'j'.charCodeAt(0);
const S = 's'.charCodeAt(0);
const decoder = new TextDecoder();

const pending: [room: string, frame: string][] = [];
let flushScheduled = false;
function flushPublishes(): void {
  flushScheduled = false;
  for (const [room, frame] of pending) app.publish(room, frame, false);
  pending.length = 0;
}

/** join / say, or undefined when the message is to be echoed verbatim */
function control(ws: uWS.WebSocket<unknown>, message: ArrayBuffer): boolean {
  if (message.byteLength <= EVENT_NAME_AT) return false;
  const b = new Uint8Array(message, EVENT_NAME_AT, 1)[0];
  if (b !== J && b !== S) return false;
  let frame: { type?: unknown; event?: unknown; args?: unknown[]; ack?: unknown };
  try {
    frame = JSON.parse(decoder.decode(message));
  } catch {
    return false;
  }
  if (frame.type !== 'event' || !Array.isArray(frame.args) || typeof frame.args[0] !== 'string') return false;
  const room = frame.args[0];
  if (frame.event === 'join') {
    ws.subscribe(room);
  } else if (frame.event === 'say') {
    pending.push([room, JSON.stringify({ type: 'event', event: 'said', args: [room, String(frame.args[1] ?? ''), 'bare', {}] })]);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushPublishes);
    }
  } else {
    return false;
  }
  if (frame.ack !== undefined) ws.send(JSON.stringify({ type: 'reply', ack: frame.ack, args: [true] }), false);
  return true;
}

const app = uws
  .App()
  .ws('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 1 << 20,
    // fan-out to a large room queues many frames per socket; never drop them
    maxBackpressure: 64 << 20,
    // Long enough that idle connections in the memory test are never dropped; uWS pings at
    // half of it and the load generator answers.
    idleTimeout: 120,
    open: (ws) => {
      ws.send(hello, false);
    },
    message: (ws, message, isBinary) => {
      if (!isBinary && control(ws, message)) return;
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
  const port = uws.us_socket_local_port(listenSocket);
  console.log(JSON.stringify({ listening: port, engine }));
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
