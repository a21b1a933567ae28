/**
 * At-least-once delivery between a gateway node and the workers (cluster mode).
 *
 * Client → worker: every envelope of a session carries `n`; it is kept until a worker
 * acknowledges it (any output carrying `n`, or an `ack`) and resent, in order, when none did
 * within `ackTimeoutMs`. A worker that does not know the session asks `who`: it is re-opened there.
 * Worker → client: outputs carry `o`; they are applied in `o` order, once, and a gap is asked for
 * again (`resend`), e.g. after a NATS server died with a message in flight.
 */
import type { Bus } from '../cluster/bus.ts';
import type { InboundEnvelope, NodeEnvelope } from '../cluster/envelope.ts';
import type { ResolvedOptions } from './options.ts';
import type { Session } from './session.ts';

export class Delivery {
  /** sessions with envelopes no worker acknowledged yet */
  private readonly awaiting = new Set<Session>();
  /** sessions holding outputs that came before their turn */
  private readonly gaps = new Set<Session>();

  constructor(
    private readonly bus: Bus,
    private readonly nodeId: string,
    private readonly options: ResolvedOptions,
  ) {}

  /** Publishes to the session's partition; in a cluster keeps it until a worker acknowledges */
  toWorker(s: Session, e: InboundEnvelope): void {
    if (!this.options.atLeastOnce) {
      this.bus.publish(s.subjectIn, e);
      return;
    }
    const x = s.ext;
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
    if (x.acked > 0) this.bus.publish(s.subjectIn, { t: 'open', sid: s.sid, node: this.nodeId, n: x.acked, transport: s.transport, meta: s.meta, moved: true, lo: x.lastOut });
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
      (x.early ??= new Map()).set(o, w);
      this.gaps.add(s);
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
  }

  private askGap(s: Session, now: number): void {
    const x = s.ext;
    if (now - x.gapAskedAt < this.options.ackTimeoutMs) return;
    x.gapAskedAt = now;
    this.bus.publish(s.subjectIn, { t: 'resend', sid: s.sid, node: this.nodeId, n: 0, from: x.lastOut + 1, lo: x.lastOut });
  }

  /** Resends what waited too long for an acknowledgement; asks again for gaps */
  sweep(now: number): void {
    const retryAfter = this.options.ackTimeoutMs;
    // no worker answered in time (it died, or the partition is between owners): resend in order
    for (const s of this.awaiting) if (now - s.ext.unackedSince >= retryAfter) this.resendUnacked(s);
    for (const s of this.gaps) {
      if (s.ext.early === null) this.gaps.delete(s);
      else this.askGap(s, now);
    }
  }
}
