/**
 * What one SignalR connection can make the node hold for it is bounded (issue 16, item 2): refused
 * client-to-server streams, the length of the ids it chooses, invocations waiting for their
 * Completion (count and bytes), and what a long-poll keeps for the next poll. Past a bound the
 * connection gets a Close with SY_ERR_TOO_MANY_PENDING (no reconnect) and its session ends; the
 * node's heap stays put and everyone else is served. Raw WebSockets and HTTP (what a hostile client
 * sends), and the real @microsoft/signalr client (what a well-behaved one does).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { pack } from 'msgpackr';
import * as signalR from '@microsoft/signalr';
import { closeAll, http, startNode, unframeMsgpack, until } from './helpers.ts';
import type { App } from '../cluster/app.ts';
import { MAX_ID_CHARS, MAX_PENDING_BYTES, MAX_PENDING_INVOCATIONS, MAX_REFUSED_STREAMS } from '../transports/dialects/signalr/dialect.ts';

const RS = '\x1e';
const CLOSE = { type: 7, error: 'Server closed the connection: SY_ERR_TOO_MANY_PENDING' };
/** replies the app keeps without answering (the `hang` method) */
const kept: Array<(...args: unknown[]) => void> = [];
const closed: Array<{ code: number; reason: string }> = [];

const app: App = {
  event(session, event, args, reply) {
    switch (event) {
      case 'echo':
        return reply?.(...args);
      case 'hang':
        // answered later, or never: the invocation stays pending
        if (reply) kept.push(reply);
        return;
      case 'flood':
        for (let i = 0; i < 40; i++) session.emit('chunk', i, 'x'.repeat(100_000));
        return;
    }
  },
  close(_session, info) {
    closed.push(info);
  },
};

let base: string;
let wsBase: string;
let node: Awaited<ReturnType<typeof startNode>>;

beforeAll(async () => {
  node = await startNode({ app, pollTimeoutMs: 400 });
  base = `${node.url}/hubs/demo`;
  wsBase = `${node.ws}/hubs/demo`;
});
afterAll(closeAll);

/** A raw SignalR WebSocket, negotiated and handshaken (JSON or MessagePack) */
class Conn {
  readonly got: Array<string | Buffer> = [];
  closed = false;
  readonly ws: WebSocket;
  private constructor(
    url: string,
    readonly binary: boolean,
  ) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (d: Buffer, isBinary) => this.got.push(isBinary ? d : d.toString()));
    this.ws.on('close', () => (this.closed = true));
    this.ws.on('error', () => {});
  }

  static async open(protocol: 'json' | 'messagepack' = 'json'): Promise<Conn> {
    const n = await http(`${base}/negotiate?negotiateVersion=1`, { method: 'POST' });
    const c = new Conn(`${wsBase}?id=${encodeURIComponent(n.body.connectionToken)}`, protocol === 'messagepack');
    await new Promise((resolve, reject) => c.ws.once('open', resolve).once('error', reject));
    c.ws.send(JSON.stringify({ protocol, version: 1 }) + RS);
    await until(() => (c.got.length > 0 ? true : undefined));
    return c;
  }

  send(m: Record<string, unknown>): void {
    if (!this.binary) return this.ws.send(JSON.stringify(m) + RS);
    const body = pack([m.type, {}, m.invocationId ?? null, m.target, m.arguments, m.streamIds ?? []]);
    const len: number[] = [];
    let n = body.length;
    do {
      len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>>= 7;
    } while (n > 0);
    this.ws.send(Buffer.concat([Buffer.from(len), body]));
  }

  /** every hub message so far (after the handshake response), MessagePack ones as JSON-shaped objects */
  records(): any[] {
    return this.got.slice(1).flatMap((m) =>
      typeof m === 'string'
        ? m
            .split(RS)
            .filter(Boolean)
            .map((r) => JSON.parse(r))
        : unframe(m),
    );
  }

  async record(pred: (r: any) => boolean, timeout = 5000): Promise<any> {
    return until(() => this.records().find(pred), timeout);
  }

  async closedWith(): Promise<any> {
    const close = await this.record((r) => r.type === 7);
    await until(() => (this.closed ? true : undefined));
    return close;
  }
}

