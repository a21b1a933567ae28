import { describe, expect, it } from 'vitest';
import { loads, movedFraction, place } from '../cluster/placement.ts';

const P = 1024;
const EPS = 0.25;
const ids = (n: number) => Array.from({ length: n }, (_, i) => `worker-${(i * 7919).toString(36)}`);

describe('placement: consistent hashing with bounded loads', () => {
  it('gives every partition an owner and is the same whatever the member order', () => {
    const w = ids(5);
    const a = place(w, { partitionCount: P });
    expect(a.every((o) => w.includes(o))).toBe(true);
    expect(place([...w].reverse(), { partitionCount: P })).toEqual(a);
    expect(place([], { partitionCount: 8 })).toEqual(Array(8).fill(''));
    expect(new Set(place(['only'], { partitionCount: P }))).toEqual(new Set(['only']));
  });

  it('no worker holds more than (1+ε)× the average, for 1 to 32 workers', () => {
    for (let n = 1; n <= 32; n++) {
      const l = [...loads(place(ids(n), { partitionCount: P, epsilon: EPS })).values()];
      expect(Math.max(...l)).toBeLessThanOrEqual(Math.ceil(((1 + EPS) * P) / n));
      expect(l.reduce((a, b) => a + b, 0)).toBe(P);
    }
  });

  it('a joining or leaving worker moves no more than its fair share plus ε, and about its fair share on average', () => {
    let sum = 0;
    let count = 0;
    for (let n = 1; n <= 24; n++) {
      const w = ids(n);
      const before = place(w, { partitionCount: P, epsilon: EPS });
      const joined = movedFraction(before, place([...w, 'newcomer'], { partitionCount: P, epsilon: EPS }));
      expect(joined).toBeLessThanOrEqual(1 / (n + 1) + EPS);
      sum += joined / (1 / (n + 1));
      count++;
      for (let k = 0; k < n && n > 1; k++) {
        const left = movedFraction(
          before,
          place(
            w.filter((_, i) => i !== k),
            { partitionCount: P, epsilon: EPS },
          ),
        );
        expect(left).toBeLessThanOrEqual(1 / n + EPS);
        // what the leaver owned must move; beyond that, little else
        expect(left).toBeGreaterThanOrEqual((loads(before).get(w[k]!) ?? 0) / P);
        sum += left / (1 / n);
        count++;
      }
    }
    expect(sum / count).toBeLessThan(1.1);
  });
});
