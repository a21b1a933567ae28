import type { Bus, BusHandler, Envelope, Subscription } from './bus.ts';
import { log } from '../lib/log.ts';

/**
 * The in-process bus: the default for a single node, and production code.
 *
 * Delivery is synchronous: `publish` returns after every subscriber has run, unless it is called
 * from inside a handler, in which case the message is queued and delivered as soon as the
 * current handler returns. That keeps one global FIFO order (a handler that publishes never
 * overtakes messages published before it) while letting a whole WebSocket message → worker →
 * reply round trip happen inside one uWS callback, where uWS batches the writes.
 */
export class MemoryBus implements Bus {
  private readonly subs = new Map<string, BusHandler[]>();
  /**
   * Messages published from inside a handler, waiting their turn: `queuedCount` subjects and
   * envelopes side by side (no pair per message). The arrays are kept between rounds (emptied
   * slot by slot, not reallocated for every message), unless a burst made them large.
   */
  private readonly queuedSubjects: string[] = [];
  private readonly queued: Array<Envelope | undefined> = [];
  private queuedCount = 0;
  private delivering = false;
  private closed = false;

  publish(subject: string, envelope: Envelope): void {
    if (this.closed) return;
    if (this.delivering) {
      const i = this.queuedCount++;
      this.queuedSubjects[i] = subject;
      this.queued[i] = envelope;
      return;
    }
    this.delivering = true;
    try {
      this.deliver(subject, envelope);
      // index walk, not shift(): a long burst of nested publishes stays O(n)
      const subjects = this.queuedSubjects;
      const queued = this.queued;
      for (let i = 0; i < this.queuedCount; i++) {
        const e = queued[i]!;
        queued[i] = undefined;
        this.deliver(subjects[i]!, e);
      }
    } finally {
      this.clearQueue();
      this.delivering = false;
    }
  }

  private deliver(subject: string, envelope: Envelope): void {
    const handlers = this.subs.get(subject);
    if (handlers === undefined) return;
    if (handlers.length === 1) {
      callSafely(handlers[0]!, envelope, subject);
      return;
    }
    // copy: a handler may unsubscribe (itself or another) while we iterate
    for (const h of handlers.slice()) callSafely(h, envelope, subject);
  }

  subscribe(subject: string, handler: BusHandler): Subscription {
    let list = this.subs.get(subject);
    if (list === undefined) this.subs.set(subject, (list = []));
    list.push(handler);
    let active = true;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        const cur = this.subs.get(subject);
        if (cur === undefined) return;
        const i = cur.indexOf(handler);
        if (i >= 0) cur.splice(i, 1);
        if (cur.length === 0) this.subs.delete(subject);
      },
    };
  }

  /** Subjects with at least one subscriber (for tests and metrics) */
  subjectCount(): number {
    return this.subs.size;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.subs.clear();
    this.queued.fill(undefined);
    this.clearQueue();
  }

  /** (each envelope's slot was emptied as it was delivered, or by close) */
  private clearQueue(): void {
    if (this.queuedCount > 1024) {
      this.queuedSubjects.length = 0;
      this.queued.length = 0;
    }
    this.queuedCount = 0;
  }
}

function callSafely(h: BusHandler, e: Envelope, subject: string): void {
  try {
    h(e, subject);
  } catch (err) {
    log.error({ err, subject }, 'bus handler threw');
  }
}
