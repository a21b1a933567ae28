/**
 * A dropped receiver resumes: the real sockjs-client 1.6 in Node, through a small TCP proxy of
 * this file's own (real sockets on port 0) that cuts the connection carrying the client's receiving
 * request, and holds new connections for a while (a network outage). Meanwhile the app emits
 * numbered messages to the session; every message must arrive exactly once, in order, once the
 * client's receiver is back. Over a WebSocket sockjs-client ends the session on a drop instead.
 * @see ../docs/sockjs.md ("A dropped receiver")
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect as tcp, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import SockJS from 'sockjs-client';
import { closeAll, startNode, until, WsClient } from './helpers.ts';

/** One client connection through the proxy, and the path of the last request it carried */
interface Pair {
  client: Socket;
  up: Socket | null;
  path: string;
  /** what the client sent that is not forwarded yet (held) */
  pending: Buffer[];
}

/**
 * A TCP proxy: forwards each connection to `target`; can cut connections, and hold what clients
 * send (on new connections and on kept-alive ones alike) until released
 */
class CuttingProxy {
  private server!: Server;
  port = 0;
  readonly pairs = new Set<Pair>();
  private held = false;
  /** request paths seen, in order */
  readonly requests: string[] = [];

  constructor(private readonly target: number) {}

  async start(): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private accept(client: Socket): void {
    const pair: Pair = { client, up: null, path: '', pending: [] };
    this.pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      this.pairs.delete(pair);
      pair.up?.destroy();
    });
    client.on('data', (d) => {
      for (const m of d.toString('latin1').matchAll(/(?:^|\r\n)(?:GET|POST|OPTIONS) (\S+) HTTP\/1\.1\r\n/g)) {
        pair.path = m[1]!;
        this.requests.push(m[1]!);
      }
      if (pair.up === null || this.held) pair.pending.push(d);
      else pair.up.write(d);
    });
    if (!this.held) this.link(pair);
  }

  private link(pair: Pair): void {
    if (pair.client.destroyed) return;
    if (pair.up === null) {
      const up = tcp(this.target, '127.0.0.1');
      pair.up = up;
      up.on('error', () => {});
      up.on('data', (d) => pair.client.write(d));
      up.on('close', () => pair.client.destroy());
    }
    for (const d of pair.pending.splice(0)) pair.up.write(d);
  }

  /** From now on what clients send goes nowhere (is kept) until `release` */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const p of this.pairs) this.link(p);
  }

  /** connections whose last request's path matches, still linked to the gateway */
  linked(match: RegExp): Pair[] {
    return [...this.pairs].filter((p) => p.up !== null && match.test(p.path));
  }

  /** Cuts (destroys both sides of) the connections whose last request's path matches */
  cut(match: RegExp): number {
    const hit = this.linked(match);
    for (const p of hit) {
      p.client.destroy();
      p.up?.destroy();
    }
    return hit.length;
  }

  close(): void {
    for (const p of this.pairs) {
      p.client.destroy();
      p.up?.destroy();
    }
    this.server.close();
  }
}

const proxies: CuttingProxy[] = [];
const clients: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of proxies.splice(0)) p.close();
  await closeAll();
});

/** the receiving request of each transport, as a path */
const RECEIVER: Record<string, RegExp> = {
  'xhr-streaming': /\/xhr_streaming$/,
  'xhr-polling': /\/xhr$/,
  eventsource: /\/eventsource$/,
  websocket: /\/websocket$/,
};

