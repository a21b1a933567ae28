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
import { nodeSubject, sameValues, WorkerSession } from './worker-session.ts';
import type { InboundEnvelope, NodeEnvelope, OutputEnvelope } from './envelope.ts';
import type { App, AppContext, AppHandlers, BroadcastOptions, Reply } from './app.ts';
import { DEFAULT_PARTITIONS, partitionOf } from './partition.ts';
import { Membership } from './membership.ts';
import { NodeLiveness } from './node-liveness.ts';
import { place } from './placement.ts';
import { log } from '../lib/log.ts';

export interface WorkerOptions {
  bus: Bus;
  app: App;
  /** total number of partitions in the cluster @default 1024 */
  partitionCount?: number;
  /** the partitions this worker serves, fixed @default all of them (unless `cluster` is set) */
  partitions?: number[];
  /**
   * Join a cluster: heartbeats on the bus, and own the partitions that consistent hashing with
   * bounded loads gives this worker among the live ones. Also turns on explicit acks.
   */
  cluster?: { workerId: string; heartbeatMs?: number; timeoutMs?: number; epsilon?: number };
  /** how long `session.request` waits for the client's answer @default 10000 */
  requestTimeoutMs?: number;
}

const CODE_REJECTED = 4403;
/** the gateway node holding the session died (SY_ERR_NODE_LOST in the gateways' error table) */
const CODE_NODE_LOST = 4514;
/** too many events wait behind a running handler (SY_ERR_BACKLOG_FULL in the gateways' error table) */
const CODE_BACKLOG_FULL = 4513;
/**
 * A session's events waiting behind its running async handler, at most: as many as a gateway
 * keeps unacknowledged (MAX_UNACKED), and about this many bytes of their args. Past either the
 * session ends (its client sends faster than the app handles, or a handler never finishes)
 * instead of the queue growing without bound
 */
export const MAX_WAITING = 1024;
export const MAX_WAITING_BYTES = 4 * 1024 * 1024;
/** how long, and how many, ended client-chosen sids a worker remembers (see `gone`) */
const GONE_MS = 120_000;
const GONE_MAX = 100_000;
/** outputs kept per session for resending (cluster) */
export const KEEP_OUTPUTS = 256;

export class Worker implements AppContext {
  readonly handlers: AppHandlers;
  private readonly bus: Bus;
  private readonly sessions = new Map<string, WorkerSession>();
  /** client-chosen sids that ended a moment ago, oldest first */
  private readonly gone = new Map<string, { code: number; reason: string; at: number }>();
  private readonly subs = new Map<number, Subscription>();
  private readonly onInbound = (e: unknown) => this.handle(e as InboundEnvelope);
  private readonly partitionCount: number;
  readonly membership: Membership | null = null;
  /** the gateway nodes' heartbeats (cluster): a dead node's sessions end here */
  private readonly nodes: NodeLiveness | null = null;
  readonly id: string;
  readonly requestTimeoutMs: number;
  /** explicit acks for events that produced no output (a cluster gateway retries unacked ones) */
  readonly acks: boolean;
  private readonly ackDirty = new Set<WorkerSession>();
  /** sids we asked a gateway to re-open, and when (so we ask once, not per event) */
  private readonly asked = new Map<string, number>();
  /** while an event handler runs synchronously: its args and their JSON text (see emit) */
  rawArgs: string | undefined = undefined;
  rawOf: unknown[] | null = null;

