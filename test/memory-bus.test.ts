import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { busContract } from './bus-contract.ts';

busContract('MemoryBus', async () => new MemoryBus());

describe('MemoryBus specifics', () => {
  it('delivers synchronously when not already delivering (a whole round trip fits in one uWS callback)', () => {
    const bus = new MemoryBus();
    const got: string[] = [];
    bus.subscribe('a', () => {
      got.push('a');
      bus.publish('b', { t: 'accept', sid: 'x' });
      got.push('a-after-publish');
    });
    bus.subscribe('b', () => got.push('b'));
    bus.publish('a', { t: 'accept', sid: 'x' });
    // nested publish is queued until the running handler returns, then delivered before publish returns
    expect(got).toEqual(['a', 'a-after-publish', 'b']);
  });

  it('drops the subject when its last subscriber leaves', () => {
    const bus = new MemoryBus();
    const s1 = bus.subscribe('a', () => {});
    const s2 = bus.subscribe('a', () => {});
    s1.unsubscribe();
    expect(bus.subjectCount()).toBe(1);
    s2.unsubscribe();
    expect(bus.subjectCount()).toBe(0);
  });
});
