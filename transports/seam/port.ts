/**
 * The seam between wires and the core. `transports/` defines what it needs here and never
 * imports `gateway/`; the gateway implements `Port` and mounts the wires on it.
 *
 * ```
 * client bytes ─► wire (routes, handshake, framing) ─► codec.decode ─► ClientFrame ─► port.deliver
 * client bytes ◄─ wire ◄─ codec.encode (per connection) ◄─ Entry (outbox, neutral) ◄─ session
 * ```
 * A dialect (native, Socket.IO, SignalR, SockJS) is a codec plus wires; the session, its outbox,
 * delivery to workers and the app API stay dialect-neutral. Crossing nodes is the gateway's: the
 * session relay (attachRemote, send) and, for state a dialect keeps across requests, forwarding
 * whole requests (tunnel). (Engine.IO's and SignalR's long-polling and streaming are still their
 * own, beside the shared wires.)
 */
import type { TemplatedApp } from 'uWebSockets.js';
import type { OpenInfo, SessionMeta, TransportName } from '../../cluster/types.ts';
import type { Entry } from './entry.ts';
import type { ErrorCode } from './errors.ts';

/** Encoded bytes for a wire: text or binary */
export type Frame = string | Uint8Array;

/** A neutral client frame: what every dialect's decoder produces */
export type ClientFrame =
  /**
   * The client emitted an event; `ack` asks for a reply. `raw`: the JSON text of `args` when the
   * decoder has it (lets an unchanged echo skip re-serializing). `cseq`: the client's own
   * sequence number, when its dialect has one: the core drops a frame it has seen.
   */
  | { type: 'event'; event: string; args: unknown[]; ack?: string | number; raw?: string; cseq?: number }
  /** The client answers the server's request `ack` */
  | { type: 'reply'; ack: string | number; args?: unknown[]; error?: string; cseq?: number }
  /**
   * The wire refuses a client request itself (a call its dialect cannot serve): the client gets
   * an error reply for `ack`, in order with the session's other entries (and numbered with them)
   */
  | { type: 'refused'; ack: string | number; error: string; cseq?: number }
  /**
   * The client has every entry up to `last` (native `{"type":"ack","last":N}`): they are released
   * (see Port.acknowledge); written entries otherwise wait in the outbox for a replay
   */
  | { type: 'ack'; last: number }
  | { type: 'pong' }
  | { type: 'close' };

/** What a codec needs to say that a session is open (it crosses the bus in a relay: defined with the bus's types) */
export type { OpenInfo } from '../../cluster/types.ts';

/**
 * One dialect in one format: encodes outbox entries and the dialect's own control frames. Ping
 * and close are made here, never by the core. One codec object serves every connection of its
 * (dialect, format); `id` indexes the encodings cached on shared entries.
 */
export interface Codec {
  readonly id: number;
  /** frames are binary (WebSocket binary messages, binary HTTP bodies) */
  readonly binary: boolean;
  encode(seq: number, e: Entry): Frame;
  open(info: OpenInfo): Frame;
  ping(): Frame;
  close(code: number, reason: string): Frame;
}

/** The session as a wire sees it */
export interface PortSession {
  readonly sid: string;
  readonly meta: SessionMeta;
  /** seq of the newest entry written to the current connection */
  sent: number;
  readonly outbox: OutboxView;
  /** the connection entries are written to now */
  readonly conn: Connection | null;
}

export interface OutboxView {
  /** seq of the newest entry */
  readonly last: number;
  /** the entry for `seq`, if still held */
  get(seq: number): Entry | undefined;
}

/**
 * The physical connection under one or more sessions (a Socket.IO connection multiplexes
 * namespaces, each its own session). Heartbeats go once per carrier.
 */
export interface Carrier {
  /** set by the core: the heartbeat round that last pinged this carrier */
  pingRound: number;
  ping(): void;
}

