import { describe, expect, it } from 'vitest';
import { Outbox } from '../gateway/outbox.ts';

describe('Outbox', () => {
  it('numbers frames from 1 and returns them by seq', () => {
    const o = new Outbox(4);
    expect(o.size).toBe(0);
    o.push('a');
    o.push('b');
    expect([o.first, o.last, o.size]).toEqual([1, 2, 2]);
    expect(o.get(1)).toBe('a');
    expect(o.get(2)).toBe('b');
    expect(o.get(3)).toBeUndefined();
    expect(o.since(0)).toEqual(['a', 'b']);
    expect(o.since(1)).toEqual(['b']);
    expect(o.since(2)).toEqual([]);
  });

  it('keeps only the newest `max` frames', () => {
    const o = new Outbox(3);
    for (let i = 1; i <= 10; i++) o.push(String(i));
    expect([o.first, o.last, o.size]).toEqual([8, 10, 3]);
    expect(o.get(7)).toBeUndefined();
    expect(o.since(0)).toEqual(['8', '9', '10']);
    expect(o.since(8)).toEqual(['9', '10']);
  });

  it('stays correct across many compactions', () => {
    const o = new Outbox(100);
    for (let i = 1; i <= 100_000; i++) {
      o.push(String(i));
      if (i % 997 === 0) expect(o.get(i - 50)).toBe(String(i - 50));
    }
    expect(o.since(99_990)).toEqual(Array.from({ length: 10 }, (_, k) => String(99_991 + k)));
  });
});