function unframe(b: Buffer): any[] {
  return unframeMsgpack(b).map((a: any[]) => {
    if (a[0] === 3) return { type: 3, invocationId: a[2], ...(a[3] === 1 ? { error: a[4] } : a[3] === 3 ? { result: a[4] } : {}) };
    if (a[0] === 7) return a[1] === null ? { type: 7 } : { type: 7, error: a[1], ...(a[2] ? { allowReconnect: true } : {}) };
    return { type: a[0] };
  });
}

/** Long-polls until the connection's polls get 204 (it ended), or `enough` says so: the records of every answer */
async function pollToEnd(id: string, enough: (records: any[]) => boolean = () => false): Promise<any[]> {
  let got = '';
  const records = () =>
    got
      .split(RS)
      .filter(Boolean)
      .map((x) => JSON.parse(x));
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${base}?id=${id}`);
    if (r.status !== 200) return records();
    got += await r.text();
    if (enough(records())) return records();
  }
  throw new Error('the connection did not end');
}

/** `n` distinct stream ids of `chars` characters, unique to `tag` */
const streamIds = (tag: string, n: number, chars: number) => Array.from({ length: n }, (_, i) => `${tag}-${i}-`.padEnd(chars, 'x'));

/** a full garbage collection, so that heap readings compare what is still held */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('refused client-to-server streams', () => {
  for (const protocol of ['json', 'messagepack'] as const) {
    it(`${protocol}: answered until the connection holds ${MAX_REFUSED_STREAMS} of them, then a Close with SY_ERR_TOO_MANY_PENDING, no reconnect`, async () => {
      const c = await Conn.open(protocol);
      const perMessage = 16;
      const fit = MAX_REFUSED_STREAMS / perMessage;
      for (let i = 0; i < fit; i++)
        c.send({ type: 1, invocationId: `u${i}`, target: 'Upload', arguments: [], streamIds: streamIds(`${protocol}${i}`, perMessage, 100) });
      // each is answered (an error Completion: no streams here) and the connection stays
      for (let i = 0; i < fit; i++) expect((await c.record((r) => r.type === 3 && r.invocationId === `u${i}`)).error).toMatch(/Streaming is not supported/);
      c.send({ type: 1, invocationId: 'echo', target: 'Echo', arguments: ['still here'] });
      expect(await c.record((r) => r.type === 3 && r.invocationId === 'echo')).toEqual({ type: 3, invocationId: 'echo', result: 'still here' });
      // one more stream than the bound
      c.send({ type: 1, invocationId: 'over', target: 'Upload', arguments: [], streamIds: [`${protocol}-one-more`] });
      expect(await c.closedWith()).toEqual(CLOSE);
      expect(c.records().some((r) => r.invocationId === 'over')).toBe(false);
    });
  }

  it('a completed stream no longer counts: a client that completes its streams never reaches the bound', async () => {
    const c = await Conn.open();
    for (let i = 0; i < MAX_REFUSED_STREAMS * 2; i++) {
      c.send({ type: 1, invocationId: `u${i}`, target: 'Upload', arguments: [], streamIds: [`s${i}`] });
      c.send({ type: 3, invocationId: `s${i}` });
    }
    c.send({ type: 1, invocationId: 'echo', target: 'Echo', arguments: [1] });
    expect(await c.record((r) => r.type === 3 && r.invocationId === 'echo')).toEqual({ type: 3, invocationId: 'echo', result: 1 });
    expect(c.records().filter((r) => r.type === 3 && /^u\d+$/.test(r.invocationId))).toHaveLength(MAX_REFUSED_STREAMS * 2);
    expect(c.closed).toBe(false);
    c.ws.close();
  });
});

describe('ids', () => {
  it(`a stream id or an invocation id longer than ${MAX_ID_CHARS} characters closes the connection`, async () => {
    const a = await Conn.open();
    a.send({ type: 1, invocationId: 'x'.repeat(MAX_ID_CHARS), target: 'Echo', arguments: [1] });
    expect((await a.record((r) => r.type === 3)).result).toBe(1);
    a.send({ type: 1, target: 'Upload', arguments: [], streamIds: ['s'.repeat(MAX_ID_CHARS + 1)] });
    expect(await a.closedWith()).toEqual(CLOSE);
    const b = await Conn.open();
    b.send({ type: 1, invocationId: 'x'.repeat(MAX_ID_CHARS + 1), target: 'Echo', arguments: [1] });
    expect(await b.closedWith()).toEqual(CLOSE);
    expect(b.records().some((r) => r.type === 3)).toBe(false);
  });
});

describe("the node's heap", () => {
  it('2,000 invocations with 16 distinct 3,000-character stream ids each, from several connections: the heap barely grows, the connections close, another client is served', async () => {
    // warm up what a connection allocates once (code, caches), then read the heap
    const warm = await Conn.open();
    warm.send({ type: 1, invocationId: '1', target: 'Echo', arguments: [] });
    await warm.record((r) => r.type === 3);
    warm.ws.close();
    await until(() => (warm.closed ? true : undefined));
    const before = heapUsed();
    const connections = 8;
    const perConnection = 250;
    const conns = await Promise.all(Array.from({ length: connections }, () => Conn.open()));
    conns.forEach((c, k) => {
      // as in the report: no invocation id (never answered), 16 distinct ~3,000-character ids
      for (let i = 0; i < perConnection; i++) c.send({ type: 1, target: 'Echo', arguments: [], streamIds: streamIds(`c${k}m${i}`, 16, 3000) });
      // the last one is answered if the connection is still open after all the others
      c.send({ type: 1, invocationId: 'last', target: 'Echo', arguments: ['done'] });
    });
    // each connection is either closed or got through all of them
    await until(() => (conns.every((c) => c.closed || c.records().some((r) => r.invocationId === 'last')) ? true : undefined), 20_000);
    const grown = heapUsed() - before;
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    for (const c of conns) expect(await c.closedWith()).toEqual(CLOSE);
    // the node serves everyone else
    const other = await Conn.open();
    other.send({ type: 1, invocationId: '1', target: 'Echo', arguments: ['hello'] });
    expect(await other.record((r) => r.type === 3)).toEqual({ type: 3, invocationId: '1', result: 'hello' });
    other.ws.close();
  }, 60_000);
});

describe('invocations waiting for their Completion', () => {
  it(`at most ${MAX_PENDING_INVOCATIONS}: one more closes the connection; answered ones no longer count`, async () => {
    kept.length = 0;
    const c = await Conn.open();
    for (let i = 0; i < MAX_PENDING_INVOCATIONS; i++) c.send({ type: 1, invocationId: String(i), target: 'Hang', arguments: [] });
    await until(() => (kept.length === MAX_PENDING_INVOCATIONS ? true : undefined));
    // the app answers one: room for one more
    kept.shift()!('answered');
    expect(await c.record((r) => r.type === 3 && r.invocationId === '0')).toEqual({ type: 3, invocationId: '0', result: 'answered' });
    c.send({ type: 1, invocationId: 'fits', target: 'Hang', arguments: [] });
    await until(() => (kept.length === MAX_PENDING_INVOCATIONS ? true : undefined));
    expect(c.closed).toBe(false);
    c.send({ type: 1, invocationId: 'over', target: 'Hang', arguments: [] });
    expect(await c.closedWith()).toEqual(CLOSE);
    expect(kept.length).toBe(MAX_PENDING_INVOCATIONS);
    kept.length = 0;
  });

  it(`at most ${MAX_PENDING_BYTES} bytes of them`, async () => {
    kept.length = 0;
    const c = await Conn.open();
    const arg = 'y'.repeat(32 * 1024);
    const fit = Math.floor(MAX_PENDING_BYTES / (arg.length + 100));
    for (let i = 0; i < fit; i++) c.send({ type: 1, invocationId: String(i), target: 'Hang', arguments: [arg] });
    await until(() => (kept.length === fit ? true : undefined));
    expect(c.closed).toBe(false);
    for (let i = fit; i < fit + 3; i++) c.send({ type: 1, invocationId: String(i), target: 'Hang', arguments: [arg] });
    expect(await c.closedWith()).toEqual(CLOSE);
    expect(kept.length).toBeLessThan(fit + 3);
    kept.length = 0;
  });

  it('long-polling: the same bound, and the Close comes with the next poll', async () => {
    kept.length = 0;
    const n = await http(`${base}/negotiate?negotiateVersion=1`, { method: 'POST' });
    const id = encodeURIComponent(n.body.connectionToken);
    expect((await fetch(`${base}?id=${id}`)).status).toBe(200);
    let body = JSON.stringify({ protocol: 'json', version: 1 }) + RS;
    for (let i = 0; i <= MAX_PENDING_INVOCATIONS; i++) body += JSON.stringify({ type: 1, invocationId: String(i), target: 'Hang', arguments: [] }) + RS;
    expect((await fetch(`${base}?id=${id}`, { method: 'POST', body })).status).toBe(200);
    const records = await pollToEnd(id, () => kept.length > MAX_PENDING_INVOCATIONS);
    expect(records).toContainEqual(CLOSE);
    expect(kept.length).toBe(MAX_PENDING_INVOCATIONS);
    kept.length = 0;
  });
});

describe('long-polling: what waits for the next poll', () => {
  it("is a poll's worth; the rest stays in the outbox, whose bound ends a session that falls behind (as past a socket's buffer)", async () => {
    const n = await http(`${base}/negotiate?negotiateVersion=1`, { method: 'POST' });
    const id = encodeURIComponent(n.body.connectionToken);
    expect((await fetch(`${base}?id=${id}`)).status).toBe(200);
    await fetch(`${base}?id=${id}`, { method: 'POST', body: JSON.stringify({ protocol: 'json', version: 1 }) + RS });
    expect(await (await fetch(`${base}?id=${id}`)).text()).toBe('{}' + RS);
    // a poll held (the node has it), then 4 MB emitted at once (the outbox holds 1 MiB)
    const conn = (node.gateway as any).dialects.find((d: { name: string }) => d.name === 'signalr').endpoint.http.get(n.body.connectionId);
    const held = fetch(`${base}?id=${id}`).then((r) => r.text());
    await vi.waitFor(() => expect(conn.held).not.toBeNull());
    await fetch(`${base}?id=${id}`, { method: 'POST', body: JSON.stringify({ type: 1, target: 'Flood', arguments: [] }) + RS });
    const first = (await held)
      .split(RS)
      .filter(Boolean)
      .map((x) => JSON.parse(x));
    // (all 40 chunks: nothing was bounded)
    const records = [...first, ...(await pollToEnd(id, (r) => first.length + r.filter((x) => x.type === 1).length >= 40))];
    const close = records.find((r) => r.type === 7);
    expect(close).toEqual({ type: 7, error: 'Server closed the connection: SY_ERR_SLOW_CONSUMER', allowReconnect: true });
    expect(records.filter((r) => r.type === 1).length).toBeLessThan(40);
  });
});

describe('the real client', () => {
  it('@microsoft/signalr: 600 stream uploads (refused, each stream completed) and 500 invocations at once leave the connection open', async () => {
    const c = new signalR.HubConnectionBuilder()
      .withUrl(base, { transport: signalR.HttpTransportType.WebSockets })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await c.start();
    try {
      for (let i = 0; i < MAX_REFUSED_STREAMS + 344; i++) {
        const s = new signalR.Subject<number>();
        // refused; then the client sends its stream anyway, and completes it
        await expect(c.invoke('Upload', s)).rejects.toThrow(/Streaming is not supported/);
        s.next(i);
        s.complete();
      }
      const all = await Promise.all(Array.from({ length: 500 }, (_, i) => c.invoke('Echo', i)));
      expect(all).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(c.state).toBe(signalR.HubConnectionState.Connected);
    } finally {
      await c.stop();
    }
  }, 60_000);
});