/**
 * One session on one carrier: what the core writes through. Like centrifuge's Transport there is
 * no read side: wires push client frames into the port themselves.
 */
export interface Connection {
  readonly transport: TransportName;
  readonly carrier: Carrier;
  /** the session this connection serves (rebound when a hand-over replaces a shadow) */
  session: PortSession | null;
  /** The session was accepted (or resumed): say so in the dialect; `flush` follows */
  sendOpen(s: PortSession, info: OpenInfo): void;
  /**
   * (a resume relayed to the node holding the session) the holder had written the session's
   * entries up to `seq` to the client's earlier connections, before `sendOpen`: a dialect that
   * does not write acks and requests again on a recovery (Socket.IO) skips those up to there
   */
  writtenBefore?(seq: number): void;
  /** Write the session's entries after `s.sent`, advancing `s.sent`, as far as the wire takes them now */
  flush(s: PortSession): void;
  /** The session ended: the dialect's close if the wire can carry it, then close */
  end(s: PortSession, code: number, reason: string): void;
  /** Another connection took the session over (or the node drops it): close without a close frame */
  drop(): void;
  /** The node is draining: close so that the client reconnects (elsewhere) and resumes; the session lives on */
  restart(): void;
  /** This request is refused (the session lives on): an HTTP error where there is one, else a drop */
  fail(code: ErrorCode): void;
}

/** What is left of a session that ended: entries the client has not read (from seq `first`), and why */
export interface Ended {
  first: number;
  entries: Entry[];
  code: number;
  reason: string;
}

/** What a client of `codec` gets of a session that ended: its unread entries, then the close */
export function endedFrames(codec: Codec, ended: Ended): Frame[] {
  const frames = ended.entries.map((e, i) => codec.encode(ended.first + i, e));
  frames.push(codec.close(ended.code, ended.reason));
  return frames;
}

/** A session named by a client */
/**
 * The answer to a session opened with a sid the client chose (SockJS). The session's worker
 * decides, so two nodes never make two sessions of one sid:
 * - `null`: the sid is this session's (at once on one node; in a cluster as soon as the worker
 *   confirms, before the app's `open` runs): the wire may say the session is open;
 * - `remote`: another node holds it, or `ended`: it ended a moment ago. The session made for it
 *   is dropped unopened (nothing was written to `conn`), and the wire routes the connection again.
 */
export type Claim = (t: Extract<Target, { kind: 'remote' | 'ended' }> | null) => void;

export type Target =
  | { kind: 'session'; session: PortSession }
  /** the session ended recently */
  | { kind: 'ended'; ended: Ended }
  /**
   * held by another node: relay to it. `home` '': the node the client's token names no longer has
   * it (it died, drained or restarted): the relay asks the cluster's directory. Finding a session
   * is the same for every dialect: the local table, the signed node hint, the directory, unknown.
   */
  | { kind: 'remote'; home: string; sid: string; token: string }
  | { kind: 'error'; error: ErrorCode };

/** Options every wire reads */
export interface WireOptions {
  readonly pingMs: number;
  readonly pollTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly trustProxy: boolean;
  readonly wsHighWaterBytes: number;
  /** how long a node waits for the node holding a session to answer a relayed request */
  readonly relayTimeoutMs: number;
}

