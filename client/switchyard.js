// @ts-check
/**
 * Switchyard native client — wire protocol v1 (see docs/protocol.md).
 *
 * One dependency-free ES module: browsers load it from `GET /client.js`, Node imports it directly.
 * Types: ./switchyard.d.ts (hand-written, kept in sync with the JSDoc below).
 *
 *   import { connect } from '/client.js';
 *   const c = connect('http://localhost:8080', { transports: ['websocket', 'sse', 'polling'] });
 *   c.on('open', ({ sid, recovered }) => { if (!recovered) c.emit('join', 'lobby'); });
 *   c.on('said', (room, text, from) => console.log(room, text, from));
 *   const [pong] = await c.request('echo', 'hi');
 *
 * Delivery guarantees
 * - Server -> client: every `event`/`reply` frame is delivered to the application at most once and
 *   in `seq` order (frames with `seq <= lastSeq` are dropped). After a drop the client reconnects
 *   with `sid`/`token`/`last`, so while the server still holds the session (`open.recovered`),
 *   nothing is lost either: exactly once, in order.
 * - Client -> server: frames are sent in order. Frames emitted while disconnected are queued
 *   (bounded by `maxQueue`) and sent after the next open. The protocol has no upstream
 *   acknowledgement, so a frame written to a connection that then dies may be lost; use
 *   `request()` (which times out) when you need to know.
 */

/** @typedef {'websocket' | 'sse' | 'polling'} TransportName */
/** @typedef {'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'} ClientState */
/**
 * @typedef {object} Codec
 * @property {(value: unknown) => Uint8Array} encode
 * @property {(bytes: Uint8Array) => unknown} decode
 */
/**
 * @typedef {object} ClientOptions
 * @property {TransportName[]} [transports]  order to try; default ['websocket','sse','polling']
 * @property {boolean} [reconnect]           default true
 * @property {number} [minDelayMs]           backoff base, default 250
 * @property {number} [maxDelayMs]           backoff cap, default 10000
 * @property {number} [maxAttempts]          reconnect attempts before giving up, default Infinity
 * @property {number} [connectTimeoutMs]     per transport attempt, default 10000
 * @property {number} [ackTimeoutMs]         request() timeout, default 10000
 * @property {number} [pollTimeoutMs]        the server's long-poll hold time, default 25000
 * @property {number} [maxQueue]             outbound frames held while disconnected/busy, default 1000
 * @property {number} [maxBatch]             frames per POST /rt/send, default 100
 * @property {number} [maxBatchBytes]        JSON characters per POST /rt/send (soft), default 32768
 * @property {Record<string, unknown> | (() => Record<string, unknown>)} [query]  extra query parameters
 * @property {string} [path]                 route prefix, default '/rt'
 * @property {'json' | 'msgpack'} [format]   default 'json'; 'msgpack' needs `msgpack`
 * @property {Codec} [msgpack]               e.g. { encode: pack, decode: unpack } from msgpackr
 * @property {any} [WebSocket]               WebSocket implementation (default: globalThis.WebSocket)
 * @property {any} [EventSource]             EventSource implementation (default: globalThis.EventSource)
 * @property {any} [fetch]                   fetch implementation (default: globalThis.fetch)
 */
/**
 * @typedef {object} OpenInfo
 * @property {string} sid
 * @property {boolean} recovered  true only when a previous session resumed without loss
 * @property {boolean} first      first open since open()/connect()
 * @property {TransportName} transport
 * @property {number | undefined} last  newest seq the server has sent (from the open frame)
 */
/** @typedef {{ code: number, reason: string }} CloseInfo */
/** @typedef {{ attempt: number, delayMs: number, code?: number, reason?: string }} ReconnectingInfo */
/** @typedef {{ code?: number, status?: number, reason?: string, error?: unknown, sessionGone?: boolean }} DownInfo */
/** @typedef {Record<string, any>} Frame */
/**
 * @typedef {object} Pending
 * @property {(args: unknown[]) => void} resolve
 * @property {(err: Error) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

const TRANSPORTS = /** @type {const} */ (['websocket', 'sse', 'polling']);
const RESERVED = new Set(['open', 'close', 'reconnecting', 'transport', 'error', 'event']);
/** close codes that refuse a resume (bad token, unknown session) rather than end the client */
const RESUME_REFUSED = new Set([4401, 4404]);

const DEFAULTS = {
  transports: /** @type {TransportName[]} */ (['websocket', 'sse', 'polling']),
  reconnect: true,
  minDelayMs: 250,
  maxDelayMs: 10000,
  maxAttempts: Infinity,
  connectTimeoutMs: 10000,
  ackTimeoutMs: 10000,
  pollTimeoutMs: 25000,
  maxQueue: 1000,
  maxBatch: 100,
  maxBatchBytes: 32768,
  path: '/rt',
  format: /** @type {'json' | 'msgpack'} */ ('json'),
};

const noop = () => {};

/**
 * Close codes after which the client does not reconnect (docs/errors.md; until that exists:
 * 4000-4499 and 1002/1003/1007/1008/1009). 1012/1013/4500-4999 and transport drops reconnect.
 * @param {number} code
 * @returns {boolean}
 */
export function isTerminalCode(code) {
  return (code >= 4000 && code <= 4499) || code === 1002 || code === 1003 || code === 1007 || code === 1008 || code === 1009;
}