  constructor(opts: WorkerOptions) {
    this.bus = opts.bus;
    this.handlers = typeof opts.app === 'function' ? opts.app(this) : opts.app;
    this.partitionCount = opts.partitionCount ?? DEFAULT_PARTITIONS;
    this.id = opts.cluster?.workerId ?? 'embedded';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.acks = opts.cluster !== undefined;
    if (opts.cluster !== undefined) {
      const { workerId, heartbeatMs = 1000, timeoutMs, epsilon } = opts.cluster;
      let workers: string[] = [];
      const table = () => place(workers, { partitionCount: this.partitionCount, epsilon });
      this.settling = true; // before Membership: its constructor already reports us
      this.membership = new Membership({
        bus: this.bus,
        workerId,
        heartbeatMs,
        timeoutMs,
        onChange: (w) => {
          workers = w;
          if (!this.settling) this.rebalance(table());
        },
        onStall: () => this.resettle(),
        owned: () => this.subs.size,
      });
      // A newcomer knows only itself: it would claim every partition. It first listens (the others
      // answer its first heartbeat at once) and takes its share only then. Meanwhile the others
      // already gave that share up: events for it wait (and are resent), nobody handles them twice.
      this.gainDelayMs = Math.min(250, heartbeatMs / 2);
      this.settle = () => {
        this.settling = true;
        if (this.settleTimer !== null) clearTimeout(this.settleTimer);
        this.settleTimer = setTimeout(() => {
          this.settleTimer = null;
          this.settling = false;
          this.rebalance(table());
          this.settled();
        }, heartbeatMs * 1.5);
      };
      this.settle();
      this.nodes = new NodeLiveness({ bus: this.bus, onDead: (node) => this.nodeDead(node) });
    } else {
      for (const p of opts.partitions ?? Array.from({ length: this.partitionCount }, (_, i) => i)) this.own(p);
      this.settled();
    }
  }

  private settleTimer: NodeJS.Timeout | null = null;
  private settling = false;
  private settle: () => void = () => {};
  private gainDelayMs = 0;
  private gainTimer: NodeJS.Timeout | null = null;
  private settled!: () => void;
  /** resolves once the worker serves its partitions (in a cluster: after it learned the members) */
  readonly ready = new Promise<void>((resolve) => (this.settled = resolve));

  /** the partitions this worker serves now */
  get owned(): number[] {
    return [...this.subs.keys()].sort((a, b) => a - b);
  }

  private rebalance(owners: string[]): void {
    const mine = new Set<number>();
    for (let p = 0; p < owners.length; p++) if (owners[p] === this.id) mine.add(p);
    // give up at once; take on a moment later, when the previous owners (who see the same change
    // about now) have given up: two owners at once would each number the session's outputs
    for (const p of this.subs.keys()) if (!mine.has(p)) this.disown(p);
    if (this.gainTimer !== null) clearTimeout(this.gainTimer);
    const gained = [...mine].filter((p) => !this.subs.has(p));
    if (gained.length === 0) return;
    if (this.subs.size === 0 && !this.servedBefore) {
      this.servedBefore = true;
      for (const p of gained) this.own(p);
      return;
    }
    this.gainTimer = setTimeout(() => {
      this.gainTimer = null;
      for (const p of gained) if (mine.has(p)) this.own(p);
    }, this.gainDelayMs);
  }

  private servedBefore = false;

  /** Start serving partition `p` */
  own(p: number): void {
    if (!this.subs.has(p)) this.subs.set(p, this.bus.subscribe(subjects.partition(p), this.onInbound));
  }

  /**
   * We were stopped past the member timeout (the others took our partitions meanwhile) and what
   * waited in our socket is stale: drop every partition and the backlog with it, and come back
   * like a newcomer (the gateways resend what is unacknowledged to whoever owns it).
   */
  private resettle(): void {
    if (this.gainTimer !== null) clearTimeout(this.gainTimer);
    this.gainTimer = null;
    for (const p of [...this.subs.keys()]) this.disown(p);
    this.settle();
  }

