/**
 * Engine.IO v4, the transport under Socket.IO clients: a handshake, long-polling and WebSocket
 * transports, the upgrade from one to the other, and server pings. One Engine.IO connection is a
 * `Carrier`; the layer above (dialect.ts) multiplexes namespace sessions on it.
 *
 * A carrier lives on the node that answered its handshake (its *home*, named in the sid). In a
 * cluster a request for it may land on any node: that node forwards the request to the home
 * (Port.tunnel, the gateway's) — a poll, a POST, or a whole WebSocket — so no balancer
 * stickiness is needed.
 * @see https://github.com/socketio/engine.io-protocol
 * @see ../../../docs/socketio.md
 */
import { randomId } from '../../seam/ids.ts';
import type { HttpResponse, WebSocket } from 'uWebSockets.js';
import type { Carrier, HttpAnswer, Port, SocketSink, Tunnel } from '../../seam/port.ts';
import { Exchange, clientIp, readBody, readRequest, requestBytes, retryHeaders, upgrade, wantsClose, type RequestInfo } from '../../wires/http.ts';
import { errorBody, errors, type ErrorCode, type ErrorSpec } from '../../seam/errors.ts';
import { warnOnce } from '../../../lib/log.ts';
import { sizeOf, traffic } from '../../seam/traffic.ts';
import { mountSocket } from '../../wires/websocket.ts';

export interface EngineIoOptions {
  /** where clients connect, with a trailing slash @default '/socket.io/' */
  path: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** a probe WebSocket that does not finish the upgrade within this is closed */
  upgradeTimeoutMs: number;
  /** a carrier that says nothing to the layer above within this is closed (Socket.IO: no CONNECT) */
  connectTimeoutMs: number;
  /** largest message or POST body, announced as `maxPayload` */
  maxPayload: number;
}

/** What a Socket.IO client's handshake request told us (copied: uWS's request dies with its handler) */
export interface EngineIoRequest {
  ip: string;
  origin: string;
  userAgent: string;
  /** the app's part of the query (Engine.IO's own parameters left out); shared empty object when none */
  query: Record<string, string>;
}

/** Engine.IO's own query parameters: not the app's */
const RESERVED = new Set(['EIO', 'transport', 't', 'sid', 'j', 'b64']);
const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;

function appQuery(q: URLSearchParams): Record<string, string> {
  let out: Record<string, string> | null = null;
  for (const [k, v] of q) if (!RESERVED.has(k)) (out ??= {})[k] = v;
  return out ?? EMPTY;
}

/** A held GET (here, or tunneled from another node): answered once */
interface PollSink {
  answer(status: number, type: string, body: string): void;
}

/*
 * A WebSocket (SocketSink, from the seam): this node's own (uWS's WebSocket object itself: the
 * interface is uWS's, so a local socket needs no wrapper object), or one on another node (a
 * tunneled one). Never used after the socket closed (uWS throws then): the carrier lets go of it
 * in `socketClosed`.
 */

const BLOCKED = 1;
const SCHEDULED = 2;
const CLOSED = 4;
/** the probe socket sent `2probe` */
const PROBED = 8;

/** a poll answer's size before the rest waits for the next poll (answers may cross the bus, whose messages are bounded) */
const POLL_BUDGET = 256 * 1024;
/**
 * what a carrier lets pile up for a client that neither polls nor reads its socket: the rest of
 * an ended session's outbox (`outboxMaxBytes`, 1 MiB by default) fits
 */
const OUT_LIMIT = 2 * 1024 * 1024;

/** Packets waiting for a poll or a drain, and their size */
class Queue {
  items: Array<string | Uint8Array> = [];
  bytes = 0;

  push(p: string | Uint8Array): void {
    this.items.push(p);
    this.bytes += typeof p === 'string' ? p.length : p.byteLength;
  }