/** Error type for everything the client rejects with or reports through the 'error' event. */
export class SwitchyardError extends Error {
  /**
   * @param {string} code  `SY_ERR_*` from the server, or `SY_CLIENT_*` from the client
   * @param {string} message
   * @param {{ status?: number, transport?: TransportName, reply?: Frame, cause?: unknown }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SwitchyardError';
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} HTTP status, for HTTP errors */
    this.status = extra.status;
    /** @type {TransportName | undefined} */
    this.transport = extra.transport;
    /** @type {Frame | undefined} the reply frame, for request() rejections */
    this.reply = extra.reply;
    if (extra.cause !== undefined) /** @type {any} */ (this).cause = extra.cause;
  }
}

/** @param {unknown} e */
function errText(e) {
  if (e && typeof e === 'object' && 'message' in e && /** @type {any} */ (e).message) return String(/** @type {any} */ (e).message);
  return String(e);
}

/** @param {unknown} e */
function rethrowLater(e) {
  const g = /** @type {any} */ (globalThis);
  if (typeof g.reportError === 'function') g.reportError(e);
  else setTimeout(() => { throw e; });
}

/** @param {unknown} event */
function checkEvent(event) {
  if (typeof event !== 'string' || event.length === 0 || event.length > 256) {
    throw new TypeError('event must be a non-empty string of at most 256 characters');
  }
}

/**
 * Read an HTTP error answer `{"error":"SY_ERR_…","message":"…"}`.
 * @param {any} res
 * @param {TransportName} transport
 */
async function httpError(res, transport) {
  /** @type {any} */
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const code = body && typeof body.error === 'string' ? body.error : 'SY_CLIENT_HTTP';
  const message = body && typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
  return new SwitchyardError(code, message, { status: res.status, transport });
}

/**
 * Connect to a Switchyard gateway. Same as `new SwitchyardClient(url, options).open()`.
 * In a browser `url` may be omitted (defaults to the page's origin).
 * @param {string | URL | ClientOptions} [url]
 * @param {ClientOptions} [options]
 * @returns {SwitchyardClient}
 */
export function connect(url, options) {
  return new SwitchyardClient(url, options).open();
}

export class SwitchyardClient {
  /**
   * @param {string | URL | ClientOptions} [url]  gateway base URL: http(s):// or ws(s)://, optionally with a path prefix and query
   * @param {ClientOptions} [options]
   */
  constructor(url, options) {
    if (url && typeof url === 'object' && !(url instanceof URL)) { options = url; url = undefined; }
    const o = { ...DEFAULTS, ...(options || {}) };
    /** @private */ this._o = o;
    const g = /** @type {any} */ (globalThis);
    const loc = g.location;
    if (url === undefined && !loc) throw new TypeError('connect(url): a gateway URL is required outside a browser');
    const base = new URL(url === undefined ? loc.origin : String(url), loc ? loc.href : undefined);
    if (base.protocol === 'ws:') base.protocol = 'http:';
    else if (base.protocol === 'wss:') base.protocol = 'https:';
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`unsupported URL scheme ${base.protocol}`);
    const prefix = '/' + String(o.path).replace(/^\/+|\/+$/g, '');
    /** @private */ this._http = base.origin + base.pathname.replace(/\/+$/, '') + (prefix === '/' ? '' : prefix);
    /** @private @type {Record<string, string>} */ this._baseQuery = Object.fromEntries(base.searchParams);

    if (o.format !== 'json' && o.format !== 'msgpack') throw new TypeError(`unknown format ${o.format}`);
    if (o.format === 'msgpack' && !(o.msgpack && typeof o.msgpack.encode === 'function' && typeof o.msgpack.decode === 'function')) {
      throw new TypeError("format 'msgpack' needs options.msgpack = { encode, decode }");
    }
    /** @private @type {Codec | null} */ this._codec = o.format === 'msgpack' ? /** @type {Codec} */ (o.msgpack) : null;

    /** @private */ this._WebSocket = o.WebSocket || g.WebSocket;
    /** @private */ this._EventSource = o.EventSource || g.EventSource;
    /** @private @type {((input: string, init?: any) => Promise<any>) | undefined} */
    this._fetch = o.fetch || (typeof g.fetch === 'function' ? (/** @type {string} */ input, /** @type {any} */ init) => g.fetch(input, init) : undefined);
    for (const t of o.transports) {
      if (!TRANSPORTS.includes(t)) throw new TypeError(`unknown transport ${t}; expected one of ${TRANSPORTS.join(', ')}`);
    }
    const usable = { websocket: !!this._WebSocket, sse: !!(this._EventSource && this._fetch), polling: !!this._fetch };
    /** Transports this client will try, in order (requested ones that have an implementation). @type {TransportName[]} */
    this.transports = o.transports.filter((t, i, a) => usable[t] && a.indexOf(t) === i);
    if (this.transports.length === 0) {
      throw new TypeError(`none of the transports [${o.transports.join(', ')}] is usable here: pass WebSocket / EventSource / fetch in the options`);
    }

    /** Session id (null before the first open). @type {string | null} */
    this.sid = null;
    /** Resume token of the session. @type {string | null} */
    this.token = null;
    /** Newest `seq` delivered to the application. */
    this.lastSeq = 0;
    /** Transport of the current (or most recent) connection. @type {TransportName | null} */
    this.transport = null;
    /** Heartbeat interval announced by the server (0 until open). */
    this.pingMs = 0;
    /** @type {ClientState} */
    this.state = 'idle';

