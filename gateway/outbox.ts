import type { Frame } from '../transports/frames.ts';

/**
 * A session's outbox: the last `max` server frames that carry a `seq`, for writing and for
 * replay on resume. seq runs 1, 2, 3…; the outbox holds seqs `first`…`last`.
 * Storage grows with use (an idle session holds no array at all).
 */
export class Outbox {
  private buf: Frame[] | null = null;
  private start = 0;
  /** seq of the oldest frame held (first > last when empty) */
  first = 1;
  /** seq of the newest frame */
  last = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.last - this.first + 1;
  }

  /** Empties the outbox so that the next frame pushed gets seq `after + 1` (shadow sessions) */
  reset(after: number): void {
    this.buf = null;
    this.start = 0;
    this.first = after + 1;
    this.last = after;
  }

  /** Appends the frame for seq `last + 1`; drops the oldest when full */
  push(frame: Frame): void {
    const buf = (this.buf ??= []);
    buf.push(frame);
    this.last++;
    if (this.last - this.first + 1 > this.max) {
      buf[this.start++] = '';
      this.first++;
      // compact now and then: amortized O(1) and at most ~2× max entries
      if (this.start >= 64 && this.start * 2 >= buf.length) {
        this.buf = buf.slice(this.start);
        this.start = 0;
      }
    }
  }

  /** the frame for `seq`, if still held */
  get(seq: number): Frame | undefined {
    if (seq < this.first || seq > this.last || this.buf === null) return undefined;
    return this.buf[this.start + (seq - this.first)];
  }

  /** frames with seq in (after, last] (the caller checks `after >= first - 1`) */
  since(after: number): Frame[] {
    if (this.buf === null || after >= this.last) return [];
    const from = Math.max(after + 1, this.first);
    return this.buf.slice(this.start + (from - this.first), this.start + (this.last - this.first + 1));
  }
}
