/**
 * Room fan-out inside one gateway node: `npm run bench:fanout [-- members broadcasts]`.
 *
 * One node (MemoryBus + worker, no sockets), `members` sessions in one room, half of them
 * native JSON and half native msgpack connections that encode every entry they are given. A
 * sender broadcasts `broadcasts` events of 32 bytes. Reports broadcasts per second, deliveries
 * per second, and how many event bodies the codecs built per broadcast: a shared entry is
 * encoded once per (dialect, format), so this should be 2 whatever the room's size.
 */
import { startEmbedded } from '../gateway/embedded.ts';
import { encodeStats, nativeCodecs } from '../transports/dialects/native/codec.ts';
import type { Carrier, Codec, Connection, OpenInfo, PortSession } from '../transports/seam/port.ts';
import demoApp from '../demo/app.ts';

const members = Number(process.argv[2] ?? 1000);
const broadcasts = Number(process.argv[3] ?? 2000);

/** a connection that encodes what it is given and throws it away (the socket write is left out) */
class SinkConnection implements Connection, Carrier {
  readonly transport = 'websocket' as const;
  /** its own carrier (a getter, not a field: one less per connection) */
  get carrier(): this {
    return this;
  }
  session: PortSession | null = null;
  pingRound = 0;
  bytes = 0;
  constructor(readonly codec: Codec) {}
  sendOpen(_s: PortSession, info: OpenInfo): void {
    this.codec.open(info);
  }
  flush(s: PortSession): void {
    while (s.sent < s.outbox.last) {
      const seq = ++s.sent;
      this.bytes += this.codec.encode(seq, s.outbox.get(seq)!).length;
    }
  }
  ping(): void {}
  end(): void {}
  drop(): void {}
  restart(): void {}
  fail(): void {}
}

const node = await startEmbedded({ host: '127.0.0.1', port: 0, app: demoApp, serveDemo: false });
const gw = node.gateway;
const meta = { ip: '127.0.0.1', origin: '', userAgent: 'bench', query: {}, auth: '', dialect: 'native' };
const conns: SinkConnection[] = [];
for (let i = 0; i < members; i++) {
  const c = new SinkConnection(i % 2 === 0 ? nativeCodecs.json : nativeCodecs.msgpack);
  const s = (c.session = gw.open('websocket', meta, c));
  gw.deliver(s, { type: 'event', event: 'join', args: ['room'] });
  conns.push(c);
}
const sender = conns[0]!.session!;
const text = 'x'.repeat(32);
// warm-up, then measure
for (let i = 0; i < 200; i++) gw.deliver(sender, { type: 'event', event: 'say', args: ['room', text] });
const bodies0 = encodeStats.bodies;
const t0 = process.hrtime.bigint();
for (let i = 0; i < broadcasts; i++) {
  gw.deliver(sender, { type: 'event', event: 'say', args: ['room', text] });
}
const s = Number(process.hrtime.bigint() - t0) / 1e9;
const bodies = encodeStats.bodies - bodies0;
console.log(`room fan-out, ${members} members (half JSON, half msgpack), ${broadcasts} broadcasts of 32 bytes`);
console.log(`  broadcasts/s   ${Math.round(broadcasts / s).toLocaleString('en-US')}`);
console.log(`  deliveries/s   ${Math.round((broadcasts * members) / s).toLocaleString('en-US')}`);
console.log(`  event bodies encoded per broadcast: ${(bodies / broadcasts).toFixed(2)} (one per (dialect, format): 2)`);
await node.close();
