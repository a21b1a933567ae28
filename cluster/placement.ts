/**
 * Partition → worker placement: consistent hashing with bounded loads (Mirrokni, Thorup,
 * Zadimoghaddam 2018). Every participant computes the same table from the same member list, so
 * no coordinator is needed: gateways and workers that agree on who is alive agree on who owns
 * what.
 *
 * - Each worker has `virtualNodes` points on a 32-bit ring.
 * - Partitions are placed in a fixed order; each goes to the first worker clockwise from its hash
 *   whose load is below the cap ⌈(1+ε)·P/W⌉. So no worker holds more than (1+ε)× the average.
 * - A worker joining or leaving moves about its fair share of partitions (plus a little, from
 *   the cap bumping partitions along the ring).
 */

export interface PlacementOptions {
  partitionCount: number;
  /** load bound: no worker owns more than ⌈(1+ε)·P/W⌉ partitions @default 0.25 */
  epsilon?: number;
  /** ring points per worker @default 400 */
  virtualNodes?: number;
}

/** owner[p] = the worker id that owns partition p ('' when there are no workers) */
export function place(workers: readonly string[], o: PlacementOptions): string[] {
  const P = o.partitionCount;
  const owners = new Array<string>(P).fill('');
  if (workers.length === 0) return owners;
  const ids = [...new Set(workers)].sort();
  const eps = o.epsilon ?? 0.25;
  const cap = Math.ceil(((1 + eps) * P) / ids.length);
  const vn = o.virtualNodes ?? 400;

  const ring: Array<{ h: number; w: number }> = [];
  for (let w = 0; w < ids.length; w++) for (let i = 0; i < vn; i++) ring.push({ h: hash32(`${ids[w]}#${i}`), w });
  ring.sort((a, b) => a.h - b.h || a.w - b.w);
  const hashes = ring.map((r) => r.h);

  const load = new Array<number>(ids.length).fill(0);
  for (let p = 0; p < P; p++) {
    let i = lowerBound(hashes, hash32(`partition-${p}`));
    for (;;) {
      if (i === ring.length) i = 0;
      const w = ring[i]!.w;
      if (load[w]! < cap) {
        load[w]!++;
        owners[p] = ids[w]!;
        break;
      }
      i++;
    }
  }
  return owners;
}

/** fraction of partitions whose owner differs between two tables */
export function movedFraction(a: readonly string[], b: readonly string[]): number {
  let moved = 0;
  for (let p = 0; p < a.length; p++) if (a[p] !== b[p]) moved++;
  return moved / a.length;
}

/** partitions per worker */
export function loads(owners: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const w of owners) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** FNV-1a with a murmur3 finalizer: cheap, and well spread even for similar strings */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
