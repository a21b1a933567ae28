/**
 * sockjs-client through HAProxy round-robin, no stickiness, in front of two gateway nodes on
 * NATS: the client chooses the session id, so each node looks the session up in the cluster
 * before making one; receives and sends land on either node and are relayed to the one holding it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import SockJS from 'sockjs-client';
import { TestCluster } from './cluster-harness.ts';
import { startHaproxy } from './haproxy.ts';
import { http, until } from './helpers.ts';

let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;
const clients: Array<{ close(): void }> = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1 });
  ({ proc: haproxy, lb } = await startHaproxy(cluster));
});

afterAll(async () => {
  for (const c of clients) c.close();
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

async function relayedIn(): Promise<number> {
  let n = 0;
  for (const g of cluster.gateways) n += (await http(`${g.url}/healthz`)).body.relay.in;
  return n;
}

describe('sockjs-client behind HAProxy round-robin, no stickiness', () => {
  for (const transport of ['xhr-polling', 'xhr-streaming']) {
    it(`${transport}: receives and sends cross nodes; one session, nothing lost or reordered`, async () => {
      const before = await relayedIn();
      const s = new SockJS(`http://${lb}/sockjs`, null, { transports: [transport] });
      clients.push(s);
      const frames: Array<Record<string, any>> = [];
      s.onmessage = (m: { data: string }) => void frames.push(JSON.parse(m.data));
      await new Promise<void>((resolve, reject) => {
        s.onopen = () => resolve();
        s.onclose = (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      for (let i = 1; i <= 15; i++) {
        s.send(JSON.stringify({ type: 'event', event: 'echo', args: [i], ack: i }));
        await until(() => frames.find((f) => f.type === 'reply' && f.ack === i), 10_000);
      }
      expect(frames.filter((f) => f.type === 'reply').map((f) => f.args[0])).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      expect((await relayedIn()) - before).toBeGreaterThan(3);
      s.close();
    });
  }

  it('a second receiver on the other node is told c[2010]; the first stays', async () => {
    const [a, b] = cluster.gateways;
    const post = async (base: string, path: string, body?: string) => {
      const r = await fetch(`${base}/sockjs/000/dup1/${path}`, { method: 'POST', body });
      return r.text();
    };
    expect(await post(a!.url, 'xhr')).toBe('o\n');
    const held = post(a!.url, 'xhr');
    await new Promise((r) => setTimeout(r, 100));
    expect(await post(b!.url, 'xhr')).toBe('c[2010,"Another connection still open"]\n');
    await post(b!.url, 'xhr_send', JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['still'] })]));
    expect(await held).toContain('still');
  });
});
