/**
 * Issue 16: msgpack with shared references (msgpackr's structured-clone extensions) at every entry
 * point that decodes msgpack. A few hundred bytes stood for a value with 10^9 paths, which the
 * validator and the encoders expanded: the node froze for over a minute. Each entry point now
 * refuses such bytes as it refuses anything undecodable, at once, and the node keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pack, unpack } from 'msgpackr';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { closeAll, http, startNode, unframeMsgpack, until, WsClient } from './helpers.ts';
import { RawEio, type RawSocket } from './eio-raw.ts';
import { startNatsServer, type NatsServer } from './nats-server.ts';
import { NatsBus } from '../cluster/nats-bus.ts';
import type { Envelope } from '../cluster/bus.ts';
import { nativeEvent, referenceDag, signalrInvocation, socketioEvent } from './msgpack-dag.ts';

/** 10 elements: 645 bytes standing for 10^9 paths (the frame of the issue) */
const DAG = referenceDag(10);
/** refused, and /healthz answered, within this (about a second here; room for a slow CI machine) */
const BOUND_MS = 1500;
const RS = '\x1e';

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ socketio: { parser: 'msgpack' } });
});
afterAll(closeAll);

/** GET /healthz, fired now: its status and how long the answer took */
function healthz(): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return fetch(`${node.url}/healthz`).then(async (r) => {
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - t0 };
  });
}

/**
 * Sends the crafted bytes with `attack`, asks /healthz at once, waits for `refused`: both within
 * BOUND_MS of the send
 */
async function refusedInTime(attack: () => void, refused: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  attack();
  const health = healthz();
  await refused();
  const took = performance.now() - t0;
  const h = await health;
  console.log(`${expect.getState().currentTestName}: refused after ${took.toFixed(1)} ms, /healthz answered in ${h.ms.toFixed(1)} ms`);
  expect(h.status).toBe(200);
  expect(h.ms).toBeLessThan(BOUND_MS);
  expect(took).toBeLessThan(BOUND_MS);
}

// ---- SignalR MessagePack over a raw WebSocket --------------------------------------------------------

