/**
 * Socket.IO clients through HAProxy round-robin, no stickiness, in front of two gateway nodes on
 * NATS: an Engine.IO session's polls, POSTs and upgrade land on either node (the node that does
 * not hold the carrier tunnels them to the one that does), and a client whose node drains comes
 * back through the other node and recovers everything.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { startHaproxy } from './haproxy.ts';
import { http, until, WsClient } from './helpers.ts';
import { RawEio } from './eio-raw.ts';

let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--drain-window-ms', '300', '--socketio-namespaces', '/,/custom'] });
  ({ proc: haproxy, lb } = await startHaproxy(cluster));
});

afterAll(async () => {
  for (const s of sockets) s.disconnect();
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

/** Engine.IO requests and sockets (or only sockets) tunneled between the nodes so far */
async function tunneled(what: 'in' | 'sockets' = 'in'): Promise<number> {
  let n = 0;
  for (const g of cluster.gateways) {
    const h = await http(`${g.url}/healthz`).catch(() => null);
    if (h !== null) n += h.body.socketio.tunneled[what];
  }
  return n;
}

/** Ends a native client's session (a drain later counts only sessions whose clients come back) */
async function bye(c: WsClient): Promise<void> {
  c.send({ type: 'close' });
  await until(() => c.closed ?? undefined);
}

/** A raw Engine.IO WebSocket to `node` that sends the Socket.IO packet `connect` once the handshake came; every message it gets */
function rawSocketIo(node: Proc, connect: string): { w: WebSocket; got: string[] } {
  const w = new WebSocket(`${node.ws}/socket.io/?EIO=4&transport=websocket`);
  const got: string[] = [];
  w.on('message', (m) => {
    got.push(String(m));
    if (got.length === 1) w.send(connect);
  });
  return { w, got };
}

async function connect(opts: Parameters<typeof io>[1]): Promise<Socket> {
  const s = io(`http://${lb}`, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0, ...opts });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  return s;
}