  /** The first packets, up to `budget` bytes (at least one) */
  take(budget: number): Array<string | Uint8Array> {
    const items = this.items;
    let n = 0;
    let size = 0;
    while (n < items.length) {
      const p = items[n]!;
      const b = typeof p === 'string' ? p.length : p.byteLength;
      if (n > 0 && size + b > budget) break;
      size += b;
      n++;
    }
    this.bytes -= size;
    if (n === items.length) {
      this.items = [];
      return items;
    }
    return items.splice(0, n);
  }
}

/** uWS's `send` results (RemoteSocket answers the same way) */
const SENT = 1;
const DROPPED = 2;

/** the sids we make: 20 random characters, a dot, the node id (options.ts's nodeId rule) */
const SID = /^[A-Za-z0-9_-]{20}\.[A-Za-z0-9_-]{1,64}$/;

const TEXT = 'text/plain; charset=UTF-8';
const SEP = '\x1e';

const EIO_ERRORS = {
  UNKNOWN_TRANSPORT: { code: 0, message: 'Transport unknown' },
  UNKNOWN_SID: { code: 1, message: 'Session ID unknown' },
  BAD_HANDSHAKE_METHOD: { code: 2, message: 'Bad handshake method' },
  BAD_REQUEST: { code: 3, message: 'Bad request' },
  FORBIDDEN: { code: 4, message: 'Forbidden' },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: 'Unsupported protocol version' },
} as const;
type EngineIoError = keyof typeof EIO_ERRORS;

function eioBody(e: EngineIoError): string {
  return JSON.stringify(EIO_ERRORS[e]);
}

/** An error of ours as an Engine.IO client gets it */
function ourError(code: ErrorCode): { status: number; body: string } {
  const spec = errors[code] as ErrorSpec;
  const eio = spec.eio;
  if (eio?.code !== undefined) return { status: eio.http ?? spec.http, body: JSON.stringify({ code: eio.code, message: eio.message }) };
  return { status: eio?.http ?? (spec.http || 400), body: errorBody(code) };
}

/**
 * One Engine.IO connection. The layer above (a Socket.IO client) extends it: one object per
 * connection, not two (an idle connection costs every object it has).
 */
export abstract class EngineIoCarrier implements Carrier {
  pingRound = 0;
  transport: 'polling' | 'websocket';
  /** packets waiting for a poll or a drain (null: none) */
  private out: Queue | null = null;
  private poll: PollSink | null = null;
  private ws: SocketSink | null = null;
  private probe: SocketSink | null = null;
  /** BLOCKED | SCHEDULED | CLOSED */
  private flags = 0;
  // heartbeat and timeouts, run by EngineIoServer's tick, in its ticks (small integers: no boxed numbers; 0 = none)
  nextPing: number;
  pongDue = 0;
  connectDue: number;
  probeDue = 0;

  constructor(
    readonly sid: string,
    /** the handshake's request (the layer above may swap it for an object it keeps anyway with the same fields) */
    public info: EngineIoRequest,
    transport: 'polling' | 'websocket',
    private readonly engine: EngineIoServer,
  ) {
    this.transport = transport;
    const now = engine.nextTick();
    this.nextPing = now + engine.pingTicks;
    this.connectDue = now + engine.connectTicks;
  }

  /** a message packet: its text (after `4`) or its bytes */
  protected abstract onMessage(data: string | Uint8Array): void;
  /** the carrier takes packets again (a poll came, the socket drained, the upgrade finished) */
  protected abstract onWritable(): void;
  /** the carrier is gone */
  protected abstract onClose(reason: string): void;

  get closed(): boolean {
    return (this.flags & CLOSED) !== 0;
  }

  /** the socket's buffer is full */
  private get blocked(): boolean {
    return (this.flags & BLOCKED) !== 0;
  }

  private set blocked(v: boolean) {
    this.flags = v ? this.flags | BLOCKED : this.flags & ~BLOCKED;
  }