class HubSocket {
  readonly got: Buffer[] = [];
  closed: number | null = null;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => this.got.push(d));
    ws.on('close', (c) => (this.closed = c));
    ws.on('error', () => {});
  }

  /** negotiated, open, and handshaken with the MessagePack protocol */
  static async open(): Promise<HubSocket> {
    const n = await http(`${node.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    const s = new HubSocket(new WebSocket(`${node.ws}/hubs/demo?id=${encodeURIComponent(n.body.connectionToken)}`));
    await until(() => (s.ws.readyState === WebSocket.OPEN ? true : undefined));
    s.ws.send(JSON.stringify({ protocol: 'messagepack', version: 1 }) + RS);
    await until(() => (s.got[0]?.toString() === '{}' + RS ? true : undefined));
    return s;
  }

  /** the hub messages after the handshake response */
  records(): unknown[][] {
    return this.got.slice(1).flatMap((b) => unframeMsgpack(b));
  }
}

// ---- Socket.IO with socket.io-msgpack-parser over a raw Engine.IO WebSocket ------------------------------

/** open, and connected to the main namespace (msgpack CONNECT both ways) */
async function sioSocket(): Promise<RawSocket> {
  const s = new RawEio(`${node.url}/socket.io/`).socket('EIO=4&transport=websocket');
  s.autoPong = true;
  const open = (await s.next()) as string;
  expect(open[0]).toBe('0');
  s.send(pack({ type: 0, nsp: '/' }));
  const connected = unpack((await s.next()) as Buffer) as { type: number };
  expect(connected.type).toBe(0);
  return s;
}

describe('the shared-reference frame is refused at every msgpack entry point, at once, and the node goes on', () => {
  it('native WebSocket ?format=msgpack: close 1007 SY_ERR_MALFORMED_FRAME', async () => {
    const good = await WsClient.open(`${node.ws}/rt/ws?format=msgpack`);
    const c = await WsClient.open(`${node.ws}/rt/ws?format=msgpack`);
    await refusedInTime(
      () => c.sock.send(nativeEvent(DAG), { binary: true }),
      async () => expect(await c.waitClosed(10_000)).toEqual({ code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' }),
    );
    expect(c.frames.some((f) => f.type === 'reply')).toBe(false);
    expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    good.sock.send(pack({ type: 'event', event: 'echo', args: ['still here'], ack: 1 }));
    expect((await good.next((f) => f.type === 'reply')).args).toEqual(['still here']);
    good.sock.close();
  });

  it('POST /rt/send with application/msgpack: 400 SY_ERR_MALFORMED_FRAME, and the session ends', async () => {
    const openSession = async () => {
      const r = await fetch(`${node.url}/rt/poll?format=msgpack`);
      const [open] = unpack(Buffer.from(await r.arrayBuffer())) as Array<{ sid: string; token: string }>;
      return { sid: open!.sid, q: `sid=${open!.sid}&token=${encodeURIComponent(open!.token)}` };
    };
    const post = (q: string, body: Uint8Array) =>
      fetch(`${node.url}/rt/send?${q}`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: new Uint8Array(body) });
    const good = await openSession();
    const bad = await openSession();
    let answer: Response | undefined;
    await refusedInTime(
      () => void post(bad.q, Buffer.concat([Buffer.from([0x91]), nativeEvent(DAG)])).then((r) => (answer = r)),
      () => until(() => answer, 10_000),
    );
    expect(answer!.status).toBe(400);
    expect(await answer!.json()).toMatchObject({ error: 'SY_ERR_MALFORMED_FRAME' });
    expect(node.gateway.sessions.has(bad.sid)).toBe(false);
    expect((await post(good.q, pack([{ type: 'event', event: 'echo', args: ['still here'], ack: 1 }]))).status).toBe(204);
    const p = await fetch(`${node.url}/rt/poll?${good.q}&last=0&format=msgpack`);
    expect(unpack(Buffer.from(await p.arrayBuffer()))).toEqual([{ type: 'reply', seq: 1, ack: 1, args: ['still here'] }]);
  });

  it('SignalR MessagePack over WebSocket: a Close message, then the socket closes', async () => {
    const good = await HubSocket.open();
    const s = await HubSocket.open();
    await refusedInTime(
      () => s.ws.send(signalrInvocation(DAG)),
      () => until(() => s.closed ?? undefined, 10_000),
    );
    const records = s.records();
    expect(records.map((r) => r[0])).toEqual([7]); // a Close, and no Completion
    expect(records[0]![1]).toMatch(/SY_ERR_MALFORMED_FRAME|malformed/i);
    good.ws.send(signalrInvocation(Buffer.from([0xa4, ...Buffer.from('okay')])));
    const done = await until(() => good.records().find((r) => r[0] === 3));
    expect(done).toEqual([3, {}, '1', 3, 'okay']);
    good.ws.close();
  });

  it('Socket.IO with the msgpack parser: the transport closes', async () => {
    const good = await sioSocket();
    const s = await sioSocket();
    await refusedInTime(
      () => s.send(socketioEvent(DAG)),
      () => s.close(10_000),
    );
    expect(s.messages.slice(2)).toEqual([]); // no ACK came back
    good.send(pack({ type: 2, nsp: '/', data: ['echo', 'still here'], id: 1 }));
    expect(unpack((await good.next()) as Buffer)).toEqual({ type: 3, nsp: '/', data: ['still here'], id: 1 });
    good.end();
  });
});

describe('the NATS bus drops a message with shared references and delivers the next', () => {
  let server: NatsServer;
  let raw: NatsConnection;
  let bus: NatsBus;
  beforeAll(async () => {
    server = await startNatsServer();
    bus = await NatsBus.connect({ servers: [server.url] });
    raw = await natsConnect({ servers: server.url });
  });
  afterAll(async () => {
    await bus?.close();
    await raw?.close();
    await server?.stop();
  });

  it('published straight to a subscribed subject: dropped at once, the handler never sees it, the next envelope arrives', async () => {
    const got: Envelope[] = [];
    bus.subscribe('sy.test.refs', (e) => got.push(e));
    await bus.flush();
    // an inbound event envelope `{t:'event', sid:'s', node:'n', n:1, event:'echo', args: X}`, X the references
    const str = (s: string) => [0xa0 | s.length, ...Buffer.from(s)];
    const crafted = Buffer.from([
      0x86,
      ...str('t'),
      ...str('event'),
      ...str('sid'),
      ...str('s'),
      ...str('node'),
      ...str('n'),
      ...str('n'),
      0x01,
      ...str('event'),
      ...str('echo'),
      ...str('args'),
      ...DAG,
    ]);
    const valid: Envelope = { t: 'event', sid: 's', node: 'n', n: 2, event: 'echo', args: ['after'] };
    const t0 = performance.now();
    raw.publish('sy.test.refs', crafted);
    raw.publish('sy.test.refs', pack(valid));
    await raw.flush();
    await until(() => (got.length > 0 ? true : undefined), 10_000);
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(got).toEqual([valid]);
  });

  it("an app's Date and BigInt in an envelope still cross (our packer writes them as a timestamp and a 64-bit integer): the envelope is not lost for them", async () => {
    const got: Envelope[] = [];
    bus.subscribe('sy.test.dates', (e) => got.push(e));
    await bus.flush();
    const at = new Date(1_700_000_000_123);
    const e: Envelope = { t: 'emit', sid: 's', event: 'time', args: [at, { at }], n: 1, o: 1 };
    // a BigInt past 2^53 arrives as one: the gateway refuses that entry as it does in one process
    const big: Envelope = { t: 'emit', sid: 's', event: 'big', args: [2n ** 60n], n: 2, o: 2 };
    bus.publish('sy.test.dates', e);
    bus.publish('sy.test.dates', big);
    await bus.flush();
    await until(() => (got.length > 1 ? true : undefined));
    expect(got).toEqual([e, big]);
  });
});