/** What the wires need of a gateway node */
export interface Port {
  readonly app: TemplatedApp;
  readonly options: WireOptions;
  /**
   * The error for a new connection (`isNew`) or request from `origin`, or null. `ip`: the client's
   * address, given where a new session or carrier starts: it counts against that address's rate
   * of new sessions (once per session: a Socket.IO carrier's handshake pays for its first
   * namespace session, each further CONNECT on it pays again). `requestBytes`: what a new session would keep of the request
   * (transports/wires/http.ts requestBytes), bounded by `maxRequestBytes`
   */
  admit(origin: string, isNew: boolean, ip?: string, requestBytes?: number): ErrorCode | null;
  /** the Access-Control-Allow-Origin value for `origin` ('' = none) */
  corsOrigin(origin: string): string;
  /** answers should close the connection (the node is draining) */
  readonly closing: boolean;
  /**
   * Creates a session (a worker must accept it; `sendOpen` follows then). `key`: a key the client
   * chose for its session (SockJS's session id), which the wire looked up first (see `lookup`):
   * the session's sid is made from it but does not reveal it (the key is the client's credential,
   * the sid is not: apps show sids to other clients); `claim`: what to do when, in a cluster, the
   * sid's worker says another node has it or it ended (see Claim)
   */
  open(transport: TransportName, meta: SessionMeta, conn: Connection, resumeFailed?: boolean, key?: string, claim?: Claim): PortSession;
  /** The session a client names by `sid` and signed `token`; `last`: what it has seen (for an ended one) */
  find(sid: string, token: string, last: number): Target;
  /** Attaches `conn` to a live session, replacing its connection; entries after `last` follow. @returns whether nothing was lost */
  attach(s: PortSession, conn: Connection, last: number, sendOpen: boolean): boolean;
  /**
   * Attaches `conn` to a session held by node `home` (a relay); the returned session stands in for
   * it here. `last` < 0: the client has no cursor (written is delivered): the holder goes on after
   * what it wrote
   */
  attachRemote(t: Extract<Target, { kind: 'remote' }>, meta: SessionMeta, conn: Connection, last: number, poll: boolean): PortSession;
  /**
   * The connection went away; the session waits for the next one (resume window). `dropped`
   * (default): the client left (or the network dropped it): the session is parked, counted against
   * `detachedMaxBytes` instead of `maxSessions`, and its next connection is admitted only if the
   * node has room. False: the connection ended by design between two requests (a long-poll
   * answered, a negotiate, a stream that ended itself to rotate): the session stays counted
   */
  detach(s: PortSession, conn: Connection, dropped?: boolean): void;
  /** The session's connection now goes over another transport (its carrier upgraded): the app hears of it */
  transportChanged(s: PortSession): void;
  /** A decoded client frame */
  deliver(s: PortSession, f: ClientFrame): void;
  /** An upstream batch for a session named by key (relayed when held elsewhere); `done` gets null or the error */
  send(sid: string, token: string, frames: ClientFrame[], done: (error: ErrorCode | null) => void): void;
  /**
   * The client has the entries up to `seq`: they are released. How a dialect acknowledges:
   * - a cursor (native `last` on resume and polls): passed to `attach`, which releases through it;
   *   written entries stay for a replay until then, or until the budget pushes them out;
   * - written = delivered (SockJS polls, SignalR long-polling, Socket.IO without recovery): the wire calls this
   *   with `s.sent` right after writing;
   * - its own message (SignalR stateful reconnect's `Ack{sequenceId}`): the wire calls this with it.
   */
  acknowledge(s: PortSession, seq: number): void;
  /**
   * The node holding session `sid`, asked of the whole cluster (for keys with no node hint, such
   * as SockJS's client-chosen ids): this node's id, another's, or null when no node holds it
   */
  locate(sid: string, done: (node: string | null) => void): void;
  /** Ends a session for a wire-level error (malformed input, oversize) */
  fail(s: PortSession, code: ErrorCode): void;
  /**
   * A resume key for session `sid` that names no node and never changes (Socket.IO's `pid`):
   * signed, so only a client given it can present it
   */
  resumeKey(sid: string): string;
  /**
   * The session a resume key names, wherever it is in the cluster: this node's table, then the
   * cluster's directory. An unknown or forged key gives an error target. `last`: what the client
   * has seen (for an ended session's unread entries).
   */
  resume(key: string, last: number, done: (t: Target) => void): void;
  /**
   * The session a key the client chose names (SockJS's session ids: the client's secret; see
   * `open`), wherever it is in the cluster, with no token. The wire prefixes its keys so that no
   * other dialect's can be the same. In a cluster, nobody answering within `waitMs` (default
   * relayTimeoutMs) means nobody holds it
   */
  lookup(key: string, done: (t: Target) => void, waitMs?: number): void;
  /**
   * Forwarding whole requests to the node that holds a connection's state, for dialects whose
   * state spans requests in ways the session relay does not carry (an Engine.IO carrier's polls,
   * POSTs and upgrade socket; a SignalR long-polling or SSE connection's requests). `server`
   * answers what other nodes forward on `channel`; the returned Tunnel forwards from this node.
   * The forwarding itself (timeouts, dead nodes, streaming answers back) is the gateway's.
   */
  tunnel(channel: string, server: TunnelServer): Tunnel;
}

