/**
 * At-least-once delivery between a gateway node and the workers (cluster mode).
 *
 * Client → worker: every envelope of a session carries `n`; it is kept until a worker
 * acknowledges it (any output carrying `n`, or an `ack`) and resent, in order, when none did
 * within `ackTimeoutMs`. A worker that does not know the session asks `who`: it is re-opened there.
 * Worker → client: outputs carry `o`; they are applied in `o` order, once, and a gap is asked for
 * again (`resend`), e.g. after a NATS server died with a message in flight.
 *
 * Both directions are bounded, so that memory cannot grow without end and a session cannot stall
 * for good. A worker keeps only its last 256 outputs of a session for resending, so a gap followed
 * by that many outputs can never be filled; a session ends (through `lost`) with
 * - `SY_ERR_OUTPUT_LOST` when more than MAX_EARLY_OUTPUTS outputs wait behind a gap, or when a gap
 *   was asked for MAX_GAP_ASKS times (at least `ackTimeoutMs` apart) and is still not filled;
 * - `SY_ERR_BACKLOG_FULL` when MAX_UNACKED of its envelopes wait for a worker's acknowledgement
 *   and the client sends another: it sends faster than the application handles its events, or no
 *   worker has answered for a long while.
 * Delivery then forgets the session (its held outputs and unacknowledged envelopes).
 */
import type { Bus } from '../cluster/bus.ts';
import { KEEP_OUTPUTS } from '../cluster/worker.ts';
import type { InboundEnvelope, NodeEnvelope } from '../cluster/envelope.ts';
import type { ResolvedOptions } from './options.ts';
import type { Session } from './session.ts';

/**
 * Outputs held behind a gap, at most (per session). The same as the outputs a worker keeps for
 * resending (KEEP_OUTPUTS in cluster/worker.ts): with this many held, the missing one is older
 * than anything the worker still has.
 */
export const MAX_EARLY_OUTPUTS = KEEP_OUTPUTS;
/** Client → worker envelopes waiting for an acknowledgement, at most (per session) */
export const MAX_UNACKED = 1024;
/** Times a gap is asked for (`resend`, at least `ackTimeoutMs` apart) before the session ends */
export const MAX_GAP_ASKS = 10;

/** Why Delivery gave a session up (codes of transports/seam/errors.ts) */
export type LostCode = 'SY_ERR_OUTPUT_LOST' | 'SY_ERR_BACKLOG_FULL';

/** A session waiting for worker output `from` (its outputs after it are held in `ext.early`) */
interface Gap {
  from: number;
  /** `resend`s sent for this gap */
  asks: number;
  askedAt: number;
}

export class Delivery {
  /** sessions with envelopes no worker acknowledged yet */
  private readonly awaiting = new Set<Session>();
  /** sessions holding outputs that came before their turn */
  private readonly gaps = new Map<Session, Gap>();

  constructor(
    private readonly bus: Bus,
    private readonly nodeId: string,
    private readonly options: ResolvedOptions,
    /** the session can not go on (see the codes above): end it; Delivery has forgotten it after this returns */
    private readonly lost: (s: Session, code: LostCode) => void,
  ) {}

  /** Publishes to the session's partition; in a cluster keeps it until a worker acknowledges */
  toWorker(s: Session, e: InboundEnvelope): void {
    if (!this.options.atLeastOnce) {
      this.bus.publish(s.subjectIn, e);
      return;
    }
    const x = s.ext;
    // the backlog is full: this one is not sent (no worker would ever be asked for it)
    if (x.unacked !== null && x.unacked.length >= MAX_UNACKED) return this.giveUp(s, 'SY_ERR_BACKLOG_FULL');
    e.lo = x.lastOut;
    this.bus.publish(s.subjectIn, e);
    if (x.unacked === null) {
      x.unacked = [];
      x.unackedSince = Date.now();
      this.awaiting.add(s);
    }
    x.unacked.push(e);
  }

  /** Keeps tracking a session taken over from another node (its unacknowledged envelopes) */
  adopted(s: Session): void {
    if (s.ext.unacked !== null) this.awaiting.add(s);
  }

  forget(s: Session): void {
    this.awaiting.delete(s);
    this.gaps.delete(s);
  }

