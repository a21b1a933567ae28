import { describe, expect, it } from 'vitest';
import { Outbox } from '../gateway/outbox.ts';
import { Entry } from '../transports/seam/entry.ts';

const ev = (name: string) => Entry.event(name, [])!;
const names = (es: Entry[]) => es.map((e) => e.event);

describe('Outbox', () => {
  it('numbers entries from 1 and returns them by seq', () => {
    const o = new Outbox({ maxEntries: 4, maxBytes: 1 << 20, held: 0 });
    expect(o.size).toBe(0);
    o.push(ev('a'));
    o.push(ev('b'));
    expect([o.first, o.last, o.size]).toEqual([1, 2, 2]);
    expect(o.get(1)!.event).toBe('a');
    expect(o.get(2)!.event).toBe('b');
    expect(o.get(3)).toBeUndefined();
    expect(names(o.since(0))).toEqual(['a', 'b']);
    expect(names(o.since(1))).toEqual(['b']);
    expect(o.since(2)).toEqual([]);
  });

  it('counts bytes and says whether one more fits, in entries and in bytes', () => {
    const o = new Outbox({ maxEntries: 3, maxBytes: 200, held: 0 });
    const big = Entry.event('x', ['y'.repeat(100)])!;
    expect(o.fits(big.size)).toBe(true);
    o.push(big);
    expect(o.bytes).toBe(big.size);
    expect(o.fits(big.size)).toBe(false);
    o.shift();
    expect([o.bytes, o.size, o.first]).toEqual([0, 0, 2]);
    for (let i = 0; i < 3; i++) o.push(ev(String(i)));
    expect(o.fits(1)).toBe(false);
  });

  it('releases what the client acknowledged', () => {
    const o = new Outbox({ maxEntries: 10, maxBytes: 1 << 20, held: 0 });
    for (let i = 1; i <= 5; i++) o.push(ev(String(i)));
    o.release(3);
    expect([o.first, o.last]).toEqual([4, 5]);
    expect(names(o.since(0))).toEqual(['4', '5']);
    o.release(9);
    expect([o.first, o.last, o.size, o.bytes]).toEqual([6, 5, 0, 0]);
    o.push(ev('6'));
    expect(o.get(6)!.event).toBe('6');
  });

  it('stays correct across many compactions', () => {
    const o = new Outbox({ maxEntries: 100, maxBytes: 1 << 30, held: 0 });
    for (let i = 1; i <= 100_000; i++) {
      o.push(ev(String(i)));
      if (o.size > 100) o.shift();
      if (i % 997 === 0) expect(o.get(i - 50)!.event).toBe(String(i - 50));
    }
    expect(names(o.since(99_990))).toEqual(Array.from({ length: 10 }, (_, k) => String(99_991 + k)));
  });
});