  /** the core's heartbeat: Engine.IO pings on its own schedule (see EngineIoServer.tick) */
  ping(): void {}

  /** packets written now go out now (or in this tick's poll answer) */
  get writable(): boolean {
    return !this.closed && (this.ws !== null ? !this.blocked : this.poll !== null);
  }

  /** Sends a packet (`4…` text, a binary message, or a control packet); queued while not writable. @returns writable */
  send(p: string | Uint8Array): boolean {
    if (this.closed) return false;
    const ws = this.ws;
    if (ws !== null) {
      if (this.blocked) {
        this.enqueue(p);
        return false;
      }
      traffic.out += sizeOf(p);
      const r = ws.send(p, typeof p !== 'string');
      if (r === SENT) return true;
      // kept for the drain: nothing is lost to a full buffer
      if (r === DROPPED) this.enqueue(p);
      this.blocked = true;
      return false;
    }
    this.enqueue(p);
    if (this.poll === null || this.closed) return false;
    this.schedule();
    return true;
  }

  /** Queues a packet; a client that lets more than OUT_LIMIT bytes pile up (never polls, never reads) is closed */
  private enqueue(p: string | Uint8Array): void {
    const q = (this.out ??= new Queue());
    q.push(p);
    if (q.bytes > OUT_LIMIT) this.close('slow reader', null);
  }

  /** Several packets at once (one write on a socket) */
  cork(f: () => void): void {
    if (this.ws !== null) this.ws.cork(f);
    else f();
  }

  private schedule(): void {
    if ((this.flags & SCHEDULED) !== 0) return;
    this.flags |= SCHEDULED;
    queueMicrotask(() => {
      this.flags &= ~SCHEDULED;
      if (this.poll !== null && this.out !== null) this.answer();
    });
  }

  /**
   * Answers the held poll with what waits, up to POLL_BUDGET bytes (the rest goes with the next
   * poll: an answer may cross the bus, whose messages are bounded), or, with `extra` (the last
   * answer: a close or a noop), with all of it and `extra` after it
   */
  private answer(extra?: string): void {
    const poll = this.poll;
    if (poll === null) return;
    this.poll = null;
    const q = this.out;
    const out = q === null ? [] : q.take(extra === undefined ? POLL_BUDGET : Infinity);
    if (q !== null && q.items.length === 0) this.out = null;
    if (extra !== undefined) out.push(extra);
    let body = '';
    for (let i = 0; i < out.length; i++) {
      const p = out[i]!;
      if (i > 0) body += SEP;
      body += typeof p === 'string' ? p : 'b' + Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('base64');
    }
    poll.answer(200, TEXT, body);
  }

  // ---- polling -----------------------------------------------------------------------------

  /** A GET for this carrier */
  get(sink: PollSink): void {
    if (this.transport !== 'polling') return sink.answer(400, 'application/json', eioBody('BAD_REQUEST'));
    if (this.poll !== null) {
      // a second concurrent poll breaks the protocol: the session ends, the first poll gets the
      // close, the second an empty 400 (as the reference server answers)
      sink.answer(400, '', '');
      return this.close('transport error', '1');
    }
    this.poll = sink;
    // a probing client (it sent `2probe`) waits for its poll to return before it finishes the upgrade
    if (this.probe !== null && (this.flags & PROBED) !== 0) return this.answer('6');
    if (this.out !== null) this.schedule();
    this.onWritable();
  }

  /** The held poll's client went away: the carrier is gone (as the reference server does) */
  pollAborted(sink: PollSink): void {
    if (this.poll !== sink) return;
    this.poll = null;
    this.close('transport close', null);
  }

  /** A POST's packets. @returns the HTTP answer */
  post(body: string): { status: number; type: string; body: string } {
    if (this.transport !== 'polling' || this.closed) return { status: 400, type: 'application/json', body: eioBody('BAD_REQUEST') };
    for (const p of body.split(SEP)) {
      this.packet(p.charCodeAt(0) === 98 /* b */ ? Buffer.from(p.slice(1), 'base64') : p, true);
      if (this.closed) break;
    }
    return { status: 200, type: 'text/html', body: 'ok' };
  }

