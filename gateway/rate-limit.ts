/**
 * Token buckets per key (client addresses): each holds up to `burst` tokens and refills at
 * `rate` per second; a take costs one. Buckets that are full again are forgotten (`prune`), so
 * memory follows the addresses active in the last `burst / rate` seconds, and is capped at
 * MAX_KEYS besides (past it, the table starts over: a flood of addresses gets fresh buckets, not
 * the node's memory).
 */
const MAX_KEYS = 100_000;

interface Bucket {
  tokens: number;
  /** when `tokens` was last brought up to date (ms) */
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** `rate` 0: no limit */
  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {}

  /** One token of `key`'s bucket at time `now` (ms): false when it has none */
  take(key: string, now: number): boolean {
    if (this.rate <= 0) return true;
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= MAX_KEYS) this.buckets.clear();
      this.buckets.set(key, (b = { tokens: this.burst, at: now }));
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets the buckets that are full again by `now` */
  prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}
