/**
 * `session.transport` follows the client across a cluster (real nats-server, gateway and worker
 * processes): after a drain hands a session to the node its client comes back to over another
 * transport, after a relayed Socket.IO carrier upgrades on the node that is not the session's,
 * and after a partition move re-opens the session on another worker. The demo app's `whoami`
 * answers with `session.transport`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { http, send, until, WsClient, type Frame } from './helpers.ts';

let cluster: TestCluster | null = null;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.disconnect();
  await cluster?.stop();
  cluster = null;
});

const enc = encodeURIComponent;

/** A native long-polling client of one session: polls (on any node) until the frame it waits for comes */
class Poller {
  readonly frames: Frame[] = [];
  last = 0;
  constructor(
    readonly sid: string,
    public token: string,
  ) {}

  /** one poll on `base`; remembers the new token an `open` brings (a hand-over) */
  async poll(base: string): Promise<Frame[]> {
    const r = await http(`${base}/rt/poll?sid=${this.sid}&token=${enc(this.token)}&last=${this.last}`);
    expect(r.status).toBe(200);
    for (const f of r.body as Frame[]) {
      this.frames.push(f);
      if (f.type === 'open') this.token = f.token;
      if (f.seq) this.last = f.seq;
    }
    return r.body;
  }

  /** `whoami` through `base` (POST, then polls until its reply) */
  async whoami(base: string, ack: number): Promise<Frame> {
    expect((await send(base, this.sid, this.token, [{ type: 'event', event: 'whoami', args: [], ack }])).status).toBe(204);
    for (let i = 0; i < 20; i++) {
      const reply = this.frames.find((f) => f.type === 'reply' && f.ack === ack);
      if (reply !== undefined) return reply.args[0];
      await this.poll(base);
    }
    throw new Error(`no reply to whoami #${ack}: ${JSON.stringify(this.frames)}`);
  }
}

describe('session.transport in a cluster', () => {
  it('a native WebSocket session whose node drains, resumed by long-polling on the other node: the worker hears polling', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--drain-window-ms', '300'] });
    const [a, b] = cluster.gateways as [Proc, Proc];
    const ws = await WsClient.open(`${a.ws}/rt/ws`);
    const { sid, token } = ws.open;
    expect((await ws.request('whoami')).args[0]).toMatchObject({ sid, client: 'native', transport: 'websocket' });
    a.proc.kill('SIGTERM');
    // the drain's "reconnect"
    expect((await ws.waitClosed()).code).toBe(1012);
    const last = ws.frames.filter((f) => f.seq).at(-1)?.seq ?? 0;
    // back on b by long-polling: b relays to a, which hands the session over
    const p = new Poller(sid, token);
    p.last = last;
    for (let i = 0; i < 5 && !p.frames.some((f) => f.type === 'open'); i++) await p.poll(b.url);
    if (!p.frames.some((f) => f.type === 'open')) throw new Error(`no open from b after the drain: ${JSON.stringify(p.frames)}`);
    expect(p.frames.find((f) => f.type === 'open')).toMatchObject({ sid, recovered: true });
    // the session is b's now (its new token names b)
    expect(p.token.startsWith(`${b.id}.`)).toBe(true);
    expect(await p.whoami(b.url, 2)).toMatchObject({ sid, client: 'native', transport: 'polling' });
    expect(await a.exited).toBe(0);
    expect(a.log()).toMatch(/drained: 1 sessions handed over/);
  });

  it('socket.io-client cut off, recovering by polling through the other node (relayed), then upgrading there: the worker hears websocket', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1 });
    const [a, b] = cluster.gateways as [Proc, Proc];
    const s = io(a.url, { transports: ['polling', 'websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0 });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    await until(() => (s.io.engine.transport.name === 'websocket' ? true : undefined), 10_000);
    expect(await s.timeout(5000).emitWithAck('whoami')).toMatchObject({ client: 'socket.io', transport: 'websocket' });
    const firstId = s.id;
    // the balancer sends the reconnect to the other node; the network cuts the socket
    (s.io as unknown as { uri: string }).uri = b.url;
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    (s.io.engine.transport as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy();
    await reconnected;
    // recovered through b, still held by a (relayed)
    expect(s.recovered).toBe(true);
    expect(s.id).toBe(firstId);
    expect(s.io.engine.id.split('.')[1]).toBe(b.id);
    expect((await http(`${b.url}/healthz`)).body.relay.open).toBeGreaterThan(0);
    // it reconnected by polling, then upgrades on b
    await until(() => (s.io.engine.transport.name === 'websocket' ? true : undefined), 10_000).catch(() => {
      throw new Error(`the reconnected client did not upgrade: ${s.io.engine.transport.name}`);
    });
    expect(await s.timeout(5000).emitWithAck('whoami')).toMatchObject({ client: 'socket.io', transport: 'websocket' });
  });

  it('a session re-opened on another worker after a partition move keeps the transport it has now, not the one it opened with', async () => {
    cluster = await TestCluster.start({ gateways: 1, workers: 2 });
    const g = cluster.gateways[0]!;
    const [victim] = cluster.workers as [Proc, Proc];
    // sessions opened by long-polling, then resumed over a WebSocket
    const clients = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const open = (await http(`${g.url}/rt/poll`)).body[0];
        const ws = await WsClient.open(`${g.ws}/rt/ws?sid=${open.sid}&token=${enc(open.token)}&last=0`);
        expect((await ws.request('whoami')).args[0]).toMatchObject({ sid: open.sid, transport: 'websocket' });
        return ws;
      }),
    );
    const victimSids = new Set((cluster.appLogByPid().get(victim.proc.pid!) ?? []).map((l) => l.split(' ')[0]!));
    expect(victimSids.size).toBeGreaterThan(0);
    // its partitions move to the other worker, which re-opens their sessions (`open` with `moved`)
    victim.proc.kill('SIGKILL');
    await victim.exited;
    for (const ws of clients) {
      const reply = await ws.request('whoami').catch(() => {
        throw new Error(`no whoami reply after the move for ${ws.open.sid} (was on the killed worker: ${victimSids.has(ws.open.sid)})`);
      });
      expect(reply.args[0]).toMatchObject({ sid: ws.open.sid, transport: 'websocket' });
    }
    // the killed worker's sessions really were answered by the other one
    const survivor = cluster.appLogByPid();
    survivor.delete(victim.proc.pid!);
    const moved = [...survivor.values()].flat().filter((l) => victimSids.has(l.split(' ')[0]!));
    expect(moved.length).toBeGreaterThanOrEqual(victimSids.size);
    for (const ws of clients) ws.sock.close();
  });
});