  // ---- WebSocket ---------------------------------------------------------------------------

  /** A WebSocket for this carrier with its sid: a probe for the upgrade */
  socket(sink: SocketSink): void {
    if (this.closed || this.transport !== 'polling' || this.probe !== null) {
      // upgraded already, or upgrading: the second socket is closed
      return sink.end();
    }
    this.probe = sink;
    this.probeDue = this.engine.nextTick() + this.engine.upgradeTicks;
  }

  /** A message on one of this carrier's sockets */
  socketMessage(sink: SocketSink, data: string | Uint8Array): void {
    if (sink === this.ws) return this.packet(data, false);
    if (sink === this.probe) this.probeMessage(sink, data);
  }

  /** The carrier's own WebSocket (a WebSocket-only handshake) */
  useSocket(sink: SocketSink): void {
    this.ws = sink;
  }

  private probeMessage(sink: SocketSink, data: string | Uint8Array): void {
    if (data === '2probe') {
      this.flags |= PROBED;
      sink.send('3probe', false);
      // the client pauses polling before it sends `5`: release its held poll
      if (this.poll !== null) this.answer('6');
      return;
    }
    if (data === '5') return this.upgraded(sink);
    // anything else during the upgrade: the probe is closed, polling goes on
    this.closeProbe();
  }

  /** The upgrade failed (or did not finish in time): the probe is closed, polling goes on */
  closeProbe(): void {
    const p = this.probe;
    this.probe = null;
    this.probeDue = 0;
    this.flags &= ~PROBED;
    p?.end();
  }

  private upgraded(sink: SocketSink): void {
    this.probe = null;
    this.probeDue = 0;
    this.flags &= ~PROBED;
    if (this.poll !== null) this.answer('6');
    this.transport = 'websocket';
    this.ws = sink;
    const out = this.out?.items ?? [];
    this.out = null;
    sink.cork(() => {
      for (const p of out) this.send(p);
      this.onWritable();
    });
    this.onUpgraded();
  }

  /** The carrier goes over its WebSocket now */
  protected onUpgraded(): void {}

  /** The socket's buffer drained */
  drained(): void {
    if (!this.blocked || this.ws === null) return;
    this.blocked = false;
    const out = this.out?.items ?? [];
    this.out = null;
    this.ws.cork(() => {
      for (const p of out) this.send(p);
      if (!this.blocked) this.onWritable();
    });
  }

  /** A socket of this carrier closed (the client's doing, or the network's) */
  socketClosed(sink: SocketSink): void {
    if (this.probe === sink) {
      this.probe = null;
      this.probeDue = 0;
      return;
    }
    if (this.ws === sink) {
      this.ws = null;
      this.close('transport close', null);
    }
  }

  // ---- packets -------------------------------------------------------------------------------

  /** A packet from the client (`polling`: from a POST) */
  packet(p: string | Uint8Array, polling: boolean): void {
    if (this.closed) return;
    if (typeof p !== 'string') return this.onMessage(p);
    switch (p.charCodeAt(0)) {
      case 52 /* 4 message */:
        return this.onMessage(p.slice(1));
      case 51 /* 3 pong */:
        this.pongDue = 0;
        return;
      case 49 /* 1 close */:
        // the client closes (a polling client's way; on a WebSocket it just closes the socket, and
        // the reference server ignores a `1` there): a held poll is released with a noop
        if (polling) this.close('transport close', '6');
        return;
      case 48 /* 0 open */:
      case 53 /* 5 upgrade, outside a probe */:
      case 54 /* 6 noop */:
        return;
      default:
        // a client ping (the v3 heartbeat direction), an unknown type, an empty packet
        return this.close('parse error', '1');
    }
  }

