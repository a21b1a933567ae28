/** GET /metrics after a known workload: the counts match what happened. */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { closeAll, http, startNode, WsClient } from './helpers.ts';

afterAll(closeAll);

/** Prometheus text format → { 'name{labels}': value } */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a metric line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('/metrics', () => {
  it('counts sessions by transport and dialect, opens, closes by code, refusals by code, messages in and out, rooms', async () => {
    const n = await startNode({ maxSessions: 3 });
    // a long-polling session: between polls it holds no connection, and counts against maxSessions all the same
    const poll = await http(`${n.url}/rt/poll`);
    expect(poll.body[0].type).toBe('open');
    // every byte each client sends and gets (WebSocket messages; the poll's answer above)
    let sent = 0;
    let got = JSON.stringify(poll.body).length;
    const counted = async (url: string) => {
      const c = new WsClient(url);
      c.sock.on('message', (d) => (got += d.toString().length));
      const send = c.sock.send.bind(c.sock);
      c.sock.send = ((data: string, ...rest: unknown[]) => ((sent += data.length), (send as (...x: unknown[]) => void)(data, ...rest))) as typeof c.sock.send;
      await c.next((f) => f.type === 'open' || f.type === 'close');
      return c;
    };
    const a = await counted(`${n.ws}/rt/ws`);
    const b = await counted(`${n.ws}/rt/ws`);
    // refused: the node holds maxSessions connected sessions
    const refused = await counted(`${n.ws}/rt/ws`);
    expect((await refused.waitClosed()).code).toBe(1013);
    // 5 requests (5 events in, 5 replies out), a join (1 in, 1 out), a broadcast to both members (1 in, 2 out)
    for (let i = 0; i < 5; i++) await a.request('echo', i);
    await a.request('join', 'room');
    await b.request('join', 'room');
    b.emit('say', 'room', 'hi');
    await a.next((f) => f.event === 'said');
    await b.next((f) => f.event === 'said');
    // a malformed frame ends b with SY_ERR_MALFORMED_FRAME; a closes itself (1000)
    b.send('not json');
    await b.waitClosed();
    a.send({ type: 'close' });
    await a.waitClosed();
    await vi.waitFor(() => expect(n.gateway.sessions.size).toBe(1));

    const res = await fetch(`${n.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parse(await res.text());
    // the poll was answered: no request held for it now
    expect(m.get('switchyard_sessions{transport="polling",dialect="native",attached="false"}')).toBe(1);
    expect(m.get('switchyard_sessions{transport="websocket",dialect="native",attached="true"}')).toBeUndefined();
    expect(m.get('switchyard_sessions_opened_total{transport="websocket",dialect="native"}')).toBe(2);
    expect(m.get('switchyard_sessions_opened_total{transport="polling",dialect="native"}')).toBe(1);
    expect(m.get('switchyard_sessions_closed_total{code="SY_ERR_MALFORMED_FRAME"}')).toBe(1);
    expect(m.get('switchyard_sessions_closed_total{code="1000"}')).toBe(1);
    expect(m.get('switchyard_admission_refusals_total{code="SY_ERR_TOO_MANY_SESSIONS"}')).toBe(1);
    // in: 5 echoes + 2 joins + 1 say; out: 5 + 2 replies, 2 said
    expect(m.get('switchyard_messages_in_total')).toBe(8);
    expect(m.get('switchyard_messages_out_total')).toBe(9);
    expect(m.get('switchyard_rooms')).toBe(0);
    expect(m.get('switchyard_outbox_bytes')).toBe(0);
    // bytes: exactly what the clients sent and got (all ASCII here)
    expect(m.get('switchyard_bytes_in_total')).toBe(sent);
    expect(m.get('switchyard_bytes_out_total')).toBe(got);
    // the bus's round trip, sampled (in one process the MemoryBus answers at once)
    n.gateway.probeBus();
    n.gateway.probeBus();
    const again = parse(await (await fetch(`${n.url}/metrics`)).text());
    expect(again.get('switchyard_bus_rtt_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(again.get('switchyard_bus_rtt_seconds_bucket{le="0.01"}')).toBe(again.get('switchyard_bus_rtt_seconds_count'));
  });

  it('in a cluster: partitions per worker from their heartbeats, and the NATS round trip', async () => {
    const { TestCluster } = await import('./cluster-harness.ts');
    const cluster = await TestCluster.start({ gateways: 1, workers: 2 });
    try {
      const g = cluster.gateways[0]!;
      await vi.waitFor(
        async () => {
          const m = parse(await (await fetch(`${g.url}/metrics`)).text());
          const owned = [...cluster.workers.map((w) => m.get(`switchyard_worker_partitions{worker="${w.id}"}`) ?? 0)];
          // 1024 partitions between the two, neither empty
          expect(owned.reduce((x, y) => x + y, 0)).toBe(1024);
          expect(Math.min(...owned)).toBeGreaterThan(0);
          // probed every 5 s over NATS: well under a second on loopback
          expect(m.get('switchyard_bus_rtt_seconds_count')).toBeGreaterThanOrEqual(1);
          expect(m.get('switchyard_bus_rtt_seconds_bucket{le="1"}')).toBe(m.get('switchyard_bus_rtt_seconds_count'));
        },
        { timeout: 15_000, interval: 500 },
      );
    } finally {
      await cluster.stop();
    }
  });

  it('the session counts and outbox bytes are kept as sessions change (a scrape walks nothing) and always equal a walk of the table', async () => {
    const n = await startNode();
    const g = n.gateway;
    const walk = () => {
      const counts = new Map<string, number>();
      let bytes = 0;
      for (const s of g.sessions.values()) {
        const k = `${s.transport} ${s.meta.dialect} ${s.conn !== null}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
        bytes += s.outbox.bytes;
      }
      return { counts: Object.fromEntries([...counts].sort()), bytes };
    };
    const kept = () => ({ counts: Object.fromEntries([...g.sessionCounts].sort()), bytes: g.outboxBytes });
    const same = () => expect(kept()).toEqual(walk());
    // WebSockets that read, one that is dropped (detached, entries unread), a poll session resumed over a WebSocket
    const a = await WsClient.open(`${n.ws}/rt/ws`);
    const b = await WsClient.open(`${n.ws}/rt/ws`);
    await a.request('join', 'r');
    await b.request('join', 'r');
    b.terminate();
    await vi.waitFor(() => expect(g.sessions.get(b.open.sid)?.conn).toBeNull());
    for (let i = 0; i < 5; i++) a.emit('say', 'r', String(i));
    await a.next((f) => f.event === 'said' && f.args[1] === '4');
    same();
    expect(g.outboxBytes).toBeGreaterThan(0);
    const p = (await http(`${n.url}/rt/poll`)).body[0];
    same();
    const c = await WsClient.open(`${n.ws}/rt/ws?sid=${p.sid}&token=${encodeURIComponent(p.token)}&last=0`);
    same();
    expect(g.sessionCounts.get('websocket native true')).toBe(2);
    // socket.io: a polling carrier that upgrades (the session's transport changes)
    const { io } = await import('socket.io-client');
    const sio = io(n.url, { transports: ['polling', 'websocket'], forceNew: true });
    await new Promise<void>((r) => sio.once('connect', () => r()));
    await vi.waitFor(() => expect(sio.io.engine.transport.name).toBe('websocket'));
    await vi.waitFor(() => expect(g.sessionCounts.get('websocket socket.io true')).toBe(1));
    same();
    // endings: the client closes, the app refuses nothing, a resumed session expires later
    sio.close();
    c.send({ type: 'close' });
    await c.waitClosed();
    a.send({ type: 'close' });
    await a.waitClosed();
    await vi.waitFor(() => expect(g.sessions.has(a.open.sid)).toBe(false));
    same();
    const resumed = await WsClient.open(`${n.ws}/rt/ws?sid=${b.open.sid}&token=${encodeURIComponent(b.open.token)}&last=0`);
    await resumed.next((f) => f.event === 'said' && f.args[1] === '4');
    same();
    resumed.send({ type: 'close' });
    await vi.waitFor(() => expect(g.sessions.size).toBe(0));
    await vi.waitFor(() => same());
    expect(kept()).toEqual({ counts: {}, bytes: 0 });
  });

  it("metricsPort: /metrics (and the probes) on a port of its own, not on the clients' port", async () => {
    const n = await startNode({ metricsPort: 0 });
    const port = n.gateway.metricsPort;
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(n.port);
    const m = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toContain('switchyard_sessions_opened_total');
    expect((await http(`${n.url}/metrics`)).status).toBe(404);
    for (const path of ['/healthz', '/readyz']) {
      expect((await http(`http://127.0.0.1:${port}${path}`)).status).toBe(200);
      expect((await http(`${n.url}${path}`)).status).toBe(200);
    }
    // clients are not served there
    expect((await http(`http://127.0.0.1:${port}/rt/poll`)).status).toBe(404);
  });

  it('is off with metrics: false', async () => {
    const n = await startNode({ metrics: false });
    expect((await http(`${n.url}/metrics`)).status).toBe(404);
  });
});