    /** The live connection; a testing hook (`c._conn.kill()` drops it like a network failure). @type {Conn | null} */
    this._conn = null;
    /** outbound frames not yet written (internal, shared with the transports) @type {Frame[]} */ this._outq = [];
    /** @private @type {Map<number, Pending>} */ this._pending = new Map();
    /** @private */ this._ackSeq = 0;
    /** @private @type {Map<string, Set<Function>>} */ this._ls = new Map();
    /** @private */ this._attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._timer = null;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._connectTimer = null;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._liveTimer = null;
    /** @private */ this._lastRx = 0;
    /** @private */ this._resumable = false;
    /** @private */ this._openedOnce = false;
    /** @private @type {TransportName} */ this._preferred = this.transports[0];
    /** @private @type {TransportName[]} */ this._round = [];
    /** @private */ this._tryIdx = 0;
    /** @private @type {OpenInfo | null} */ this._openInfo = null;
  }

  /** True while a connection is open. */
  get connected() { return this.state === 'open'; }

  // ------------------------------------------------------------------ listeners

  /**
   * Listen to a client event ('open', 'close', 'reconnecting', 'transport', 'error', 'event') or
   * to a named server event. Returns a function that removes the listener.
   * @param {string} name
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._ls.get(name);
    if (!set) this._ls.set(name, (set = new Set()));
    set.add(fn);
    return () => this.off(name, fn);
  }

  /**
   * Like on(), but the listener runs at most once.
   * @param {string} name
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  once(name, fn) {
    const off = this.on(name, (...args) => { off(); fn.apply(this, args); });
    return off;
  }

  /**
   * Remove one listener, every listener of `name`, or (no arguments) every listener.
   * @param {string} [name]
   * @param {(...args: any[]) => void} [fn]
   */
  off(name, fn) {
    if (name === undefined) this._ls.clear();
    else if (fn === undefined) this._ls.delete(name);
    else this._ls.get(name)?.delete(fn);
    return this;
  }

  /**
   * Resolves with the open info once the client is open (at once if it already is); rejects if it
   * closes first.
   * @returns {Promise<OpenInfo>}
   */
  ready() {
    if (this.state === 'open' && this._openInfo) return Promise.resolve(this._openInfo);
    if (this.state === 'closed') return Promise.reject(new SwitchyardError('SY_CLIENT_CLOSED', 'client is closed'));
    return new Promise((resolve, reject) => {
      const offOpen = this.once('open', (info) => { offClose(); resolve(info); });
      const offClose = this.once('close', (/** @type {CloseInfo} */ info) => {
        offOpen();
        reject(new SwitchyardError('SY_CLIENT_CLOSED', `closed before open: ${info.code} ${info.reason}`));
      });
    });
  }

  /**
   * @private
   * @param {string} name
   * @param {...unknown} args
   */
  _fire(name, ...args) {
    const set = this._ls.get(name);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try { fn.apply(this, args); } catch (e) { rethrowLater(e); }
    }
  }

  // ------------------------------------------------------------------ sending

  /**
   * Emit an event to the application, fire and forget. Returns false if the frame was dropped
   * (client closed, or the outbound queue is full).
   * @param {string} event
   * @param {...unknown} args
   * @returns {boolean}
   */
  emit(event, ...args) {
    checkEvent(event);
    return this._enqueue({ type: 'event', event, args });
  }

  /**
   * Emit an event that asks for a reply. Resolves with the reply's `args`; rejects with a
   * SwitchyardError on a reply `error`, after `ackTimeoutMs`, or when the client closes or the
   * session is lost before the reply arrived.
   * @param {string} event
   * @param {...unknown} args
   * @returns {Promise<unknown[]>}
   */
  request(event, ...args) {
    return this.requestWithTimeout(this._o.ackTimeoutMs, event, ...args);
  }

  /**
   * request() with its own timeout (ms; 0 or Infinity = none).
   * @param {number} timeoutMs
   * @param {string} event
   * @param {...unknown} args
   * @returns {Promise<unknown[]>}
   */
  requestWithTimeout(timeoutMs, event, ...args) {
    checkEvent(event);
    if (this.state === 'closed') return Promise.reject(new SwitchyardError('SY_CLIENT_CLOSED', 'client is closed'));
    const ack = ++this._ackSeq;
    return new Promise((resolve, reject) => {
      if (!this._enqueue({ type: 'event', event, args, ack })) {
        reject(new SwitchyardError('SY_CLIENT_QUEUE_FULL', `outbound queue is full (${this._o.maxQueue} frames)`));
        return;
      }
      /** @type {Pending} */
      const p = { resolve, reject, timer: undefined };
      if (timeoutMs > 0 && timeoutMs < Infinity) {
        p.timer = setTimeout(() => {
          this._pending.delete(ack);
          reject(new SwitchyardError('SY_CLIENT_TIMEOUT', `no reply to '${event}' within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this._pending.set(ack, p);
    });
  }

  /**
   * @private
   * @param {Frame} frame
   */
  _enqueue(frame) {
    if (this.state === 'closed') return false;
    if (this._outq.length >= this._o.maxQueue) {
      this._fire('error', new SwitchyardError('SY_CLIENT_QUEUE_FULL', `outbound queue is full (${this._o.maxQueue} frames); frame dropped`));
      return false;
    }
    this._outq.push(frame);
    const conn = this._conn;
    if (conn && conn.opened && this.state === 'open') conn.flush();
    return true;
  }

  /**
   * @param {Frame} frame
   * @returns {string | Uint8Array}
   */
  _encode(frame) {
    return this._codec ? this._codec.encode(frame) : JSON.stringify(frame);
  }

  /**
   * @param {unknown} data  a WebSocket message
   * @returns {unknown}
   */
  _decode(data) {
    if (typeof data === 'string') return JSON.parse(data);
    /** @type {Uint8Array | null} */
    let bytes = null;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!bytes) throw new TypeError('unsupported message type');
    if (this._codec) return this._codec.decode(bytes);
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Start connecting (no-op while connecting/open). After close() this starts a new session.
   * @returns {this}
   */
  open() {
    if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting') return this;
    this.state = 'connecting';
    this._attempt = 0;
    this._openedOnce = false;
    this._start();
    return this;
  }

  /**
   * Drop the current connection (the session stays on the server) and reconnect at once,
   * resuming the session. When closed or idle, same as open().
   * @returns {this}
   */
  reconnect() {
    if (this.state === 'idle' || this.state === 'closed') return this.open();
    if (this._conn) this._detach(this._conn);
    this._clearTimer();
    this._attempt = 0;
    this._start();
    return this;
  }

  /**
   * Abruptly drop the current connection as a network failure would (testing/diagnostics). The
   * client then reconnects according to its reconnect policy.
   * @param {string} [reason]
   * @returns {this}
   */
  drop(reason = 'dropped by client') {
    if (this._conn) this._conn.kill(reason);
    return this;
  }

  /**
   * End the session: flush queued frames, send {"type":"close"}, close the connection, stop
   * reconnecting, reject pending requests and emit 'close' ({code: 1000, reason: 'client closed'}).
   * @returns {this}
   */
  close() {
    if (this.state === 'closed') return this;
    const conn = this._conn;
    const bye = { type: 'close' };
    if (conn && conn.opened && !conn.dead) {
      conn.end(bye);
    } else if (this._resumable && this.sid && this.token && this._fetch) {
      // Not connected right now: end the server-side session anyway, best effort.
      this._post([bye], false).catch(noop);
    }
    this._resumable = false;
    if (this.state === 'idle') {
      this.state = 'closed';
      return this;
    }
    this._finalClose(1000, 'client closed');
    return this;
  }

  /** @private */
  _clearTimer() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
  }

  /** @private  start a round: try every transport once, the last one that worked first */
  _start() {
    this._round = [this._preferred, ...this.transports.filter((t) => t !== this._preferred)];
    this._tryIdx = 0;
    this.state = this._openedOnce ? 'reconnecting' : 'connecting';
    this._tryNext({});
  }

  /**
   * @private
   * @param {DownInfo} info  why the previous attempt failed
   */
  _tryNext(info) {
    if (this.state === 'closed') return;
    if (this._tryIdx >= this._round.length) {
      this._scheduleReconnect({ code: info.code, reason: info.reason || 'no transport could connect' });
      return;
    }
    const name = this._round[this._tryIdx];
    const conn = name === 'websocket' ? new WsConn(this) : name === 'sse' ? new SseConn(this) : new PollConn(this);
    conn.resuming = this._resumable;
    this._conn = conn;
    this._connectTimer = setTimeout(() => conn.kill(`connect timeout (${this._o.connectTimeoutMs} ms)`), this._o.connectTimeoutMs);
    conn.start();
  }

  /**
   * @private
   * @param {{ code?: number, reason?: string }} info
   */
  _scheduleReconnect(info) {
    if (this.state === 'closed') return;
    const o = this._o;
    if (!o.reconnect || this._attempt >= o.maxAttempts) {
      this._finalClose(info.code ?? 1006, info.reason || 'connection lost');
      return;
    }
    this._attempt++;
    const cap = Math.min(o.maxDelayMs, o.minDelayMs * 2 ** (this._attempt - 1));
    const delayMs = Math.floor(Math.random() * cap); // full jitter
    this.state = 'reconnecting';
    this._fire('reconnecting', { attempt: this._attempt, delayMs, code: info.code, reason: info.reason });
    // A listener may have called close() or reconnect().
    if (this.state !== 'reconnecting' || this._conn || this._timer) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this.state === 'reconnecting' && !this._conn) this._start();
    }, delayMs);
  }

  /**
   * @private
   * @param {number} code
   * @param {string} reason
   */
  _finalClose(code, reason) {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this._conn) this._detach(this._conn);
    this._clearTimer();
    this._outq.length = 0;
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new SwitchyardError('SY_CLIENT_CLOSED', `client closed before the reply arrived (${code} ${reason})`));
    }
    this._fire('close', { code, reason });
  }

  /**
   * Forget a connection: tear it down silently and stop its timers.
   * @private
   * @param {Conn} conn
   */
  _detach(conn) {
    conn.stop();
    if (this._conn === conn) {
      this._conn = null;
      if (this._connectTimer) clearTimeout(this._connectTimer);
      if (this._liveTimer) clearTimeout(this._liveTimer);
      this._connectTimer = this._liveTimer = null;
    }
  }

  // ------------------------------------------------------------------ connection callbacks

  /**
   * The session can not be resumed (HTTP 4xx on resume): the next open starts a new one.
   * @param {SwitchyardError} err
   */
  _sessionGone(err) {
    this._resumable = false;
    this._fire('error', err);
  }

  /**
   * @param {Conn} conn
   * @param {Frame} f  an `open` frame
   */
  _connOpen(conn, f) {
    if (conn !== this._conn || this.state === 'closed') return;
    if (typeof f.sid !== 'string' || typeof f.token !== 'string') {
      conn.kill('malformed open frame');
      return;
    }
    const prevSid = this._resumable ? this.sid : null;
    const recovered = prevSid !== null && f.sid === prevSid && f.recovered !== false;
    if (f.sid !== this.sid) this.lastSeq = 0; // a new session: seq restarts at 1
    this.sid = f.sid;
    this.token = f.token;
    if (typeof f.pingMs === 'number' && f.pingMs > 0) this.pingMs = f.pingMs;
    this._resumable = true;
    conn.opened = true;
    if (this._connectTimer) clearTimeout(this._connectTimer);
    this._connectTimer = null;
    this.state = 'open';
    this._attempt = 0;
    this._preferred = conn.name;
    if (!recovered) this._failSentRequests();
    const first = !this._openedOnce;
    this._openedOnce = true;
    const changed = this.transport !== conn.name;
    this.transport = conn.name;
    this._lastRx = Date.now();
    if (conn.heartbeat) this._checkLive();
    const info = { sid: f.sid, recovered, first, transport: conn.name, last: typeof f.last === 'number' ? f.last : undefined };
    this._openInfo = info;
    conn.flush(); // frames queued while disconnected go first
    if (changed) this._fire('transport', conn.name);
    if (conn === this._conn) this._fire('open', info);
  }

  /** @private  requests whose frame already went out on a lost session can never be answered */
  _failSentRequests() {
    if (this._pending.size === 0) return;
    const queued = new Set();
    for (const f of this._outq) if (f.ack !== undefined) queued.add(f.ack);
    for (const [ack, p] of [...this._pending]) {
      if (queued.has(ack)) continue;
      this._pending.delete(ack);
      if (p.timer) clearTimeout(p.timer);
      p.reject(new SwitchyardError('SY_CLIENT_SESSION_LOST', 'the session was lost before the reply arrived'));
    }
  }

  /**
   * @param {Conn} conn
   * @param {unknown} raw  a decoded server frame
   */
  _connFrame(conn, raw) {
    if (conn !== this._conn || this.state === 'closed') return;
    if (!raw || typeof raw !== 'object' || typeof (/** @type {any} */ (raw).type) !== 'string') {
      this._badFrame(conn, new Error('frame is not an object with a type'));
      return;
    }
    const f = /** @type {Frame} */ (raw);
    this._lastRx = Date.now();
    if (f.type === 'open') { this._connOpen(conn, f); return; }
    if (f.type === 'close') { this._serverClose(conn, f); return; }
    // Before `open` only a resume of a session that has just ended may send frames: its unread
    // event/reply frames, then `close`.
    if (!conn.opened && !(conn.resuming && (f.type === 'event' || f.type === 'reply'))) {
      conn.kill(`expected an open frame, got '${f.type}'`);
      return;
    }
    switch (f.type) {
      case 'event':
      case 'reply':
        if (typeof f.seq === 'number') {
          if (f.seq <= this.lastSeq) return; // already delivered (replay overlap)
          this.lastSeq = f.seq;
        }
        if (f.type === 'event') this._deliver(f);
        else this._reply(f);
        return;
      case 'ping':
        conn.send({ type: 'pong' });
        if (!conn.heartbeat) { conn.heartbeat = true; this._checkLive(); }
        return;
      default:
        return; // unknown server frame types are ignored (forward compatibility)
    }
  }

  /**
   * @private
   * @param {Frame} f
   */
  _deliver(f) {
    if (typeof f.event !== 'string') return;
    const args = Array.isArray(f.args) ? f.args : [];
    this._fire('event', f.event, args);
    if (!RESERVED.has(f.event)) this._fire(f.event, ...args);
  }

  /**
   * @private
   * @param {Frame} f
   */
  _reply(f) {
    const p = this._pending.get(f.ack);
    if (!p) return; // timed out, or not ours
    this._pending.delete(f.ack);
    if (p.timer) clearTimeout(p.timer);
    if (f.error !== undefined && f.error !== null) {
      const msg = typeof f.error === 'string' ? f.error : JSON.stringify(f.error);
      const code = typeof f.code === 'string' ? f.code : /^SY_[A-Z0-9_]+$/.test(msg) ? msg : 'SY_APP_ERROR';
      p.reject(new SwitchyardError(code, msg, { reply: f }));
    } else {
      p.resolve(Array.isArray(f.args) ? f.args : []);
    }
  }

  /**
   * @private
   * @param {Conn} conn
   * @param {Frame} f  a `close` frame
   */
  _serverClose(conn, f) {
    const code = typeof f.code === 'number' ? f.code : 1000;
    const reason = typeof f.reason === 'string' ? f.reason : '';
    const wasOpen = conn.opened;
    this._detach(conn);
    // The session is over either way: never try to resume it again.
    this._resumable = false;
    const terminal = isTerminalCode(code);
    if (!wasOpen && conn.resuming && (!terminal || RESUME_REFUSED.has(code))) {
      // The session we tried to resume has ended (expired, node restarted) or its token is not
      // accepted: start a new session on the same transport right away (open.recovered = false).
      this._fire('error', new SwitchyardError(reason.startsWith('SY_') ? reason : 'SY_CLIENT_RESUME_REFUSED', `could not resume session ${this.sid}: ${code} ${reason}`, { transport: conn.name }));
      this._tryNext({ code, reason });
      return;
    }
    if (terminal) {
      this._finalClose(code, reason);
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  /**
   * @param {Conn} conn
   * @param {unknown} err
   */
  _badFrame(conn, err) {
    if (conn !== this._conn) return;
    this._fire('error', new SwitchyardError('SY_CLIENT_MALFORMED_FRAME', `malformed frame from server: ${errText(err)}`, { transport: conn.name, cause: err }));
  }

  /**
   * @param {Conn} conn
   * @param {DownInfo} info
   */
  _connDown(conn, info) {
    if (conn !== this._conn) return;
    this._detach(conn);
    if (this.state === 'closed') return;
    if (!conn.opened && conn.resuming && info.sessionGone) {
      // e.g. SSE answered 401/404 to the resume: retry this transport with a new session
      this._sessionGone(new SwitchyardError('SY_CLIENT_RESUME_REFUSED', `could not resume session ${this.sid}: ${info.reason || ''}`, { transport: conn.name, status: info.status }));
      this._tryNext(info);
      return;
    }
    if (!conn.opened) {
      const why = info.reason || (info.error ? errText(info.error) : '') || (info.code ? `code ${info.code}` : 'failed');
      this._fire('error', new SwitchyardError('SY_CLIENT_TRANSPORT', `${conn.name}: ${why}`, { transport: conn.name, status: info.status, cause: info.error }));
      this._tryIdx++;
      this._tryNext(info);
      return;
    }
    if (info.code !== undefined && isTerminalCode(info.code)) {
      this._resumable = false;
      this._finalClose(info.code, info.reason || '');
      return;
    }
    this._scheduleReconnect({ code: info.code, reason: info.reason || 'connection lost' });
  }

  /** @private  heartbeat watchdog: no frame for ~2×pingMs means the connection is dead */
  _checkLive() {
    if (this._liveTimer) clearTimeout(this._liveTimer);
    this._liveTimer = null;
    const conn = this._conn;
    if (!conn || !conn.opened || !conn.heartbeat || !this.pingMs) return;
    const limit = 2 * this.pingMs + 1000;
    const idle = Date.now() - this._lastRx;
    if (idle >= limit) { conn.kill(`no frame for ${idle} ms (pingMs ${this.pingMs})`); return; }
    this._liveTimer = setTimeout(() => this._checkLive(), limit - idle);
  }

  // ------------------------------------------------------------------ URLs and HTTP

  /**
   * @param {'ws' | 'sse' | 'poll'} kind
   * @param {boolean} withSession  add sid/token/last
   */
  _url(kind, withSession) {
    const p = new URLSearchParams();
    const q = typeof this._o.query === 'function' ? this._o.query() : this._o.query;
    for (const [k, v] of Object.entries({ ...this._baseQuery, ...(q || {}) })) {
      if (v !== undefined && v !== null) p.set(k, String(v));
    }
    if (this._codec && kind !== 'sse') p.set('format', 'msgpack');
    if (withSession && this.sid && this.token) {
      p.set('sid', this.sid);
      p.set('token', this.token);
      p.set('last', String(this.lastSeq));
    }
    const qs = p.toString();
    const u = `${this._http}/${kind}${qs ? '?' + qs : ''}`;
    return kind === 'ws' ? u.replace(/^http/, 'ws') : u;
  }

  /**
   * POST /rt/send with the given frames, for the current session.
   * @param {Frame[]} frames
   * @param {boolean} binary  msgpack body
   * @param {string[]} [json]  frames already serialised
   */
  _post(frames, binary, json) {
    const fetch = /** @type {(input: string, init?: any) => Promise<any>} */ (this._fetch);
    const url = `${this._http}/send?sid=${encodeURIComponent(this.sid || '')}&token=${encodeURIComponent(this.token || '')}`;
    const body = binary && this._codec ? this._codec.encode(frames) : `[${(json || frames.map((f) => JSON.stringify(f))).join(',')}]`;
    const type = binary && this._codec ? 'application/msgpack' : 'application/json';
    return fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
  }
}

// ==================================================================== transports

/**
 * Upstream for SSE and long-polling: POST /rt/send with batches of frames, one request in flight.
 * Frames emitted in the same tick go in one POST; frames emitted while a POST is in flight go in the
 * next one.
 */
class Upstream {
  /**
   * @param {SwitchyardClient} c
   * @param {Conn} conn
   * @param {boolean} binary
   */
  constructor(c, conn, binary) {
    this.c = c;
    this.conn = conn;
    this.binary = binary;
    this.busy = false;
    this.queued = false;
    /** control frames (pong), sent ahead of application frames @type {Frame[]} */
    this.ctl = [];
    /** set by finish(): the last frames to send after the connection ended @type {Frame[] | null} */
    this.final = null;
  }

  schedule() {
    if (this.busy || this.queued) return;
    this.queued = true;
    queueMicrotask(() => { this.queued = false; this.pump(); });
  }

  /** @param {Frame} f */
  control(f) {
    this.ctl.push(f);
    this.schedule();
  }

  /** Send what is queued, then `bye`, even though the connection is ending. @param {Frame} bye */
  finish(bye) {
    this.final = [...this.c._outq.splice(0), bye];
    this.ctl.length = 0;
    this.schedule();
  }

  /** @returns {{ frames: Frame[], json: string[], user: Frame[] }} */
  take() {
    const c = this.c;
    const o = /** @type {any} */ (c)._o;
    const src = this.final || c._outq;
    const frames = this.final ? [] : this.ctl.splice(0);
    const json = frames.map((f) => JSON.stringify(f));
    const user = [];
    let bytes = 2;
    while (src.length && user.length < o.maxBatch) {
      const s = this.binary ? '' : JSON.stringify(src[0]);
      if (user.length > 0 && bytes + s.length + 1 > o.maxBatchBytes) break;
      bytes += s.length + 1;
      const f = /** @type {Frame} */ (src.shift());
      frames.push(f);
      json.push(s);
      user.push(f);
    }
    return { frames, json, user };
  }

  async pump() {
    const c = this.c;
    while (!this.busy) {
      if (!this.final && (this.conn.dead || c._conn !== this.conn)) return;
      const { frames, json, user } = this.take();
      if (frames.length === 0) return;
      this.busy = true;
      let res = null;
      let err = null;
      try { res = await c._post(frames, this.binary, this.binary ? undefined : json); } catch (e) { err = e; }
      this.busy = false;
      if (this.final) { if (err) return; continue; }
      if (err || !res) {
        // Not known to have arrived: put the frames back and let the reconnect resend them.
        if (c.state !== 'closed') c._outq.unshift(...user);
        this.conn.kill(`POST /rt/send failed: ${errText(err)}`);
        return;
      }
      if (!res.ok) {
        const e = await httpError(res, this.conn.name);
        const st = res.status;
        if (st === 401 || st === 403 || st === 404 || st === 410 || st === 429 || st >= 500) {
          // Session unknown/expired or server trouble: retry these frames after reconnecting.
          if (c.state !== 'closed') c._outq.unshift(...user);
          /** @type {any} */ (c)._fire('error', e);
          this.conn.kill(`POST /rt/send: ${st} ${e.code}`);
          return;
        }
        // The frames themselves were refused (malformed, too large, ...): drop them.
        /** @type {any} */ (c)._fire('error', e);
        for (const f of user) {
          if (f.ack === undefined) continue;
          const p = /** @type {any} */ (c)._pending.get(f.ack);
          if (!p) continue;
          /** @type {any} */ (c)._pending.delete(f.ack);
          if (p.timer) clearTimeout(p.timer);
          p.reject(e);
        }
      }
    }
  }
}

/**
 * @typedef {WsConn | SseConn | PollConn} Conn
 */

class WsConn {
  /** @param {SwitchyardClient} c */
  constructor(c) {
    this.c = c;
    /** @type {TransportName} */
    this.name = 'websocket';
    this.opened = false;
    this.dead = false;
    this.resuming = false;
    this.heartbeat = true;
    /** @type {any} */
    this.ws = null;
    /** @type {unknown} */
    this.error = undefined;
  }

  start() {
    const c = this.c;
    let ws;
    try {
      ws = new (/** @type {any} */ (c)._WebSocket)(c._url('ws', this.resuming));
    } catch (e) {
      queueMicrotask(() => this._down({ reason: errText(e), error: e }));
      return;
    }
    this.ws = ws;
    try { ws.binaryType = 'arraybuffer'; } catch { /* read-only in some polyfills */ }
    ws.onmessage = (/** @type {any} */ ev) => {
      if (this.dead) return;
      let f;
      try { f = c._decode(ev.data); } catch (e) { c._badFrame(this, e); return; }
      c._connFrame(this, f);
    };
    ws.onerror = (/** @type {any} */ ev) => { this.error = (ev && (ev.error || ev.message)) || 'websocket error'; };
    ws.onclose = (/** @type {any} */ ev) => {
      this._down({ code: ev && typeof ev.code === 'number' ? ev.code : 1006, reason: (ev && ev.reason) || (this.error ? errText(this.error) : ''), error: this.error });
    };
  }

  flush() {
    const q = this.c._outq;
    while (q.length && !this.dead && this.ws && this.ws.readyState === 1) {
      this.ws.send(this.c._encode(/** @type {Frame} */ (q.shift())));
    }
  }

  /** @param {Frame} f */
  send(f) {
    if (!this.dead && this.ws && this.ws.readyState === 1) this.ws.send(this.c._encode(f));
  }

  /** @param {Frame} bye */
  end(bye) {
    this.flush();
    this.send(bye);
    this.stop();
  }

  /** Tear down without reporting (a clean WebSocket close; the session stays on the server). */
  stop() {
    this.dead = true;
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = noop;
    try { ws.close(1000, 'client'); } catch { /* already closed */ }
  }

  /** Abrupt drop, reported like a network failure. @param {string} [reason] */
  kill(reason = 'killed') {
    this._down({ code: 1006, reason });
  }

  /** @param {DownInfo} info */
  _down(info) {
    if (this.dead) return;
    this.dead = true;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = noop;
      try {
        if (typeof ws.terminate === 'function') ws.terminate();
        else if (ws.readyState < 2) ws.close();
      } catch { /* ignore */ }
    }
    this.c._connDown(this, info);
  }
}

class SseConn {
  /** @param {SwitchyardClient} c */
  constructor(c) {
    this.c = c;
    /** @type {TransportName} */
    this.name = 'sse';
    this.opened = false;
    this.dead = false;
    this.resuming = false;
    /** SSE heartbeats are comments, invisible to EventSource; watch liveness only once ping frames show up */
    this.heartbeat = false;
    /** @type {any} */
    this.es = null;
    /** @type {Upstream | null} */
    this.up = null;
  }

  start() {
    const c = this.c;
    let es;
    try {
      es = new (/** @type {any} */ (c)._EventSource)(c._url('sse', this.resuming));
    } catch (e) {
      queueMicrotask(() => this._down({ reason: errText(e), error: e }));
      return;
    }
    this.es = es;
    es.onmessage = (/** @type {any} */ ev) => {
      if (this.dead) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { c._badFrame(this, e); return; }
      c._connFrame(this, f);
    };
    // EventSource would reconnect to its original URL on its own; the client reconnects instead,
    // with the current sid/token/last.
    es.onerror = (/** @type {any} */ ev) => {
      // (the `eventsource` package reports the HTTP status as `code`; browsers report nothing)
      const status = ev && typeof ev.code === 'number' ? ev.code : undefined;
      const sessionGone = !this.opened && this.resuming && status !== undefined && status >= 400 && status < 500 && status !== 429;
      this._down({ status, sessionGone, reason: (ev && ev.message) || (status ? `HTTP ${status}` : 'event stream failed') });
    };
  }

  _up() {
    if (!this.up) this.up = new Upstream(this.c, this, false);
    return this.up;
  }

  flush() {
    if (this.opened && !this.dead && this.c._outq.length) this._up().schedule();
  }

  /** @param {Frame} f */
  send(f) {
    if (this.opened && !this.dead) this._up().control(f);
  }

  /** @param {Frame} bye */
  end(bye) {
    this._up().finish(bye);
    this.stop();
  }

  stop() {
    this.dead = true;
    const es = this.es;
    this.es = null;
    if (!es) return;
    es.onmessage = es.onerror = noop;
    try { es.close(); } catch { /* ignore */ }
  }

  /** @param {string} [reason] */
  kill(reason = 'killed') {
    this._down({ code: 1006, reason });
  }

  /** @param {DownInfo} info */
  _down(info) {
    if (this.dead) return;
    this.stop();
    this.c._connDown(this, info);
  }
}

class PollConn {
  /** @param {SwitchyardClient} c */
  constructor(c) {
    this.c = c;
    /** @type {TransportName} */
    this.name = 'polling';
    this.opened = false;
    this.dead = false;
    this.resuming = false;
    /** liveness comes from the poll loop itself (each request has a deadline) */
    this.heartbeat = false;
    /** @type {AbortController | null} */
    this.ac = null;
    /** @type {Upstream | null} */
    this.up = null;
    this.binary = !!(/** @type {any} */ (c)._codec);
  }

  start() {
    this.loop().catch((e) => this._down({ reason: errText(e), error: e }));
  }

  /**
   * fetch with a deadline; resolves with the response and its parsed body (for 2xx).
   * @param {string} url
   * @param {any} init
   * @param {number} ms
   */
  async fetchWithin(url, init, ms) {
    const ac = new AbortController();
    this.ac = ac;
    const t = setTimeout(() => ac.abort(), ms);
    try {
      const fetch = /** @type {(input: string, init?: any) => Promise<any>} */ (/** @type {any} */ (this.c)._fetch);
      const res = await fetch(url, { ...init, signal: ac.signal });
      /** @type {unknown} */
      let body;
      if (res.ok && res.status !== 204) {
        const type = String(res.headers.get('content-type') || '');
        const codec = /** @type {any} */ (this.c)._codec;
        if (type.includes('msgpack') && codec) body = codec.decode(new Uint8Array(await res.arrayBuffer()));
        else { const text = await res.text(); body = text ? JSON.parse(text) : []; }
      }
      return { res, body };
    } finally {
      clearTimeout(t);
      if (this.ac === ac) this.ac = null;
    }
  }

  async loop() {
    const c = this.c;
    const o = /** @type {any} */ (c)._o;
    let session = this.resuming;
    let conflicts = 0;
    if (session) {
      // Resuming: a poll on a quiet session is held for pollTimeoutMs, so probe the session with a
      // pong on /rt/send first (204 = alive, 4xx = gone), then open and start polling.
      let res;
      try {
        res = await c._post([{ type: 'pong' }], false);
      } catch (e) {
        this._down({ reason: `resume probe failed: ${errText(e)}`, error: e });
        return;
      }
      if (this.dead) return;
      if (res.ok) {
        c._connOpen(this, { type: 'open', sid: c.sid, token: c.token, pingMs: c.pingMs, recovered: true });
      } else {
        const err = await httpError(res, this.name);
        if (this.dead) return;
        if (res.status === 404) {
          // Unknown or just ended: one poll tells which. An ended session answers at once with its
          // unread frames and `close`; an unknown one with 404 (handled in the loop).
        } else if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          c._sessionGone(err);
          session = false;
        } else {
          this._down({ status: res.status, reason: err.message, error: err });
          return;
        }
      }
    }
    while (!this.dead) {
      const url = c._url('poll', session);
      const accept = this.binary ? 'application/msgpack, application/json' : 'application/json';
      let r;
      try {
        r = await this.fetchWithin(url, { method: 'GET', headers: { accept } }, o.pollTimeoutMs + 10000);
      } catch (e) {
        if (this.dead) return;
        this._down({ reason: `poll failed: ${errText(e)}`, error: e });
        return;
      }
      if (this.dead) return;
      const { res, body } = r;
      if (!res.ok) {
        const err = await httpError(res, this.name);
        if (this.dead) return;
        if (res.status === 409 && ++conflicts <= 20) {
          // An earlier poll of ours is still held by the server; it is answered or dropped soon.
          await new Promise((resolve) => setTimeout(resolve, 250));
          continue;
        }
        if (session && res.status >= 400 && res.status < 500 && res.status !== 409 && res.status !== 429) {
          c._sessionGone(err); // expired/unknown: open a new session on this same connection
          session = false;
          continue;
        }
        this._down({ status: res.status, reason: err.message, error: err });
        return;
      }
      conflicts = 0;
      if (!Array.isArray(body)) {
        this._down({ reason: 'malformed poll response (not an array)' });
        return;
      }
      if (!this.opened && !(body[0] && body[0].type === 'open') && !session) {
        this._down({ reason: 'expected [open] from the first poll' });
        return;
      }
      for (const f of body) {
        if (this.dead) return;
        c._connFrame(this, f);
      }
      if (this.dead) return;
      if (!this.opened) {
        // a resume poll answered with frames but no `close`: the session is alive after all
        c._connOpen(this, { type: 'open', sid: c.sid, token: c.token, pingMs: c.pingMs, recovered: true });
      }
      session = true;
    }
  }

  _up() {
    if (!this.up) this.up = new Upstream(this.c, this, this.binary);
    return this.up;
  }

  flush() {
    if (this.opened && !this.dead && this.c._outq.length) this._up().schedule();
  }

  /** @param {Frame} f */
  send(f) {
    if (this.opened && !this.dead) this._up().control(f);
  }

  /** @param {Frame} bye */
  end(bye) {
    this._up().finish(bye);
    this.stop();
  }

  stop() {
    this.dead = true;
    const ac = this.ac;
    this.ac = null;
    if (ac) try { ac.abort(); } catch { /* ignore */ }
  }

  /** @param {string} [reason] */
  kill(reason = 'killed') {
    this._down({ code: 1006, reason });
  }

  /** @param {DownInfo} info */
  _down(info) {
    if (this.dead) return;
    this.stop();
    this.c._connDown(this, info);
  }
}