  // ---- ending --------------------------------------------------------------------------------

  /**
   * Closes the carrier. `farewell`: what a held poll gets (`1` close, `6` noop; null: nothing, the
   * client is gone); a socket is closed. The layer above learns `reason`.
   */
  close(reason: string, farewell: '1' | '6' | null = '1'): void {
    if (this.closed) return;
    if (this.poll !== null) {
      if (farewell !== null) this.answer(farewell);
      this.poll = null;
    }
    this.flags |= CLOSED;
    this.out = null;
    this.engine.forget(this);
    const ws = this.ws;
    this.ws = null;
    const probe = this.probe;
    this.probe = null;
    ws?.end();
    probe?.end();
    this.onClose(reason);
  }
}

/** One Engine.IO endpoint: routes, carriers, their heartbeat; requests for carriers held elsewhere are forwarded (Port.tunnel) */
export class EngineIoServer {
  readonly carriers = new Map<string, EngineIoCarrier>();
  /** carriers keep state across requests: a request for one held elsewhere is forwarded there */
  private readonly tunnel: Tunnel;

  constructor(
    readonly port: Port,
    readonly o: EngineIoOptions,
    private readonly newCarrier: (sid: string, info: EngineIoRequest, transport: 'polling' | 'websocket', engine: EngineIoServer) => EngineIoCarrier,
  ) {
    this.tunnel = port.tunnel('eio', {
      http: (r, a) => {
        const m = r as Forwarded;
        if (m.o === 'get') return this.get(m.sid, a);
        const c = this.carriers.get(m.sid);
        if (c === undefined) return a.reply(400, 'application/json', eioBody('UNKNOWN_SID'));
        const answer = this.posted(c, m.b);
        a.reply(answer.status, answer.type, answer.body);
      },
      socket: (r, sink) => {
        const c = this.carriers.get((r as { sid: string }).sid);
        if (c === undefined) return null;
        c.socket(sink);
        return {
          message: (d) => {
            try {
              c.socketMessage(sink, d);
            } catch (err) {
              warnOnce('engine.io message', err);
              c.close('internal error');
            }
          },
          closed: () => c.socketClosed(sink),
        };
      },
    });
    this.mount();
    this.tickMs = Math.min(1000, Math.max(10, Math.floor(Math.min(o.pingIntervalMs, o.pingTimeoutMs, o.connectTimeoutMs) / 4)));
    // rounded up: a ping, a timeout never comes before its time (at most a tick after it)
    const ticks = (ms: number) => Math.max(1, Math.ceil(ms / this.tickMs));
    this.pingTicks = ticks(o.pingIntervalMs);
    this.pongTicks = ticks(o.pingTimeoutMs);
    this.connectTicks = ticks(o.connectTimeoutMs);
    this.upgradeTicks = ticks(o.upgradeTimeoutMs);
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();
  /** the heartbeat's clock: ticks since start, as of the last tick */
  now = 0;

  /**
   * The first tick at or after this moment: a carrier's first ping and its connect timeout count
   * from its own handshake (`now` can be up to a tick old, which would make them early)
   */
  nextTick(): number {
    return Math.ceil((Date.now() - this.started) / this.tickMs);
  }
  readonly tickMs: number;
  readonly pingTicks: number;
  readonly pongTicks: number;
  readonly connectTicks: number;
  readonly upgradeTicks: number;

  /** Engine.IO connections held here, and requests tunneled to and from other nodes since start */
  stats(): { carriers: number; tunneled: { out: number; in: number; sockets: number } } {
    const t = this.tunnel.stats();
    return { carriers: this.carriers.size, tunneled: { out: t.out, in: t.in, sockets: t.sockets } };
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of [...this.carriers.values()]) c.close('server shutting down');
  }

  /** Every carrier of this node (a draining node closes their transports) */
  forget(c: EngineIoCarrier): void {
    this.carriers.delete(c.sid);
  }

