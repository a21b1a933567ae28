/**
 * sockjs-client through HAProxy round-robin, no stickiness, in front of two gateway nodes on
 * NATS: the client chooses the session id, so each node looks the session up in the cluster
 * before making one; receives and sends land on either node and are relayed to the one holding it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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

/** relayed requests node `url` took in so far */
async function relayedInto(url: string): Promise<number> {
  return (await http(`${url}/healthz`)).body.relay.in;
}

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

  it('a second poll, on either node, is told c[2010] while one is held through the other; the first stays', async () => {
    const [a, b] = cluster.gateways;
    const post = async (base: string, path: string, body?: string) => {
      const r = await fetch(`${base}/sockjs/000/dup1/${path}`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
      return r.text();
    };
    expect(await post(a!.url, 'xhr')).toBe('o\n');
    // a poll held through node b: node a holds the session, and counts the relayed receiver once it is bound
    const before = await relayedInto(a!.url);
    const held = post(b!.url, 'xhr');
    await vi.waitFor(async () => expect(await relayedInto(a!.url)).toBeGreaterThan(before), { timeout: 5000, interval: 20 });
    expect(await post(a!.url, 'xhr')).toBe('c[2010,"Another connection still open"]\n');
    expect(await post(b!.url, 'xhr')).toBe('c[2010,"Another connection still open"]\n');
    await post(a!.url, 'xhr_send', JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['still'] })]));
    expect(await held).toContain('still');
  });

  for (const [kind, method, wrap] of [
    ['xhr_streaming', 'POST', (f: string) => f + '\n'],
    ['eventsource', 'GET', (f: string) => `data: ${f}\r\n\r\n`],
  ] as const) {
    it(`${kind}: a second stream sent to the other node is told c[2010]; the first stays and gets what follows`, async () => {
      const [a, b] = cluster.gateways;
      const id = `dup-${kind}`;
      const url = (base: string, path: string) => `${base}/sockjs/000/${id}/${path}`;
      // the first stream makes the session on node a: once its open is read, it is the session's receiver
      const first = await fetch(url(a!.url, kind), { method });
      const reader = first.body!.getReader();
      let text = '';
      const read = async (until: string) => {
        while (!text.includes(until)) text += Buffer.from((await reader.read()).value!).toString();
      };
      await read(wrap('o'));
      const second = await fetch(url(b!.url, kind), { method, signal: AbortSignal.timeout(10_000) });
      expect(second.status).toBe(200);
      expect((await second.text()).endsWith(wrap('c[2010,"Another connection still open"]'))).toBe(true);
      await fetch(url(b!.url, 'xhr_send'), {
        method: 'POST',
        body: JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['to the first'] })]),
      });
      await read('to the first');
      await reader.cancel();
    });
  }
});
