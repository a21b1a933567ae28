/**
 * The protocol-neutral core through its port, with a small test dialect: carriers with several
 * sessions, probe connections, binary args, and what crosses from one wire or format to another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startNode, WsClient } from './helpers.ts';
import { nativeCodecs } from '../transports/native-codec.ts';
import type { Carrier, Connection, OpenInfo, PortSession } from '../transports/port.ts';
import type { App } from '../cluster/app.ts';
import type { SessionMeta } from '../cluster/types.ts';

/** the test dialect's carrier: counts its pings */
class TestCarrier implements Carrier {
  pingRound = 0;
  pings = 0;
  ping(): void {
    this.pings++;
  }
}

/** one session on a test carrier: records what it is given to write, decoded */
class TestConn implements Connection {
  readonly transport = 'websocket' as const;
  session: PortSession | null = null;
  readonly got: Array<Record<string, any>> = [];
  opened: OpenInfo[] = [];
  ended: { code: number; reason: string } | null = null;
  dropped = false;
  /** the wire takes nothing while blocked (a full socket) */
  blocked = false;
  constructor(readonly carrier: Carrier) {}
  sendOpen(_s: PortSession, info: OpenInfo): void {
    this.opened.push(info);
  }
  flush(s: PortSession): void {
    while (!this.blocked && s.sent < s.outbox.last) {
      const seq = ++s.sent;
      this.got.push(JSON.parse(nativeCodecs.json.encode(seq, s.outbox.get(seq)!) as string));
    }
  }
  end(_s: PortSession, code: number, reason: string): void {
    this.ended = { code, reason };
  }
  drop(): void {
    this.dropped = true;
  }
  restart(): void {}
  fail(): void {}
}

const meta: SessionMeta = { ip: '127.0.0.1', origin: '', userAgent: 'test', query: {}, auth: { token: 'an object' }, dialect: 'test' };
const opens: string[] = [];
const closes: string[] = [];

const app: App = {
  open(s) {
    opens.push(s.sid);
  },
  event(s, event, args, reply) {
    if (event === 'bytes') s.emit('bytes', new Uint8Array([1, 2, 3]), 'x');
    else if (event === 'meta') reply?.(s.meta.dialect, s.meta.auth);
    else if (reply) reply(...args);
    else s.emit(event, ...args);
  },
  close(s) {
    closes.push(s.sid);
  },
};

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ app });
});
afterAll(closeAll);

const echo = (text: string) => ({ type: 'event' as const, event: 'echo', args: [text] });

describe('carriers', () => {
  it('one carrier holds two sessions, each with its own open, outbox and close; it is pinged once per round', async () => {
    const port = node.gateway;
    const carrier = new TestCarrier();
    const c1 = new TestConn(carrier);
    const c2 = new TestConn(carrier);
    const s1 = (c1.session = port.open('websocket', meta, c1));
    const s2 = (c2.session = port.open('websocket', meta, c2));
    expect(opens).toEqual(expect.arrayContaining([s1.sid, s2.sid]));
    expect([c1.opened.length, c2.opened.length]).toEqual([1, 1]);
    port.deliver(s1, echo('one'));
    port.deliver(s2, echo('two'));
    port.deliver(s2, echo('three'));
    expect(c1.got).toEqual([{ type: 'event', seq: 1, event: 'echo', args: ['one'] }]);
    expect(c2.got.map((f) => [f.seq, f.args[0]])).toEqual([[1, 'two'], [2, 'three']]);
    port.heartbeat();
    expect(carrier.pings).toBe(1);
    // one session of the carrier ends; the other goes on
    port.deliver(s1, { type: 'close' });
    expect(c1.ended).toEqual({ code: 1000, reason: 'client closed' });
    expect(closes).toContain(s1.sid);
    expect(closes).not.toContain(s2.sid);
    port.deliver(s2, echo('four'));
    expect(c2.got.at(-1)).toMatchObject({ seq: 3, args: ['four'] });
    port.heartbeat();
    expect(carrier.pings).toBe(2);
  });

  it('a probe beside the active connection gets nothing until the upgrade; then writing continues there, nothing replayed or lost', () => {
    const port = node.gateway;
    const active = new TestConn(new TestCarrier());
    const s = (active.session = port.open('polling', meta, active));
    port.deliver(s, echo('1'));
    port.deliver(s, echo('2'));
    active.blocked = true; // e.g. between two polls
    port.deliver(s, echo('3'));
    const probe = new TestConn(new TestCarrier());
    probe.session = s;
    port.probe(s, probe);
    port.deliver(s, echo('4'));
    expect(probe.got).toEqual([]);
    port.upgrade(s, probe);
    expect(active.dropped).toBe(true);
    port.deliver(s, echo('5'));
    const all = [...active.got, ...probe.got];
    expect(all.map((f) => [f.seq, f.args[0]])).toEqual([[1, '1'], [2, '2'], [3, '3'], [4, '4'], [5, '5']]);
    expect(probe.got.map((f) => f.seq)).toEqual([3, 4, 5]);
  });

  it('a probe that goes away leaves the session and its active connection as they were', () => {
    const port = node.gateway;
    const active = new TestConn(new TestCarrier());
    const s = (active.session = port.open('polling', meta, active));
    const probe = new TestConn(new TestCarrier());
    port.probe(s, probe);
    port.detach(s, probe);
    port.deliver(s, echo('still'));
    expect(active.got.map((f) => f.args[0])).toEqual(['still']);
    expect(s.conn).toBe(active);
  });
});

describe('the app API seen from every client kind', () => {
  it('meta says which dialect, and auth may be an object', () => {
    const c = new TestConn(new TestCarrier());
    const s = (c.session = node.gateway.open('websocket', meta, c));
    node.gateway.deliver(s, { type: 'event', event: 'meta', args: [], ack: 1 });
    expect(c.got.at(-1)).toMatchObject({ type: 'reply', ack: 1, args: ['test', { token: 'an object' }] });
  });

  it('binary args an app emits reach a msgpack client as bytes, and a JSON client as base64', async () => {
    const m = await WsClient.open(`${node.ws}/rt/ws?format=msgpack`);
    m.emit('bytes');
    const got = await m.next((f) => f.event === 'bytes');
    expect(new Uint8Array(got.args[0])).toEqual(new Uint8Array([1, 2, 3]));
    expect(got.args[1]).toBe('x');
    const j = await WsClient.open(`${node.ws}/rt/ws`);
    j.emit('bytes');
    expect((await j.next((f) => f.event === 'bytes')).args).toEqual(['AQID', 'x']);
    m.sock.close();
    j.sock.close();
  });
});