  /** The node a sid names */
  private homeOf(sid: string): string {
    return sid.slice(sid.indexOf('.') + 1);
  }

  /** A sid held elsewhere in the cluster: its requests are forwarded there (`sid` is well-formed: see SID) */
  isRemote(sid: string): boolean {
    return this.tunnel.clustered && this.homeOf(sid) !== this.tunnel.node && !this.carriers.has(sid);
  }

  /** A new carrier, and the open packet it starts with */
  private handshake(info: EngineIoRequest, transport: 'polling' | 'websocket'): { c: EngineIoCarrier; open: string } {
    const sid = randomId(15) + '.' + this.tunnel.node;
    const c = this.newCarrier(sid, info, transport, this);
    this.carriers.set(sid, c);
    const open =
      '0' +
      JSON.stringify({
        sid,
        upgrades: transport === 'polling' ? ['websocket'] : [],
        pingInterval: this.o.pingIntervalMs,
        pingTimeout: this.o.pingTimeoutMs,
        maxPayload: this.o.maxPayload,
      });
    return { c, open };
  }

  /** Pings, ping timeouts, connect and upgrade timeouts */
  private tick(): void {
    // from the wall clock: a late timer does not stretch the timeouts
    const now = (this.now = Math.floor((Date.now() - this.started) / this.tickMs));
    for (const c of this.carriers.values()) {
      try {
        this.beat(c, now);
      } catch (err) {
        // a bug of ours must cost this carrier, never the node
        warnOnce('engine.io heartbeat', err);
        c.close('internal error');
      }
    }
  }

  private beat(c: EngineIoCarrier, now: number): void {
    if (c.pongDue !== 0 && now >= c.pongDue) return c.close('ping timeout');
    if (c.connectDue !== 0 && now >= c.connectDue) return c.close('connect timeout');
    if (now >= c.nextPing) {
      // every pingInterval, whatever else flows: the client resets its timer only on a ping
      c.nextPing = now + this.pingTicks;
      if (c.pongDue === 0) c.pongDue = now + this.pongTicks;
      c.send('2');
    }
    if (c.probeDue !== 0 && now >= c.probeDue) c.closeProbe();
  }

  // ---- routes ------------------------------------------------------------------------------

  private exchange(res: HttpResponse, origin: string, close: boolean): Exchange {
    const ex = new Exchange(res, this.port.corsOrigin(origin), close);
    ex.closeAfter = this.port.closing;
    return ex;
  }

  /** Checks what every request must have. @returns the error, or null */
  private check(q: URLSearchParams, method: string): EngineIoError | null {
    const transport = q.get('transport');
    if (transport !== 'polling' && transport !== 'websocket') return 'UNKNOWN_TRANSPORT';
    if (q.get('EIO') !== '4') return 'UNSUPPORTED_PROTOCOL_VERSION';
    if (!q.has('sid') && method !== 'get') return 'BAD_HANDSHAKE_METHOD';
    return null;
  }

