/**
 * docs/deploy.md's nginx configuration, for real: Debian's nginx round-robin in front of two
 * gateway nodes, no stickiness, a worker and NATS behind. Clients go through nginx only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { connect } from '../client/switchyard.js';
import { TestCluster } from './cluster-harness.ts';
import { startNginx } from './nginx.ts';
import { http, WsClient } from './helpers.ts';

let cluster: TestCluster;
let nginx: ChildProcess;
let lb: string;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1 });
  ({ proc: nginx, lb } = await startNginx(cluster));
});

afterAll(async () => {
  nginx?.kill('SIGKILL');
  await cluster?.stop();
});

/** requests one node relayed for the other, over both */
async function relayedTotal(): Promise<number> {
  let n = 0;
  for (const g of cluster.gateways) n += (await http(`${g.url}/healthz`)).body.relay.in;
  return n;
}

describe('behind nginx, round-robin, no stickiness', () => {
  it('requests alternate between the two nodes', async () => {
    const nodes = new Set<string>();
    for (let i = 0; i < 4; i++) nodes.add((await http(`http://${lb}/healthz`)).body.node);
    expect([...nodes].sort()).toEqual(cluster.gateways.map((g) => g.id).sort());
  });

  it('WebSocket upgrades pass: clients on either node share a room, and a reconnect through nginx resumes', async () => {
    const a = await WsClient.open(`ws://${lb}/rt/ws`);
    const b = await WsClient.open(`ws://${lb}/rt/ws`);
    await a.request('join', 'nx');
    await b.request('join', 'nx');
    a.emit('say', 'nx', 'through nginx');
    await b.next((f) => f.event === 'said' && f.args[1] === 'through nginx');
    b.terminate();
    a.emit('say', 'nx', 'while b was away');
    const last = b.frames.filter((f) => f.seq).at(-1)!.seq;
    const again = await WsClient.open(`ws://${lb}/rt/ws?sid=${b.open.sid}&token=${encodeURIComponent(b.open.token)}&last=${last}`);
    expect(again.open).toMatchObject({ sid: b.open.sid, recovered: true });
    await again.next((f) => f.event === 'said' && f.args[1] === 'while b was away');
  });

  it('SSE is not buffered: the open frame and each event arrive while the stream stays open; POSTs land on both nodes', async () => {
    const before = await relayedTotal();
    const c = connect(`http://${lb}`, { transports: ['sse'], WebSocket, EventSource, rememberTransport: false });
    try {
      for (let i = 0; i < 6; i++) expect(await c.request('echo', 'sse', i)).toEqual(['sse', i]);
      expect(c.transport).toBe('sse');
    } finally {
      c.close();
    }
    // half the POSTs went to the node without the session, which relayed them
    expect((await relayedTotal()) - before).toBeGreaterThan(0);
  });

  it('long-polling keeps its session while its requests land on both nodes', async () => {
    const before = await relayedTotal();
    const c = connect(`http://${lb}`, { transports: ['polling'], WebSocket, EventSource, rememberTransport: false });
    try {
      for (let i = 0; i < 6; i++) expect(await c.request('echo', 'poll', i)).toEqual(['poll', i]);
      expect(c.transport).toBe('polling');
    } finally {
      c.close();
    }
    expect((await relayedTotal()) - before).toBeGreaterThan(0);
  });
});
