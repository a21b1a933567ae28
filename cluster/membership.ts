/**
 * Worker membership from heartbeats on the bus (`sy.ctl`). Every gateway and worker runs one;
 * all of them see the same heartbeats, so they converge on the same member list, and with it
 * (placement.ts) on the same partition owners, without a coordinator.
 *
 * A worker announces itself every `heartbeatMs` and says `bye` when it stops cleanly; a worker
 * not heard from for `timeoutMs` is dropped. `onChange` fires with the sorted list of live
 * workers whenever it changes.
 */
import { subjects, type Bus, type Subscription } from './bus.ts';
import type { ControlEnvelope } from './envelope.ts';

export interface MembershipOptions {
  bus: Bus;
  /** this participant's worker id, when it is a worker (it then sends heartbeats) */
  workerId?: string;
  /** @default 1000 */
  heartbeatMs?: number;
  /** a worker silent this long is dropped @default 3000 */
  timeoutMs?: number;
  onChange?: (workers: string[]) => void;
  /** the partitions this worker owns now, said in its heartbeats (gateways' metrics) */
  owned?: () => number;
  /** this participant itself was stopped past the timeout (see stalled) */
  onStall?: () => void;
}

export class Membership {
  private readonly seen = new Map<string, number>();
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private current: string[] = [];
  readonly heartbeatMs: number;
  readonly timeoutMs: number;

  constructor(private readonly o: MembershipOptions) {
    this.heartbeatMs = o.heartbeatMs ?? 1000;
    this.timeoutMs = o.timeoutMs ?? 3000;
    if (this.timeoutMs <= this.heartbeatMs) throw new TypeError('membership timeoutMs must be greater than heartbeatMs');
    this.sub = o.bus.subscribe(subjects.control, (e) => this.onControl(e as ControlEnvelope));
    this.timer = setInterval(() => this.tick(), Math.min(this.heartbeatMs, Math.max(50, this.timeoutMs / 4)));
    this.timer.unref();
    if (o.workerId !== undefined) {
      // known to ourselves at once; to others from our first heartbeat on
      this.seen.set(o.workerId, Date.now());
      this.announce();
      this.update();
    }
  }

  /** live workers, sorted */
  get workers(): string[] {
    return this.current;
  }

  private lastBeat = 0;
  private announce(): void {
    this.lastBeat = Date.now();
    this.o.bus.publish(subjects.control, { t: 'hb', worker: this.o.workerId!, owned: this.o.owned?.() });
  }

  private onControl(e: ControlEnvelope): void {
    if (e.t === 'hb') {
      const known = this.seen.has(e.worker);
      this.seen.set(e.worker, Date.now());
      if (!known) {
        // answer a newcomer at once so it learns about us without waiting a whole period
        if (this.o.workerId !== undefined && e.worker !== this.o.workerId) this.announce();
        this.update();
      }
    } else if (e.t === 'bye') {
      if (this.seen.delete(e.worker)) this.update();
    }
  }

  /** when the last tick ran: a participant that was itself stopped (SIGSTOP, a long pause) sees it late */
  private lastTick = Date.now();

  /**
   * Whether this participant's own timer had not run for longer than the member timeout: it was
   * stopped, and the others dropped it meanwhile. Then the others get a fresh timeout (they were
   * not the silent ones) and `onStall` runs, once. Cheap enough to call per message.
   */
  checkStall(now: number): boolean {
    if (now - this.lastTick <= this.timeoutMs) return false;
    this.lastTick = now;
    for (const w of this.seen.keys()) this.seen.set(w, now);
    this.o.onStall?.();
    return true;
  }

  private tick(): void {
    const now = Date.now();
    this.checkStall(now);
    this.lastTick = now;
    if (this.o.workerId !== undefined) {
      this.seen.set(this.o.workerId, now);
      if (now - this.lastBeat >= this.heartbeatMs) this.announce();
    }
    let changed = false;
    for (const [w, at] of this.seen) {
      if (now - at > this.timeoutMs) {
        this.seen.delete(w);
        changed = true;
      }
    }
    if (changed) this.update();
  }

  private update(): void {
    const next = [...this.seen.keys()].sort();
    if (next.length === this.current.length && next.every((w, i) => w === this.current[i])) return;
    this.current = next;
    this.o.onChange?.(next);
  }

  /** Stops; a worker says goodbye so the others rebalance at once */
  stop(): void {
    clearInterval(this.timer);
    if (this.o.workerId !== undefined) this.o.bus.publish(subjects.control, { t: 'bye', worker: this.o.workerId });
    this.sub.unsubscribe();
  }
}
