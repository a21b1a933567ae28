/** transports/seam/entry.ts on its own: measuring values for the outbox, and what a walk refuses. */
import { describe, expect, it } from 'vitest';
import { acceptable, Entry, MAX_DEPTH, MAX_NODES, measure } from '../transports/seam/entry.ts';

/** a DAG an app can build: level k is an array of `fanOut` references to level k−1 (fanOut^depth paths) */
function dag(depth: number, fanOut = 10): unknown[] {
  let v: unknown[] = [1];
  for (let k = 0; k < depth; k++) v = Array(fanOut).fill(v);
  return v;
}

describe('measure and acceptable', () => {
  it('count every value, key and nested value against MAX_NODES', () => {
    // an array of n numbers is n + 1 values
    expect(measure(Array(MAX_NODES - 1).fill(0))).toBeGreaterThan(0);
    expect(measure(Array(MAX_NODES).fill(0))).toBe(-1);
    expect(acceptable(Array(MAX_NODES - 1).fill(0))).toBe(true);
    expect(acceptable(Array(MAX_NODES).fill(0))).toBe(false);
    // an object's keys count too: [object of k keys, ...z numbers] is 2 + 2k + z values
    const k = 1000;
    const o = Object.fromEntries(Array.from({ length: k }, (_, i) => [`k${i}`, 0]));
    const z = MAX_NODES - 2 - 2 * k;
    expect(measure([o, ...Array(z).fill(0)])).toBeGreaterThan(0);
    expect(measure([o, ...Array(z + 1).fill(0)])).toBe(-1);
  });

  it('refuse a DAG with shared references at once, instead of walking its fan-out^depth paths', () => {
    const v = dag(12); // 10^12 paths through 13 arrays
    const t = performance.now();
    expect(measure(v)).toBe(-1);
    expect(acceptable(v)).toBe(false);
    expect(Entry.event('e', [v])).toBeNull();
    expect(Entry.reply(1, [v], undefined)).toBeNull();
    expect(performance.now() - t).toBeLessThan(1000);
    // shared references within the budget are fine: a small DAG is measured as the tree it stands for
    expect(measure(dag(3))).toBeGreaterThan(0);
  });

  it('start each walk with a whole budget, and keep refusing what they refused before', () => {
    const big = Array(MAX_NODES >> 1).fill(0);
    for (let i = 0; i < 4; i++) expect(measure(big)).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) expect(acceptable(big)).toBe(true);
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
    expect(measure(deep)).toBe(-1);
    expect(measure([10n])).toBe(-1);
  });
});