/**
 * What a wire answers an HTTP request through: an Exchange on the node the request came to, or
 * (a tunneled request) a stand-in that carries the answer back to that node
 */
export interface HttpAnswer {
  /** called once if the client aborts before we answered */
  onAbort: (() => void) | null;
  /** not answered, and the client still there */
  readonly open: boolean;
  reply(status: number, contentType: string | null, body?: string | Uint8Array, extra?: Record<string, string>, closeConnection?: boolean): void;
  begin(status: number, headers: Record<string, string>, first: string): void;
  write(chunk: string): boolean;
  onWritable(f: () => void): void;
  end(last?: string): void;
  /**
   * (a tunneled request) The request is held here (a long-poll): the node it came to waits for
   * the answer up to the `heldMs` it was forwarded with, not the shorter `waitMs`
   */
  hold?(): void;
}

/** A WebSocket as a dialect writes to it: uWS's own, or (tunneled) a stand-in on the node holding the connection */
export interface SocketSink {
  /** @returns uWS's answer: 1 sent, 0 (sent; the buffer is full: stop writing until it drains) or 2 (not sent: over its limit) */
  send(f: string | Uint8Array, binary: boolean): number;
  cork(f: () => void): unknown;
  /** closes with `code`, or with no status code */
  end(code?: number): void;
}

/** What a dialect serves of the requests other nodes forward to it (see Port.tunnel) */
export interface TunnelServer {
  /** an HTTP request `request` (the dialect's own description of it), answered through `answer` */
  http(request: unknown, answer: HttpAnswer): void;
  /**
   * A WebSocket forwarded here: writes to `sink` go to the client. @returns what to do with the
   * client's messages and its close, or null to refuse it (the socket is closed)
   */
  socket?(request: unknown, sink: SocketSink): { message(d: string | Uint8Array): void; closed(): void } | null;
}

/** Forwards requests from this node to the node holding their connection (see Port.tunnel) */
export interface Tunnel {
  /** this node's id */
  readonly node: string;
  /** other nodes exist (else nothing is ever forwarded) */
  readonly clustered: boolean;
  /**
   * Forwards an HTTP request to node `home`; its answer comes to `ex`. `home` has `waitMs` to
   * answer, start a stream, or hold the request (then `heldMs`); past that, or when `home` dies,
   * `lost(ex)` answers (a stream that began just ends). The client going away is told to `home`.
   */
  http(home: string, request: unknown, ex: HttpAnswer, o: { waitMs: number; heldMs?: number; lost: (ex: HttpAnswer) => void }): void;
  /**
   * Forwards a WebSocket accepted here to node `home`: what it writes comes to `ws` (a reader
   * too slow for its buffer is closed); `home` has `waitMs` to accept it. @returns where the
   * client's messages and its close go
   */
  socket(home: string, request: unknown, ws: SocketSink, waitMs: number): { message(d: string | Uint8Array): void; closed(): void };
  /** requests (and sockets) forwarded from this node, and to it, since start; `sockets`: the WebSockets forwarded to it */
  stats(): { out: number; in: number; sockets: number };
}
