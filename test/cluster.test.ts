/**
 * The cluster, for real: nats-server processes, gateway and worker processes. Each failure test
 * counts what the clients sent and received and what the app handled.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_PARTITIONS } from '../cluster/partition.ts';
import { FAST, TestCluster, type Proc } from './cluster-harness.ts';
import { http, send, WsClient } from './helpers.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

const enc = encodeURIComponent;

describe('cluster', () => {
  it('events go through NATS to a worker process and back, over every transport', async () => {
    cluster = await TestCluster.start({ gateways: 1, workers: 2 });
    const g = cluster.gateways[0]!;
    const c = await WsClient.open(`${g.ws}/rt/ws`);
    expect((await c.request('echo', 'via nats')).args).toEqual(['via nats']);
    const open = (await http(`${g.url}/rt/poll`)).body[0];
    expect((await send(g.url, open.sid, open.token, [{ type: 'event', event: 'echo', args: [7] }])).status).toBe(204);
    const polled = await http(`${g.url}/rt/poll?sid=${open.sid}&token=${enc(open.token)}&last=0`);
    expect(polled.body).toEqual([{ type: 'event', seq: 1, event: 'echo', args: [7] }]);
  });

  it('a long-poll client whose requests alternate between two gateway nodes keeps its session, in order', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1 });
    const [a, b] = cluster.gateways as [any, any];
    const open = (await http(`${a.url}/rt/poll`)).body[0];
    const q = `sid=${open.sid}&token=${enc(open.token)}`;
    let last = 0;
    const got: number[] = [];
    const N = 40;
    for (let i = 0; i < N; i++) {
      const node = i % 2 === 0 ? b : a; // the POST lands on one node…
      const r = await send(node.url, open.sid, open.token, [{ type: 'event', event: 'echo', args: [i] }]);
      expect(r.status).toBe(204);
      const other = i % 2 === 0 ? a : b; // …and the poll on the other
      while (got.length <= i) {
        const p = await http(`${other.url}/rt/poll?${q}&last=${last}`);
        expect(p.status).toBe(200);
        for (const f of p.body) {
          expect(f.seq).toBe(last + 1);
          last = f.seq;
          got.push(f.args[0]);
        }
      }
    }
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    // the app handled each event once
    const handled = cluster.appLog().filter((l) => l.startsWith(open.sid + ' echo'));
    expect(handled).toHaveLength(N);
    // one poll at a time holds across nodes too: a second relayed poll is refused with 409
    const held = http(`${b.url}/rt/poll?${q}&last=${last}`);
    await vi.waitFor(async () => expect((await http(`${b.url}/healthz`)).body.relay.open).toBe(1));
    const second = await http(`${b.url}/rt/poll?${q}&last=${last}`);
    expect(second).toMatchObject({ status: 409, body: { error: 'SY_ERR_POLL_CONFLICT' } });
    await send(a.url, open.sid, open.token, [{ type: 'event', event: 'echo', args: ['last'] }]);
    expect((await held).body).toEqual([{ type: 'event', seq: last + 1, event: 'echo', args: ['last'] }]);
  });

  it('a WebSocket client that reconnects to a different node resumes where it was', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1 });
    const [a, b] = cluster.gateways as [any, any];
    const rx = await WsClient.open(`${a.ws}/rt/ws`);
    await rx.request('join', 'feed');
    const tx = await WsClient.open(`${b.ws}/rt/ws`);
    await tx.request('join', 'feed');
    for (let i = 0; i < 100; i++) tx.emit('say', 'feed', String(i));
    await rx.next((f) => f.event === 'said' && f.args[1] === '20');
    rx.terminate();
    for (let i = 100; i < 300; i++) tx.emit('say', 'feed', String(i));
    await tx.next((f) => f.event === 'said' && f.args[1] === '299');
    const seen = rx.frames.filter((f) => f.event === 'said');
    const last = seen.at(-1)!.seq;
    // resume on node B: relayed to A, which holds the session
    const again = await WsClient.open(`${b.ws}/rt/ws?sid=${rx.open.sid}&token=${enc(rx.open.token)}&last=${last}`);
    expect(again.open).toMatchObject({ sid: rx.open.sid, recovered: true });
    await again.next((f) => f.event === 'said' && f.args[1] === '299');
    const all = [...seen, ...again.frames.filter((f) => f.event === 'said')];
    expect(all.map((f) => f.args[1])).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    // and the relayed connection works both ways
    expect((await again.request('echo', 'still me')).args).toEqual(['still me']);
    expect((await again.request('whoami')).args[0].sid).toBe(rx.open.sid);
  });

  it('rooms span nodes: a broadcast reaches members on every node; a node subscribes only while it has members', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 2 });
    const [a, b] = cluster.gateways as [any, any];
    const m1 = await WsClient.open(`${a.ws}/rt/ws`);
    const m2 = await WsClient.open(`${b.ws}/rt/ws`);
    await m1.request('join', 'x');
    await m2.request('join', 'x');
    expect((await http(`${a.url}/healthz`)).body.rooms).toBe(1);
    m1.emit('say', 'x', 'hello both');
    await m1.next((f) => f.event === 'said');
    await m2.next((f) => f.event === 'said' && f.args[1] === 'hello both');
    await m2.request('leave', 'x');
    expect((await http(`${b.url}/healthz`)).body.rooms).toBe(0);
    // ask the NATS server which connections subscribe to the room: only node A's (it still has a member)
    await vi.waitFor(async () => {
      const connz = await (await fetch(`http://127.0.0.1:${cluster!.nats[0]!.monitorPort}/connz?subs=1&limit=1000`)).json();
      const withRoom = connz.connections.filter((c: any) => (c.subscriptions_list ?? []).includes('sy.room.x')).map((c: any) => c.name);
      expect(withRoom).toEqual(['switchyard-gateway-g1']);
    });
  });
});

/**
 * Load: `clients` WebSocket clients each send `perClient` echo requests, `window` in flight.
 * `during(progress)` runs once when a third of the replies are in.
 */
