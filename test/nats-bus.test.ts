import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NatsBus } from '../cluster/nats-bus.ts';
import { busContract } from './bus-contract.ts';
import { startNatsCluster, startNatsServer, type NatsServer } from './nats-server.ts';
import { log } from '../lib/log.ts';

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

busContract('NatsBus', () => NatsBus.connect({ servers: [server.url] }));

describe('NatsBus on a 3-server cluster', () => {
  let cluster: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(cluster.map((s) => s.stop()));
  });

  it('carries messages between clients on different servers, and survives the death of one server', async () => {
    cluster = await startNatsCluster(3);
    const urls = cluster.map((s) => s.url);
    // a on server 0 first, b on server 1 first; each knows all three
    const a = await NatsBus.connect({ servers: [urls[0]!, urls[1]!, urls[2]!], name: 'a' });
    const b = await NatsBus.connect({ servers: [urls[1]!, urls[2]!, urls[0]!], name: 'b' });
    const got: number[] = [];
    b.subscribe('sy.test.c', (e) => got.push((e as any).args[0]));
    await b.flush();
    /** publishes `n` from a until b has it (see below why once may not be enough) */
    const publishUntilHeard = (n: number, interval: number) =>
      vi.waitFor(
        async () => {
          a.publish('sy.test.c', { t: 'emit', sid: 's', event: 'e', args: [n] });
          await a.flush();
          expect(got).toContain(n);
        },
        { timeout: 10_000, interval },
      );
    // b's interest reaches a's server over the route a moment after b's own server has it: until
    // then a message from a finds no subscriber. Publish until one gets through.
    await publishUntilHeard(1, 100);

    // kill the server `a` is on: it reconnects to another and carries on
    const before = a.server;
    cluster.find((s) => before.endsWith(`:${s.port}`))!.kill();
    await vi.waitFor(() => expect(a.server).not.toBe(before), { timeout: 10_000 });
    await publishUntilHeard(2, 200);
    await a.close();
    await b.close();
  });
});

describe('NatsBus message size', () => {
  it("a turn's envelopes larger together than max_payload go as several messages; one larger alone is dropped, and the bus goes on", async () => {
    const a = await NatsBus.connect({ servers: [server.url] });
    const b = await NatsBus.connect({ servers: [server.url] });
    const got: string[] = [];
    b.subscribe('sy.test.big', (e) => got.push(String((e as any).args[0]).slice(0, 3)));
    await b.flush();
    const errors = vi.spyOn(log, 'error').mockImplementation(() => {});
    try {
      const chunk = (tag: string, size: number) => ({ t: 'emit', sid: 's', event: 'e', args: [tag + 'x'.repeat(size)] }) as any;
      // one turn, one subject: batched, and 3 × 600 KB is over the server's 1 MB
      for (const tag of ['aaa', 'bbb', 'ccc']) a.publish('sy.test.big', chunk(tag, 600_000));
      a.publish('sy.test.big', chunk('ddd', 2_000_000));
      a.publish('sy.test.big', chunk('eee', 10));
      await a.flush();
      await vi.waitFor(() => expect(got).toEqual(['aaa', 'bbb', 'ccc', 'eee']), { timeout: 5000 });
      expect(errors.mock.calls.some((c) => /max_payload/.test(String(c[1])))).toBe(true);
    } finally {
      errors.mockRestore();
      await a.close();
      await b.close();
    }
  });
});
