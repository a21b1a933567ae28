/**
 * The cluster, for real: nats-server processes, gateway and worker processes. Each failure test
 * counts what the clients sent and received and what the app handled.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TestCluster } from './cluster-harness.ts';
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
    const subs = await (await fetch(`http://127.0.0.1:${cluster.nats[0]!.monitorPort}/subsz?subs=1`)).json();
    const roomSubs = (subs.subscriptions_list ?? []).filter((s: any) => s.subject === 'sy.room.x');
    expect(roomSubs).toHaveLength(1); // only node A still has a member
  });
});
