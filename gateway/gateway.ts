/**
 * One gateway node: the uWS app, the session table, rooms, admission, heartbeats and expiry.
 * It implements the wires' `Port` (transports/seam/port.ts) and mounts them; worker output is applied
 * by worker-output.ts. Connections encode with their own codecs; the dialects come from one
 * registry (transports/dialects/index.ts), which says what each reports and stops.
 */
import { randomId } from '../transports/seam/ids.ts';
import { loadEngine, type Engine as UwsEngine, type TemplatedApp, type Uws, type us_listen_socket } from './uws.ts';
import { NODE_ID, resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.ts';
import { errors, type ErrorCode } from '../transports/seam/errors.ts';
import { signToken, TokenGens } from './token.ts';
import { JwtVerifier, tokenOf } from './jwt.ts';
import { Session, SessionState, type SessionOwner } from './session.ts';
import { subjects, type Bus, type Subscription } from '../cluster/bus.ts';
import type { ControlEnvelope, LinkEnvelope, NodeEnvelope, RelayEnvelope } from '../cluster/envelope.ts';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { NodeLiveness } from '../cluster/node-liveness.ts';
import { Relay } from './relay.ts';
import { Rooms } from './rooms.ts';
import { Delivery } from './delivery.ts';
import { Directory } from './directory.ts';
import { Handover, HANDOVER_GRACE_MS } from './handover.ts';
import { WorkerOutput } from './worker-output.ts';
import { partitionOf } from '../cluster/partition.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import type { Claim, ClientFrame, Connection, Ended, OpenInfo, Port, PortSession, Target, Tunnel, TunnelServer } from '../transports/seam/port.ts';
import { RequestTunnel } from './tunnel.ts';
import { mountDialects, rotatesTokens, type MountedDialect } from '../transports/dialects/index.ts';
import { mountStatic } from './static.ts';
import type { OutboxLimits } from './outbox.ts';
import { debugging, log, warnOnce } from '../lib/log.ts';
import { Entry } from '../transports/seam/entry.ts';
import { Admission, FD_CHECK_MS } from './admission.ts';
import { heldBytes, SessionTable } from './session-table.ts';
import { mountProbes, notFound } from './endpoints.ts';
import { Stats, type MetricsSource } from './metrics.ts';

export interface GatewayDeps {
  bus: Bus;
}

export class Gateway implements SessionOwner, Port, MetricsSource {
  readonly options: ResolvedOptions;
  readonly nodeId: string;
  readonly bus: Bus;
  readonly app: TemplatedApp;
  /** the native uWebSockets.js build this node runs on */
  readonly engine: UwsEngine;
  private readonly uws: Uws;
  readonly sessions = new Map<string, Session>();
  /** @internal */
  readonly rooms: Rooms;
  /** built-in JWT verification of new sessions (option `jwt`), or null */
  private readonly jwt: JwtVerifier | null;
  /** admission of new sessions and requests, and the open-file guard */
  readonly admission: Admission;
  /** what `/metrics` reports */
  readonly stats = new Stats();
  /** sessions without a connection, checked for expiry */
  private readonly detached = new Set<Session>();
  /**
   * of those, the ones whose client went away (its connection dropped): they hold no descriptor
   * and count against detachedMaxBytes, not maxSessions; a session between two polls does count
   */
  private readonly parked = new Set<Session>();
  /** sessions waiting for a worker's accept, with their deadline */
  private readonly opening = new Map<Session, number>();
  /** the session table: finding sessions, and the ones that ended a moment ago */
  readonly table: SessionTable;
  /** dialects' request tunnels between nodes (see Port.tunnel), by channel */
  private readonly tunnels = new Map<string, RequestTunnel>();
  /** the other gateway nodes' heartbeats, and ours (cluster) */
  private liveness: NodeLiveness | null = null;
  /** the dialects this node serves (transports/dialects/index.ts) */
  private dialects: MountedDialect[] = [];
  /** interned `sy.in.<p>` subjects */
  private readonly partitionSubjects: string[];
  private nodeSub: Subscription | null = null;
  private controlSub: Subscription | null = null;
  private listenSocket: us_listen_socket | null = null;
  /** the probes' own app and listener (option metricsPort), or null: they are on the clients' port */
  private metricsApp: TemplatedApp | null = null;
  private metricsSocket: us_listen_socket | null = null;
  /** the port `/metrics` is served on when it has its own (option metricsPort), else 0 */
  metricsPort = 0;
  private timers: NodeJS.Timeout[] = [];
  private draining = false;
  /** heartbeat rounds: a carrier is pinged once per round however many sessions it carries */
  private pingRound = 0;
  /** sessions with new entries, written at the end of the current tick (cluster mode) */
  private readonly dirty = new Set<Session>();
  /**
   * Other nodes exist (a network bus). Then writes are batched per tick and corked: bus messages
   * come from the NATS socket's callbacks, not uWS's. In one process output is written at once:
   * a synchronous handler's inside the uWS callback that delivered the event (uWS corks it), an
   * async handler's when it comes (one frame is one write either way; a connection corks several).
   */
  readonly clustered: boolean;
  readonly relay: Relay;
  /** @internal at-least-once delivery to and from workers (cluster) */
  readonly delivery: Delivery;
  /** @internal drain hand-overs */
  readonly handover: Handover;
  /** @internal which node holds a session, asked of the whole cluster */
  readonly directory: Directory;
  /** @internal */
  readonly output: WorkerOutput;
  /** the TCP port the clients connect to, once listening (the `port` option, or the one picked for 0) */
  listenPort = 0;
  /** @internal every outbox's bounds (one object for all), and the bytes the live sessions' outboxes hold */
  readonly outboxLimits: OutboxLimits;
  /** @internal the same bounds for outboxes of sessions no longer in the table (ended, handed over, shadows): not in the node's count */
  readonly goneLimits: OutboxLimits;
  /** live sessions by `<transport> <dialect> <attached>`, kept as they change (metrics: a scrape walks nothing) */
  readonly sessionCounts = new Map<string, number>();

  constructor(options: GatewayOptions, deps: GatewayDeps) {
    this.options = resolveOptions(options);
    this.outboxLimits = { maxEntries: this.options.outboxMaxFrames, maxBytes: this.options.outboxMaxBytes, held: 0 };
    this.goneLimits = { ...this.outboxLimits };
    this.admission = new Admission(this);
    this.table = new SessionTable(this, this.sessions);
    this.jwt = this.options.jwt === false ? null : new JwtVerifier(this.options.jwt);
    this.nodeId = this.options.nodeId;
    this.bus = deps.bus;
    this.partitionSubjects = Array.from({ length: this.options.partitionCount }, (_, p) => subjects.partition(p));
    this.clustered = !(this.bus instanceof MemoryBus);
    this.relay = new Relay(this);
    this.delivery = new Delivery(this.bus, this.nodeId, this.options, (s, code) => this.closeSession(s, errors[code].ws, code, true));
    this.handover = new Handover(this);
    this.directory = new Directory(this);
    this.output = new WorkerOutput(this);
    this.rooms = new Rooms(this.bus, (s, e) => this.relay.post(s.ext.movedTo!, { t: 'r-fwd', sid: s.sid, e }));
    this.engine = loadEngine(this.options.engine);
    this.uws = this.engine.uws;
    this.app = this.uws.App();
    this.dialects = mountDialects(this, this.options);
    // the probes on the clients' port; /metrics there too unless it has a port of its own
    const own = this.options.metricsPort !== null;
    mountProbes(this.app, this, this.options.metrics && !own);
    if (own) {
      this.metricsApp = this.uws.App();
      mountProbes(this.metricsApp, this, this.options.metrics);
      notFound(this.metricsApp);
    }
    if (this.options.serveDemo) mountStatic(this);
    notFound(this.app);
  }

  /** Starts listening. @returns the port */
  async listen(): Promise<number> {
    this.nodeSub = this.bus.subscribe(subjects.node(this.nodeId), (e) => this.onNodeEnvelope(e as NodeEnvelope | RelayEnvelope | LinkEnvelope));
    // workers say in their heartbeats how many partitions they own (metrics only)
    if (this.options.metrics) {
      this.controlSub = this.bus.subscribe(subjects.control, (e) => {
        const c = e as ControlEnvelope;
        if (c.t === 'bye') this.stats.workers.delete(c.worker);
        else if (c.t === 'hb' && c.owned !== undefined) this.stats.workers.set(c.worker, { owned: c.owned, at: Date.now() });
      });
    }
    this.directory.listen();
    if (this.clustered) {
      this.liveness = new NodeLiveness({
        bus: this.bus,
        nodeId: this.nodeId,
        heartbeatMs: this.options.heartbeatMs,
        timeoutMs: this.options.memberTimeoutMs,
        onDead: (node) => this.nodeLost(node),
        onStall: () => this.stalled(),
      });
    }
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.app.listen(host, port, (sock) => {
        if (!sock) return reject(new Error(`could not listen on ${host}:${port}`));
        this.listenSocket = sock;
        this.listenPort = this.uws.us_socket_local_port(sock as never);
        resolve();
      });
    });
    const o = this.options;
    if (this.metricsApp !== null) {
      const app = this.metricsApp;
      await new Promise<void>((resolve, reject) => {
        app.listen(o.metricsHost, o.metricsPort!, (sock) => {
          if (!sock) return reject(new Error(`could not listen on ${o.metricsHost}:${o.metricsPort} (metrics)`));
          this.metricsSocket = sock;
          this.metricsPort = this.uws.us_socket_local_port(sock as never);
          resolve();
        });
      });
    }
    this.timers.push(setInterval(() => this.heartbeat(), o.pingMs));
    if (o.metrics) this.timers.push(setInterval(() => this.probeBus(), BUS_PROBE_MS));
    if (this.admission.fd.limit > 0) this.timers.push(setInterval(() => this.admission.checkDescriptors(), FD_CHECK_MS));
    this.timers.push(setInterval(() => this.sweep(), Math.min(250, Math.max(50, o.resumeWindowMs / 4), o.ackTimeoutMs / 2)));
    for (const t of this.timers) t.unref();
    return this.listenPort;
  }

  /** Stops listening and ends every session (clients are told to reconnect). */
  async close(): Promise<void> {
    this.draining = true;
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const s of [...this.sessions.values()]) this.closeSession(s, errors.SY_ERR_SHUTTING_DOWN.ws, 'SY_ERR_SHUTTING_DOWN', true);
    for (const d of this.dialects) d.stop?.();
    this.nodeSub?.unsubscribe();
    this.nodeSub = null;
    this.controlSub?.unsubscribe();
    this.controlSub = null;
    this.directory.close();
    // after the sessions' closes (same publisher, in order): the others let go of what we held
    this.liveness?.stop();
    this.liveness = null;
    if (this.metricsSocket !== null) this.uws.us_listen_socket_close(this.metricsSocket);
    this.metricsSocket = null;
    // uWS closes remaining sockets (idle keep-alive connections) when the app is closed
    (this.app as unknown as { close?: () => void }).close?.();
    (this.metricsApp as unknown as { close?: () => void } | null)?.close?.();
  }

  get outboxBytes(): number {
    return this.outboxLimits.held;
  }

  /**
   * @internal Counts the session under what it is now (transport, dialect, attached), moving it
   * from what it was counted as. Called wherever one of these changes for a session of the table.
   */
  recount(s: Session): void {
    if (s.relay !== null) return;
    const key = s.state === SessionState.Closed || this.sessions.get(s.sid) !== s ? null : countKey(s.transport, s.meta.dialect, s.conn !== null);
    const was = s.counted;
    if (key === was) return;
    const m = this.sessionCounts;
    if (was !== null) {
      const n = m.get(was)! - 1;
      if (n === 0) m.delete(was);
      else m.set(was, n);
    }
    if (key !== null) m.set(key, (m.get(key) ?? 0) + 1);
    s.counted = key;
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  /** Why the node should get no new clients now ('draining', 'saturated'), or null */
  unready(): 'draining' | 'saturated' | null {
    return this.admission.unready();
  }

  /** @internal (AdmissionHost) sessions counted against maxSessions: parked ones hold no descriptor */
  countedSessions(): number {
    return this.sessions.size - this.parked.size;
  }

  /** @internal (AdmissionHost) */
  get listening(): boolean {
    return this.listenSocket !== null;
  }

  /** @internal (AdmissionHost) stops accepting connections (near the open-file limit) */
  stopListening(): void {
    if (this.listenSocket === null) return;
    this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
  }

  /** @internal (AdmissionHost) accepts connections again on the same port */
  listenAgain(done: (ok: boolean) => void): void {
    this.app.listen(this.options.host, this.listenPort, (sock) => {
      if (sock && !this.draining) this.listenSocket = sock;
      else if (sock) this.uws.us_listen_socket_close(sock);
      done(!!sock);
    });
  }

  /**
   * A session a connection is about to attach to, or the limit's refusal: a parked session comes
   * back into the count, and only if there is room for it
   */
  attachable(s: Session): Target {
    if (!this.parked.has(s) || !this.admission.atSessionLimit()) return { kind: 'session', session: s };
    Stats.bump(this.stats.refused, 'SY_ERR_TOO_MANY_SESSIONS');
    return { kind: 'error', error: 'SY_ERR_TOO_MANY_SESSIONS' };
  }

  health(): Record<string, unknown> {
    return {
      status: this.unready() ?? 'ok',
      maxSessions: this.options.maxSessions,
      openFiles: { open: this.admission.fd.open, limit: this.admission.fd.limit, accepting: !this.admission.fd.paused },
      engine: this.engine.kind,
      enginePackage: this.engine.spec,
      node: this.nodeId,
      sessions: this.sessions.size,
      rooms: this.rooms.size,
      relay: { open: this.relay.shadowCount, out: this.relay.relayedOut, in: this.relay.relayedIn },
      handedOver: this.handover.moved.size,
      ...Object.fromEntries(this.dialects.filter((d) => d.stats !== undefined).map((d) => [d.name, d.stats!()])),
      uptimeS: Math.round(process.uptime()),
      memory: { rssBytes: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed },
    };
  }

  // ---- admission (Port) ------------------------------------------------------------------------

  admit(origin: string, isNew: boolean, ip = '', requestBytes = 0): ErrorCode | null {
    return this.admission.admit(origin, isNew, ip, requestBytes);
  }

  corsOrigin(origin: string): string {
    return this.admission.corsOrigin(origin);
  }

  get closing(): boolean {
    return this.draining;
  }

  // ---- sessions (Port) ---------------------------------------------------------------------------

  /** Creates a session and asks a worker to accept it; `conn.sendOpen` follows on accept. */
  open(transport: TransportName, meta: SessionMeta, conn: Connection, resumeFailed = false, chosen?: string, claim?: Claim): Session {
    const sid = chosen !== undefined ? this.chosenSid(chosen) : randomId(12);
    const s = this.newSession(sid, meta, transport);
    Stats.bump(this.stats.opened, `${transport} ${meta.dialect}`);
    s.conn = conn;
    s.lossy = resumeFailed;
    this.sessions.set(sid, s);
    this.recount(s);
    if (claim !== undefined && !this.clustered) claim(null); // one node: its own table said the sid is free
    if (this.jwt !== null) {
      // the worker hears of the session once its token checks out (the wait counts against workerTimeoutMs)
      this.opening.set(s, Date.now() + this.options.workerTimeoutMs);
      this.authenticate(s, this.jwt, chosen !== undefined ? claim : undefined);
      return s;
    }
    this.toWorkerOpen(s, chosen !== undefined ? claim : undefined);
    // in one process the worker usually answered already (MemoryBus is synchronous)
    if (s.state === SessionState.Opening) this.opening.set(s, Date.now() + this.options.workerTimeoutMs);
    return s;
  }

  private toWorkerOpen(s: Session, claim: Claim | undefined): void {
    const { sid, transport, meta } = s;
    if (claim !== undefined && this.clustered) {
      // the worker decides whether the client's sid is still free (see Claim)
      s.ext.claim = claim;
      this.delivery.toWorker(s, { t: 'open', sid, node: this.nodeId, n: ++s.inSeq, transport, meta, claim: true });
    } else this.delivery.toWorker(s, { t: 'open', sid, node: this.nodeId, n: ++s.inSeq, transport, meta });
  }

  /**
   * Built-in JWT verification: the session's credentials must be a valid token; its claims become
   * `meta.auth`. A refusal ends the session as an application's refusal would (code 4403, each
   * dialect's own answer), with SY_ERR_AUTH_FAILED and the reason (never the token) as its reason.
   */
  private authenticate(s: Session, jwt: JwtVerifier, claim: Claim | undefined): void {
    const token = tokenOf(s.meta.auth);
    const refuse = (why: string) => {
      Stats.bump(this.stats.refused, 'SY_ERR_AUTH_FAILED');
      if (s.state === SessionState.Opening) this.closeSession(s, errors.SY_ERR_AUTH_FAILED.ws, `SY_ERR_AUTH_FAILED: ${why}`, false);
    };
    if (token === null) return refuse('no token');
    jwt.verify(token).then(
      (claims) => {
        if (s.state !== SessionState.Opening) return;
        s.meta.auth = claims as Record<string, unknown>;
        this.toWorkerOpen(s, claim);
      },
      (err: Error) => refuse(err.message),
    );
  }

  /** @internal A session object of this node (not yet in the table) */
  newSession(sid: string, meta: SessionMeta, transport: TransportName): Session {
    return new Session(sid, meta, this.subjectOf(sid), transport, this.outboxLimits, this);
  }

  find(sid: string, token: string, last: number): Target {
    return this.table.find(sid, token, last);
  }

  /**
   * For a session that ended recently: the entries the client has not seen (after `last`) and
   * why it ended, so a late poll or resume learns everything. Null if unknown.
   */
  endedSession(sid: string, last: number): Ended | null {
    return this.table.endedSession(sid, last);
  }

  attach(ps: PortSession, conn: Connection, last: number, sendOpen: boolean): boolean {
    const s = ps as Session;
    this.bind(s, conn);
    const recovered = s.rewind(last);
    // a session still waiting for its worker gets its open (and its entries) on accept
    if (s.state !== SessionState.Open) return recovered;
    if (sendOpen) conn.sendOpen(s, this.openInfo(s, recovered));
    conn.flush(s);
    return recovered;
  }

  attachRemote(t: Extract<Target, { kind: 'remote' }>, meta: SessionMeta, conn: Connection, last: number, poll: boolean): PortSession {
    return this.relay.open(t.sid, t.token, t.home, meta, conn, last, poll);
  }

  /** `conn` becomes the session's connection; the one it had is dropped */
  private bind(s: Session, conn: Connection): void {
    const old = s.conn;
    s.conn = conn;
    this.setTransport(s, conn.transport);
    this.recount(s);
    s.detachedAt = 0;
    this.detached.delete(s);
    this.parked.delete(s);
    if (old !== null && old !== conn) old.drop();
  }

  transportChanged(ps: PortSession): void {
    const s = ps as Session;
    if (s.conn !== null) this.setTransport(s, s.conn.transport);
  }

  /**
   * The session's client talks over `t` now: the worker hears of it, in order with its events. A
   * relayed connection's change (its carrier upgraded here) goes to the holder, whose worker hears it.
   */
  private setTransport(s: Session, t: TransportName): void {
    if (s.transport === t) return;
    s.transport = t;
    this.recount(s);
    if (s.state === SessionState.Closed) return;
    if (s.relay !== null) return this.relay.transportChanged(s);
    this.delivery.toWorker(s, { t: 'transport', sid: s.sid, node: this.nodeId, n: ++s.inSeq, transport: t });
  }

  detach(ps: PortSession, conn: Connection, dropped = true): void {
    const s = ps as Session;
    if (s.conn !== conn) return;
    s.conn = null;
    if (s.relay !== null) return this.relay.detached(s);
    this.recount(s);
    if (s.state === SessionState.Closed) return;
    s.detachedAt = Date.now();
    this.detached.add(s);
    if (dropped) this.parked.add(s);
  }

  /** @internal What a codec needs to say that `s` is open */
  openInfo(s: Session, recovered?: boolean): OpenInfo {
    // signed when needed, not kept: one string less per session. A native client gets a new
    // generation on every open; other dialects' clients keep the token of their connection
    const gen = rotatesTokens(s.meta.dialect) ? TokenGens.next(s) : 0;
    const info: OpenInfo = { sid: s.sid, token: signToken(this.options.secret, s.sid, this.nodeId, gen), pingMs: this.options.pingMs, last: s.outbox.last };
    if (recovered !== undefined) info.recovered = recovered;
    return info;
  }

  deliver(ps: PortSession, f: ClientFrame): void {
    const s = ps as Session;
    if (s.state === SessionState.Closed) return;
    if (s.relay !== null) return this.relay.forward(s, f);
    const cseq = (f as { cseq?: number }).cseq;
    // a repeat (the client resent what it was not sure had arrived) is dropped
    if (cseq !== undefined && !s.firstTime(cseq)) return;
    switch (f.type) {
      case 'event': {
        this.stats.messagesIn++;
        const n = ++s.inSeq;
        const { ack, raw } = f;
        if (raw === undefined) {
          if (ack === undefined) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, args: f.args });
          else this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, args: f.args, ack });
        }
        // over the network the args go as the client's JSON text only (see InboundEnvelope)
        else if (this.clustered) {
          if (ack === undefined) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, raw });
          else this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, raw, ack });
        } else if (ack === undefined) this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, args: f.args, raw });
        else this.delivery.toWorker(s, { t: 'event', sid: s.sid, node: this.nodeId, n, event: f.event, args: f.args, raw, ack });
        return;
      }
      case 'reply':
        this.stats.messagesIn++;
        // an answer to the app's request: not numbered (at most once; a lost one times out), and
        // handled at once by the worker, whose handler may be awaiting it
        this.bus.publish(
          s.subjectIn,
          f.error !== undefined
            ? { t: 'answer', sid: s.sid, node: this.nodeId, n: 0, ack: f.ack, error: f.error }
            : { t: 'answer', sid: s.sid, node: this.nodeId, n: 0, ack: f.ack, args: f.args ?? [] },
        );
        return;
      case 'refused':
        s.push(Entry.reply(f.ack, undefined, f.error)!);
        return;
      case 'close':
        this.closeSession(s, 1000, 'client closed', true);
        return;
      case 'ack':
        this.acknowledge(s, f.last);
        return;
      case 'pong':
        return;
    }
  }

  send(sid: string, token: string, frames: ClientFrame[], done: (error: ErrorCode | null) => void): void {
    const t = this.find(sid, token, 0);
    if (t.kind === 'remote') return this.relay.send(sid, token, t.home, frames, done);
    if (t.kind !== 'session') return done(t.kind === 'error' ? t.error : 'SY_ERR_UNKNOWN_SESSION');
    for (const f of frames) this.deliver(t.session, f);
    done(null);
  }

  acknowledge(ps: PortSession, seq: number): void {
    const s = ps as Session;
    // a relayed connection's client: the holder releases too
    if (s.relay !== null) return this.relay.acknowledge(s, seq);
    s.outbox.release(Math.min(seq, s.sent));
  }

  locate(sid: string, done: (node: string | null) => void): void {
    this.directory.locate([sid], (node) => done(node));
  }

  fail(s: PortSession, code: ErrorCode): void {
    this.closeSession(s as Session, errors[code].ws, code, true);
  }

  resumeKey(sid: string): string {
    return this.table.resumeKey(sid);
  }

  resume(key: string, last: number, done: (t: Target) => void): void {
    this.table.resume(key, last, done);
  }

  lookup(key: string, done: (t: Target) => void, waitMs?: number): void {
    this.table.lookup(key, done, waitMs);
  }

  /** The sid of the session a client names by a key of its own choosing (see SessionTable.chosenSid) */
  chosenSid(key: string, secret = this.options.secret): string {
    return this.table.chosenSid(key, secret);
  }

  tunnel(channel: string, server: TunnelServer): Tunnel {
    const bus = this.bus;
    const from = this.nodeId;
    const t = new RequestTunnel(
      {
        nodeId: from,
        clustered: this.clustered,
        // a node id is part of a bus subject: one that is not a node id never gets there
        post: (node, m) => {
          if (NODE_ID.test(node)) bus.publish(subjects.node(node), { t: 'x', ch: channel, from, m });
        },
      },
      server,
    );
    this.tunnels.set(channel, t);
    return t;
  }

  /** @internal Another gateway node was heard from and then died: nothing is relayed to it any more */
  nodeDead(node: string): boolean {
    return this.liveness?.isDead(node) === true;
  }

  /** @internal Another gateway node said goodbye (it drained: its sessions went to other nodes) */
  nodeLeft(node: string): boolean {
    return this.liveness?.hasLeft(node) === true;
  }

  /**
   * Node `node` died: the connections relayed to it end (SY_ERR_NODE_LOST: their clients reconnect
   * to new sessions), and the ones it relayed here are let go of. The workers end its sessions.
   */
  private nodeLost(node: string): void {
    warnOnce('gateway node lost', undefined, { node });
    this.relay.nodeLost(node);
    for (const t of this.tunnels.values()) {
      try {
        t.nodeLost(node);
      } catch (err) {
        warnOnce('tunnel node lost', err);
      }
    }
  }

  /**
   * This node was stopped past its member timeout: the workers ended its sessions meanwhile
   * (SY_ERR_NODE_LOST), so it ends them too, and the clients start anew; its relayed connections
   * are restarted (the holders let go of them)
   */
  private stalled(): void {
    log.warn(
      { node: this.nodeId, timeoutMs: this.options.memberTimeoutMs },
      'this node was stopped past its member timeout: its sessions end (SY_ERR_NODE_LOST)',
    );
    for (const s of [...this.sessions.values()]) this.closeSession(s, errors.SY_ERR_NODE_LOST.ws, 'SY_ERR_NODE_LOST', true);
    this.relay.restartAll();
  }

  /** Ends a session for good: the dialect's close to the client, `close` to the worker */
  /** `keepUnread`: a session that ended without a connection keeps its unread entries for a late resume (not when evicted for memory) */
  closeSession(s: Session, code: number, reason: string, notifyWorker: boolean, keepUnread = true): void {
    if (s.state === SessionState.Closed) return;
    s.state = SessionState.Closed;
    if (s.relay !== null) return this.relay.closed(s, code, reason);
    // the code name only (a reason may go on: `SY_ERR_AUTH_FAILED: token expired`)
    const name = reason.startsWith('SY_ERR_') ? reason.split(':', 1)[0]! : null;
    Stats.bump(this.stats.closed, name ?? String(code));
    if (debugging()) log.debug({ sid: s.sid, code, reason }, 'session closed');
    // errors: one line per cause, with the first session's sid
    if (name !== null && name !== 'SY_ERR_SHUTTING_DOWN') warnOnce(`session closed: ${name}`, undefined, { sid: s.sid, code, reason });
    this.forget(s);
    this.rooms.leaveAll(s);
    const conn = s.conn;
    s.conn = null;
    if (conn !== null) conn.end(s, code, reason);
    // a connected client got everything it will get: its entries are freed now
    this.table.bury(s, code, reason, conn === null && keepUnread ? s.outbox : null);
    // best effort: a worker that misses it drops the session when its partition moves
    if (notifyWorker) this.bus.publish(s.subjectIn, { t: 'close', sid: s.sid, node: this.nodeId, n: ++s.inSeq, code, reason });
  }

  /** @internal Removes a session from every table of this node (it ended, or went to another node) */
  forget(s: Session): void {
    if (this.sessions.get(s.sid) === s) {
      this.sessions.delete(s.sid);
      s.outbox.recount(this.goneLimits);
    }
    this.recount(s);
    this.detached.delete(s);
    this.parked.delete(s);
    this.opening.delete(s);
    this.dirty.delete(s);
    this.delivery.forget(s);
  }

  /** @internal The bus subject of a sid's partition (interned) */
  subjectOf(sid: string): string {
    return this.partitionSubjects[partitionOf(sid, this.options.partitionCount)]!;
  }

  /**
   * @internal The worker's answer to a claimed sid: ours (the wire may say the session is open), or
   * another node's session, or ended a moment ago: then the session made for it is dropped
   * unopened (the worker has no session of ours to close) and its connection routed again
   */
  claimAnswered(s: Session, w: Extract<NodeEnvelope, { t: 'claimed' | 'taken' | 'gone' }>): void {
    const x = s.extIfAny;
    const claim = x?.claim ?? null;
    if (claim === null || s.state !== SessionState.Opening || (w.t === 'taken' && w.node === this.nodeId)) return;
    x!.claim = null;
    if (w.t === 'claimed') return claim(null);
    s.state = SessionState.Closed;
    this.forget(s);
    s.conn = null;
    claim(
      w.t === 'taken'
        ? { kind: 'remote', home: w.node, sid: s.sid, token: signToken(this.options.secret, s.sid, w.node) }
        : { kind: 'ended', ended: { first: 1, entries: [], code: w.code, reason: w.reason } },
    );
  }

  /** @internal A session accepted by its worker (or resumed) */
  opened(s: Session): void {
    this.opening.delete(s);
    if (debugging()) log.debug({ sid: s.sid, dialect: s.meta.dialect, transport: s.transport, ip: s.meta.ip }, 'session open');
    // accepted: the claim was confirmed (should its answer have come late, say it now)
    const claim = s.extIfAny?.claim ?? null;
    if (claim !== null) {
      s.extIfAny!.claim = null;
      claim(null);
    }
    if (s.conn !== null) {
      s.conn.sendOpen(s, this.openInfo(s, s.lossy ? false : undefined));
      s.conn.flush(s);
    }
  }

  /** SessionOwner: the outbox is full of unsent entries: the session ends and they are freed (a late resume gets only the close) */
  overflow(s: Session): void {
    this.closeSession(s, errors.SY_ERR_SLOW_CONSUMER.ws, 'SY_ERR_SLOW_CONSUMER', true, false);
  }

  /**
   * SessionOwner: write new entries now (one process: inside the uWS callback that caused them) or
   * at the end of this tick (a cluster). A room broadcast on one node is written after the uWS
   * callback instead (setImmediate): delivered inside the sender's callback, every member would
   * get a write of its own per broadcast; batched, a member gets one write for every broadcast
   * of that turn of the loop, as in a cluster. Order is the outbox's either way.
   */
  wake(s: Session, batch: boolean): void {
    if (!this.clustered && !batch) {
      s.conn!.flush(s);
      return;
    }
    if (this.dirty.size === 0) {
      if (this.clustered) queueMicrotask(this.flushDirty);
      else setImmediate(this.flushDirty);
    }
    this.dirty.add(s);
  }

  private readonly flushDirty = (): void => {
    for (const s of this.dirty) if (s.conn !== null && s.state === SessionState.Open) s.conn.flush(s);
    this.dirty.clear();
  };

  // ---- bus -------------------------------------------------------------------------------------

  private onNodeEnvelope(e: NodeEnvelope | RelayEnvelope | LinkEnvelope): void {
    if (e.t === 'x') return this.onLinkEnvelope(e);
    if (e.t.charCodeAt(0) === 114 /* r */ && e.t.charCodeAt(1) === 45 /* - */) return this.onRelayEnvelope(e as RelayEnvelope);
    try {
      this.output.receive(e as NodeEnvelope);
    } catch (err) {
      // a bug of ours must cost one output, never the node
      warnOnce('worker-output', err);
    }
  }

  /** Measures the bus's round trip: a message to this node's own subject (metrics) */
  probeBus(): void {
    this.bus.publish(subjects.node(this.nodeId), { t: 'r-probe', at: performance.now() });
  }

  private onLinkEnvelope(e: LinkEnvelope): void {
    const t = this.tunnels.get(e.ch);
    if (t === undefined) return;
    try {
      t.onMessage(e.from, e.m as Parameters<RequestTunnel['onMessage']>[1]);
    } catch (err) {
      warnOnce(`tunnel ${e.ch}`, err);
    }
  }

  private onRelayEnvelope(e: RelayEnvelope): void {
    switch (e.t) {
      case 'r-probe':
        this.stats.busRtt((performance.now() - e.at) / 1000);
        return;
      case 'r-prepare':
      case 'r-ready':
      case 'r-handover':
      case 'r-fwd':
      case 'r-bye':
        return this.handover.onEnvelope(e);
      case 'r-here':
        return this.directory.onHere(e);
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
    if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
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

  /** @internal One heartbeat round (a timer calls it every `pingMs`) */
  heartbeat(): void {
    const round = ++this.pingRound;
    const ping = (c: Connection | null) => {
      if (c === null || c.carrier.pingRound === round) return;
      c.carrier.pingRound = round;
      c.carrier.ping();
    };
    for (const s of this.sessions.values()) if (s.state === SessionState.Open) ping(s.conn);
    // connections here to sessions held by other nodes
    for (const s of this.relay.shadows()) if (s.state === SessionState.Open) ping(s.conn);
  }

  private sweep(): void {
    const now = Date.now();
    // addresses whose buckets refilled are forgotten (every few seconds: the table can be large)
    this.admission.prune(now);
    const window = this.options.resumeWindowMs;
    const budget = this.options.detachedMaxBytes;
    let held = 0;
    for (const s of this.detached) {
      if (now - s.detachedAt > window) this.closeSession(s, errors.SY_ERR_SESSION_TIMEOUT.ws, 'SY_ERR_SESSION_TIMEOUT', true);
      else held += DETACHED_OVERHEAD + heldBytes(s.outbox);
    }
    held += this.table.sweep(now, Math.max(window, this.options.pollTimeoutMs * 2));
    // over the budget: first the unread entries of ended sessions go (oldest first: a late poll
    // then learns only how its session ended), then the longest-waiting detached sessions end
    // (the set is in detach order), their frames freed
    if (budget > 0 && held > budget) {
      held = this.table.freeUnread(held, budget);
      for (const s of this.detached) {
        if (held <= budget) break;
        held -= DETACHED_OVERHEAD + heldBytes(s.outbox);
        this.closeSession(s, errors.SY_ERR_SESSION_EVICTED.ws, 'SY_ERR_SESSION_EVICTED', true, false);
      }
    }
    for (const [s, deadline] of this.opening) {
      if (now > deadline) this.closeSession(s, errors.SY_ERR_WORKER_TIMEOUT.ws, 'SY_ERR_WORKER_TIMEOUT', false);
    }
    this.delivery.sweep(now);
    this.handover.sweep(now);
    this.relay.sweep(now);
  }
}

/** interned `<transport> <dialect> <attached>` keys (a handful: no string is made per change) */
const countKeys = new Map<string, [string, string]>();
function countKey(transport: string, dialect: string, attached: boolean): string {
  const k = transport + ' ' + dialect;
  let pair = countKeys.get(k);
  if (pair === undefined) countKeys.set(k, (pair = [k + ' false', k + ' true']));
  return pair[attached ? 1 : 0];
}

/** how often a node measures the bus's round trip (switchyard_bus_rtt_seconds) */
const BUS_PROBE_MS = 5000;

/** what a detached session is counted as holding besides its outbox (its objects, meta, maps' entries; measured idle: ~1.1 KB) */
export const DETACHED_OVERHEAD = 2048;
