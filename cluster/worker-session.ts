/** The app's view of a session, as a worker holds it. */
import { subjects } from './bus.ts';
import type { InboundEnvelope, OutputEnvelope } from './envelope.ts';
import type { AppSession } from './app.ts';
import type { SessionMeta, TransportName } from './types.ts';
import type { OutputEnvelope as Output } from './envelope.ts';

/** What a session needs of the worker that runs it: where its output goes, how long a request waits */
export interface SessionHost {
  readonly requestTimeoutMs: number;
  /** the output is acknowledged (a cluster): over the network an emit carries its JSON text alone */
  readonly acks: boolean;
  /** the JSON text of the args of the event being handled, and those args (re-emitting them reuses the text) */
  readonly rawArgs: string | undefined;
  readonly rawOf: unknown[] | null;
  send(s: WorkerSession, out: Output): void;
}

const nodeSubjects = new Map<string, string>();
/** one subject string per node, shared by all its sessions */
export function nodeSubject(node: string): string {
  let s = nodeSubjects.get(node);
  if (s === undefined) nodeSubjects.set(node, (s = subjects.node(node)));
  return s;
}

export class WorkerSession implements AppSession {
  private _data: Record<string, unknown> | undefined;
  /** highest client → worker sequence number seen */
  lastIn = 0;
  /** the `n` being handled (outputs carry it: they acknowledge it) */
  current = 0;
  /** highest `n` acknowledged to the gateway */
  reported = 0;
  /** outputs numbered so far (`o`), and those the gateway has not confirmed yet (cluster) */
  out = 0;
  kept: OutputEnvelope[] | null = null;
  /** envelopes held while an async handler of this session runs; null when none runs */
  waiting: InboundEnvelope[] | null = null;
  /** about what the held events' args take (see Worker.queue) */
  waitingBytes = 0;
  /** its backlog overflowed: it was disconnected (SY_ERR_BACKLOG_FULL), what comes is dropped */
  overflowed = false;
  closed = false;
  /** its sid is one the client chose (SockJS): remembered a while after it ends */
  claimed = false;
  nodeSubject: string;
  /** requests to the client waiting for its answer, by id; null until the first */
  private requests: Map<number, { resolve: (args: unknown[]) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }> | null = null;
  private requestIds = 0;

  constructor(
    private readonly worker: SessionHost,
    readonly sid: string,
    public node: string,
    /** the transport the client talks over now (the gateway says when it changes) */
    public transport: TransportName,
    readonly meta: SessionMeta,
    /** partition */
    readonly p: number,
    /** re-opened here after its partition moved (the app's `open` runs again) */
    readonly moved: boolean,
  ) {
    this.nodeSubject = nodeSubject(node);
  }

  moveTo(node: string): void {
    this.node = node;
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
    if (this.closed) return;
    // re-emitting the args of the event being handled, unchanged: their JSON text can be reused
    const w = this.worker;
    const raw = w.rawArgs !== undefined && sameValues(args, w.rawOf!) ? w.rawArgs : undefined;
    if (raw === undefined) w.send(this, { t: 'emit', sid: this.sid, event, args, n: this.current });
    // over the network the text alone; in one process the gateway may need the args too (msgpack clients)
    else if (w.acks) w.send(this, { t: 'emit', sid: this.sid, event, raw, n: this.current });
    else w.send(this, { t: 'emit', sid: this.sid, event, args, raw, n: this.current });
  }

  request(event: string, ...args: unknown[]): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new Error('the session is closed'));
    const id = ++this.requestIds;
    const ms = this.worker.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests?.delete(id);
        reject(new Error(`no answer to request ${JSON.stringify(event)} within ${ms} ms`));
      }, ms);
      (this.requests ??= new Map()).set(id, { resolve, reject, timer });
      this.worker.send(this, { t: 'emit', sid: this.sid, event, args, ack: id, n: this.current });
    });
  }

  /** The client answered request `id` (an unknown id is late: its request timed out) */
  answered(id: number, args: unknown[] | undefined, error: string | undefined): void {
    const r = this.requests?.get(id);
    if (r === undefined) return;
    this.requests!.delete(id);
    clearTimeout(r.timer);
    if (error !== undefined) r.reject(new Error(error));
    else r.resolve(args ?? []);
  }

  /** The session ended: pending requests fail */
  ended(): void {
    this.closed = true;
    const rs = this.requests;
    this.requests = null;
    if (rs !== null)
      for (const r of rs.values()) {
        clearTimeout(r.timer);
        r.reject(new Error('the session closed'));
      }
  }

  join(room: string): void {
    if (!this.closed) this.worker.send(this, { t: 'join', sid: this.sid, room, n: this.current });
  }

  leave(room: string): void {
    if (!this.closed) this.worker.send(this, { t: 'leave', sid: this.sid, room, n: this.current });
  }

  disconnect(code = 4000, reason = 'disconnected by the application'): void {
    if (!this.closed) this.worker.send(this, { t: 'disconnect', sid: this.sid, code, reason, n: this.current });
  }
}

/** the same primitives, in order (objects could have been changed since they were parsed) */
export function sameValues(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v !== b[i] || (typeof v === 'object' && v !== null)) return false;
  }
  return true;
}