  /** Stop serving partition `p`; its sessions are forgotten here (their next owner re-opens them) */
  disown(p: number): void {
    const sub = this.subs.get(p);
    if (sub === undefined) return;
    sub.unsubscribe();
    this.subs.delete(p);
    for (const s of this.sessions.values()) {
      if (s.p === p) {
        s.ended();
        this.sessions.delete(s.sid);
      }
    }
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private broadcasts = 0;

  broadcast(room: string, event: string, args: unknown[], options?: BroadcastOptions): void {
    const except = options?.except;
    // the id lets a node that just took a session over drop a broadcast it gets twice
    const id = this.id + '.' + ++this.broadcasts;
    this.bus.publish(
      subjects.room(room),
      except && except.length > 0 ? { t: 'broadcast', room, event, args, except, id } : { t: 'broadcast', room, event, args, id },
    );
  }

  /** Sends one of a session's outputs (numbered and kept until the gateway has it, in a cluster) */
  send(s: WorkerSession, e: OutputEnvelope): void {
    const n = e.n;
    if (n !== undefined && n > s.reported) s.reported = n;
    if (this.acks) {
      e.o = ++s.out;
      const kept = (s.kept ??= []);
      kept.push(e);
      // bounded: a gateway that never confirms (gone) must not make us hold everything
      if (kept.length > KEEP_OUTPUTS) kept.shift();
    }
    this.bus.publish(s.nodeSubject, e);
  }

  /** Sends a control message (ack, rehomed) to the session's node: not numbered, not kept */
  private control(s: WorkerSession, e: NodeEnvelope): void {
    this.bus.publish(s.nodeSubject, e);
  }

  /** The gateway has the outputs up to `lo`: forget them */
  private confirmed(s: WorkerSession, lo: number): void {
    const kept = s.kept;
    if (kept === null) return;
    let i = 0;
    while (i < kept.length && kept[i]!.o! <= lo) i++;
    if (i === kept.length) s.kept = null;
    else if (i > 0) kept.splice(0, i);
  }

  /** Sends kept outputs from `o` = `from` on again, in order */
  private resend(s: WorkerSession, from: number): void {
    if (s.kept !== null) for (const e of s.kept) if (e.o! >= from) this.bus.publish(s.nodeSubject, e);
  }

  /** A client-chosen sid stays ended for a while: a node asked to open it again is told (`gone`) */
  private ended(s: WorkerSession, code: number, reason: string): void {
    if (!s.claimed) return;
    const gone = this.gone;
    gone.delete(s.sid);
    gone.set(s.sid, { code, reason, at: Date.now() });
    // oldest first (insertion order): drop the expired, and the oldest past the cap
    for (const [sid, g] of gone) {
      if (gone.size <= GONE_MAX && Date.now() - g.at < GONE_MS) break;
      gone.delete(sid);
    }
  }

  /** Stops serving; in a cluster, says goodbye so the partitions move at once */
  stop(): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    if (this.gainTimer !== null) clearTimeout(this.gainTimer);
    // stop handling first, then say goodbye: the others take over only what we no longer touch
    for (const sub of this.subs.values()) sub.unsubscribe();
    this.subs.clear();
    this.membership?.stop();
    this.nodes?.stop();
  }

  /**
   * A gateway node died: nobody will ever close its sessions, so they end here, in order behind
   * whatever of theirs is being handled (the app's `close` runs with 4514, SY_ERR_NODE_LOST). A
   * session handed over to another node follows its new node (`rehome`), not this one.
   */
  private nodeDead(node: string): void {
    for (const s of [...this.sessions.values()]) {
      if (s.node !== node) continue;
      const e: InboundEnvelope = { t: 'close', sid: s.sid, node, n: s.lastIn + 1, code: CODE_NODE_LOST, reason: 'SY_ERR_NODE_LOST' };
      s.lastIn = e.n;
      if (s.waiting !== null) s.waiting.push(e);
      else this.dispatch(s, e);
    }
  }

