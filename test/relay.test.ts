/**
 * The relay between gateway nodes is dialect-neutral: entries cross, each node encodes for its
 * own client. A node that was only slow keeps its sessions. The directory finds a session's node.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { pack, unpack } from 'msgpackr';
import { SECRET, TestCluster } from './cluster-harness.ts';
import { http, WsClient, type Frame } from './helpers.ts';
import { startNatsServer, type NatsServer } from './nats-server.ts';
import { NatsBus } from '../cluster/nats-bus.ts';
import { Gateway } from '../gateway/gateway.ts';

const enc = encodeURIComponent;

/** A raw WebSocket that records each message with whether it was binary */
async function rawWs(url: string): Promise<{ sock: WebSocket; got: Array<{ binary: boolean; frame: Frame }>; closed: Promise<number> }> {
  const sock = new WebSocket(url);
  const got: Array<{ binary: boolean; frame: Frame }> = [];
  sock.on('message', (d, binary) => got.push({ binary, frame: binary ? (unpack(d as Buffer) as Frame) : JSON.parse(d.toString()) }));
  const closed = new Promise<number>((r) => sock.on('close', (code) => r(code)));
  await new Promise((r, j) => (sock.once('open', r), sock.once('error', j)));
  return { sock, got, closed };
}

describe('relay between nodes', () => {
  let cluster: TestCluster | null = null;
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it('a msgpack client on another node gets msgpack entries and a msgpack close; a JSON poll there gets JSON', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1 });
    const [a, b] = cluster.gateways as [any, any];
    const home = await WsClient.open(`${a.ws}/rt/ws?format=msgpack`);
    const { sid, token } = home.open;
    await home.request('join', 'x');
    home.terminate();
    // an event for the session while it has no connection, then a msgpack client through node b
    const other = await WsClient.open(`${a.ws}/rt/ws`);
    await other.request('join', 'x');
    other.emit('say', 'x', 'while away');
    await other.next((f) => f.event === 'said');
    const viaB = await rawWs(`${b.ws}/rt/ws?format=msgpack&sid=${sid}&token=${enc(token)}&last=1`);
    await vi.waitFor(() => expect(viaB.got.some((m) => m.frame.event === 'said')).toBe(true));
    viaB.sock.send(pack({ type: 'close' }));
    expect(await viaB.closed).toBe(1000);
    // every message binary, the last one the close frame
    expect(viaB.got.every((m) => m.binary)).toBe(true);
    expect(viaB.got.map((m) => m.frame.type)).toEqual(['open', 'event', 'close']);
    expect(viaB.got.at(-1)!.frame).toEqual({ type: 'close', code: 1000, reason: 'client closed' });

    // a msgpack session read by a JSON long-poll on the other node: entries encoded as JSON there
    const m = await WsClient.open(`${a.ws}/rt/ws?format=msgpack`);
    await m.request('join', 'y');
    m.terminate();
    const say = await WsClient.open(`${a.ws}/rt/ws`);
    for (let i = 0; i < 3; i++) say.emit('say', 'y', String(i));
    await vi.waitFor(async () => {
      const p = await http(`${b.url}/rt/poll?sid=${m.open.sid}&token=${enc(m.open.token)}&last=1`);
      expect(p.headers.get('content-type')).toBe('application/json');
      expect(p.body.map((f: Frame) => [f.seq, f.args[1]])).toEqual([
        [2, '0'],
        [3, '1'],
        [4, '2'],
      ]);
    });
  });

  it('a relay that times out closes only the relayed connection: the slow node keeps the session', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1 });
    const [a, b] = cluster.gateways as [any, any];
    const c = await WsClient.open(`${a.ws}/rt/ws`);
    const { sid, token } = c.open;
    expect((await c.request('echo', 1)).seq).toBe(1);
    c.terminate();
    a.proc.kill('SIGSTOP');
    try {
      // node b waits relayTimeoutMs (2 s here) for a, then gives up on this connection
      const viaB = await WsClient.open(`${b.ws}/rt/ws?sid=${sid}&token=${enc(token)}&last=1`);
      expect(await viaB.waitClosed(10_000)).toEqual({ code: 4404, reason: 'SY_ERR_UNKNOWN_SESSION' });
    } finally {
      a.proc.kill('SIGCONT');
    }
    // a was only slow: the session is still there
    const again = await WsClient.open(`${a.ws}/rt/ws?sid=${sid}&token=${enc(token)}&last=1`);
    expect(again.open).toMatchObject({ sid, recovered: true });
    expect((await again.request('echo', 2)).args).toEqual([2]);
  });
});

