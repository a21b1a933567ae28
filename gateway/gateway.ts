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
import type { NodeEnvelope, RelayEnvelope } from '../cluster/envelope.ts';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { Relay } from './relay.ts';
import { Rooms } from './rooms.ts';
import { Delivery } from './delivery.ts';
import { Handover, HANDOVER_GRACE_MS } from './handover.ts';
import { partitionOf } from '../cluster/partition.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import { encode, encodeClose, type ClientFrame, type Format, type Frame } from '../transports/frames.ts';
import { mountWebSocket } from '../transports/websocket.ts';
import { mountSse } from '../transports/sse.ts';
import { mountLongPoll } from '../transports/longpoll.ts';
import { mountStatic } from './static.ts';
import { Exchange } from './http.ts';
import type { Outbox } from './outbox.ts';

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
  /** @internal */
  readonly rooms: Rooms;
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
  /** sessions with new frames, written at the end of the current tick (cluster mode) */
  private readonly dirty = new Set<Session>();
  /** write frames at once (one process: we are inside a uWS callback, which corks) or batched per tick */
  private readonly deferWrites: boolean;
  readonly relay: Relay;
  /** @internal at-least-once delivery to and from workers (cluster) */
  readonly delivery: Delivery;
  /** @internal drain hand-overs */
  readonly handover: Handover;
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
    this.delivery = new Delivery(this.bus, this.nodeId, this.options);
    this.handover = new Handover(this);
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
      handedOver: this.handover.moved.size,
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
    const subjectIn = this.subjectOf(sid);
    const s = new Session(sid, format, meta, subjectIn, transport, this.options.outboxMaxFrames, this);
    s.conn = conn;
    s.lossy = resumeFailed;
    this.sessions.set(sid, s);
    this.delivery.toWorker(s, { t: 'open', sid, node: this.nodeId, n: ++s.inSeq, transport, meta });
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
        if (f.ack !== undefined) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args, ack: f.ack });
        else if (f.raw === undefined) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args });
        // over the network the args go as the client's JSON text only (see InboundEnvelope)
        else if (this.deferWrites) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, raw: f.raw });
        else this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n: ++s.inSeq, event: f.event, args: f.args, raw: f.raw });
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

  /** @internal Removes a session from every table of this node (it ended, or went to another node) */
  forget(s: Session): void {
    this.sessions.delete(s.sid);
    this.detached.delete(s);
    this.opening.delete(s);
    this.dirty.delete(s);
    this.delivery.forget(s);
  }

  /** @internal The bus subject of a sid's partition (interned) */
  subjectOf(sid: string): string {
    return this.partitionSubjects[partitionOf(sid, this.options.partitionCount)]!;
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

  // ---- worker output -------------------------------------------------------------------------

  private onNodeEnvelope(e: NodeEnvelope | RelayEnvelope): void {
    if (e.t.charCodeAt(0) === 114 /* r */ && e.t.charCodeAt(1) === 45 /* - */) return this.onRelayEnvelope(e as RelayEnvelope);
    const w = e as NodeEnvelope;
    const s = this.sessions.get(w.sid);
    if (s === undefined) {
      // a session we handed over: its new node gets what still comes here, in order
      this.handover.forward(w);
      return;
    }
    // just taken over: the old node first forwards what it got, then this comes in order
    const x = s.extIfAny;
    if (x !== null && x.held !== null) {
      x.held.push(w);
      return;
    }
    this.delivery.receive(s, w, this.apply);
  }

  /** @internal Applies one worker output to its session (in order: see Delivery.receive) */
  readonly apply = (s: Session, w: NodeEnvelope): void => {
    const n = (w as { n?: number }).n;
    if (n !== undefined && this.options.atLeastOnce) this.delivery.acked(s, n);
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
        this.delivery.reopen(s);
        return;
      case 'rehomed':
        return; // only meaningful as a forward (see Handover)
    }
  };

  private onRelayEnvelope(e: RelayEnvelope): void {
    switch (e.t) {
      case 'r-prepare':
      case 'r-ready':
      case 'r-handover':
      case 'r-fwd':
      case 'r-bye':
        return this.handover.onEnvelope(e);
      default:
        return this.relay.onEnvelope(e);
    }
  }

  // ---- drain and hand-over -----------------------------------------------------------------------

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
    const handedOver = this.handover.moved.size;
    // keep forwarding broadcasts until the last hand-over's grace is over
    if (handedOver > 0) await new Promise((r) => setTimeout(r, HANDOVER_GRACE_MS + 100));
    await this.close();
    return { handedOver, closed };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** (draining node) Node `to` has session `s`'s client on its connection `cid`: give the session to it */
  beginHandOver(s: Session, to: string, cid: number): void {
    this.handover.begin(s, to, cid);
  }

  /** A shadow session is gone: it may have joined rooms for a hand-over */
  shadowGone(s: Session): void {
    this.rooms.leaveAll(s);
    const x = s.extIfAny;
    if (x !== null) x.buffer = null;
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
    this.delivery.sweep(now);
    this.handover.sweep(now);
    this.relay.sweep(now);
    const keep = Math.max(window, this.options.pollTimeoutMs * 2);
    for (const [sid, t] of this.tombstones) {
      if (now - t.at > keep) this.tombstones.delete(sid);
      else break; // insertion order = age order
    }
  }
}
