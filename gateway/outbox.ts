import type { Entry } from '../transports/entry.ts';

export interface OutboxLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

/**
 * A session's outbox: the newest neutral entries for the client, for writing and for replay on a
 * resume, bounded in entries (`maxEntries`) and in bytes (`maxBytes`, from Entry.size). seq runs
 * 1, 2, 3…; the outbox holds seqs `first`…`last`. Storage grows with use (an idle session holds
 * no array at all). Who decides what may be dropped is the session (see Session.enqueue).
 */
export class Outbox {
  private buf: Entry[] | null = null;
  private start = 0;
  /** seq of the oldest entry held (first > last when empty) */
  first = 1;
  /** seq of the newest entry */
  last = 0;
  /** bytes held (sum of Entry.size) */
  bytes = 0;

  /** `limits` is one object shared by every session of a node */
  constructor(readonly limits: OutboxLimits) {}

  get size(): number {
    return this.last - this.first + 1;
  }

  /** Whether one more entry of `bytes` fits without dropping anything */
  fits(bytes: number): boolean {
    return this.size < this.limits.maxEntries && this.bytes + bytes <= this.limits.maxBytes;
  }

  /** Empties the outbox so that the next entry pushed gets seq `after + 1` (shadow sessions) */
  reset(after: number): void {
    this.buf = null;
    this.start = 0;
    this.first = after + 1;
    this.last = after;
    this.bytes = 0;
  }

  /** Appends the entry for seq `last + 1` */
  push(e: Entry): void {
    (this.buf ??= []).push(e);
    this.last++;
    this.bytes += e.size;
  }

  /** Drops the oldest entry */
  shift(): void {
    const buf = this.buf;
    if (buf === null || this.size === 0) return;
    this.bytes -= buf[this.start]!.size;
    buf[this.start++] = undefined as unknown as Entry;
    this.first++;
    if (this.size === 0) {
      this.buf = null;
      this.start = 0;
    } else if (this.start >= 64 && this.start * 2 >= buf.length) {
      // compact now and then: amortized O(1) and at most ~2× the entries held
      this.buf = buf.slice(this.start);
      this.start = 0;
    }
  }

  /** Drops every entry up to `seq` (the client has them) */
  release(seq: number): void {
    if (seq >= this.last) {
      if (this.size > 0) this.reset(this.last);
      return;
    }
    while (this.first <= seq) this.shift();
  }

  /** the entry for `seq`, if still held */
  get(seq: number): Entry | undefined {
    if (seq < this.first || seq > this.last || this.buf === null) return undefined;
    return this.buf[this.start + (seq - this.first)];
  }

  /** entries with seq in (after, last] that are still held */
  since(after: number): Entry[] {
    if (this.buf === null || after >= this.last) return [];
    const from = Math.max(after + 1, this.first);
    return this.buf.slice(this.start + (from - this.first), this.start + (this.last - this.first + 1));
  }
}
