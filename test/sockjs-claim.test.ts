/**
 * A SockJS client chooses its session id, so a node that does not find the id in the cluster
 * makes the session itself. The sid's worker has the last word: when another node holds the
 * session (its holder was slow to answer the lookup) or it ended a moment ago, the worker says so
 * and the node routes the request there, instead of making a second session of one id. Here one
 * gateway does not wait for the lookup at all (--sockjs-lookup-ms 0), which makes that race
 * certain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { http } from './helpers.ts';

let cluster: TestCluster;
let waits: Proc;
let hasty: Proc;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 0, workers: 1 });
  waits = await cluster.addGateway('g1');
  hasty = await cluster.addGateway('g2', ['--sockjs-lookup-ms', '0']);
});

afterAll(async () => {
  await cluster?.stop();
});

const post = async (g: Proc, id: string, path: string, body?: string) => {
  const r = await fetch(`${g.url}/sockjs/000/${id}/${path}`, { method: 'POST', body });
  return { status: r.status, body: await r.text() };
};
const sessionsOn = async (g: Proc): Promise<number> => (await http(`${g.url}/healthz`)).body.sessions;
const event = (e: Record<string, unknown>) => JSON.stringify([JSON.stringify({ type: 'event', ...e })]);

describe('SockJS: one session per client id, whichever node a request reaches first', () => {
  it("a node that does not wait for the lookup is sent to the holder by the sid's worker: no second session", async () => {
    const id = `claim${Date.now()}`;
    const before = await sessionsOn(hasty);
    expect(await post(waits, id, 'xhr')).toEqual({ status: 200, body: 'o\n' });
    expect((await post(waits, id, 'xhr_send', event({ event: 'echo', args: ['kept'], ack: 1 }))).status).toBe(204);
    // the hasty node claims the id, the worker says g1 has it: the poll is relayed there
    const r = await post(hasty, id, 'xhr');
    expect(r.status).toBe(200);
    expect(r.body).not.toBe('o\n');
    expect(r.body).toContain('\\"ack\\":1');
    expect(r.body).toContain('kept');
    // and the session goes on through either node
    expect((await post(hasty, id, 'xhr_send', event({ event: 'echo', args: ['again'], ack: 2 }))).status).toBe(204);
    const next = await post(hasty, id, 'xhr');
    expect(next.body).toContain('again');
    expect(await sessionsOn(hasty)).toBe(before);
  });

  it('a session that ended on one node stays ended on another (its close, never a fresh `o`)', async () => {
    const id = `ended${Date.now()}`;
    expect(await post(waits, id, 'xhr')).toEqual({ status: 200, body: 'o\n' });
    expect((await post(waits, id, 'xhr_send', event({ event: 'kick-me-not' }))).status).toBe(204);
    expect((await post(waits, id, 'xhr_send', JSON.stringify([JSON.stringify({ type: 'close' })]))).status).toBe(204);
    // the close reached the worker: g1 answers with the close
    const here = await post(waits, id, 'xhr');
    expect(here.body).toMatch(/^c\[1000,/);
    // g2 does not know it; it claims the id and the worker says it ended
    const there = await post(hasty, id, 'xhr');
    expect(there).toEqual(here);
  });
});
