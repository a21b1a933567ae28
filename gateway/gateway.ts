/**
 * One gateway node: the uWS app, the session table, rooms, admission, heartbeats and expiry,
 * and the wiring between transports (client side) and the bus (worker side).
 */
import { randomBytes } from 'node:crypto';
import uWS, { engine, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.ts';
import { resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.ts';
import { errors, type ErrorCode } from './errors.ts';
import { signToken, verifyToken } from './token.ts';
import { Session, SessionState, type Connection, type SessionOwner } from './session.ts';
import { subjects, type Bus, type Subscription } from '../cluster/bus.ts';
import type { InboundEnvelope, NodeEnvelope, RelayEnvelope, SessionState as SessionState_ } from '../cluster/envelope.ts';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { Relay } from './relay.ts';
import { Rooms } from './rooms.ts';
import { partitionOf } from '../cluster/partition.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import { encode, encodeClose, type ClientFrame, type Format, type Frame } from '../transports/frames.ts';
import { mountWebSocket } from '../transports/websocket.ts';
import { mountSse } from '../transports/sse.ts';
import { mountLongPoll } from '../transports/longpoll.ts';
import { mountStatic } from './static.ts';
import { Exchange } from './http.ts';
import type { Outbox } from './outbox.ts';

/** how long a draining node forwards broadcasts for a session it handed over */
const HANDOVER_GRACE_MS = 1000;

export interface GatewayDeps {
  bus: Bus;
}

/** A session that ended, remembered briefly so a late poll learns why instead of a bare 404 */
interface Tombstone {
  code: number;
  reason: string;
  at: number;
  format: Format;
  /** the outbox, kept when the session ended without a connection (frames may be unread) */
  outbox: Outbox | null;
}

/** A session named by a client: held here, held by node `home` (relay to it), or an error */
export type Lookup = { session: Session } | { home: string } | { error: ErrorCode };

/** What is left of a session that ended: unread frames (from seq `first`), and the close frame */
export interface Ended {
  first: number;
  frames: Frame[];
  close: Frame;
  code: number;
  reason: string;
}

export class Gateway implements SessionOwner {
  readonly options: ResolvedOptions;
  readonly nodeId: string;
  readonly bus: Bus;
  readonly app: TemplatedApp;
  readonly engine = engine;
  readonly sessions = new Map<string, Session>();
  private readonly rooms: Rooms;
  /** sessions without a connection, checked for expiry */
  private readonly detached = new Set<Session>();
  /** sessions waiting for a worker's accept, with their deadline */
  private readonly opening = new Map<Session, number>();
  private readonly tombstones = new Map<string, Tombstone>();
  /** interned `sy.in.<p>` subjects */
  private readonly partitionSubjects: string[];
  private nodeSub: Subscription | null = null;
  private listenSocket: us_listen_socket | null = null;
  private timers: NodeJS.Timeout[] = [];
  private draining = false;
  /** sessions with envelopes no worker acknowledged yet (cluster mode) */
  private readonly awaiting = new Set<Session>();
  /** sessions holding worker output out of turn (a gap, or just handed over): the sweep looks after them */
  private readonly unsettled = new Set<Session>();
  /** sessions with new frames, written at the end of the current tick (cluster mode) */
  private readonly dirty = new Set<Session>();
  /** write frames at once (one process: we are inside a uWS callback, which corks) or batched per tick */
  private readonly deferWrites: boolean;
  readonly relay: Relay;
  port = 0;

  constructor(options: GatewayOptions, deps: GatewayDeps) {
    this.options = resolveOptions(options);
    this.nodeId = this.options.nodeId;
    this.bus = deps.bus;
    this.partitionSubjects = Array.from({ length: this.options.partitionCount }, (_, p) => subjects.partition(p));
    // MemoryBus delivers inside the uWS callback that produced the message; other buses deliver
    // from their own socket's callbacks, where writes are best batched per tick and corked
    this.deferWrites = !(this.bus instanceof MemoryBus);
    this.relay = new Relay(this);
    this.rooms = new Rooms(this.bus, (s, e) => this.relay.post(s.ext.movedTo!, { t: 'r-fwd', sid: s.sid, e }));
    this.app = uWS.App();
    mountWebSocket(this);
    mountSse(this);
    mountLongPoll(this);
    this.app.get('/healthz', (res) => {
      const ex = new Exchange(res, '');
      // 503 while draining: load balancers take the node out at once
      ex.reply(this.draining ? 503 : 200, 'application/json', JSON.stringify(this.health()));
    });
    if (this.options.serveDemo) mountStatic(this);
    this.app.any('/*', (res, req) => {
      const ex = new Exchange(res, '');
      if (req.getMethod() === 'options') ex.reply(204, null);
      else ex.error('SY_ERR_NOT_FOUND');
    });
  }

  /** Starts listening. @returns the port */
  async listen(): Promise<number> {
    this.nodeSub = this.bus.subscribe(subjects.node(this.nodeId), (e) => this.onNodeEnvelope(e as NodeEnvelope | RelayEnvelope));
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.app.listen(host, port, (sock) => {
        if (!sock) return reject(new Error(`could not listen on ${host}:${port}`));
        this.listenSocket = sock;
        this.port = uWS.us_socket_local_port(sock as never);
        resolve();
      });
    });
    const o = this.options;
    this.timers.push(setInterval(() => this.heartbeat(), o.pingMs));
    this.timers.push(setInterval(() => this.sweep(), Math.min(250, Math.max(50, o.resumeWindowMs / 4), o.ackTimeoutMs / 2)));
    for (const t of this.timers) t.unref();
    return this.port;
  }

  /** Stops listening and ends every session (clients are told to reconnect). */
  async close(): Promise<void> {
    this.draining = true;
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const s of [...this.sessions.values()]) this.closeSession(s, errors.SY_ERR_SHUTTING_DOWN.ws, 'SY_ERR_SHUTTING_DOWN', true);
    this.nodeSub?.unsubscribe();
    this.nodeSub = null;
    // uWS closes remaining sockets (idle keep-alive connections) when the app is closed
    (this.app as unknown as { close?: () => void }).close?.();
  }

  health(): Record<string, unknown> {
    return {
      status: this.draining ? 'draining' : 'ok',
      engine: this.engine,
      node: this.nodeId,
      sessions: this.sessions.size,
      rooms: this.rooms.size,
      relay: { open: this.relay.shadowCount, out: this.relay.relayedOut, in: this.relay.relayedIn },
      handedOver: this.moved.size,
      uptimeS: Math.round(process.uptime()),
      memory: { rssBytes: process.memoryUsage.rss() },
    };
  }

  // ---- admission -----------------------------------------------------------------------------

  /** @returns the error for a new connection, or null when it may proceed */
  admit(origin: string, isNew: boolean): ErrorCode | null {
    // a draining node still serves its sessions' requests (answering with Connection: close)
    if (this.draining && isNew) return 'SY_ERR_SHUTTING_DOWN';
    const allowed = this.options.allowedOrigins;
    if (allowed.length > 0 && origin !== '' && !allowed.includes(origin)) return 'SY_ERR_BAD_ORIGIN';
    if (isNew && this.options.maxSessions > 0 && this.sessions.size >= this.options.maxSessions) return 'SY_ERR_TOO_MANY_SESSIONS';
    return null;
  }

  /** An exchange for an HTTP request from `origin` (CORS, and keep-alive off while draining) */
  exchange(res: HttpResponse, origin: string): Exchange {
    const ex = new Exchange(res, this.corsOrigin(origin));
    ex.closeAfter = this.draining;
    return ex;
  }

  /** The value of Access-Control-Allow-Origin for a request from `origin` ('' = none) */
  corsOrigin(origin: string): string {
    if (origin === '') return '';
    const allowed = this.options.allowedOrigins;
    return allowed.length === 0 || allowed.includes(origin) ? origin : '';
  }

  // ---- sessions ------------------------------------------------------------------------------

  /** Creates a session and asks a worker to accept it; `conn.sendOpen` follows on accept. */
  openSession(transport: TransportName, format: Format, meta: SessionMeta, conn: Connection, resumeFailed = false): Session {
    const sid = randomBytes(12).toString('base64url');
    const subjectIn = this.partitionSubjects[partitionOf(sid, this.options.partitionCount)]!;
    const s = new Session(sid, format, meta, subjectIn, transport, this.options.outboxMaxFrames, this);
    s.conn = conn;
    s.lossy = resumeFailed;
    this.sessions.set(sid, s);
    this.toWorker(s, { t: 'open', sid, node: this.nodeId, n: ++s.inSeq, transport, meta });
    // in one process the worker usually answered already (MemoryBus is synchronous)
    if (s.state === SessionState.Opening) this.opening.set(s, Date.now() + this.options.workerTimeoutMs);
    return s;
  }

  /** Finds a session named by a client, checking its token */
  lookup(sid: string, token: string): Lookup {
    const nodeId = verifyToken(this.options.secret, sid, token);
    if (nodeId === null) return { error: 'SY_ERR_BAD_TOKEN' };
    // here, even when the token names another node (this node took the session over)
    const s = this.sessions.get(sid);
    if (s !== undefined && s.state !== SessionState.Closed) return { session: s };
    // held by another node: relay to it (only a cluster has other nodes)
    if (nodeId !== this.nodeId && this.deferWrites) return { home: nodeId };
    return { error: 'SY_ERR_UNKNOWN_SESSION' };
  }

  /**
   * For a session that ended recently: the frames the client has not seen (after `last`) and the
   * close frame, so a late poll or resume learns everything and why it ended. Null if unknown.
   */
  endedSession(sid: string, last: number): Ended | null {
    const t = this.tombstones.get(sid);
    if (t === undefined) return null;
    const frames = t.outbox === null ? [] : t.outbox.since(last);
    const first = t.outbox === null ? last + 1 : Math.max(last + 1, t.outbox.first);
    return { first, frames, close: encodeClose(t.format, t.code, t.reason), code: t.code, reason: t.reason };
  }

  /**
   * Attaches a connection to a session that exists (resume, or the next long-poll), replacing
   * any other connection. Frames after `last` follow, then live ones.
   * @returns whether nothing was lost (see Session.rewind)
   */
  attach(s: Session, conn: Connection, last: number, sendOpen: boolean): boolean {
    const old = s.conn;
    if (old !== null && old !== conn) old.drop();
    s.conn = conn;
    s.transport = conn.transport;
    s.detachedAt = 0;
    this.detached.delete(s);
    const recovered = s.rewind(last);
    // a session still waiting for its worker gets `open` (and its frames) on accept
    if (s.state !== SessionState.Open) return recovered;
    if (sendOpen) conn.sendOpen(s, this.openFrame(s, recovered));
    conn.flush(s);
    return recovered;
  }

  /** The connection went away; the session waits for the next one (resume window). */
  detach(s: Session, conn: Connection): void {
    if (s.conn !== conn) return;
    s.conn = null;
    if (s.relay !== null) return this.relay.detached(s);
    if (s.state === SessionState.Closed) return;
    s.detachedAt = Date.now();
    this.detached.add(s);
  }

  openFrame(s: Session, recovered?: boolean): Frame {
    // signed when needed, not kept: one string less per session
    const f: Record<string, unknown> = { type: 'open', sid: s.sid, token: signToken(this.options.secret, s.sid, this.nodeId), pingMs: this.options.pingMs, last: s.outbox.last };
    if (recovered !== undefined) f.recovered = recovered;
    return encode(s.format, f);
  }

  /** A frame from a client, already validated */
  handleFrame(s: Session, f: ClientFrame): void {
    if (s.state === SessionState.Closed) return;
    if (s.relay !== null) return this.relay.forward(s, f);
    switch (f.type) {
      case 'event':
        if (f.ack !== undefined) this.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args, ack: f.ack });
        else if (f.raw === undefined) this.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args });
        // over the network the args go as the client's JSON text only (see InboundEnvelope)
        else if (this.deferWrites) this.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, raw: f.raw });
        else this.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args, raw: f.raw });
        return;
      case 'close':
        this.closeSession(s, 1000, 'client closed', true);
        return;
      case 'pong':
        return;
    }
  }

  /** Ends a session for good: close frame to the client, `close` to the worker */
  closeSession(s: Session, code: number, reason: string, notifyWorker: boolean): void {
    if (s.state === SessionState.Closed) return;
    s.state = SessionState.Closed;
    if (s.relay !== null) return this.relay.closed(s, code, reason);
    this.forget(s);
    this.rooms.leaveAll(s);
    const conn = s.conn;
    s.conn = null;
    if (conn !== null) conn.end(s, encodeClose(s.format, code, reason), code, reason);
    this.tombstones.set(s.sid, { code, reason, at: Date.now(), format: s.format, outbox: conn === null ? s.outbox : null });
    // best effort: a worker that misses it drops the session when its partition moves
    if (notifyWorker) this.bus.publish(s.subjectIn, { t: 'close', sid: s.sid, node: this.nodeId, n: ++s.inSeq, code, reason });
  }

  /** Removes a session from every table of this node (it ended, or went to another node) */
  private forget(s: Session): void {
    this.sessions.delete(s.sid);
    this.detached.delete(s);
    this.opening.delete(s);
    this.awaiting.delete(s);
    this.dirty.delete(s);
    this.unsettled.delete(s);
  }

  /** SessionOwner: the outbox is full of unsent frames */
  overflow(s: Session): void {
    this.closeSession(s, errors.SY_ERR_SLOW_CONSUMER.ws, 'SY_ERR_SLOW_CONSUMER', true);
  }

  /** SessionOwner: write new frames now (inside a uWS callback) or at the end of this tick */
  wake(s: Session): void {
    if (!this.deferWrites) {
      s.conn!.flush(s);
      return;
    }
    if (this.dirty.size === 0) queueMicrotask(this.flushDirty);
    this.dirty.add(s);
  }

  private readonly flushDirty = (): void => {
    for (const s of this.dirty) if (s.conn !== null && s.state === SessionState.Open) s.conn.flush(s);
    this.dirty.clear();
  };

  // ---- delivery to workers: at least once in a cluster -------------------------------------------

  /** Publishes to the session's partition; in a cluster keeps it until a worker acknowledges */
  private toWorker(s: Session, e: InboundEnvelope): void {
    if (!this.options.atLeastOnce) {
      this.bus.publish(s.subjectIn, e);
      return;
    }
    e.lo = s.ext.lastOut;
    this.bus.publish(s.subjectIn, e);
    if (s.ext.unacked === null) {
      s.ext.unacked = [];
      s.ext.unackedSince = Date.now();
      this.awaiting.add(s);
    }
    s.ext.unacked.push(e);
  }

  private resendUnacked(s: Session): void {
    if (s.ext.unacked !== null) {
      for (const e of s.ext.unacked) {
        e.lo = s.ext.lastOut;
        this.bus.publish(s.subjectIn, e);
      }
    }
    s.ext.unackedSince = Date.now();
  }

  /** A worker processed everything up to `n` */
  private acked(s: Session, n: number): void {
    if (n <= s.ext.acked) return;
    s.ext.acked = n;
    const q = s.ext.unacked;
    if (q === null) return;
    let i = 0;
    while (i < q.length && q[i]!.n <= n) i++;
    if (i === q.length) {
      s.ext.unacked = null;
      this.awaiting.delete(s);
    } else if (i > 0) {
      q.splice(0, i);
      s.ext.unackedSince = Date.now();
    }
  }

  /**
   * The partition's owner does not know the session (the partition moved, or the worker died):
   * open it there again, then resend what was not acknowledged, in order.
   */
  private reopen(s: Session): void {
    const q = s.ext.unacked;
    if (s.ext.acked > 0) this.bus.publish(s.subjectIn, { t: 'open', sid: s.sid, node: this.nodeId, n: s.ext.acked, transport: s.transport, meta: s.meta, moved: true, lo: s.ext.lastOut });
    this.resendUnacked(s);
    s.ext.unackedSince = Date.now();
  }

  // ---- worker output -------------------------------------------------------------------------

  private onNodeEnvelope(e: NodeEnvelope | RelayEnvelope): void {
    if (e.t.charCodeAt(0) === 114 /* r */ && e.t.charCodeAt(1) === 45 /* - */) return this.onRelayEnvelope(e as RelayEnvelope);
    const w = e as NodeEnvelope;
    const s = this.sessions.get(w.sid);
    if (s === undefined) {
      // a session we handed over: its new node gets what still comes here, in order
      const to = this.moved.get(w.sid);
      if (to !== undefined) this.relay.post(to, { t: 'r-fwd', sid: w.sid, e: w });
      return;
    }
    // just taken over: the old node first forwards what it got, then this comes in order
    const x = s.extIfAny;
    if (x !== null && x.held !== null) {
      x.held.push(w);
      return;
    }
    this.receive(s, w);
  }

  /** Applies worker outputs in `o` order, once each (cluster); others at once */
  private receive(s: Session, w: NodeEnvelope): void {
    const o = (w as { o?: number }).o;
    if (o === undefined) return this.apply(s, w);
    if (o <= s.ext.lastOut) return; // seen: a resend
    if (o > s.ext.lastOut + 1) {
      // one got lost (a NATS server died with it in flight): hold this one, ask for the gap
      (s.ext.early ??= new Map()).set(o, w);
      this.unsettled.add(s);
      this.askGap(s, Date.now());
      return;
    }
    s.ext.lastOut = o;
    this.apply(s, w);
    const early = s.ext.early;
    if (early === null) return;
    for (let next = early.get(s.ext.lastOut + 1); next !== undefined; next = early.get(s.ext.lastOut + 1)) {
      early.delete(++s.ext.lastOut);
      this.apply(s, next);
    }
    if (early.size === 0) s.ext.early = null;
  }

  private askGap(s: Session, now: number): void {
    if (now - s.ext.gapAskedAt < this.options.ackTimeoutMs) return;
    s.ext.gapAskedAt = now;
    this.bus.publish(s.subjectIn, { t: 'resend', sid: s.sid, node: this.nodeId, n: 0, from: s.ext.lastOut + 1, lo: s.ext.lastOut });
  }

  private apply(s: Session, w: NodeEnvelope): void {
    const n = (w as { n?: number }).n;
    if (n !== undefined && this.options.atLeastOnce) this.acked(s, n);
    switch (w.t) {
      case 'emit':
        s.pushEvent(w.event, w.args, null, w.raw);
        return;
      case 'reply':
        s.pushReply(w.ack, w.args, w.error);
        return;
      case 'accept':
        if (s.state !== SessionState.Opening) return;
        s.state = SessionState.Open;
        this.opening.delete(s);
        if (s.conn !== null) {
          s.conn.sendOpen(s, this.openFrame(s, s.lossy ? false : undefined));
          s.conn.flush(s);
        }
        return;
      case 'join':
        this.rooms.join(s, w.room);
        return;
      case 'leave':
        this.rooms.leave(s, w.room);
        return;
      case 'disconnect':
        // a rejected open never reached the app: no close for the worker then
        this.closeSession(s, w.code, w.reason, s.state !== SessionState.Opening);
        return;
      case 'ack':
        return; // handled above
      case 'who':
        this.reopen(s);
        return;
      case 'rehomed':
        return; // only meaningful as a forward (see onRelayEnvelope)
    }
  }

  private onRelayEnvelope(e: RelayEnvelope): void {
    switch (e.t) {
      case 'r-handover':
        return this.adopt(e.cid, e.state);
      case 'r-fwd': {
        const s = this.sessions.get(e.sid);
        if (s === undefined) return;
        if (e.e.t === 'broadcast') return this.rooms.deliver(s, e.e, null);
        if (e.e.t === 'rehomed') return this.release(s);
        return this.receive(s, e.e);
      }
      case 'r-bye': {
        const s = this.sessions.get(e.sid);
        if (s !== undefined) this.rooms.release(s);
        return;
      }
      case 'r-prepare':
        return void this.prepare(e.cid, e.rooms);
      case 'r-ready': {
        const s = this.sessions.get(e.sid);
        if (s !== undefined && s.ext.handing !== null && s.ext.handing.cid === e.cid && s.ext.handing.to === e.from) this.handOver(s, e.from, e.cid);
        return;
      }
      default:
        return this.relay.onEnvelope(e);
    }
  }

  // ---- drain and hand-over -----------------------------------------------------------------------

  /** sessions this node handed over, and to which node (forwarding while the node lives) */
  private readonly moved = new Map<string, string>();

  /**
   * Drains the node: stops accepting, asks every client to reconnect (spread over `windowMs` so
   * the other nodes are not hit all at once), and hands each session over to the node its client
   * reconnects to. Resolves when all sessions left, or after the window and a grace period;
   * sessions still here then are closed. Then closes the node.
   */
  async drain(windowMs = 5000, graceMs = 3000): Promise<{ handedOver: number; closed: number }> {
    this.draining = true;
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    for (const s of this.sessions.values()) {
      const t = setTimeout(() => {
        const c = s.conn;
        if (c === null || s.state === SessionState.Closed) return;
        c.restart();
        this.detach(s, c);
      }, Math.random() * windowMs);
      t.unref();
    }
    const deadline = Date.now() + windowMs + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const closed = this.sessions.size;
    const handedOver = this.moved.size;
    // keep forwarding broadcasts until the last hand-over's grace is over
    if (handedOver > 0) await new Promise((r) => setTimeout(r, HANDOVER_GRACE_MS + 100));
    await this.close();
    return { handedOver, closed };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * (draining node) Node `to` has the session's client on its connection `cid`. A session in rooms
   * first has `to` subscribe to them (so no broadcast falls between the two nodes); then, or at
   * once, its state goes over.
   */
  beginHandOver(s: Session, to: string, cid: number): void {
    if (s.rooms === null || s.rooms.size === 0) return this.handOver(s, to, cid);
    s.ext.handing = { to, cid, ids: [], deadline: Date.now() + this.options.relayTimeoutMs };
    this.unsettled.add(s);
    this.relay.post(to, { t: 'r-prepare', cid, rooms: [...s.rooms] });
  }

  /** (draining node) Gives session `s` to node `to`, whose connection `cid` waits for it */
  private handOver(s: Session, to: string, cid: number): void {
    const box = s.outbox;
    this.relay.post(to, {
      t: 'r-handover',
      cid,
      state: {
        sid: s.sid,
        format: s.format,
        meta: s.meta,
        transport: s.transport,
        first: box.first,
        frames: box.since(box.first - 1),
        inSeq: s.inSeq,
        acked: s.ext.acked,
        unacked: s.ext.unacked ?? [],
        rooms: s.rooms === null ? [] : [...s.rooms],
        open: s.state === SessionState.Open,
        lastOut: s.ext.lastOut,
        delivered: s.ext.handing?.ids ?? [],
      },
    });
    // not ours any more: worker output that still comes here is forwarded (see onNodeEnvelope), and
    // so are broadcasts for a moment: one that reached the new node before it subscribed may reach
    // us only now. Then we leave the rooms and say so.
    s.ext.handing = null;
    s.ext.movedTo = to;
    const t = setTimeout(() => {
      this.rooms.leaveAll(s);
      this.relay.post(to, { t: 'r-bye', sid: s.sid });
    }, HANDOVER_GRACE_MS);
    t.unref();
    const conn = s.conn;
    s.conn = null;
    conn?.drop();
    this.forget(s);
    this.moved.set(s.sid, to);
  }

  /** A shadow session is gone: it may have joined rooms for a hand-over (see prepare) */
  shadowGone(s: Session): void {
    this.rooms.leaveAll(s);
    const x = s.extIfAny;
    if (x !== null) x.buffer = null;
  }

  /** (receiving node) Subscribes the waiting connection's shadow to the rooms, then tells the old node */
  private async prepare(cid: number, rooms: string[]): Promise<void> {
    const shadow = this.relay.shadowOf(cid);
    if (shadow === null) return;
    shadow.ext.buffer = [];
    for (const room of rooms) this.rooms.join(shadow, room);
    await this.bus.flush(); // our subscriptions are in force at the server from here on
    this.relay.post(shadow.relay!.home, { t: 'r-ready', sid: shadow.sid, from: this.nodeId, cid });
  }

  /** (receiving node) Installs a session handed over by a draining node, for the waiting connection `cid` */
  private adopt(cid: number, st: SessionState_): void {
    const shadow = this.relay.take(cid);
    if (shadow === null) return; // the connection went away meanwhile; the session is lost with the old node
    const sid = st.sid;
    const subjectIn = this.partitionSubjects[partitionOf(sid, this.options.partitionCount)]!;
    // a new token names this node: the client's next request comes here directly
    const s = new Session(sid, st.format, st.meta, subjectIn, shadow.transport, this.options.outboxMaxFrames, this);
    s.state = st.open ? SessionState.Open : SessionState.Opening;
    s.outbox.reset(st.first - 1);
    for (const f of st.frames) s.outbox.push(f);
    s.inSeq = st.inSeq;
    s.ext.acked = st.acked;
    s.ext.lastOut = st.lastOut;
    if (st.unacked.length > 0) {
      s.ext.unacked = st.unacked.map((e) => ({ ...e, node: this.nodeId }));
      s.ext.unackedSince = Date.now();
      this.awaiting.add(s);
    }
    s.ext.held = [];
    s.ext.heldUntil = Date.now() + this.options.relayTimeoutMs;
    this.unsettled.add(s);
    this.sessions.set(sid, s);
    // the rooms: broadcasts the old node did not deliver (it got them after it handed over) follow
    // what it did; per publisher the order is the one NATS delivered to both nodes
    this.rooms.leaveAll(shadow);
    for (const room of st.rooms) this.rooms.join(s, room);
    // hold broadcasts back until the old node stops forwarding; what it delivered already is out
    const delivered = new Set(st.delivered);
    s.ext.buffer = (shadow.ext.buffer ?? []).filter((e) => e.id === undefined || !delivered.has(e.id));
    s.ext.bufferIds = delivered;
    for (const e of s.ext.buffer) if (e.id !== undefined) delivered.add(e.id);
    s.ext.bufferUntil = Date.now() + HANDOVER_GRACE_MS + this.options.relayTimeoutMs;
    shadow.ext.buffer = null;
    // the worker sends to us from now on; what it sent before reaches us through the old node
    this.toWorker(s, { t: 'rehome', sid, node: this.nodeId, n: ++s.inSeq });
    const conn = shadow.conn!;
    shadow.conn = null;
    conn.session = s;
    // `open` tells the client the new token (a poll answer carries it first, too)
    this.attach(s, conn, shadow.sent, true);
  }

  /** The old node forwarded everything it got: what came directly may be applied now */
  private release(s: Session): void {
    const q = s.ext.held;
    s.ext.held = null;
    if (q !== null) for (const w of q) this.receive(s, w);
  }

  // ---- timers --------------------------------------------------------------------------------

  private heartbeat(): void {
    for (const s of this.sessions.values()) if (s.conn !== null && s.state === SessionState.Open) s.conn.ping(s);
  }

  private sweep(): void {
    const now = Date.now();
    const window = this.options.resumeWindowMs;
    for (const s of this.detached) {
      if (now - s.detachedAt > window) this.closeSession(s, errors.SY_ERR_SESSION_TIMEOUT.ws, 'SY_ERR_SESSION_TIMEOUT', true);
    }
    for (const [s, deadline] of this.opening) {
      if (now > deadline) this.closeSession(s, errors.SY_ERR_WORKER_TIMEOUT.ws, 'SY_ERR_WORKER_TIMEOUT', false);
    }
    const retryAfter = this.options.ackTimeoutMs;
    for (const s of this.awaiting) {
      if (now - s.ext.unackedSince < retryAfter) continue;
      // no worker answered in time (it died, or the partition is between owners): resend in order
      this.resendUnacked(s);
    }
    this.relay.sweep(now);
    for (const s of this.unsettled) {
      if (s.ext.held !== null && now > s.ext.heldUntil) this.release(s);
      if (s.ext.early !== null) this.askGap(s, now);
      // the new node never said it is ready: hand over anyway (a broadcast may fall between)
      if (s.ext.handing !== null && now > s.ext.handing.deadline) this.handOver(s, s.ext.handing.to, s.ext.handing.cid);
      // the old node never said bye: release what is held back
      if (s.ext.buffer !== null && s.relay === null && now > s.ext.bufferUntil) this.rooms.release(s);
      if ((s.ext.held === null && s.ext.early === null && s.ext.handing === null && s.ext.buffer === null) || s.state === SessionState.Closed) this.unsettled.delete(s);
    }
    const keep = Math.max(window, this.options.pollTimeoutMs * 2);
    for (const [sid, t] of this.tombstones) {
      if (now - t.at > keep) this.tombstones.delete(sid);
      else break; // insertion order = age order
    }
  }
}