describe('directory', () => {
  let nats: NatsServer;
  const nodes: Array<{ gw: Gateway; bus: NatsBus }> = [];
  afterAll(async () => {
    for (const n of nodes) {
      await n.gw.close();
      await n.bus.close();
    }
    await nats?.stop();
  });

  it('any node finds which node holds a session; nobody answers for an unknown one', async () => {
    nats = await startNatsServer();
    for (const id of ['da', 'db', 'dc']) {
      const bus = await NatsBus.connect({ servers: [nats.url] });
      const gw = new Gateway({ host: '127.0.0.1', port: 0, nodeId: id, relayTimeoutMs: 300, serveDemo: false }, { bus });
      await gw.listen();
      await bus.flush();
      nodes.push({ gw, bus });
    }
    const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    // a session on node a (no worker needed: it waits for one, but it exists)
    const sock = new WebSocket(`ws://127.0.0.1:${a.gw.listenPort}/rt/ws`);
    await new Promise((r) => sock.once('open', r));
    await vi.waitFor(() => expect(a.gw.sessions.size).toBe(1));
    const sid = [...a.gw.sessions.keys()][0]!;
    const locate = (gw: Gateway, s: string) => new Promise<string | null>((r) => gw.locate(s, r));
    expect(await locate(b.gw, sid)).toBe('da');
    expect(await locate(c.gw, sid)).toBe('da');
    expect(await locate(a.gw, sid)).toBe('da');
    expect(await locate(b.gw, 'nobody-has-this')).toBe(null);
    sock.close();
  });
});

describe('secret rotation', () => {
  let cluster: TestCluster | null = null;
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it('SWITCHYARD_SECRET="new,old": tokens signed with either verify, new ones are signed with the first; a node without the old secret refuses old tokens (4401)', async () => {
    const OLD = SECRET;
    const NEW = 'rotated-secret-abcdefghijklmnop';
    cluster = await TestCluster.start({ gateways: 1, workers: 1 });
    const old = cluster.gateways[0]!;
    // mid-rotation: one node already signs with the new secret and still accepts the old one
    const rotated = await cluster.addGateway('g-rot', [], `${NEW},${OLD}`);
    const newOnly = await cluster.addGateway('g-new', [], NEW);

    // a session on the old node (its token signed with OLD), resumed through the rotated node
    const c = await WsClient.open(`${old.ws}/rt/ws`);
    await c.request('join', 'rot');
    const { sid, token } = c.open;
    c.terminate();
    const via = await WsClient.open(`${rotated.ws}/rt/ws?sid=${sid}&token=${enc(token)}&last=${c.frames.at(-1)!.seq}`);
    expect(via.open).toMatchObject({ type: 'open', sid, recovered: true });
    expect((await via.request('echo', 'through the rotated node')).args).toEqual(['through the rotated node']);

    // a session opened on the rotated node gets a token signed with NEW: the new-only node takes it
    const fresh = await WsClient.open(`${rotated.ws}/rt/ws`);
    fresh.terminate();
    const onNew = await WsClient.open(`${newOnly.ws}/rt/ws?sid=${fresh.open.sid}&token=${enc(fresh.open.token)}&last=0`);
    expect(onNew.open).toMatchObject({ type: 'open', sid: fresh.open.sid, recovered: true });
    // …and the old node, which knows only OLD, does not
    onNew.terminate();
    const onOld = await WsClient.open(`${old.ws}/rt/ws?sid=${fresh.open.sid}&token=${enc(fresh.open.token)}&last=0`);
    expect(onOld.frames[0]).toEqual({ type: 'close', code: 4401, reason: 'SY_ERR_BAD_TOKEN' });

    // an OLD token on the new-only node: refused
    via.terminate();
    const stale = await WsClient.open(`${newOnly.ws}/rt/ws?sid=${sid}&token=${enc(token)}&last=0`);
    expect(stale.frames[0]).toEqual({ type: 'close', code: 4401, reason: 'SY_ERR_BAD_TOKEN' });

    // SockJS: a session made on a node of the rotation's first step (OLD,NEW: its sid made under
    // OLD) is found through the rotated node, which looks an id up under both secrets: relayed, not forked
    const step1 = await cluster.addGateway('g-step1', [], `${OLD},${NEW}`);
    const sj = `${Date.now().toString(36)}rot`;
    expect(await (await fetch(`${step1.url}/sockjs/000/${sj}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    const sent = await fetch(`${rotated.url}/sockjs/000/${sj}/xhr_send`, {
      method: 'POST',
      body: JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['rot'], ack: 1 })]),
    });
    expect(sent.status).toBe(204);
    const polled = await (await fetch(`${rotated.url}/sockjs/000/${sj}/xhr`, { method: 'POST' })).text();
    expect(JSON.parse(JSON.parse(polled.slice(1))[0])).toMatchObject({ type: 'reply', ack: 1, args: ['rot'] });
  });
});