  /** A worker processed everything up to `n` */
  acked(s: Session, n: number): void {
    const x = s.ext;
    if (n <= x.acked) return;
    x.acked = n;
    const q = x.unacked;
    if (q === null) return;
    let i = 0;
    while (i < q.length && q[i]!.n <= n) i++;
    if (i === q.length) {
      x.unacked = null;
      this.awaiting.delete(s);
    } else if (i > 0) {
      q.splice(0, i);
      x.unackedSince = Date.now();
    }
  }

  /**
   * The partition's owner does not know the session (the partition moved, or the worker died):
   * open it there again, then resend what was not acknowledged, in order.
   */
  reopen(s: Session): void {
    const x = s.ext;
    if (x.acked > 0)
      this.bus.publish(s.subjectIn, { t: 'open', sid: s.sid, node: this.nodeId, n: x.acked, transport: s.transport, meta: s.meta, moved: true, lo: x.lastOut });
    this.resendUnacked(s);
  }

  private resendUnacked(s: Session): void {
    const x = s.ext;
    if (x.unacked !== null) {
      for (const e of x.unacked) {
        e.lo = x.lastOut;
        this.bus.publish(s.subjectIn, e);
      }
    }
    x.unackedSince = Date.now();
  }

  /** Hands worker outputs to `apply` in `o` order, once each; outputs without `o` at once */
  receive(s: Session, w: NodeEnvelope, apply: (s: Session, w: NodeEnvelope) => void): void {
    const o = (w as { o?: number }).o;
    if (o === undefined) return apply(s, w);
    const x = s.ext;
    if (o <= x.lastOut) return; // seen: a resend
    if (o > x.lastOut + 1) {
      // one got lost (a NATS server died with it in flight): hold this one, ask for the gap
      const early = (x.early ??= new Map());
      // more than the worker keeps: the missing output is gone for good
      if (early.size >= MAX_EARLY_OUTPUTS && !early.has(o)) return this.giveUp(s, 'SY_ERR_OUTPUT_LOST');
      early.set(o, w);
      this.askGap(s, Date.now());
      return;
    }
    x.lastOut = o;
    apply(s, w);
    const early = x.early;
    if (early === null) return;
    for (let next = early.get(x.lastOut + 1); next !== undefined; next = early.get(x.lastOut + 1)) {
      early.delete(++x.lastOut);
      apply(s, next);
    }
    if (early.size === 0) {
      x.early = null;
      this.gaps.delete(s);
    }
    // else: a later gap; askGap (here or in sweep) counts its asks afresh
  }

  /** Asks for the output after `lastOut` again, at most every `ackTimeoutMs`; gives up after MAX_GAP_ASKS */
  private askGap(s: Session, now: number): void {
    const x = s.ext;
    const from = x.lastOut + 1;
    let gap = this.gaps.get(s);
    if (gap === undefined || gap.from !== from) this.gaps.set(s, (gap = { from, asks: 0, askedAt: 0 }));
    else if (now - gap.askedAt < this.options.ackTimeoutMs) return;
    if (gap.asks >= MAX_GAP_ASKS) return this.giveUp(s, 'SY_ERR_OUTPUT_LOST');
    gap.asks++;
    gap.askedAt = now;
    this.bus.publish(s.subjectIn, { t: 'resend', sid: s.sid, node: this.nodeId, n: 0, from, lo: x.lastOut });
  }

  /** Ends the session (the gateway's `lost`), then forgets it and frees what it held */
  private giveUp(s: Session, code: LostCode): void {
    try {
      this.lost(s, code);
    } finally {
      this.forget(s);
      const x = s.ext;
      x.early = null;
      x.unacked = null;
    }
  }

  /** Resends what waited too long for an acknowledgement; asks again for gaps */
  sweep(now: number): void {
    const retryAfter = this.options.ackTimeoutMs;
    // no worker answered in time (it died, or the partition is between owners): resend in order
    for (const s of this.awaiting) if (now - s.ext.unackedSince >= retryAfter) this.resendUnacked(s);
    for (const s of this.gaps.keys()) {
      if (s.ext.early === null) this.gaps.delete(s);
      else this.askGap(s, now);
    }
  }
}
