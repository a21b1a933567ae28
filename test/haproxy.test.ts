/**
 * The deployment shape of docs/deploy.md, for real: HAProxy (Debian's) round-robin in front of
 * two gateway nodes, no stickiness, a worker and NATS behind. Clients go through HAProxy only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { connect } from '../client/switchyard.js';
import { TestCluster } from './cluster-harness.ts';
import { startHaproxy } from './haproxy.ts';
import { http, send, WsClient } from './helpers.ts';

let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;
let lbLog: () => string;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1 });
  ({ proc: haproxy, lb, log: lbLog } = await startHaproxy(cluster));
});

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

async function relayedTotal(): Promise<number> {
  let n = 0;
  for (const g of cluster.gateways) n += (await http(`${g.url}/healthz`)).body.relay.in;
  return n;
}

describe('behind HAProxy, round-robin, no stickiness', () => {
  it('a long-polling client keeps its session while its requests land on both nodes', async () => {
    const before = await relayedTotal();
    const open = (await http(`http://${lb}/rt/poll`)).body[0];
    let token = open.token;
    let last = 0;
    const got: number[] = [];
    for (let i = 0; i < 30; i++) {
      expect((await send(`http://${lb}`, open.sid, token, [{ type: 'event', event: 'echo', args: [i] }])).status).toBe(204);
      while (got.length <= i) {
        const r = await http(`http://${lb}/rt/poll?sid=${open.sid}&token=${encodeURIComponent(token)}&last=${last}`);
        expect(r.status).toBe(200);
        for (const f of r.body) {
          if (f.type === 'open') token = f.token;
          if (!f.seq) continue;
          expect(f.seq).toBe(last + 1);
          last = f.seq;
          got.push(f.args[0]);
        }
      }
    }
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // round-robin really sent requests to the node that does not hold the session
    expect((await relayedTotal()) - before).toBeGreaterThan(10);
  });

  it('WebSocket clients on either node share a room, and a reconnect through HAProxy resumes', async () => {
    // round-robin puts consecutive connections on alternate nodes; take one on each
    const a = await WsClient.open(`ws://${lb}/rt/ws`);
    const node = (c: WsClient) => c.open.token.split('.')[0];
    let b = await WsClient.open(`ws://${lb}/rt/ws`);
    for (let i = 0; i < 5 && node(b) === node(a); i++) b = await WsClient.open(`ws://${lb}/rt/ws`);
    expect(node(a)).not.toBe(node(b));
    await a.request('join', 'lb');
    await b.request('join', 'lb');
    a.emit('say', 'lb', 'through haproxy');
    await b.next((f) => f.event === 'said' && f.args[1] === 'through haproxy');
    b.terminate();
    a.emit('say', 'lb', 'while b was away');
    await a.next((f) => f.event === 'said' && f.args[1] === 'while b was away');
    const last = b.frames.filter((f) => f.seq).at(-1)!.seq;
    const again = await WsClient.open(`ws://${lb}/rt/ws?sid=${b.open.sid}&token=${encodeURIComponent(b.open.token)}&last=${last}`);
    expect(again.open).toMatchObject({ sid: b.open.sid, recovered: true });
    await again.next((f) => f.event === 'said' && f.args[1] === 'while b was away');
  });

  it('the native client works through HAProxy over each transport', async () => {
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      const c = connect(`http://${lb}`, { transports: [transport], WebSocket, EventSource: (await import('eventsource')).EventSource });
      try {
        for (let i = 0; i < 5; i++) {
          const r = await c.request('echo', transport, i).catch((e: Error) => `${transport} #${i}: ${e.message}`);
          expect(r).toEqual([transport, i]);
        }
      } finally {
        c.close();
      }
    }
  });

  it("HAProxy's health checks get answers: no gateway is ever marked down", async () => {
    // checks every 200 ms, 3 failures (500 ms timeout each) mark a server down: a check the
    // gateways do not answer (HAProxy's default HTTP/1.0 request) would show within 2.1 s
    await new Promise((r) => setTimeout(r, 2500));
    expect(lbLog()).not.toMatch(/is DOWN/);
  });
});