async function load(url: string, o: { clients: number; perClient: number; window: number; during: () => void | Promise<void>; at?: number }) {
  const clients = await Promise.all(Array.from({ length: o.clients }, () => WsClient.open(`${url}/rt/ws`)));
  const total = o.clients * o.perClient;
  let received = 0;
  let fired = false;
  const replies = new Map<string, number>(); // `${sid} ${i}` → replies seen
  const outOfOrder: string[] = [];
  await Promise.all(
    clients.map(async (c) => {
      let next = 0;
      let done = 0;
      let lastSeq = 0;
      await new Promise<void>((resolve, reject) => {
        const pump = () => {
          while (next < o.perClient && next - done < o.window) c.send({ type: 'event', event: 'echo', args: [next], ack: next++ });
        };
        c.sock.on('message', (d) => {
          const f = JSON.parse(d.toString());
          if (f.type !== 'reply') return;
          // per-session order: replies come in the order the events were sent, with no seq gap
          if (f.ack !== done || f.seq !== lastSeq + 1) outOfOrder.push(`${c.open.sid}: ack ${f.ack} seq ${f.seq} after ${done - 1}/${lastSeq}`);
          lastSeq = f.seq;
          const key = `${c.open.sid} ${f.ack}`;
          replies.set(key, (replies.get(key) ?? 0) + 1);
          done++;
          received++;
          if (!fired && received >= total * (o.at ?? 1 / 3)) {
            fired = true;
            Promise.resolve(o.during()).catch(reject);
          }
          if (done === o.perClient) resolve();
          else pump();
        });
        pump();
      });
    }),
  );
  for (const c of clients) c.sock.close();
  return { total, replies, outOfOrder, sids: clients.map((c) => c.open.sid) };
}

/** how many partitions (subjects sy.in.<p>) these workers subscribe to, at the cluster's first NATS server */
async function partitionsHeld(c: TestCluster, workers: Proc[]): Promise<number> {
  const connz = await (await fetch(`http://127.0.0.1:${c.nats[0]!.monitorPort}/connz?subs=1&limit=1000`)).json();
  const names = new Set(workers.map((w) => `switchyard-worker-${w.id}`));
  const held = new Set<string>();
  for (const conn of connz.connections) {
    if (names.has(conn.name)) for (const sub of conn.subscriptions_list ?? []) if (sub.startsWith('sy.in.')) held.add(sub);
  }
  return held.size;
}

/** every request got exactly one reply, in order */
function expectEachAnsweredOnce(r: Awaited<ReturnType<typeof load>>): void {
  expect(r.replies.size).toBe(r.total);
  expect(r.outOfOrder).toEqual([]);
  expect([...r.replies.values()].filter((n) => n !== 1)).toEqual([]);
}