  private handle(e: InboundEnvelope): void {
    // woken after a stop: this is part of a stale backlog (checkStall resettles us)
    if (this.membership?.checkStall(Date.now())) return;
    let s = this.sessions.get(e.sid);
    if (e.t === 'open') {
      if (s !== undefined) {
        // a client-chosen sid another node holds: the client goes there (never a second session)
        if (e.claim === true && e.moved !== true && s.node !== e.node) this.bus.publish(nodeSubject(e.node), { t: 'taken', sid: e.sid, node: s.node });
        return; // else a retried open: already handled
      }
      if (e.claim === true && e.moved !== true) {
        const ended = this.gone.get(e.sid);
        if (ended !== undefined && Date.now() - ended.at < GONE_MS)
          return this.bus.publish(nodeSubject(e.node), { t: 'gone', sid: e.sid, code: ended.code, reason: ended.reason });
      }
      s = new WorkerSession(this, e.sid, e.node, e.transport, e.meta, partitionOf(e.sid, this.partitionCount), e.moved === true);
      s.claimed = e.claim === true;
      // the claiming node may say the session is open now, before the app's open has run
      if (s.claimed) this.bus.publish(nodeSubject(e.node), { t: 'claimed', sid: e.sid });
      s.lastIn = e.n;
      s.current = e.n;
      // a re-open continues the output numbering where the gateway is
      if (e.lo !== undefined) s.out = e.lo;
      this.sessions.set(e.sid, s);
      this.asked.delete(e.sid);
      this.runOpen(s);
      return;
    }
    if (s === undefined) {
      // a session of a partition that just became ours: its gateway re-opens it and resends
      if (e.t !== 'close') this.askWho(e.sid, e.node);
      return;
    }
    if (e.lo !== undefined) this.confirmed(s, e.lo);
    if (e.t === 'resend') return this.resend(s, e.from);
    // not numbered, and not queued behind a running handler: that handler may be awaiting it
    if (e.t === 'answer') return s.answered(e.ack as number, e.args, e.error);
    if (e.n <= s.lastIn) {
      // a retry of something handled: our answer to it was lost (or is late): send it again
      this.resend(s, 0);
      // and acknowledge again what is done (an explicit ack may have been lost too)
      if (this.acks) this.control(s, { t: 'ack', sid: s.sid, n: (s.reported = s.waiting === null ? s.current : s.current - 1) });
      return;
    }
    s.lastIn = e.n;
    if (e.t === 'rehome') {
      // tell the old node we switched, so it can forward what it got before, then switch
      this.control(s, { t: 'rehomed', sid: s.sid });
      s.moveTo(e.node);
      return;
    }
    if (s.waiting !== null) this.queue(s, e);
    else this.dispatch(s, e);
  }

  /**
   * Holds `e` until the session's running handler is done, within MAX_WAITING envelopes and
   * MAX_WAITING_BYTES of their args: past either the backlog is dropped and the session is
   * disconnected (SY_ERR_BACKLOG_FULL); its close follows what was dropped
   */
  private queue(s: WorkerSession, e: InboundEnvelope): void {
    const q = s.waiting!;
    if (e.t === 'close') return void q.push(e);
    if (s.overflowed) return;
    if (e.t === 'event') s.waitingBytes += argsBytes(e);
    if (q.length < MAX_WAITING && s.waitingBytes <= MAX_WAITING_BYTES) return void q.push(e);
    s.overflowed = true;
    q.length = 0;
    s.waitingBytes = 0;
    log.warn({ sid: s.sid, waiting: MAX_WAITING }, 'events waiting behind a running handler: the session ends (SY_ERR_BACKLOG_FULL)');
    this.send(s, { t: 'disconnect', sid: s.sid, code: CODE_BACKLOG_FULL, reason: 'SY_ERR_BACKLOG_FULL', n: s.current });
  }

  private askWho(sid: string, node: string): void {
    const now = Date.now();
    const at = this.asked.get(sid);
    if (at !== undefined && now - at < 1000) return;
    this.asked.set(sid, now);
    if (this.asked.size > 10_000) this.asked.clear();
    this.bus.publish(nodeSubject(node), { t: 'who', sid });
  }

  /** after an event: acknowledge it if nothing it produced did */
  private done(s: WorkerSession, n: number): void {
    if (!this.acks || s.reported >= n) return;
    if (this.ackDirty.size === 0) queueMicrotask(() => this.flushAcks());
    this.ackDirty.add(s);
  }

