/**
 * The Bus contract: one behaviour list, run against every implementation (MemoryBus now,
 * NatsBus in a cluster). Call `busContract(name, factory)` from a test file.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Bus, Envelope } from '../cluster/bus.ts';

const ev = (i: number): Envelope => ({ t: 'emit', sid: 's', event: 'e', args: [i] });

export function busContract(name: string, make: () => Promise<Bus>): void {
  describe(`Bus contract: ${name}`, () => {
    it('delivers a published envelope to every subscriber of the subject, and only them', async () => {
      const bus = await make();
      const a: Envelope[] = [];
      const b: Envelope[] = [];
      const other: Envelope[] = [];
      bus.subscribe('sy.test.x', (e) => a.push(e));
      bus.subscribe('sy.test.x', (e) => b.push(e));
      bus.subscribe('sy.test.y', (e) => other.push(e));
      await bus.flush();
      bus.publish('sy.test.x', ev(1));
      await bus.flush();
      await vi.waitFor(() => expect(a).toEqual([ev(1)]), { timeout: 5000 });
      await vi.waitFor(() => expect(b).toEqual([ev(1)]), { timeout: 5000 });
      expect(other).toEqual([]);
      await bus.close();
    });

    it("keeps one publisher's order, across subjects too", async () => {
      const bus = await make();
      const got: number[] = [];
      bus.subscribe('sy.test.o1', (e) => got.push((e as any).args[0]));
      bus.subscribe('sy.test.o2', (e) => got.push((e as any).args[0]));
      await bus.flush();
      for (let i = 0; i < 2000; i++) bus.publish(i % 2 ? 'sy.test.o1' : 'sy.test.o2', ev(i));
      await bus.flush();
      await vi.waitFor(() => expect(got).toHaveLength(2000), { timeout: 10_000 });
      expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i));
      await bus.close();
    });

    it('a handler that publishes does not overtake the message it is handling', async () => {
      const bus = await make();
      const second: number[] = [];
      // the first subscriber republishes; the second must still see 1 before 2
      bus.subscribe('sy.test.a', (e) => {
        if ((e as any).args[0] === 1) bus.publish('sy.test.a', ev(2));
      });
      bus.subscribe('sy.test.a', (e) => second.push((e as any).args[0]));
      await bus.flush();
      bus.publish('sy.test.a', ev(1));
      await bus.flush();
      await vi.waitFor(() => expect(second).toHaveLength(2), { timeout: 5000 });
      expect(second).toEqual([1, 2]);
      await bus.close();
    });

    it('stops delivering after unsubscribe', async () => {
      const bus = await make();
      const got: Envelope[] = [];
      const sub = bus.subscribe('sy.test.u', (e) => got.push(e));
      await bus.flush();
      bus.publish('sy.test.u', ev(1));
      await bus.flush();
      await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: 5000 });
      sub.unsubscribe();
      sub.unsubscribe(); // twice is harmless
      await bus.flush();
      bus.publish('sy.test.u', ev(2));
      // a marker on another subject proves the bus moved past the second publish
      const marker: Envelope[] = [];
      bus.subscribe('sy.test.m', (e) => marker.push(e));
      await bus.flush();
      bus.publish('sy.test.m', ev(3));
      await bus.flush();
      await vi.waitFor(() => expect(marker).toHaveLength(1), { timeout: 5000 });
      expect(got).toEqual([ev(1)]);
      await bus.close();
    });

    it('a throwing handler does not stop delivery to the others', async () => {
      const bus = await make();
      const got: Envelope[] = [];
      const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
      bus.subscribe('sy.test.t', () => {
        throw new Error('boom');
      });
      bus.subscribe('sy.test.t', (e) => got.push(e));
      await bus.flush();
      bus.publish('sy.test.t', ev(1));
      bus.publish('sy.test.t', ev(2));
      await bus.flush();
      await vi.waitFor(() => expect(got).toEqual([ev(1), ev(2)]), { timeout: 5000 });
      spy.mockRestore();
      await bus.close();
    });

    it('carries every field of every envelope kind unchanged', async () => {
      const bus = await make();
      const got: Envelope[] = [];
      bus.subscribe('sy.test.k', (e) => got.push(e));
      await bus.flush();
      const all: Envelope[] = [
        {
          t: 'open',
          sid: 'a',
          node: 'n1',
          n: 1,
          transport: 'sse',
          meta: { ip: '::1', origin: 'o', userAgent: 'ua', query: { x: 'y' }, auth: '', dialect: 'native' },
        },
        { t: 'event', sid: 'a', node: 'n1', n: 2, event: 'e', args: [1, 'two', { three: [3] }, null, true], ack: 7 },
        { t: 'close', sid: 'a', node: 'n1', n: 3, code: 1000, reason: 'r' },
        { t: 'reply', sid: 'a', ack: 'k', error: 'bad' },
        { t: 'broadcast', room: 'r', event: 'e', args: [], except: ['a', 'b'] },
      ];
      for (const e of all) bus.publish('sy.test.k', e);
      await bus.flush();
      await vi.waitFor(() => expect(got).toHaveLength(all.length), { timeout: 5000 });
      expect(got).toEqual(all);
      await bus.close();
    });
  });
}
