/**
 * The worker runtime: runs an App against the bus. It subscribes to the partitions it owns,
 * keeps one `WorkerSession` per live session, and turns the app's calls into envelopes for the
 * gateway node that holds each session.
 *
 * Promises: each session's events reach the app one at a time and in order (an async handler
 * holds the next one); an event whose `n` was already seen is dropped, so a retried delivery is
 * processed once.
 */
import { subjects, type Bus, type Subscription } from './bus.ts';
import type { InboundEnvelope, NodeEnvelope } from './envelope.ts';
import type { App, AppContext, AppHandlers, AppSession, BroadcastOptions, Reply } from './app.ts';
import type { SessionMeta, TransportName } from './types.ts';
import { DEFAULT_PARTITIONS } from './partition.ts';

export interface WorkerOptions {
  bus: Bus;
  app: App;
  /** total number of partitions in the cluster @default 64 */
  partitionCount?: number;
  /** the partitions this worker serves @default all of them */
  partitions?: number[];
}

const CODE_REJECTED = 4403;

export class Worker implements AppContext {
  readonly handlers: AppHandlers;
  private readonly bus: Bus;
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly subs = new Map<number, Subscription>();
  private readonly onInbound = (e: unknown) => this.handle(e as InboundEnvelope);

  constructor(opts: WorkerOptions) {
    this.bus = opts.bus;
    this.handlers = typeof opts.app === 'function' ? opts.app(this) : opts.app;
    const count = opts.partitionCount ?? DEFAULT_PARTITIONS;
    for (const p of opts.partitions ?? Array.from({ length: count }, (_, i) => i)) this.own(p);
  }

  /** Start serving partition `p` */
  own(p: number): void {
    if (!this.subs.has(p)) this.subs.set(p, this.bus.subscribe(subjects.partition(p), this.onInbound));
  }

  /** Stop serving partition `p` */
  disown(p: number): void {
    this.subs.get(p)?.unsubscribe();
    this.subs.delete(p);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  broadcast(room: string, event: string, args: unknown[], options?: BroadcastOptions): void {
    const except = options?.except;
    this.bus.publish(subjects.room(room), except && except.length > 0 ? { t: 'broadcast', room, event, args, except } : { t: 'broadcast', room, event, args });
  }

  send(s: WorkerSession, e: NodeEnvelope): void {
    this.bus.publish(s.nodeSubject, e);
  }

  stop(): void {
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
  }

  private handle(e: InboundEnvelope): void {
    let s = this.sessions.get(e.sid);
    if (e.t === 'open') {
      if (s !== undefined) return; // a retried open: already handled
      s = new WorkerSession(this, e.sid, e.node, e.transport, e.meta);
      s.lastIn = e.n;
      this.sessions.set(e.sid, s);
      this.runOpen(s);
      return;
    }
    if (s === undefined || e.n <= s.lastIn) return; // unknown (closed) session or duplicate
    s.lastIn = e.n;
    if (s.waiting !== null) s.waiting.push(e);
    else this.dispatch(s, e);
  }

  private runOpen(s: WorkerSession): void {
    const open = this.handlers.open;
    let r: void | Promise<void>;
    try {
      r = open?.call(this.handlers, s);
    } catch (err) {
      this.reject(s, err);
      return;
    }
    if (r instanceof Promise) {
      s.waiting = [];
      r.then(
        () => {
          if (s.closed) return;
          this.send(s, { t: 'accept', sid: s.sid });
          this.drain(s);
        },
        (err) => this.reject(s, err),
      );
    } else {
      this.send(s, { t: 'accept', sid: s.sid });
    }
  }

  private reject(s: WorkerSession, err: unknown): void {
    this.sessions.delete(s.sid);
    s.closed = true;
    this.send(s, { t: 'disconnect', sid: s.sid, code: CODE_REJECTED, reason: errorMessage(err) || 'rejected' });
  }

  /** Run queued envelopes until one of them goes async again */
  private drain(s: WorkerSession): void {
    const q = s.waiting;
    s.waiting = null;
    if (q === null) return;
    for (let i = 0; i < q.length; i++) {
      const again = s.waiting as InboundEnvelope[] | null; // dispatch may have set it
      if (again !== null) {
        // an async handler is running again: keep the rest for after it
        again.push(...q.slice(i));
        return;
      }
      this.dispatch(s, q[i]!);
    }
  }

  private dispatch(s: WorkerSession, e: InboundEnvelope): void {
    if (e.t === 'close') {
      this.sessions.delete(s.sid);
      s.closed = true;
      try {
        this.handlers.close?.(s, { code: e.code, reason: e.reason });
      } catch (err) {
        console.error('[switchyard] app close handler threw:', err);
      }
      return;
    }
    if (e.t !== 'event' || s.closed) return;
    const ack = e.ack;
    const reply = ack === undefined ? undefined : makeReply(this, s, ack);
    let r: void | Promise<void>;
    try {
      r = this.handlers.event(s, e.event, e.args, reply);
    } catch (err) {
      if (ack !== undefined) this.send(s, { t: 'reply', sid: s.sid, ack, error: errorMessage(err) });
      return;
    }
    if (r instanceof Promise) {
      s.waiting = [];
      r.then(
        () => this.drain(s),
        (err) => {
          if (ack !== undefined && !s.closed) this.send(s, { t: 'reply', sid: s.sid, ack, error: errorMessage(err) });
          this.drain(s);
        },
      );
    }
  }
}

function makeReply(w: Worker, s: WorkerSession, ack: string | number): Reply {
  let done = false;
  return (...args: unknown[]) => {
    if (done || s.closed) return;
    done = true;
    w.send(s, { t: 'reply', sid: s.sid, ack, args });
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const nodeSubjects = new Map<string, string>();
/** one subject string per node, shared by all its sessions */
function nodeSubject(node: string): string {
  let s = nodeSubjects.get(node);
  if (s === undefined) nodeSubjects.set(node, (s = subjects.node(node)));
  return s;
}

/** The app's view of a session on this worker. */
export class WorkerSession implements AppSession {
  private _data: Record<string, unknown> | undefined;
  /** highest client → worker sequence number seen */
  lastIn = 0;
  /** envelopes held while an async handler of this session runs; null when none runs */
  waiting: InboundEnvelope[] | null = null;
  closed = false;
  readonly nodeSubject: string;

  constructor(
    private readonly worker: Worker,
    readonly sid: string,
    readonly node: string,
    readonly transport: TransportName,
    readonly meta: SessionMeta,
  ) {
    this.nodeSubject = nodeSubject(node);
  }

  /** created on first use: most sessions never need it */
  get data(): Record<string, unknown> {
    return (this._data ??= {});
  }
  set data(v: Record<string, unknown>) {
    this._data = v;
  }

  emit(event: string, ...args: unknown[]): void {
    if (!this.closed) this.worker.send(this, { t: 'emit', sid: this.sid, event, args });
  }

  join(room: string): void {
    if (!this.closed) this.worker.send(this, { t: 'join', sid: this.sid, room });
  }

  leave(room: string): void {
    if (!this.closed) this.worker.send(this, { t: 'leave', sid: this.sid, room });
  }

  disconnect(code = 4000, reason = 'disconnected by the application'): void {
    if (!this.closed) this.worker.send(this, { t: 'disconnect', sid: this.sid, code, reason });
  }
}