  private flushAcks(): void {
    for (const s of this.ackDirty) if (!s.closed && s.reported < s.current) this.control(s, { t: 'ack', sid: s.sid, n: (s.reported = s.current) });
    this.ackDirty.clear();
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
          this.send(s, { t: 'accept', sid: s.sid, n: s.current });
          this.drain(s);
        },
        (err) => this.reject(s, err),
      );
    } else {
      this.send(s, { t: 'accept', sid: s.sid, n: s.current });
    }
  }

  private reject(s: WorkerSession, err: unknown): void {
    this.sessions.delete(s.sid);
    this.ended(s, CODE_REJECTED, errorMessage(err) || 'rejected');
    s.ended();
    this.send(s, { t: 'disconnect', sid: s.sid, code: CODE_REJECTED, reason: errorMessage(err) || 'rejected', n: s.current });
  }

  /** Run queued envelopes until one of them goes async again */
  private drain(s: WorkerSession): void {
    const q = s.waiting;
    s.waiting = null;
    s.waitingBytes = 0;
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
    s.current = e.n;
    if (e.t === 'close') {
      this.sessions.delete(s.sid);
      this.ended(s, e.code, e.reason);
      s.ended();
      try {
        this.handlers.close?.(s, { code: e.code, reason: e.reason });
      } catch (err) {
        log.error({ err, sid: s.sid }, 'app close handler threw');
      }
      return;
    }
    if (e.t === 'transport') {
      s.transport = e.transport;
      return this.done(s, e.n);
    }
    if (e.t !== 'event' || s.closed) return;
    const ack = e.ack;
    const n = e.n;
    const reply = ack === undefined ? undefined : makeReply(this, s, ack);
    let r: void | Promise<void>;
    // over the network the client's args come as their JSON text (validated by the gateway)
    const args = e.args ?? (JSON.parse(e.raw!) as unknown[]);
    this.rawArgs = e.raw;
    this.rawOf = args;
    try {
      r = this.handlers.event(s, e.event, args, reply);
    } catch (err) {
      this.rawArgs = undefined;
      if (ack !== undefined) this.send(s, { t: 'reply', sid: s.sid, ack, error: errorMessage(err), n });
      this.done(s, n);
      return;
    }
    this.rawArgs = undefined;
    this.rawOf = null;
    if (r instanceof Promise) {
      s.waiting = [];
      r.then(
        () => {
          this.done(s, n);
          this.drain(s);
        },
        (err) => {
          if (ack !== undefined && !s.closed) this.send(s, { t: 'reply', sid: s.sid, ack, error: errorMessage(err), n });
          this.done(s, n);
          this.drain(s);
        },
      );
    } else {
      this.done(s, n);
    }
  }
}

function makeReply(w: Worker, s: WorkerSession, ack: string | number): Reply {
  let done = false;
  return (...args: unknown[]) => {
    if (done || s.closed) return;
    done = true;
    // answering with the args of the event being handled, unchanged: their JSON text can be reused
    const raw = w.rawArgs !== undefined && sameValues(args, w.rawOf!) ? w.rawArgs : undefined;
    if (raw === undefined) w.send(s, { t: 'reply', sid: s.sid, ack, args, n: s.current });
    else if (w.acks) w.send(s, { t: 'reply', sid: s.sid, ack, raw, n: s.current });
    else w.send(s, { t: 'reply', sid: s.sid, ack, args, raw, n: s.current });
  };
}

/** about what an event's args take: their JSON text's length when there is one, else a shallow estimate */
function argsBytes(e: Extract<InboundEnvelope, { t: 'event' }>): number {
  if (e.raw !== undefined) return e.raw.length;
  let n = 16;
  for (const a of e.args ?? []) n += typeof a === 'string' ? a.length : a instanceof Uint8Array ? a.byteLength : 16;
  return n;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