async function setup(transport: string) {
  const node = await startNode();
  const proxy = await new CuttingProxy(node.port).start();
  proxies.push(proxy);
  const s = new SockJS(`http://127.0.0.1:${proxy.port}/sockjs`, null, { transports: [transport] });
  clients.push(s);
  const frames: Array<Record<string, any>> = [];
  let closed: { code: number; reason: string } | null = null;
  s.onmessage = (m: { data: string }) => void frames.push(JSON.parse(m.data));
  await new Promise<void>((resolve, reject) => {
    s.onopen = () => resolve();
    s.onclose = (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`));
  });
  s.onclose = (e: { code: number; reason: string }) => void (closed = { code: e.code, reason: e.reason });
  s.send(JSON.stringify({ type: 'event', event: 'join', args: ['numbers'], ack: 1 }));
  await until(() => frames.find((f) => f.type === 'reply' && f.ack === 1));
  // the app emits to the session: a native client says numbered things in its room
  const native = await WsClient.open(`${node.ws}/rt/ws`);
  await native.request('join', 'numbers');
  const session = [...node.gateway.sessions.values()].find((x) => x.meta.dialect === 'sockjs')!;
  const numbers = () => frames.filter((f) => f.event === 'said').map((f) => parseInt(f.args[1], 10));
  const say = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) await native.request('say', 'numbers', String(i));
  };
  const got = (n: number) => until(() => (numbers().length >= n ? true : undefined), 10_000);
  return { node, proxy, s, native, session, numbers, say, got, closed: () => closed };
}

describe('a receiver cut from outside (sockjs-client 1.6 in Node)', () => {
  it('eventsource: the client opens its receiver again and gets everything, once, in order', async () => {
    const t = await setup('eventsource');
    const receiver = RECEIVER.eventsource!;
    await t.say(1, 5);
    await t.got(5);
    // the network goes: the receiving connection is cut, new connections wait
    await until(() => (t.proxy.linked(receiver).length > 0 ? true : undefined));
    const receives = t.proxy.requests.filter((p) => receiver.test(p)).length;
    t.proxy.hold();
    expect(t.proxy.cut(receiver)).toBe(1);
    // the node sees the receiver gone; what the app emits now waits in the session
    await until(() => (t.session.conn === null ? true : undefined));
    await t.say(6, 10);
    expect(t.session.outbox.last - t.session.sent).toBe(5);
    // sockjs-client took the cut as a network error and opens its receiver again; the network comes back
    await until(() => (t.proxy.requests.filter((p) => receiver.test(p)).length > receives ? true : undefined));
    t.proxy.release();
    await t.got(10);
    await t.say(11, 15);
    await t.got(15);
    expect(t.numbers()).toEqual(range(1, 15));
    expect(t.closed()).toBe(null);
  });

  // sockjs-client's XHR receiver opens again only after a receive that ended with status 200 (its
  // 'network' close); a failed request is 'permanent'
  it('xhr-polling: a cut poll fails, and sockjs-client ends the session (1006 "permanent")', async () => {
    const t = await setup('xhr-polling');
    await t.say(1, 3);
    await t.got(3);
    await until(() => (t.proxy.linked(RECEIVER['xhr-polling']!).length > 0 && t.session.conn !== null ? true : undefined));
    expect(t.proxy.cut(RECEIVER['xhr-polling']!)).toBeGreaterThan(0);
    await until(() => t.closed() ?? undefined);
    expect(t.closed()).toEqual({ code: 1006, reason: 'permanent' });
  });

  // Node's http client reports a response cut after its head neither as an end nor as an error
  // (sockjs-client listens for no 'error' on the response): the receiver waits for ever, and the
  // client learns of it only when a send finds the session gone (after resumeWindowMs)
  it('xhr-streaming: a cut stream goes unnoticed by sockjs-client in Node; the session waits for it', async () => {
    const t = await setup('xhr-streaming');
    const receiver = RECEIVER['xhr-streaming']!;
    await t.say(1, 3);
    await t.got(3);
    await until(() => (t.proxy.linked(receiver).length > 0 ? true : undefined));
    const receives = t.proxy.requests.filter((p) => receiver.test(p)).length;
    expect(t.proxy.cut(receiver)).toBe(1);
    await until(() => (t.session.conn === null ? true : undefined));
    await t.say(4, 5);
    // a send still reaches the session (the echo's reply waits in it with 4 and 5) ...
    t.s.send(JSON.stringify({ type: 'event', event: 'echo', args: ['still there'], ack: 2 }));
    await until(() => (t.session.outbox.last - t.session.sent === 3 ? true : undefined));
    // ... but no receiver was asked for again, and nothing after the cut arrived
    expect(t.proxy.requests.filter((p) => receiver.test(p)).length).toBe(receives);
    expect(t.numbers()).toEqual(range(1, 3));
    expect(t.closed()).toBe(null);
  });

  // the session is the connection: it ends with it, on both sides
  it('websocket: sockjs-client ends the session on a drop (1006), and so does the node', async () => {
    const t = await setup('websocket');
    await t.say(1, 3);
    await t.got(3);
    const sid = t.session.sid;
    expect(t.proxy.cut(RECEIVER.websocket!)).toBe(1);
    await until(() => t.closed() ?? undefined);
    expect(t.closed()!.code).toBe(1006);
    await until(() => (t.node.gateway.sessions.has(sid) ? undefined : true));
  });
});

describe('a receiver away (the last one ended, the next one is held up): nothing lost, nothing twice', () => {
  // xhr-polling: each poll ends, and the next is delayed (the network holds its connection)
  it('xhr-polling: what the app emits between two polls comes with the next one', async () => {
    const t = await setup('xhr-polling');
    const receiver = RECEIVER['xhr-polling']!;
    await t.say(1, 5);
    await t.got(5);
    for (let round = 0; round < 3; round++) {
      const n = 5 + round * 5;
      // the network holds new connections; the held poll ends (a message answers it) and the
      // client's next poll is held up
      await until(() => (t.proxy.linked(receiver).length > 0 && t.session.conn !== null ? true : undefined));
      const receives = t.proxy.requests.filter((p) => receiver.test(p)).length;
      t.proxy.hold();
      await t.say(n + 1, n + 1);
      await until(() => (t.proxy.requests.filter((p) => receiver.test(p)).length > receives ? true : undefined));
      expect(t.session.conn).toBe(null);
      await t.say(n + 2, n + 5);
      expect(t.session.outbox.last - t.session.sent).toBe(4);
      t.proxy.release();
      await t.got(n + 5);
    }
    expect(t.numbers()).toEqual(range(1, 20));
    expect(t.closed()).toBe(null);
  });

  // xhr-streaming: a stream ends cleanly after 128 KiB (the client opens a new one); the new one is held up
  it('xhr-streaming: what the app emits while the next stream is held up comes with it', async () => {
    const t = await setup('xhr-streaming');
    const receiver = RECEIVER['xhr-streaming']!;
    await t.say(1, 5);
    await t.got(5);
    await until(() => (t.proxy.linked(receiver).length > 0 ? true : undefined));
    const receives = t.proxy.requests.filter((p) => receiver.test(p)).length;
    t.proxy.hold();
    // big messages: the stream passes 128 KiB and ends
    const big = 'x'.repeat(40_000);
    for (let i = 6; i <= 9; i++) await t.native.request('say', 'numbers', `${i} ${big}`);
    await until(() => (t.proxy.requests.filter((p) => receiver.test(p)).length > receives ? true : undefined));
    await t.got(9);
    expect(t.session.conn).toBe(null);
    await t.say(10, 14);
    expect(t.session.outbox.last - t.session.sent).toBe(5);
    t.proxy.release();
    await t.got(14);
    await t.say(15, 17);
    await t.got(17);
    expect(t.numbers()).toEqual(range(1, 17));
    expect(t.closed()).toBe(null);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
