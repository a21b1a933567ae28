/**
 * The SignalR dialect: ASP.NET Core SignalR's negotiate, WebSockets / Server-Sent Events /
 * long-polling transports, and the JSON and MessagePack hub protocols, for unchanged
 * `@microsoft/signalr` clients. One SignalR connection is one session.
 *
 * - `POST /hubs/<hub>/negotiate` opens the session (the app's `open` runs then: a refusal is a 401
 *   with the app's message) and answers with its ids; the connection token is `<sid>.<token>`, the
 *   signed node hint every node can follow. The session then waits, detached, for its transport.
 * - `invoke('Echo', x)` → event `echo` (hub method names reach the app lowercased) with an ack; the
 *   reply's first arg is the Completion's `result`. `send` → an event without ack.
 *   `session.emit('said', …)` → Invocation `said`; `session.request` → an Invocation with an id,
 *   answered by the client's Completion.
 * @see ../../../docs/signalr.md
 */
import type { HttpResponse, WebSocket } from 'uWebSockets.js';
import type { Carrier, ClientFrame, Connection, OpenInfo, Port, PortSession, Tunnel } from '../../seam/port.ts';
import type { Entry } from '../../seam/entry.ts';
import type { SessionMeta } from '../../../cluster/types.ts';
import {
  Exchange,
  clientIp,
  requestBytes,
  retryHeaders,
  readBody,
  readRequest,
  upgrade,
  wantsClose,
  type HttpAnswer,
  type RequestInfo,
} from '../../wires/http.ts';
import { errors, type ErrorCode } from '../../seam/errors.ts';
import { warnOnce } from '../../../lib/log.ts';
import {
  ACK,
  CANCEL_INVOCATION,
  CLOSE,
  COMPLETION,
  HubProtocolError,
  INVOCATION,
  PING,
  SEQUENCE,
  STREAM_INVOCATION,
  STREAM_ITEM,
  encodeEntry,
  handshakeResponse,
  hubProtocols,
  isHandshake,
  parseHandshake,
  type HubMessage,
  type HubProtocol,
} from './codec.ts';
import { sizeOf, traffic } from '../../seam/traffic.ts';
import { CLOSE_GRACE_MS, mountSocket } from '../../wires/websocket.ts';
import type { SignalROptions } from './options.ts';

const DIALECT = 'signalr';
/** the query parameters of the protocol, not the app's */
const RESERVED = new Set(['id', 'negotiateVersion', 'useStatefulReconnect', 'access_token', '_']);
const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_CONNECTION = 'No Connection with that ID';
/**
 * a poll answer's size before the rest waits for the next poll; also what waits for the next poll,
 * at most (the rest stays in the outbox, whose bounds apply: a poller that falls behind is a slow
 * consumer, as a socket is past its buffer)
 */
const POLL_BUDGET = 256 * 1024;

/*
 * What one connection may make the node hold for it, at most: past any of these the connection is
 * closed with SY_ERR_TOO_MANY_PENDING (a Close without allowReconnect) and its session ends.
 * docs/signalr.md, "Bounds"; docs/operations.md.
 */
/** the longest invocation or stream id (the real clients count: "0", "1", …), as the native dialect's ack ids */
export const MAX_ID_CHARS = 256;
/** invocations with an id whose Completion has not been written yet (the worker holds them, or the app is answering) */
export const MAX_PENDING_INVOCATIONS = 1024;
/** bytes of those invocations (their messages' size); one message up to maxPayloadBytes always fits */
export const MAX_PENDING_BYTES = 1024 * 1024;
/** client-to-server streams refused and not yet completed by the client (their ids are kept to drop their items and completions) */
export const MAX_REFUSED_STREAMS = 256;
const STREAMS_UNSUPPORTED = 'Streaming is not supported by this server (StreamInvocation and client-to-server streams): use invoke or send.';

type Kind = 'websocket' | 'sse' | 'polling';