/** how often the app handled each (sid, echo i) */
function handledCounts(lines: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) {
    const [sid, event, args] = l.split(' ');
    if (event !== 'echo') continue;
    const key = `${sid} ${JSON.parse(args!)[0]}`;
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

describe('cluster failures', () => {
  it('SIGKILL a worker under load: its sessions move, every event is answered exactly once', async () => {
    cluster = await TestCluster.start({ gateways: 1, workers: 3 });
    const g = cluster.gateways[0]!;
    const victim = cluster.workers[0]!;
    const r = await load(g.ws, { clients: 24, perClient: 150, window: 8, during: () => void victim.proc.kill('SIGKILL') });
    // it really died of the SIGKILL (no exit code: it did not exit by itself)
    expect(await victim.exited).toBeNull();
    expect(victim.proc.signalCode).toBe('SIGKILL');
    expectEachAnsweredOnce(r);
    // the app handled every event at least once; a second time only when the dead worker handled
    // it but died before its answer left the process
    const handled = handledCounts(cluster.appLog());
    expect(handled.size).toBe(r.total);
    const dupes = [...handled.values()].filter((n) => n > 1).length;
    console.log(
      `worker SIGKILL: sent ${r.total}, replies ${[...r.replies.values()].reduce((a, b) => a + b, 0)}, app handled ${[...handled.values()].reduce((a, b) => a + b, 0)} (events handled twice: ${dupes})`,
    );
    expect(dupes).toBeLessThanOrEqual(24 * 8); // at most what was in flight when it died
    // the victim really served sessions, and they carried on elsewhere
    const byPid = cluster.appLogByPid();
    const victimSids = new Set((byPid.get(victim.proc.pid!) ?? []).map((l) => l.split(' ')[0]));
    expect(victimSids.size).toBeGreaterThan(0);
    const movedOn = [...byPid].filter(([pid]) => pid !== victim.proc.pid).some(([, lines]) => lines.some((l) => victimSids.has(l.split(' ')[0]!)));
    expect(movedOn).toBe(true);
  });

  it('a worker joins under load: partitions move to it, every event answered once, in order', async () => {
    cluster = await TestCluster.start({ gateways: 1, workers: 2 });
    const g = cluster.gateways[0]!;
    let joined: Promise<unknown> | null = null;
    const r = await load(g.ws, { clients: 16, perClient: 1500, window: 8, at: 0.05, during: () => void (joined = cluster!.addWorker('w3')) });
    await joined;
    expectEachAnsweredOnce(r);
    const newcomer = cluster.workers.find((w) => w.id === 'w3')!;
    // it took busy sessions over: events of sessions that began on the others were handled there
    const byPid = cluster.appLogByPid();
    const mine = byPid.get(newcomer.proc.pid!) ?? [];
    const movedSids = new Set(mine.map((l) => l.split(' ')[0]));
    const startedElsewhere = [...byPid].filter(([pid]) => pid !== newcomer.proc.pid).some(([, lines]) => lines.some((l) => movedSids.has(l.split(' ')[0]!)));
    expect(mine.length).toBeGreaterThan(0);
    expect(startedElsewhere).toBe(true);
    const handled = handledCounts(cluster.appLog());
    expect(handled.size).toBe(r.total);
    console.log(
      `worker join: sent ${r.total}, replies ${r.replies.size}, sessions moved to the newcomer ${movedSids.size} of ${r.sids.length}, events it handled ${mine.length}, events handled twice: ${[...handled.values()].filter((n) => n > 1).length}`,
    );
  });

  it('a worker paused past the member timeout (SIGSTOP), then resumed: every event answered once, in order', async () => {
    cluster = await TestCluster.start({ gateways: 1, workers: 3 });
    const g = cluster.gateways[0]!;
    const victim = cluster.workers[0]!;
    const others = cluster.workers.slice(1);
    let resumed: Promise<void> | null = null;
    const r = await load(g.ws, {
      clients: 16,
      perClient: 1200,
      window: 8,
      at: 0.1,
      during: () =>
        (resumed = (async () => {
          victim.proc.kill('SIGSTOP');
          const stoppedAt = Date.now();
          // the others drop it after the member timeout and take all its partitions…
          await vi.waitFor(async () => expect(await partitionsHeld(cluster!, others)).toBe(DEFAULT_PARTITIONS), { timeout: 10_000, interval: 50 });
          // …while it stays stopped for twice the member timeout (the fault under test); then it
          // wakes up still believing it owns them, with events for them queued in its socket
          await new Promise((r) => setTimeout(r, stoppedAt + FAST.memberTimeoutMs * 2 - Date.now()));
          victim.proc.kill('SIGCONT');
        })()),
    });
    await resumed;
    expectEachAnsweredOnce(r);
    const handled = handledCounts(cluster.appLog());
    expect(handled.size).toBe(r.total);
    // while it slept, its sessions went on elsewhere
    const byPid = cluster.appLogByPid();
    const victimSids = new Set((byPid.get(victim.proc.pid!) ?? []).map((l) => l.split(' ')[0]));
    expect(victimSids.size).toBeGreaterThan(0);
    expect([...byPid].some(([pid, lines]) => pid !== victim.proc.pid && lines.some((l) => victimSids.has(l.split(' ')[0]!)))).toBe(true);
    console.log(
      `worker SIGSTOP/SIGCONT: sent ${r.total}, replies ${r.replies.size}, events handled twice: ${[...handled.values()].filter((n) => n > 1).length}`,
    );
  });

  it('SIGKILL one NATS server of three: gateways and workers carry on through the others', async () => {
    cluster = await TestCluster.start({ natsServers: 3, gateways: 2, workers: 2 });
    const [a, b] = cluster.gateways as [any, any];
    // which server is each process on? kill the one the first gateway uses
    const connz = await Promise.all(cluster.nats.map(async (s) => (await (await fetch(`http://127.0.0.1:${s.monitorPort}/connz`)).json()).connections ?? []));
    const idx = connz.findIndex((conns: any[]) => conns.some((c) => c.name === 'switchyard-gateway-g1'));
    expect(idx).toBeGreaterThanOrEqual(0);
    const r = await load(a.ws, { clients: 12, perClient: 150, window: 8, during: () => cluster!.nats[idx]!.kill() });
    expectEachAnsweredOnce(r);
    const handled = handledCounts(cluster.appLog());
    expect(handled.size).toBe(r.total);
    const dupes = [...handled.values()].filter((n) => n > 1).length;
    console.log(`NATS server SIGKILL: sent ${r.total}, replies ${r.replies.size}, events handled twice: ${dupes}`);
    // and the other gateway still works, through the surviving servers
    const c = await WsClient.open(`${b.ws}/rt/ws`);
    expect((await c.request('echo', 'after')).args).toEqual(['after']);
  });
});

describe('cluster drain', () => {
  it('SIGTERM a gateway: it asks its clients to reconnect, hands their sessions to the node they come back to, and exits; nothing lost', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 2, gatewayArgs: ['--drain-window-ms', '1500'] });
    const [a, b] = cluster.gateways as [any, any];
    const N = 300;

    // WebSocket clients on A; each reconnects to B with sid/token/last when its connection drops
    const wsClients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const first = await WsClient.open(`${a.ws}/rt/ws`);
        await first.request('join', 'feed');
        const st = { sid: first.open.sid, token: first.open.token, frames: [] as any[], conns: [first], tokens: [first.open.token] };
        const watch = (c: WsClient) => {
          c.sock.on('close', async (code) => {
            if (code !== 1012) return; // only the drain's "reconnect" matters here
            const last = st.frames.filter((f) => f.seq).at(-1)?.seq ?? 0;
            const next = await WsClient.open(`${b.ws}/rt/ws?sid=${st.sid}&token=${enc(st.token)}&last=${last}`);
            st.token = next.open.token;
            st.tokens.push(next.open.token);
            st.conns.push(next);
            // what arrived while open() waited, then the rest (same tick: nothing can slip between)
            st.frames.push(...next.frames);
            next.sock.on('message', (d) => st.frames.push(JSON.parse(d.toString())));
            watch(next);
          });
        };
        first.sock.on('message', (d) => st.frames.push(JSON.parse(d.toString())));
        st.frames.push(...first.frames);
        watch(first);
        return st;
      }),
    );

    // long-polling clients on A; a poll that cannot reach A goes to B (as a load balancer would)
    const pollers = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const open = (await http(`${a.url}/rt/poll`)).body[0];
        await send(a.url, open.sid, open.token, [{ type: 'event', event: 'join', args: ['feed'], ack: 1 }]);
        return { sid: open.sid, token: open.token, last: 0, said: [] as string[], stop: false, done: new AbortController() };
      }),
    );
    const pollLoops = pollers.map(async (p) => {
      let node = a;
      while (!p.stop) {
        let r: Awaited<ReturnType<typeof http>>;
        try {
          r = await http(`${node.url}/rt/poll?sid=${p.sid}&token=${enc(p.token)}&last=${p.last}`, { signal: p.done.signal });
        } catch {
          if (p.stop) break; // the poll held when the test was done
          node = b; // A stopped listening
          continue;
        }
        expect(r.status).toBe(200);
        for (const f of r.body) {
          if (f.type === 'open') p.token = f.token; // handed over: the new node's token
          if (f.seq) {
            expect(f.seq).toBe(p.last + 1);
            p.last = f.seq;
          }
          if (f.event === 'said') p.said.push(f.args[1]);
        }
      }
    });

    // a sender on B, while A drains
    const tx = await WsClient.open(`${b.ws}/rt/ws`);
    let sent = 0;
    // the first fifth of the feed before the drain, the rest during it (paced: spread over the drain)
    let draining!: () => void;
    const drainStarted = new Promise<void>((r) => (draining = r));
    const sending = (async () => {
      while (sent < N) {
        if (sent === N / 5) await drainStarted;
        tx.emit('say', 'feed', String(sent++));
        if (sent % 20 === 0) await new Promise((r) => setTimeout(r, 25));
      }
    })();
    // drain once the feed reaches every client on A
    await vi.waitFor(
      () => {
        for (const st of wsClients) expect(st.frames.some((f) => f.event === 'said')).toBe(true);
        for (const p of pollers) expect(p.said.length).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 10 },
    );
    a.proc.kill('SIGTERM');
    draining();
    await sending;
    expect(await a.exited).toBe(0);
    expect(a.log()).toMatch(/drained: 9 sessions handed over, 0 closed/);

    const want = Array.from({ length: N }, (_, i) => String(i));
    for (const st of wsClients) {
      await vi
        .waitFor(() => expect(st.frames.filter((f) => f.event === 'said').length).toBe(N), { timeout: 15_000 })
        .catch((e) => {
          const got = new Set(st.frames.filter((f) => f.event === 'said').map((f) => f.args[1]));
          console.log(
            'ws missing',
            want.filter((x) => !got.has(x)).join(','),
            'conns',
            st.conns.length,
            'seqs',
            st.frames
              .filter((f) => f.seq)
              .map((f) => f.seq)
              .join(','),
          );
          throw e;
        });
      const gotWs = st.frames.filter((f) => f.event === 'said').map((f) => f.args[1]);
      if (gotWs.join() !== want.join())
        console.log(
          'ws order',
          gotWs
            .map((x, i) => (x === want[i] ? '' : `${i}:${x}`))
            .filter(Boolean)
            .join(' '),
        );
      expect(gotWs).toEqual(want);
      const seqs = st.frames.filter((f) => f.seq).map((f) => f.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      // the session moved to B: its new token names B
      expect(st.tokens.at(-1)!.startsWith('g2.')).toBe(true);
      expect(st.conns.length).toBeGreaterThan(1);
      expect(st.conns.at(-1)!.frames[0]).toMatchObject({ type: 'open', sid: st.sid, recovered: true });
    }
    for (const p of pollers) {
      await vi
        .waitFor(() => expect(p.said.length).toBe(N), { timeout: 15_000 })
        .catch((e) => {
          console.log('poll missing', want.filter((x) => !p.said.includes(x)).join(','), p.token, p.sid);
          throw e;
        });
      if (p.said.join() !== want.join())
        console.log(
          'poll order',
          p.said
            .map((x, i) => (x === want[i] ? '' : `${i}:${x}`))
            .filter(Boolean)
            .join(' '),
        );
      expect(p.said).toEqual(want);
      expect(p.token.startsWith('g2.')).toBe(true);
      p.stop = true;
      p.done.abort(); // a poll is held until there is something to send: end it
    }
    // every poll loop ended, and none failed an expectation on the way
    await Promise.all(pollLoops);
  });
});