  private mount(): void {
    const port = this.port;
    const path = this.o.path;
    port.app.any(path, (res, req) => {
      const r = readRequest(res, req, port.options.trustProxy);
      const ex = this.exchange(res, r.origin, r.close);
      if (r.method === 'options') {
        // a preflight: what a browser needs to send polls with credentials or extra headers
        const extra: Record<string, string> = { 'Access-Control-Allow-Methods': 'GET,POST,OPTIONS', 'Access-Control-Max-Age': '600' };
        if (r.requestHeaders) extra['Access-Control-Allow-Headers'] = r.requestHeaders;
        return ex.reply(204, null, '', ex.cors ? extra : undefined);
      }
      const bad = this.check(r.query, r.method);
      if (bad !== null) return ex.reply(400, 'application/json', eioBody(bad));
      const sid = r.query.get('sid');
      // a sid we did not make names no carrier (and its node part must never reach a bus subject)
      if (sid !== null && !SID.test(sid)) return ex.reply(400, 'application/json', eioBody('UNKNOWN_SID'));
      const refused = port.admit(r.origin, sid === null, r.ip, r.bytes);
      if (refused !== null) {
        const e = ourError(refused);
        return ex.reply(e.status, 'application/json', e.body, retryHeaders(e.status));
      }
      // a plain GET with transport=websocket (no upgrade) is not a poll
      if (r.query.get('transport') !== 'polling') return ex.reply(400, 'application/json', eioBody('BAD_REQUEST'));
      if (sid === null) {
        const { open } = this.handshake(infoOf(r), 'polling');
        return ex.reply(200, TEXT, open);
      }
      if (r.method === 'get') return this.get(sid, ex);
      if (r.method === 'post') return this.post(sid, ex, r.contentType);
      ex.reply(400, 'application/json', eioBody('BAD_REQUEST'));
    });
    this.mountWebSocket();
  }

  /** A poll (here, or forwarded from the node it came to) */
  private get(sid: string, ex: HttpAnswer): void {
    if (this.isRemote(sid)) {
      // the home holds the poll (hold) at once, then answers within a ping interval (a ping
      // releases every poll); silence means it is gone
      const o = this.port.options;
      return this.tunnel.http(this.homeOf(sid), { o: 'get', sid }, ex, {
        waitMs: o.relayTimeoutMs,
        heldMs: this.o.pingIntervalMs + o.relayTimeoutMs,
        lost: unknownSid,
      });
    }
    const c = this.carriers.get(sid);
    if (c === undefined) return ex.reply(400, 'application/json', eioBody('UNKNOWN_SID'));
    ex.hold?.();
    const sink: PollSink = { answer: (status, type, body) => ex.reply(status, type, body) };
    ex.onAbort = () => c.pollAborted(sink);
    try {
      c.get(sink);
    } catch (err) {
      warnOnce('engine.io poll', err);
      c.close('internal error');
      ex.reply(500, 'application/json', errorBody('SY_ERR_INTERNAL'));
    }
  }

  private post(sid: string, ex: Exchange, contentType: string): void {
    readBody(ex, this.o.maxPayload, (body) => {
      // too large: refused, the session lives on (the client sends smaller payloads)
      if (body === null) return ex.reply(413, null, '', undefined, true);
      // binary bodies are Engine.IO v3's: null, refused (see posted)
      const b = contentType.startsWith('application/octet-stream') ? null : body;
      if (this.isRemote(sid))
        return this.tunnel.http(this.homeOf(sid), { o: 'post', sid, b }, ex, { waitMs: this.port.options.relayTimeoutMs, lost: unknownSid });
      const c = this.carriers.get(sid);
      if (c === undefined) return ex.reply(400, 'application/json', eioBody('UNKNOWN_SID'));
      const a = this.posted(c, b);
      ex.reply(a.status, a.type, a.body);
    });
  }

  /** A POST body for carrier `c` (here or tunneled); null: a binary (v3) body, refused and the session ends */
  posted(c: EngineIoCarrier, body: Uint8Array | null): { status: number; type: string; body: string } {
    if (body === null) {
      if (c.transport === 'polling') c.close('invalid content', '1');
      return { status: 400, type: '', body: '' };
    }
    try {
      return c.post(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString());
    } catch (err) {
      warnOnce('engine.io POST', err);
      c.close('internal error');
      return { status: 500, type: 'application/json', body: errorBody('SY_ERR_INTERNAL') };
    }
  }

