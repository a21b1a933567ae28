import type { Entry } from '../transports/seam/entry.ts';

export interface OutboxLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** bytes held by all the outboxes counted with these limits (a node's live sessions: `/metrics`) */
  held: number;
}

/** slots of a session's first ring (it doubles as entries pile up, up to the entry limit) */
const FIRST_RING = 8;

/**
 * A session's outbox: the newest neutral entries for the client, for writing and for replay on a
 * resume, bounded in entries (`maxEntries`) and in bytes (`maxBytes`, from Entry.size). seq runs
 * 1, 2, 3…; the outbox holds seqs `first`…`last`. Storage grows with use (an idle session holds
 * no array at all). Who decides what may be dropped is the session (see Session.push).
 *
 * The entries sit in a ring whose length is a power of two, entry `seq` in slot `seq & mask`: a
 * full outbox that drops its oldest entry for each new one (a live WebSocket, whose client never
 * acknowledges) writes one slot and allocates nothing, so the garbage collector never has to copy
 * a fresh array of a thousand entries.
 */
export class Outbox {
  private buf: Array<Entry | undefined> | null = null;
  /** seq of the oldest entry held (first > last when empty) */
  first = 1;
  /** seq of the newest entry */
  last = 0;
  /** bytes held (sum of Entry.size) */
  bytes = 0;

  /** `limits` is one object shared by every session of a node */
  constructor(private limits: OutboxLimits) {}

  /** From now on counted with `other` (the session left the node's table: its bytes leave the node's count) */
  recount(other: OutboxLimits): void {
    this.limits.held -= this.bytes;
    other.held += this.bytes;
    this.limits = other;
  }

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
    this.first = after + 1;
    this.last = after;
    this.limits.held -= this.bytes;
    this.bytes = 0;
  }

  /** Appends the entry for seq `last + 1` */
  push(e: Entry): void {
    let buf = this.buf;
    const seq = this.last + 1;
    if (buf === null) this.buf = buf = new Array<Entry | undefined>(FIRST_RING);
    else if (seq - this.first >= buf.length) buf = this.grow(buf);
    buf[seq & (buf.length - 1)] = e;
    this.last = seq;
    this.bytes += e.size;
    this.limits.held += e.size;
  }

  /** A ring twice as long, with the entries held at their slots in it */
  private grow(old: Array<Entry | undefined>): Array<Entry | undefined> {
    const buf = new Array<Entry | undefined>(old.length * 2);
    const from = old.length - 1;
    const to = buf.length - 1;
    for (let seq = this.first; seq <= this.last; seq++) buf[seq & to] = old[seq & from];
    return (this.buf = buf);
  }

  /** Drops the oldest entry */
  shift(): void {
    const buf = this.buf;
    if (buf === null || this.size === 0) return;
    const slot = this.first & (buf.length - 1);
    const size = buf[slot]!.size;
    this.bytes -= size;
    this.limits.held -= size;
    buf[slot] = undefined;
    this.first++;
    if (this.size === 0) this.buf = null;
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
    const buf = this.buf;
    if (seq < this.first || seq > this.last || buf === null) return undefined;
    return buf[seq & (buf.length - 1)];
  }

  /** entries with seq in (after, last] that are still held */
  since(after: number): Entry[] {
    const buf = this.buf;
    if (buf === null || after >= this.last) return [];
    const mask = buf.length - 1;
    const out: Entry[] = [];
    for (let seq = Math.max(after + 1, this.first); seq <= this.last; seq++) out.push(buf[seq & mask]!);
    return out;
  }
}