const TRANSPORTS = [
  { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
  { transport: 'ServerSentEvents', transferFormats: ['Text'] },
  { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
];

export function mountSignalR(port: Port, o: SignalROptions): SignalR {
  return new SignalR(port, o);
}

/** The SignalR endpoint of a node: its hubs' routes, its connections and their keep-alive */
export class SignalR {
  /** this node's connections, for the keep-alive */
  readonly conns = new Set<SignalRConnection>();
  /** long-polling and SSE connections by sid (their requests come one by one) */
  readonly http = new Map<string, SignalRConnection>();
  private readonly timer: NodeJS.Timeout;
  readonly tickMs: number;
  private readonly tunnel: Tunnel;
  /** connection tokens with a POST being read on this node */
  private readonly posting = new Set<string>();

  constructor(
    readonly port: Port,
    readonly o: SignalROptions,
  ) {
    // long-polling and SSE connections keep state across requests: each request goes to the node holding it
    this.tunnel = port.tunnel('signalr', {
      http: (r, a) => {
        const m = r as Forwarded;
        if (m.o === 'get') return this.receive(m.id, m.sse, a);
        if (m.o === 'post') return this.send(m.id, m.b, a);
        return this.remove(m.id, a);
      },
    });
    for (const hub of o.hubs) this.mount(hub);
    // a third of the keep-alive: a Ping goes at most a third late (well within the client's server timeout)
    this.tickMs = Math.max(20, Math.floor(Math.min(o.keepAliveMs, o.clientTimeoutMs) / 3));
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** connections held here, and requests tunneled to and from other nodes since start */
  stats(): { connections: number; tunneled: { out: number; in: number } } {
    const t = this.tunnel.stats();
    return { connections: this.conns.size, tunneled: { out: t.out, in: t.in } };
  }

  /** Pings every connection that has said nothing for keepAliveMs; a client silent for clientTimeoutMs is gone */
  private tick(): void {
    for (const c of this.conns) {
      try {
        c.beat();
      } catch (err) {
        warnOnce('signalr keep-alive', err);
      }
    }
  }

  private mount(hub: string): void {
    const port = this.port;
    const path = `/hubs/${hub}`;
    port.app.post(`${path}/negotiate`, (res, req) => this.negotiate(hub, readRequest(res, req, port.options.trustProxy), res));
    port.app.options(`${path}/negotiate`, (res, req) => this.preflight(res, readRequest(res, req, port.options.trustProxy)));
    port.app.options(path, (res, req) => this.preflight(res, readRequest(res, req, port.options.trustProxy)));
    port.app.get(path, (res, req) => {
      const r = readRequest(res, req, port.options.trustProxy);
      const sse = req.getHeader('accept').includes('text/event-stream');
      this.receive(r.query.get('id'), sse, this.exchange(res, r.origin, r.close));
    });
    port.app.post(path, (res, req) => {
      const r = readRequest(res, req, port.options.trustProxy);
      const ex = this.exchange(res, r.origin, r.close);
      const id = r.query.get('id');
      // one send at a time per connection: a second while one is in flight (here, whichever node
      // holds the connection) gets 409, the connection stays
      if (id !== null && id !== '') {
        if (this.posting.has(id)) return ex.reply(409, 'text/plain', 'Another send is in progress', undefined, true);
        this.posting.add(id);
        ex.onAbort = () => this.posting.delete(id);
      }
      readBody(ex, port.options.maxPayloadBytes, (body) => {
        if (id !== null) this.posting.delete(id);
        if (body === null) return ex.reply(413, 'text/plain', 'Payload too large', undefined, true);
        this.send(id, body, ex);
      });
    });
    port.app.del(path, (res, req) => {
      const r = readRequest(res, req, port.options.trustProxy);
      this.remove(r.query.get('id'), this.exchange(res, r.origin, r.close));
    });
    this.mountWebSocket(hub, path);
  }

  private exchange(res: HttpResponse, origin: string, close: boolean): Exchange {
    const ex = new Exchange(res, this.port.corsOrigin(origin), close);
    ex.closeAfter = this.port.closing;
    return ex;
  }

  private preflight(res: HttpResponse, r: RequestInfo): void {
    const ex = this.exchange(res, r.origin, r.close);
    const extra: Record<string, string> = { 'Access-Control-Allow-Methods': 'GET,POST,DELETE,OPTIONS', 'Access-Control-Max-Age': '600' };
    if (r.requestHeaders) extra['Access-Control-Allow-Headers'] = r.requestHeaders;
    ex.reply(204, null, '', ex.cors ? extra : undefined);
  }

  meta(hub: string, r: { ip: string; origin: string; userAgent: string; authorization: string; query: URLSearchParams }): SessionMeta {
    let query: Record<string, string> | null = null;
    for (const [k, v] of r.query) if (!RESERVED.has(k)) (query ??= {})[k] = v;
    // access_token in the query (browsers: WebSockets and SSE) or a bearer token
    const bearer = /^Bearer\s+(.+)$/i.exec(r.authorization);
    const auth = r.query.get('access_token') ?? (bearer !== null ? bearer[1]! : r.authorization);
    return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: query ?? EMPTY, auth, dialect: DIALECT, hub };
  }

  // ---- negotiate ------------------------------------------------------------------------------

  private negotiate(hub: string, r: RequestInfo, res: HttpResponse): void {
    const ex = this.exchange(res, r.origin, r.close);
    const refused = this.port.admit(r.origin, true, r.ip, r.bytes);
    if (refused !== null) {
      const status = errors[refused].http || 503;
      return ex.reply(status, 'text/plain', errors[refused].message, retryHeaders(status));
    }
    // a client that names no version speaks version 0 (TransportProtocols.md)
    const version = Number(r.query.get('negotiateVersion') ?? 0) >= 1 ? 1 : 0;
    const stateful = r.query.get('useStatefulReconnect') === 'true';
    // the session opens now (the app decides now); the transport comes with its token
    const n = new NegotiateConnection(this.port, ex, version, stateful);
    n.session = this.port.open('websocket', this.meta(hub, r), n);
  }

  // ---- the transports -------------------------------------------------------------------------

  /**
   * The session an `id` names: a connection token `<sid>.<token>[.s]` (`.s`: negotiated with
   * stateful reconnect); `home`: the node holding it, when another
   */
  private find(id: string | null): { s: PortSession | null; error: 400 | 404 | null; home: string | null; stateful: boolean } {
    if (id === null || id === '') return { s: null, error: 400, home: null, stateful: false };
    const k = parseToken(id);
    if (k === null) return { s: null, error: 404, home: null, stateful: false };
    const t = this.port.find(k.sid, k.token, 0);
    if (t.kind === 'session') return { s: t.session, error: null, home: null, stateful: k.stateful };
    return { s: null, error: 404, home: t.kind === 'remote' ? t.home : null, stateful: k.stateful };
  }

  /** Sends a request to the node holding its connection; its answer comes back to `ex` */
  private forward(home: string, m: Forwarded, ex: HttpAnswer): void {
    const o = this.port.options;
    // a poll is held there up to pollTimeoutMs; a stream has no end; the home answers, holds or starts within relayTimeoutMs
    this.tunnel.http(home, m, ex, {
      waitMs: o.relayTimeoutMs,
      heldMs: o.pollTimeoutMs + o.relayTimeoutMs,
      lost: (x) => x.reply(404, 'text/plain', NO_CONNECTION),
    });
  }

  /** An answer for a session not found here (or tunneled to the node holding it). @returns whether it was answered */
  private missing(f: ReturnType<SignalR['find']>, ex: HttpAnswer, forward: (home: string) => void): boolean {
    if (f.s !== null) return false;
    // long-polling and SSE keep state across requests: each goes to the node holding the session
    // (one whose token names a node that no longer has it ('') ended with that node: it drained,
    // telling the client to reconnect, or died)
    if (f.home !== null && f.home !== '') forward(f.home);
    else if (f.error === 400) ex.reply(400, 'text/plain', 'Connection ID required');
    else ex.reply(404, 'text/plain', NO_CONNECTION);
    return true;
  }

  /** GET: a Server-Sent Events stream, or a long-poll (here, or tunneled from another node) */
  receive(id: string | null, sse: boolean, ex: HttpAnswer): void {
    const f = this.find(id);
    // a long-polling connection that just ended: its last messages, then 204 (not 404)
    const ended = f.s === null && id !== null ? this.http.get(parseToken(id)?.sid ?? '') : undefined;
    // (with the very token it was made with: a forged one names nothing)
    if (ended?.closed && ended.token === id && !sse) return ended.poll(ex);
    if (this.missing(f, ex, (home) => this.forward(home, { o: 'get', id: id!, sse }, ex))) return;
    const s = f.s!;
    const held = this.http.get(s.sid);
    if (sse) {
      if (held !== undefined || s.conn !== null) return ex.reply(409, 'text/plain', 'Another transport is connected');
      const c = new SignalRConnection(this, 'sse', s.sid);
      c.token = id!;
      c.stream = ex;
      ex.onAbort = () => c.transportGone();
      // headers and a first chunk at once: proxies and the client see the stream start
      ex.begin(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' }, ':\r\n\r\n');
      c.attach(s);
      return;
    }
    if (held === undefined) {
      if (s.conn !== null) return ex.reply(409, 'text/plain', 'Another transport is connected');
      // the first poll: answered at once, empty (the connection is made)
      const c = new SignalRConnection(this, 'polling', s.sid);
      c.token = id!;
      c.attach(s);
      return ex.reply(200, 'text/plain', '');
    }
    if (held.kind !== 'polling') return ex.reply(409, 'text/plain', 'Another transport is connected');
    held.poll(ex);
  }

  /** POST: messages from a long-polling or SSE client (here, or tunneled) */
  send(id: string | null, body: Uint8Array, ex: HttpAnswer): void {
    const f = this.find(id);
    if (this.missing(f, ex, (home) => this.forward(home, { o: 'post', id: id!, b: body }, ex))) return;
    const c = this.http.get(f.s!.sid);
    if (c === undefined) return ex.reply(404, 'text/plain', NO_CONNECTION);
    c.posted(ex, body);
  }

  /** DELETE: a long-polling client closes (here, or tunneled) */
  remove(id: string | null, ex: HttpAnswer): void {
    const f = this.find(id);
    if (this.missing(f, ex, (home) => this.forward(home, { o: 'del', id: id! }, ex))) return;
    const c = this.http.get(f.s!.sid);
    if (c === undefined) return ex.reply(404, 'text/plain', NO_CONNECTION);
    c.clientClose();
    ex.reply(202, 'text/plain', '');
  }

  private mountWebSocket(hub: string, path: string): void {
    const port = this.port;
    const o = port.options;
    mountSocket<SocketData>(
      port,
      path,
      { maxPayloadBytes: o.maxPayloadBytes, silentMs: this.o.clientTimeoutMs, pings: false },
      {
        upgrade: (res, req, context) => {
          const q = new URLSearchParams(req.getQuery() ?? '');
          const r = {
            close: wantsClose(req),
            ip: clientIp(res, req, o.trustProxy),
            origin: req.getHeader('origin'),
            userAgent: req.getHeader('user-agent'),
            authorization: req.getHeader('authorization'),
            query: q,
          };
          const id = q.get('id');
          const ex = () => this.exchange(res, r.origin, r.close);
          if (id === null) {
            // skipNegotiation: the socket is the whole connection
            const refused = port.admit(r.origin, true, r.ip, requestBytes(req));
            if (refused !== null) return ex().reply(errors[refused].http || 503, 'text/plain', errors[refused].message, undefined, true);
            return upgrade<SocketData>(res, req, context, { c: null, id: null, meta: this.meta(hub, r) });
          }
          const f = this.find(id);
          if (f.s === null && f.home === null) return ex().reply(404, 'text/plain', NO_CONNECTION, undefined, true);
          const current = f.s?.conn;
          // a second socket is refused, except a stateful reconnect: it replaces the stale one
          if (current instanceof SignalRConnection && !current.closed && !f.stateful)
            return ex().reply(409, 'text/plain', 'Another transport is connected', undefined, true);
          // a socket keeps no state across requests: the session is relayed to it from its node
          upgrade<SocketData>(res, req, context, { c: null, id, meta: f.home !== null ? this.meta(hub, r) : null });
        },
        open: (ws) => {
          const d = ws.getUserData();
          const c = new SignalRConnection(this, 'websocket', '');
          c.ws = ws;
          d.c = c;
          if (d.id === null) {
            c.session = port.open('websocket', d.meta!, c);
            c.sid = c.session.sid;
            return;
          }
          const k = parseToken(d.id)!;
          c.sid = k.sid;
          c.stateful = k.stateful;
          const t = port.find(k.sid, k.token, 0);
          // a stateful reconnect that reached a draining node (a balancer's kept-alive connection to
          // it): closed at once, so that the client reconnects again, elsewhere, where the session
          // is handed over
          if (t.kind === 'session' && k.stateful && port.closing) return c.closeSocket();
          if (t.kind === 'session') return c.attach(t.session);
          if (t.kind === 'remote') {
            c.session = port.attachRemote(
              t,
              d.meta ?? this.meta(hub, { ip: '', origin: '', userAgent: '', authorization: '', query: new URLSearchParams() }),
              c,
              0,
              false,
            );
            return;
          }
          c.closeSocket();
        },
        message: (ws, message, isBinary) => {
          const c = ws.getUserData().c;
          if (c === null) return;
          traffic.in += message.byteLength;
          if (message.byteLength > o.maxPayloadBytes) return c.fail('SY_ERR_PAYLOAD_TOO_LARGE');
          const data = isBinary ? Buffer.from(message.slice(0)) : Buffer.from(message).toString();
          try {
            c.received(data);
          } catch (err) {
            warnOnce('signalr message', err);
            c.fail('SY_ERR_INTERNAL');
          }
        },
        drain: (ws) => {
          ws.getUserData().c?.drained();
        },
        close: (ws, code) => {
          const c = ws.getUserData().c;
          if (c === null) return;
          c.ws = null;
          // a close frame is the client's stop; without one (1006) the network dropped it
          c.transportGone(code !== 1006);
        },
      },
    );
  }
}

/** uWS user data (uWS copies these fields onto its WebSocket object) */
interface SocketData {
  c: SignalRConnection | null;
  /** the connection token, or null (skipNegotiation) */
  id: string | null;
  meta: SessionMeta | null;
}

/** The negotiate request while its session opens: answered with the ids, or the app's refusal */
class NegotiateConnection implements Connection, Carrier {
  session: PortSession | null = null;
  pingRound = 0;

  constructor(
    private readonly port: Port,
    private readonly ex: Exchange,
    private readonly version: number,
    private readonly stateful: boolean,
  ) {
    ex.onAbort = () => {
      const s = this.session;
      this.session = null;
      if (s !== null) port.detach(s, this);
    };
  }

  get transport(): 'websocket' {
    return 'websocket';
  }

  get carrier(): this {
    return this;
  }

  sendOpen(s: PortSession, info: OpenInfo): void {
    // the flag rides in the token: a reconnecting socket brings no handshake, its token says what it is
    const token = s.sid + '.' + info.token + (this.stateful ? '.s' : '');
    const body: Record<string, unknown> =
      this.version === 0
        ? { negotiateVersion: 0, connectionId: token, availableTransports: TRANSPORTS }
        : { negotiateVersion: 1, connectionId: s.sid, connectionToken: token, availableTransports: TRANSPORTS };
    // only when the client asked: a client that did not ask fails on it
    if (this.stateful) body.useStatefulReconnect = true;
    this.ex.reply(200, 'application/json', JSON.stringify(body));
    // the session waits for its transport (within the resume window), counted against
    // maxSessions as a session with a connection; after the core's open is done with this one
    queueMicrotask(() => {
      this.session = null;
      this.port.detach(s, this, false);
    });
  }

  flush(): void {}
  ping(): void {}

  end(_s: PortSession, code: number, reason: string): void {
    this.session = null;
    // the app refused (its message), or no worker answered
    if (code === errors.SY_ERR_REJECTED.ws) this.ex.reply(401, 'text/plain', reason);
    else this.ex.reply(503, 'text/plain', reason);
  }

  drop(): void {
    this.session = null;
  }

  restart(): void {
    this.ex.reply(503, 'text/plain', errors.SY_ERR_SHUTTING_DOWN.message);
  }

  fail(code: ErrorCode): void {
    this.session = null;
    this.ex.reply(errors[code].http || 500, 'text/plain', errors[code].message);
  }
}

/** One SignalR transport connection of a session: a WebSocket, an SSE stream, or a series of long-polls */
export class SignalRConnection implements Connection, Carrier {
  session: PortSession | null = null;
  pingRound = 0;
  /** null until the client's handshake chose it */
  protocol: HubProtocol | null = null;
  /** negotiated with stateful reconnect (WebSockets): Ack/Sequence, and a dropped socket may come back */
  stateful = false;
  /** a reconnected socket: the next thing it writes is Sequence (once the session is open here) */
  private resuming = false;
  /** the newest seq of the session where it is held (a relayed one), from its open */
  private holderLast = 0;
  /** client-to-server streams refused: their items and completions are dropped (at most MAX_REFUSED_STREAMS) */
  private refusedStreams: Set<string> | null = null;
  /** the client's invocations waiting for their Completion: id → bytes (at most MAX_PENDING_INVOCATIONS, MAX_PENDING_BYTES) */
  private calls: Map<string, number> | null = null;
  private callBytes = 0;
  /** a refusal before the client's handshake: said as the handshake's error once it comes */
  private refusal: string | null = null;
  /** the connection token this connection was made with (long-polling and SSE: checked on every request) */
  token = '';
  /** the id of the client's next tracked message, and the newest one it sent (stateful reconnect) */
  private nextClientId = 1;
  private ackScheduled = false;
  /** the newest client message id acked to it */
  private acked = 0;
  ws: WebSocket<SocketData> | null = null;
  stream: HttpAnswer | null = null;
  /** long-polling: the held poll, and what waits for the next one */
  private held: HttpAnswer | null = null;
  private heldTimer: NodeJS.Timeout | null = null;
  private pending: Array<string | Uint8Array> = [];
  private pendingBytes = 0;
  private scheduled = false;
  private opened = false;
  private blocked = false;
  /** (WebSockets) the Close, waiting for a full send buffer to drain so that the client gets it */
  private closing: string | Uint8Array | null = null;
  closed = false;
  /** keep-alive ticks since the client last said something, and since the server last wrote */
  private rxIdle = 0;
  private txIdle = 0;

  constructor(
    private readonly sr: SignalR,
    readonly kind: Kind,
    public sid: string,
  ) {
    sr.conns.add(this);
    if (kind !== 'websocket') sr.http.set(sid, this);
  }

  get transport(): 'websocket' | 'sse' | 'polling' {
    return this.kind;
  }

  get carrier(): this {
    return this;
  }

  private get port(): Port {
    return this.sr.port;
  }

  /** Attaches to a session of this node */
  attach(s: PortSession): void {
    this.session = s;
    this.port.attach(s, this, 0, true);
  }

  sendOpen(s: PortSession, info: OpenInfo): void {
    // the hub protocol's own greeting is the handshake response, sent when the client's handshake comes
    this.opened = true;
    this.holderLast = info.last;
    // a relayed session's replay follows its open in the same message: Sequence once it is in
    if (this.resuming) queueMicrotask(() => this.session !== null && this.resumed(this.session));
  }

  /**
   * A reconnected socket, once the client spoke and the session is open here: Sequence with the id
   * of the first message replayed (the first entry held after `sent`; none: the next one), then
   * the replay. A relayed session's entries come right after its open: they are waited for.
   */
  private resumed(s: PortSession): void {
    if (!this.resuming || !this.opened || this.protocol === null) return;
    const box = s.outbox;
    let seq = s.sent + 1;
    while (seq <= box.last && box.get(seq) === undefined) seq++;
    if (seq > box.last) seq = Math.max(box.last, this.holderLast) + 1;
    this.resuming = false;
    s.sent = seq - 1;
    this.emit(this.protocol.encode({ type: SEQUENCE, sequenceId: seq }));
    this.flush(s);
  }

  private get ready(): boolean {
    return this.opened && this.protocol !== null && !this.closed;
  }

  flush(s: PortSession): void {
    if (!this.ready || this.blocked) return;
    // a reconnected socket says where the replay starts first
    if (this.resuming) return this.resumed(s);
    if (s.sent >= s.outbox.last) return;
    if (this.kind === 'polling' && this.held === null) return; // the next poll takes them
    const box = s.outbox;
    while (s.sent < box.last && !this.blocked) {
      // a poll's worth waits already: the rest stays in the outbox (bounded) for the next poll
      if (this.kind === 'polling' && this.pendingBytes >= POLL_BUDGET) break;
      const seq = s.sent + 1;
      const e = box.get(seq);
      if (e !== undefined) {
        // not taken (a full socket): it goes again after the drain
        if (!this.emit(encodeEntry(this.protocol!, e))) break;
        if (e.kind === 'reply' && this.calls !== null) this.answered(e);
      }
      s.sent = seq;
    }
    // no replay without stateful reconnect: what is written is delivered (else the client's Ack says)
    if (!this.stateful) this.port.acknowledge(s, s.sent);
  }

  /** Writes one encoded message to the transport. @returns false when it was not taken (a full socket: write it again after the drain) */
  private emit(f: string | Uint8Array): boolean {
    this.txIdle = 0;
    switch (this.kind) {
      case 'websocket': {
        if (this.ws === null) return true;
        traffic.out += sizeOf(f);
        const r = this.ws.send(f, typeof f !== 'string');
        // 0: sent, the buffer is full; 2: dropped (over the limit)
        if (r !== 1) this.blocked = true;
        return r !== 2;
      }
      case 'sse':
        if (this.stream !== null && !this.stream.write('data: ' + (f as string) + '\r\n\r\n')) {
          this.blocked = true;
          this.stream.onWritable(() => this.drained());
        }
        return true;
      case 'polling':
        this.pending.push(f);
        this.pendingBytes += sizeOf(f);
        this.schedule();
        return true;
    }
  }

  drained(): void {
    this.blocked = false;
    const close = this.closing;
    if (close !== null) {
      this.closing = null;
      this.emit(close);
      return this.finish();
    }
    if (this.session !== null) this.flush(this.session);
  }

  /** Data from the client: the handshake first, then hub messages */
  received(data: string | Uint8Array): void {
    this.rxIdle = 0;
    const s = this.session;
    if (this.protocol === null && this.stateful && this.kind === 'websocket' && !isHandshake(data)) {
      // a stateful reconnect: no handshake, its first message is Sequence; the frame kind says the protocol
      this.protocol = hubProtocols[typeof data === 'string' ? 'json' : 'messagepack'];
      this.resuming = true;
      if (this.refusal !== null) return this.resumeRefused();
      if (s !== null) this.resumed(s);
    }
    if (this.protocol === null) {
      const h = parseHandshake(data);
      if (h === null) return this.fail('SY_ERR_MALFORMED_FRAME');
      if ('error' in h) {
        this.emitRaw(handshakeResponse(h.error, false));
        // the session ends with it (nothing else can come on this connection)
        return s !== null ? this.port.fail(s, 'SY_ERR_BAD_REQUEST') : this.finish();
      }
      if (h.protocol.binary && this.kind === 'sse') {
        // SSE carries text: a binary protocol cannot ride it
        this.emitRaw(handshakeResponse(`The '${h.protocol.name}' protocol needs a binary transport; Server-Sent Events carry text.`, false));
        return s !== null ? this.port.fail(s, 'SY_ERR_BAD_REQUEST') : this.finish();
      }
      if (this.refusal !== null) {
        // refused before its handshake: the answer is why
        this.emitRaw(handshakeResponse(this.refusal, false));
        return this.finish();
      }
      this.protocol = h.protocol;
      this.emitRaw(handshakeResponse(undefined, h.protocol.binary && this.kind === 'websocket'));
      if (s !== null) this.flush(s);
      const rest = h.rest;
      if ((typeof rest === 'string' ? rest.length : rest.byteLength) === 0) return;
      data = rest;
    }
    let messages: HubMessage[];
    try {
      messages = this.protocol.decode(data);
    } catch (err) {
      if (!(err instanceof HubProtocolError)) throw err;
      return this.fail('SY_ERR_MALFORMED_FRAME');
    }
    // what each message weighs, for the bound on pending invocations (exact for one message a frame)
    const share = Math.ceil(sizeOf(data) / Math.max(1, messages.length));
    for (const m of messages) {
      if (this.session === null) return;
      this.message(this.session, m, share);
    }
    // stateful reconnect: tell the client what arrived, so that it stops buffering it
    if (this.stateful && !this.ackScheduled) {
      this.ackScheduled = true;
      queueMicrotask(() => {
        this.ackScheduled = false;
        // only what is new, and never before the Sequence of a resumed socket
        const id = this.nextClientId - 1;
        if (this.closed || this.protocol === null || this.resuming || id <= this.acked) return;
        this.acked = id;
        this.emit(this.protocol.encode({ type: ACK, sequenceId: id }));
      });
    }
  }

  private emitRaw(f: string | Uint8Array): void {
    this.emit(f);
  }

  private message(s: PortSession, m: HubMessage, bytes: number): void {
    const port = this.port;
    // ids the client chose are kept (refused streams, pending invocations, outbox entries): bounded
    if (m.invocationId !== undefined && m.invocationId.length > MAX_ID_CHARS) return this.fail('SY_ERR_TOO_MANY_PENDING');
    // the tracked kinds are numbered from 1 (stateful reconnect): the core drops a number it has seen
    let cseq: number | undefined;
    if (m.type === INVOCATION || m.type === STREAM_ITEM || m.type === COMPLETION || m.type === STREAM_INVOCATION || m.type === CANCEL_INVOCATION) {
      const id = this.nextClientId++;
      if (this.stateful) cseq = id;
    }
    switch (m.type) {
      case INVOCATION:
      case STREAM_INVOCATION: {
        if (m.type === STREAM_INVOCATION || m.streamIds !== undefined) {
          // the streams it would send are dropped (their items and completions are not answers):
          // their ids are kept until the client completes them, so both their number and length are bounded
          if (m.streamIds !== undefined) {
            const refused = (this.refusedStreams ??= new Set());
            for (const id of m.streamIds) {
              if (id.length > MAX_ID_CHARS || (refused.size >= MAX_REFUSED_STREAMS && !refused.has(id))) return this.fail('SY_ERR_TOO_MANY_PENDING');
              refused.add(id);
            }
          }
          // never silence: an error Completion, in order with the session's entries
          if (m.invocationId === undefined) return;
          const r: ClientFrame = { type: 'refused', ack: m.invocationId, error: STREAMS_UNSUPPORTED };
          if (cseq !== undefined) r.cseq = cseq;
          return port.deliver(s, r);
        }
        const f: ClientFrame = { type: 'event', event: m.target!.toLowerCase(), args: m.arguments! };
        if (m.invocationId !== undefined) {
          // held (by the worker, or the app answering) until its Completion is written: bounded
          if (!this.calling(m.invocationId, bytes)) return this.fail('SY_ERR_TOO_MANY_PENDING');
          f.ack = m.invocationId;
        }
        if (cseq !== undefined) f.cseq = cseq;
        return port.deliver(s, f);
      }
      case COMPLETION: {
        const id = m.invocationId!;
        // the end of a refused client-to-server stream
        if (this.refusedStreams?.delete(id) === true) return;
        // the client's answer to a server request (`session.request`): its ids are numbers
        const ack = /^\d{1,15}$/.test(id) ? Number(id) : id;
        const f: ClientFrame = m.error !== undefined ? { type: 'reply', ack, error: m.error } : { type: 'reply', ack, args: m.hasResult ? [m.result] : [] };
        if (cseq !== undefined) f.cseq = cseq;
        return port.deliver(s, f);
      }
      case CLOSE:
        return port.deliver(s, { type: 'close' });
      case ACK:
        // the client has our messages up to this one
        if (this.stateful) port.acknowledge(s, m.sequenceId!);
        return;
      case SEQUENCE:
        // the client resends from this id on: numbers restart there
        if (this.stateful) this.nextClientId = m.sequenceId!;
        return;
      default:
        // Ping; StreamItem and CancelInvocation (no streams are served)
        return;
    }
  }

  /**
   * An invocation the client waits for: counted until its Completion is written. A repeated id
   * (the real clients never repeat one) adds to the first's bytes.
   * @returns false past MAX_PENDING_INVOCATIONS or MAX_PENDING_BYTES (at least one maxPayloadBytes message)
   */
  private calling(id: string, bytes: number): boolean {
    const calls = (this.calls ??= new Map());
    const had = calls.get(id);
    if (had === undefined && calls.size >= MAX_PENDING_INVOCATIONS) return false;
    if (this.callBytes + bytes > Math.max(MAX_PENDING_BYTES, this.port.options.maxPayloadBytes)) return false;
    calls.set(id, (had ?? 0) + bytes);
    this.callBytes += bytes;
    return true;
  }

  /** A Completion went to the client: its invocation no longer counts (one that came on an earlier connection, or a server request's, is not here) */
  private answered(e: Entry): void {
    const id = String(e.ack);
    const bytes = this.calls!.get(id);
    if (bytes === undefined) return;
    this.calls!.delete(id);
    this.callBytes -= bytes;
  }

  /** A POST (long-polling, SSE): the messages in its body */
  posted(ex: HttpAnswer, body: Uint8Array): void {
    if (this.closed) return ex.reply(404, 'text/plain', NO_CONNECTION);
    try {
      const binary = this.protocol !== null ? this.protocol.binary : false;
      this.received(binary ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString());
    } catch (err) {
      // a bug of ours: the messages were not handled, so the POST is not answered as if they had
      // been; the connection ends (its poll gets a Close that lets the client reconnect)
      warnOnce('signalr send', err);
      ex.reply(errors.SY_ERR_INTERNAL.http, 'text/plain', errors.SY_ERR_INTERNAL.message);
      return this.fail('SY_ERR_INTERNAL');
    }
    ex.reply(200, 'text/plain', '');
  }

  // ---- long-polling ----------------------------------------------------------------------------

  /** A poll: answered at once when messages wait, else held; a newer poll ends an older one (204) */
  poll(ex: HttpAnswer): void {
    this.rxIdle = 0;
    if (this.closed) {
      // the last messages (the Close) if a poll has not had them yet, then 204
      this.held = ex;
      return this.answer(this.pending.length > 0 ? 200 : 204);
    }
    if (this.held !== null) this.answer(204);
    this.held = ex;
    ex.onAbort = () => {
      if (this.held === ex) this.held = null;
      this.stopHeldTimer();
    };
    this.heldTimer = setTimeout(() => this.answer(200), this.port.options.pollTimeoutMs);
    // (tunneled from another node: it now waits as long as a poll is held)
    ex.hold?.();
    if (this.session !== null) this.flush(this.session);
    if (this.pending.length > 0) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.held === null) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.held !== null && this.pending.length > 0) this.answer(200);
    });
  }

  /** Answers the held poll: 200 with what waits, or 204 (ended) */
  private answer(status: 200 | 204): void {
    const ex = this.held;
    if (ex === null) return;
    this.held = null;
    this.stopHeldTimer();
    if (status === 204) return ex.reply(204, null);
    // at most POLL_BUDGET bytes an answer (it may cross the bus, whose messages are bounded); the
    // rest goes with the next poll
    let n = 0;
    let size = 0;
    const pending = this.pending;
    while (n < pending.length) {
      const f = pending[n]!;
      const b = typeof f === 'string' ? f.length : f.byteLength;
      if (n > 0 && size + b > POLL_BUDGET) break;
      size += b;
      n++;
    }
    const all = n === pending.length;
    const out = all ? pending : pending.splice(0, n);
    if (all) this.pending = [];
    this.pendingBytes = all ? 0 : this.pendingBytes - size;
    const binary = this.protocol?.binary === true;
    if (!binary) return ex.reply(200, 'text/plain', out.join(''));
    ex.reply(200, 'application/octet-stream', Buffer.concat(out.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))));
  }

  private stopHeldTimer(): void {
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
  }

  // ---- keep-alive and endings -------------------------------------------------------------------

  ping(): void {}

  /** The keep-alive tick: a Ping when nothing was written for keepAliveMs; a silent client is gone */
  beat(): void {
    if (this.closed) return;
    const o = this.sr.o;
    const tick = this.sr.tickMs;
    // also before the handshake: a client that never says it is gone too
    const silent = ++this.rxIdle * tick > o.clientTimeoutMs;
    if (this.kind === 'polling') {
      // a long-polling client keeps itself alive by polling; one that stopped is gone
      if (this.held === null && silent) this.clientClose();
      return;
    }
    if (silent) return this.transportGone();
    if (this.protocol !== null && ++this.txIdle * tick >= o.keepAliveMs && !this.blocked) this.emit(this.protocol.encode({ type: PING }));
  }

  /** The session ended: the Close message, then the transport closes */
  end(s: PortSession, code: number, reason: string): void {
    this.session = null;
    if (this.closed) return;
    if (this.protocol === null && this.kind === 'websocket' && (code === errors.SY_ERR_REJECTED.ws || this.stateful)) {
      // refused before the client's handshake (skipNegotiation): the handshake's answer says why;
      // a stateful resume of a connection that ended: its first message (Sequence) gets a Close
      this.refusal = reason;
      setTimeout(() => this.finish(), this.sr.o.clientTimeoutMs).unref();
      return;
    }
    // the client closed it itself: nothing more to say (unless this socket is a resume of it, whose
    // client waits to hear what became of its connection)
    if (this.protocol !== null && (code !== 1000 || this.resuming)) {
      // a reconnected socket's client listens only after Sequence
      if (this.resuming) {
        this.resuming = false;
        this.emit(this.protocol.encode({ type: SEQUENCE, sequenceId: s.sent + 1 }));
      }
      // what is left, then Close: the app's disconnect or a refusal ends it for good; the gateway's
      // own reasons (a slow reader, lost output, a shutdown) let the client reconnect
      this.writeAll(s);
      const app = code >= 4000 && code <= 4099;
      const close: HubMessage = { type: CLOSE };
      if (code !== 1000) close.error = app || code === errors.SY_ERR_REJECTED.ws ? reason : `Server closed the connection: ${reason}`;
      // temporary conditions (docs/errors.md's ranges) let the client reconnect; the app's reasons and protocol errors do not
      if (code === 1011 || code === 1012 || code === 1013 || (code >= 4500 && code <= 4599)) close.allowReconnect = true;
      const frame = this.protocol.encode(close);
      if (this.kind === 'websocket' && this.blocked && this.ws !== null) {
        // the send buffer is full (a slow reader): sent now, the Close would be dropped and the
        // socket would end without it. It goes once the buffer drains; a reader that never drains is cut.
        this.closing = frame;
        setTimeout(() => {
          if (this.closing === null) return;
          this.closing = null;
          this.ws?.close();
          this.finish();
        }, CLOSE_GRACE_MS).unref();
        return;
      }
      this.emit(frame);
    }
    this.finish();
  }

  /** The node drains: clients reconnect (elsewhere) */
  restart(): void {
    const s = this.session;
    // a stateful client reconnects its socket by itself and resumes: just close it; others get
    // what is left and are told to reconnect (to a new connection)
    if (s !== null && this.protocol !== null && !this.stateful) {
      this.writeAll(s);
      this.emit(this.protocol.encode({ type: CLOSE, error: 'Server is restarting', allowReconnect: true }));
    }
    this.finish();
  }

  /** Writes every entry left, past a full buffer (the last words before a close) */
  private writeAll(s: PortSession): void {
    const box = s.outbox;
    while (s.sent < box.last) {
      const seq = s.sent + 1;
      const e = box.get(seq);
      s.sent = seq;
      if (e !== undefined) this.emit(encodeEntry(this.protocol!, e));
    }
  }

  drop(): void {
    this.session = null;
    this.finish();
  }

  fail(code: ErrorCode): void {
    const s = this.session;
    if (s !== null) return this.port.fail(s, code);
    // a stateful resume the session's node refused (it no longer has it): the client must hear it,
    // or it reconnects again and again; it listens only after a Sequence
    if (this.stateful && this.kind === 'websocket' && !this.closed) {
      this.refusal = errors[code].message;
      if (this.protocol !== null) return this.resumeRefused();
      setTimeout(() => this.finish(), this.sr.o.clientTimeoutMs).unref();
      return;
    }
    this.finish();
  }

  /** Sequence (so that the client listens), then a Close it does not reconnect after */
  private resumeRefused(): void {
    this.resuming = false;
    this.emit(this.protocol!.encode({ type: SEQUENCE, sequenceId: 1 }));
    this.emit(this.protocol!.encode({ type: CLOSE, error: `Server closed the connection: ${this.refusal}` }));
    this.finish();
  }

  /** The client closed (DELETE, a long-polling client gone): the session ends */
  clientClose(): void {
    const s = this.session;
    if (s !== null) this.port.deliver(s, { type: 'close' });
    this.finish();
  }

  /**
   * The WebSocket or SSE stream went away (`clean`: the client closed it). Without stateful
   * reconnect there is no coming back: the session ends
   */
  transportGone(clean = false): void {
    if (this.closed) return;
    const s = this.session;
    this.session = null;
    this.closeTransport();
    if (s === null) return;
    // a stateful client whose socket dropped reconnects with its token: the session waits for it
    // (the resume window); one that stopped is done
    if (this.stateful && !clean) this.port.detach(s, this);
    else this.port.deliver(s, { type: 'close' });
  }

  closeSocket(): void {
    this.finish();
  }

  private closeTransport(): void {
    this.finish();
  }

  /** Closes the transport and forgets the connection (a poll after it gets 204) */
  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.sr.conns.delete(this);
    switch (this.kind) {
      case 'websocket': {
        const ws = this.ws;
        this.ws = null;
        ws?.end(1000);
        break;
      }
      case 'sse':
        this.stream?.end();
        this.stream = null;
        this.sr.http.delete(this.sid);
        break;
      case 'polling':
        // the held poll gets what is left; the next one, 204
        if (this.pending.length > 0) this.answer(200);
        else this.answer(204);
        // polls after the end get 204 for a while, then 404
        setTimeout(() => {
          if (this.sr.http.get(this.sid) === this) this.sr.http.delete(this.sid);
        }, this.port.options.pollTimeoutMs).unref();
    }
  }
}

/** A connection token's parts: `<sid>.<node>.<signature>[.s]` */
function parseToken(id: string): { sid: string; token: string; stateful: boolean } | null {
  const dot = id.indexOf('.');
  if (dot <= 0) return null;
  const stateful = id.endsWith('.s');
  return { sid: id.slice(0, dot), token: id.slice(dot + 1, stateful ? -2 : undefined), stateful };
}

/** A request of a long-polling or SSE connection, forwarded to the node holding it (Port.tunnel) */
type Forwarded = { o: 'get'; id: string; sse: boolean } | { o: 'post'; id: string; b: Uint8Array } | { o: 'del'; id: string };