  private mountWebSocket(): void {
    const port = this.port;
    const o = this.o;
    mountSocket<SocketData>(
      port,
      this.o.path,
      { maxPayloadBytes: o.maxPayload, silentMs: o.pingIntervalMs + o.pingTimeoutMs, pings: false },
      {
        upgrade: (res, req, context) => {
          const q = new URLSearchParams(req.getQuery() ?? '');
          const origin = req.getHeader('origin');
          const bad = this.check(q, 'get');
          const sid = q.get('sid');
          const ip = sid === null ? clientIp(res, req, port.options.trustProxy) : '';
          const refused = port.admit(origin, sid === null, ip, requestBytes(req));
          let error: { status: number; body: string } | null = null;
          if (bad !== null) error = { status: 400, body: eioBody(bad) };
          else if (q.get('transport') !== 'websocket') error = { status: 400, body: eioBody('BAD_REQUEST') };
          else if (refused !== null) error = ourError(refused);
          else if (sid !== null && !SID.test(sid)) error = { status: 400, body: eioBody('UNKNOWN_SID') };
          else if (sid !== null && !this.isRemote(sid) && !this.carriers.has(sid)) error = { status: 400, body: eioBody('UNKNOWN_SID') };
          if (error !== null) return this.exchange(res, origin, wantsClose(req)).reply(error.status, 'application/json', error.body, undefined, true);
          // a handshake keeps what the app may see; an upgrade only needs the sid
          const info = sid === null ? { ip, origin, userAgent: req.getHeader('user-agent'), query: appQuery(q) } : null;
          upgrade<SocketData>(res, req, context, { carrier: null, tunnel: null, sid, info });
        },
        open: (ws) => {
          const d = ws.getUserData();
          const sid = d.sid;
          if (sid === null) {
            const { c, open } = this.handshake(d.info!, 'websocket');
            d.info = null;
            c.useSocket(ws);
            d.carrier = c;
            c.send(open);
            return;
          }
          if (this.isRemote(sid)) {
            d.tunnel = this.tunnel.socket(this.homeOf(sid), { sid }, ws, port.options.relayTimeoutMs);
            return;
          }
          const c = this.carriers.get(sid);
          if (c === undefined) return ws.end();
          d.carrier = c;
          c.socket(ws);
        },
        message: (ws, message, isBinary) => {
          const d = ws.getUserData();
          traffic.in += message.byteLength;
          if (message.byteLength > o.maxPayload) return ws.end(1009);
          const data = isBinary ? Buffer.from(message.slice(0)) : Buffer.from(message).toString();
          const c = d.carrier;
          if (c === null) return d.tunnel?.message(data);
          try {
            c.socketMessage(ws, data);
          } catch (err) {
            warnOnce('engine.io message', err);
            c.close('internal error');
          }
        },
        drain: (ws) => {
          ws.getUserData().carrier?.drained();
        },
        close: (ws) => {
          const d = ws.getUserData();
          if (d.carrier !== null) d.carrier.socketClosed(ws);
          else d.tunnel?.closed();
        },
      },
    );
  }
}

/**
 * A socket's uWS user data. uWS copies these fields onto its WebSocket object, which is what
 * `getUserData` returns, and which is itself the socket's SocketSink: one object per socket.
 */
interface SocketData {
  /** the carrier it serves here, or null (tunneled to another node, or not yet known) */
  carrier: EngineIoCarrier | null;
  /** a socket tunneled to the carrier's node (edge side) */
  tunnel: { message(d: string | Uint8Array): void; closed(): void } | null;
  /** the sid it names (an upgrade), or null (a WebSocket-only handshake) */
  sid: string | null;
  /** what a handshake request told, until its carrier has it */
  info: EngineIoRequest | null;
}

function infoOf(r: RequestInfo): EngineIoRequest {
  return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: appQuery(r.query) };
}

/** A request of a carrier held on another node, forwarded there (Port.tunnel) */
type Forwarded = { o: 'get'; sid: string } | { o: 'post'; sid: string; b: Uint8Array | null };

/** What a request for a carrier no node has gets */
function unknownSid(ex: HttpAnswer): void {
  ex.reply(400, 'application/json', eioBody('UNKNOWN_SID'));
}