describe('socket.io-client behind HAProxy round-robin, no stickiness', () => {
  it('a polling-only client: every request may land on either node, nothing is lost or reordered', async () => {
    const before = await tunneled();
    const s = await connect({ transports: ['polling'] });
    const echoed: unknown[] = [];
    s.on('echo', (v: unknown) => echoed.push(v));
    for (let i = 0; i < 20; i++) {
      expect(await s.timeout(5000).emitWithAck('echo', i)).toBe(i);
      s.emit('echo', `e${i}`);
    }
    await until(() => echoed.length === 20 || undefined, 10_000);
    expect(echoed).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`));
    // half of the polls and POSTs went to the node that does not hold the Engine.IO session
    expect((await tunneled()) - before).toBeGreaterThan(10);
  });

  it('an upgrading client upgrades through whichever node its WebSocket lands on', async () => {
    const before = await tunneled('sockets');
    // clients until one's upgrade lands on the node without its carrier (round-robin: soon)
    for (let i = 0; i < 16 && (await tunneled('sockets')) === before; i++) {
      const s = await connect({});
      await until(() => s.io.engine.transport.name === 'websocket' || undefined, 10_000);
      expect(await s.timeout(5000).emitWithAck('echo', s.id)).toBe(s.id);
      s.disconnect();
    }
    expect(await tunneled('sockets')).toBeGreaterThan(before);
    // that client, upgraded through the other node, talks through the tunnel
    const last = sockets.at(-1)!;
    last.connect();
    await until(() => (last.connected && last.io.engine.transport.name === 'websocket') || undefined, 10_000);
  });

  it('polling-only, websocket-only and native clients share a room across nodes', async () => {
    const polling = await connect({ transports: ['polling'] });
    const ws = await connect({ transports: ['websocket'] });
    const native = await WsClient.open(`ws://${lb}/rt/ws`);
    await polling.emitWithAck('join', 'x');
    await ws.emitWithAck('join', 'x');
    await native.request('join', 'x');
    const heard: Record<string, string[]> = { polling: [], ws: [] };
    polling.on('said', (_r: string, text: string) => heard.polling!.push(text));
    ws.on('said', (_r: string, text: string) => heard.ws!.push(text));
    await native.request('say', 'x', 'one');
    await polling.emitWithAck('say', 'x', 'two');
    await ws.emitWithAck('say', 'x', 'three');
    await until(() => (heard.polling!.length === 3 && heard.ws!.length === 3) || undefined, 10_000);
    expect(heard).toEqual({ polling: ['one', 'two', 'three'], ws: ['one', 'two', 'three'] });
    await native.next((f) => f.event === 'said' && f.args[1] === 'three');
    await bye(native);
  });

  it('a forged sid naming no node (or smuggling bytes into a bus subject) is answered at once: unknown', async () => {
    const g = cluster.gateways[0]!;
    for (const sid of ['aaaaaaaaaaaaaaaaaaaa.g2\r\nPUB sy.node.g1 5', 'x.nosuchnode', 'aaaaaaaaaaaaaaaaaaaa.nosuchnode']) {
      const t = Date.now();
      const a = await http(`${g.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
      expect(a.status).toBe(400);
      expect(a.body).toEqual({ code: 1, message: 'Session ID unknown' });
      // a well-formed sid naming a node that does not exist waits for that node's silence
      // (--relay-timeout-ms 2000), never for a whole poll interval
      expect(Date.now() - t).toBeLessThan(sid.startsWith('aaaaaaaaaaaaaaaaaaaa.nosuchnode') ? 3000 : 1000);
    }
    // and the node still tunnels for real clients
    const s = await connect({ transports: ['polling'] });
    expect(await s.timeout(5000).emitWithAck('echo', 'ok')).toBe('ok');
    s.disconnect();
  });

  it('a WebSocket tunneled to the other node carries a burst larger than one bus message, in order', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const raw = new RawEio(`${a.url}/socket.io/`);
    const { sid } = await raw.handshake();
    await raw.send(sid, '40');
    await raw.poll(sid);
    // the upgrade lands on b: b tunnels the socket to a
    const s = new RawEio(`${b.url}/socket.io/`).socket(`EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`);
    try {
      await s.opened();
      s.autoPong = true;
      s.send('2probe');
      expect(await s.next()).toBe('3probe');
      s.send('5');
      const big = 'x'.repeat(60_000);
      for (let i = 0; i < 20; i++) s.send(`42["echo",${i},"${big}"]`);
      const echoes = (await s.take(20, 10_000)) as string[];
      expect(echoes.map((e) => JSON.parse(e.slice(2))[1])).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(echoes.every((e) => e.includes(big))).toBe(true);
      // the namespace ends (a drain later counts only sessions whose clients come back)
      s.send('41');
    } finally {
      s.end();
    }
  });

  it('a pid resumed through another node in another namespace attaches nothing: that namespace gets a new session (recovered false), as on the holding node', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const first = rawSocketIo(a, '40');
    await until(() => first.got.find((m) => m.startsWith('40{')), 5000);
    const { sid, pid } = JSON.parse(first.got.find((m) => m.startsWith('40{'))!.slice(2)) as { sid: string; pid: string };
    expect(pid).toBeTruthy();
    // the same pid, through the other node, for `/custom`
    const other = rawSocketIo(b, `40/custom,${JSON.stringify({ pid })}`);
    const answer = await until(() => other.got.find((m) => m.startsWith('4') && m.includes('/custom')), 5000);
    expect(answer).toMatch(/^40\/custom,\{"sid":"[^"]+","pid":"[^"]+"\}$/);
    const fresh = JSON.parse(answer.slice('40/custom,'.length)) as { sid: string; pid: string };
    expect(fresh.sid).not.toBe(sid);
    expect(fresh.pid).not.toBe(pid);
    // and for `/`, through the other node, it is that session (recovered: the same pid back)
    const same = rawSocketIo(b, `40${JSON.stringify({ pid })}`);
    const back = await until(() => same.got.find((m) => m.startsWith('40{')), 5000);
    expect(JSON.parse(back.slice(2))).toEqual({ sid, pid });
    // the two sessions end (a later drain counts only sessions whose clients come back)
    const sessions = async () => (await http(`${a.url}/healthz`)).body.sessions + (await http(`${b.url}/healthz`)).body.sessions;
    const before = await sessions();
    other.w.send('41/custom,');
    same.w.send('41');
    await vi.waitFor(async () => expect(await sessions()).toBeLessThanOrEqual(before - 2), { timeout: 5000, interval: 50 });
    for (const c of [first, other, same]) c.w.close();
  });

  it('a resume relayed to the holding node does not write again the acks the holder had written (as a resume on the holder does not)', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const first = rawSocketIo(a, '40');
    const hello = await until(() => first.got.find((m) => m.startsWith('40{')), 5000);
    const { pid } = JSON.parse(hello.slice(2)) as { sid: string; pid: string };
    // join, say (a broadcast event: it carries an offset), then an echo whose ack comes after it
    first.w.send('420["join","acks"]');
    await until(() => first.got.find((m) => m === '430[true]'), 5000);
    first.w.send('421["say","acks","hi"]');
    const said = await until(() => first.got.find((m) => m.startsWith('42["said"')), 5000);
    const offset = (JSON.parse(said.slice(2)) as string[]).at(-1)!;
    await until(() => first.got.find((m) => m === '431[true]'), 5000);
    first.w.send('422["echo","z"]');
    await until(() => first.got.find((m) => m === '432["z"]'), 5000);
    first.w.terminate();
    // back through the other node, from the broadcast's offset: the ack written after it is not written again
    const back = rawSocketIo(b, `40${JSON.stringify({ pid, offset })}`);
    const answer = await until(() => back.got.find((m) => m.startsWith('40{')), 5000);
    expect(JSON.parse(answer.slice(2))).toMatchObject({ pid });
    back.w.send('423["echo","after"]');
    await until(() => back.got.find((m) => m === '433["after"]'), 5000);
    expect(back.got.filter((m) => m.startsWith('43'))).toEqual(['433["after"]']);
    back.w.send('41');
    back.w.close();
  });

  it('a client cut off comes back through the other node: its session stays where it is (relayed) and it recovers everything', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const s = io(a.url, { transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0 });
    sockets.push(s);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    await s.emitWithAck('join', 'k');
    const heard: number[] = [];
    s.on('said', (_r: string, text: string) => heard.push(Number(text)));
    const sender = await WsClient.open(`${b.ws}/rt/ws`);
    await sender.request('join', 'k');
    let sent = 0;
    const say = async (n: number) => {
      for (let i = 0; i < n; i++) await sender.request('say', 'k', String(++sent));
    };
    await say(5);
    await until(() => heard.length === 5 || undefined, 10_000);
    const firstId = s.id;
    // the balancer sends the reconnect to the other node; the network cuts the socket
    (s.io as unknown as { uri: string }).uri = b.url;
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    (s.io.engine.transport as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy();
    await say(5);
    await reconnected;
    await say(5);
    await until(() => heard.length === 15 || undefined, 10_000);
    expect(heard).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(s.recovered).toBe(true);
    expect(s.id).toBe(firstId);
    expect(s.io.engine.id.split('.')[1]).toBe(b.id);
    // the session is still held by a, relayed to the client's new node b
    expect((await http(`${b.url}/healthz`)).body.relay.open).toBeGreaterThan(0);
    s.disconnect();
    await bye(sender);
  });

  it('a client whose node drains comes back through the other node and recovers every missed event once, in order', async () => {
    const s = await connect({ transports: ['websocket'] });
    const home = s.io.engine.id.split('.')[1]!;
    const other = cluster.gateways.find((g) => g.id !== home)!;
    const draining = cluster.gateways.find((g) => g.id === home)!;
    await s.emitWithAck('join', 'd');
    const heard: number[] = [];
    s.on('said', (_r: string, text: string) => heard.push(Number(text)));
    // a sender on the node that stays
    const sender = await WsClient.open(`${other.ws}/rt/ws`);
    await sender.request('join', 'd');
    const firstId = s.id;
    let sent = 0;
    const say = async (n: number) => {
      for (let i = 0; i < n; i++) await sender.request('say', 'd', String(++sent));
    };
    await say(10);
    await until(() => heard.length === 10 || undefined, 10_000);
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    draining.proc.kill('SIGTERM');
    // keep talking while the client is away and comes back
    await say(20);
    await reconnected;
    await say(10);
    await until(() => heard.length === 40 || undefined, 15_000);
    expect(heard).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(s.recovered).toBe(true);
    expect(s.id).toBe(firstId);
    expect(s.io.engine.id.split('.')[1]).toBe(other.id);
    await draining.exited;
    expect(draining.log()).toMatch(/drained: \d+ sessions handed over, 0 closed/);
  });
});
