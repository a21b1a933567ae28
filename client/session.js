// @ts-check
/**
 * The machinery under SwitchyardClient: the session (sid, token, lastSeq), the connection attempts
 * (each transport in turn, then backoff), the heartbeat watchdog, the frames from the server, and
 * the routes (URLs, POST /rt/send). The public methods are in client.js.
 */
import { WsConn } from './conn-websocket.js';
import { SseConn } from './conn-sse.js';
import { PollConn } from './conn-polling.js';
import { Emitter } from './emitter.js';
import { errText, isTerminalCode, SwitchyardError } from './errors.js';
import { Requests } from './requests.js';
/** @import { ClientState, DownInfo, FetchFunction, Frame, OpenInfo, Reply, TransportName } from './types.js' */
/** @import { Config } from './options.js' */
/** @import { Conn } from './conn.js' */

/** client events: server events of these names reach only 'event' listeners */
const RESERVED = new Set(['open', 'close', 'reconnecting', 'transport', 'error', 'event']);
/** close codes that refuse a resume (bad token, unknown session) rather than end the client */
const RESUME_REFUSED = new Set([4401, 4404]);
/**
 * Acknowledgements (`{"type":"ack","last":N}`) let the gateway release frames the client has from
 * the session's outbox, instead of holding them for a replay until newer frames push them out:
 * over WebSocket every ACK_EVERY frames, or ACK_DELAY_MS after an unacknowledged one; over SSE
 * with the next POST /rt/send (events, pongs); long-polling acknowledges with every poll's `last`.
 */
const ACK_EVERY = 32;
const ACK_DELAY_MS = 1000;
const CONNS = { websocket: WsConn, sse: SseConn, polling: PollConn };

export class ClientSession extends Emitter {
  /** @param {Config} cfg */
  constructor(cfg) {
    super();
    // internal, shared with the connections: the options and what they resolved to
    this._o = cfg.o;
    this._codec = cfg.codec;
    this._WebSocket = cfg.WebSocket;
    this._EventSource = cfg.EventSource;
    this._fetch = cfg.fetch;
    /** @private */ this._http = cfg.http;
    /** @private */ this._baseQuery = cfg.baseQuery;
    /** @private the remembered fallback, shared with later clients (null: not remembered) */ this._remembered = cfg.remembered;
    /** Transports this client will try, in order (requested ones that have an implementation). */
    this.transports = cfg.transports;

    /** Session id (null before the first open). @type {string | null} */
    this.sid = null;
    /** Resume token of the session. @type {string | null} */
    this.token = null;
    /** Newest `seq` delivered to the application. */
    this.lastSeq = 0;
    /** newest `seq` acknowledged to the gateway (internal) */ this._acked = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._ackTimer = null;
    /** Transport of the current (or most recent) connection. @type {TransportName | null} */
    this.transport = null;
    /** Heartbeat interval announced by the server (0 until open). */
    this.pingMs = 0;
    /** @type {ClientState} */
    this.state = 'idle';

    /** The live connection; a testing hook (`c._conn.kill()` drops it like a network failure). @type {Conn | null} */
    this._conn = null;
    /** outbound frames not yet written (internal, shared with the transports) @type {Frame[]} */ this._outq = [];
    /** requests waiting for their reply (internal) */ this._requests = new Requests();
    /** `cseq` of the newest client frame numbered for the current session (internal) */ this._cseq = 0;
    /** bumped by every new session (new sid): which session frames and replies belong to (internal) */ this._epoch = 0;
    /** settles when the POST /rt/send in flight (of any connection) is done, frames put back included (internal) @type {Promise<void> | null} */ this._sending =
      null;
    /** @protected */ this._attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._timer = null;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._connectTimer = null;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._liveTimer = null;
    /** @private */ this._lastRx = 0;
    /** @protected */ this._resumable = false;
    /** @protected */ this._openedOnce = false;
    /** @private @type {TransportName} */ this._preferred = this.transports[0];
    /** @private  when the transports before `_preferred` failed (0: it is not a fallback, or was first) */ this._preferredAt = 0;
    /** @private @type {TransportName[]} */ this._round = [];
    /** @private */ this._tryIdx = 0;
    /** @private  transports that failed to reach `open` in this round @type {TransportName[]} */ this._failed = [];
    /** @private  an attempt of this round ran out of time */ this._timedOut = false;
    /** @private  the connect deadline is connectTimeoutMs × 2^_slow: rounds that timed out since the last open (up to 2) */ this._slow = 0;
    /** @protected @type {OpenInfo | null} */ this._openInfo = null;
  }

  // ------------------------------------------------------------------ the outbound queue

  /**
   * Queue a client frame (`event` or `reply`) and send it if a connection is open. Returns false if
   * the frame was dropped (client closed, or the queue is full).
   * @protected
   * @param {Frame} frame
   */
  _enqueue(frame) {
    if (this.state === 'closed') return false;
    if (this._outq.length >= this._o.maxQueue) {
      this._fire('error', new SwitchyardError('SY_CLIENT_QUEUE_FULL', `outbound queue is full (${this._o.maxQueue} frames); frame dropped`));
      return false;
    }
    this._outq.push(this._number(frame));
    const conn = this._conn;
    if (conn?.opened && this.state === 'open') conn.flush();
    return true;
  }

  /*
   * Client frame numbering (`cseq`). The gateway remembers the highest `cseq` it has handled for a
   * session and drops a frame whose `cseq` is not greater, so a frame sent twice (put back after a
   * POST /rt/send that failed but may have arrived) reaches the application once:
   * - Every `event` and `reply` frame gets the session's next `cseq` (1, 2, 3…) when it is queued,
   *   as its last key, on every transport. A frame put back for resending keeps its `cseq`.
   * - A resume of the same session (same sid) keeps counting.
   * - A new session (new sid: the first open, or a replacement for a lost session) counts from 1.
   *   Nothing has been sent to it yet, so every frame still queued (emitted before the first open,
   *   or while the old session was being replaced) is renumbered from 1 in queue order; queued
   *   replies are dropped instead, as they answer server requests of the old session.
   * - Only one POST /rt/send is out at a time, across connections, and no connection sends while
   *   one is out: frames reach the gateway in `cseq` order, and frames put back go first.
   */

  /**
   * Give a frame the next `cseq` of the session, as its last key.
   * @private
   * @param {Frame} f
   */
  _number(f) {
    delete f.cseq;
    f.cseq = ++this._cseq;
    return f;
  }

  /** @private  number the queue from 1, for a session nothing has been sent to yet */
  _renumber() {
    this._cseq = 0;
    const q = this._outq;
    let n = 0;
    for (const f of q) if (f.type !== 'reply') q[n++] = this._number(f);
    q.length = n;
  }

  /**
   * Put the frames of a failed POST /rt/send back at the head of the queue: they may have arrived,
   * so they keep their `cseq` (the gateway drops a repeat). If a new session has opened since they
   * were taken, they were numbered for the old one: replies and requests that have already failed
   * (SY_CLIENT_SESSION_LOST) are dropped, the other frames go to the new session, and the queue is
   * renumbered from 1 (nothing has been sent to it yet: sending waited for this POST).
   * @param {Frame[]} frames
   * @param {number} epoch  `_epoch` when they were taken from the queue
   */
  _requeue(frames, epoch) {
    if (this.state === 'closed') return;
    if (epoch === this._epoch) {
      this._outq.unshift(...frames);
      return;
    }
    this._outq.unshift(...frames.filter((f) => f.type !== 'reply' && (f.ack === undefined || this._requests.has(f.ack))));
    this._renumber();
  }

  // ------------------------------------------------------------------ attempts and backoff

  /** @protected */
  _clearTimer() {
    if (this._timer) clearTimeout(this._timer);
    this._timer = null;
  }

  /*
   * Which transport a round starts with (docs/client.md, "Fallback"):
   * - The one that last reached `open` (`_preferred`); the others follow in the order of `transports`.
   * - A new session (open(), connect()) starts with the remembered fallback, when there is one for
   *   this gateway: a transport that worked after the ones before it in `transports` failed.
   * - A fallback is trusted for `rememberForMs` from the time the better transports failed (never
   *   renewed by merely working again). After that a round starts from the top of `transports`,
   *   and the fallback is remembered again only if the better transports fail again.
   * - A fallback that fails to reach `open` is forgotten (by this client, and the stored record):
   *   the next round starts from the top. When the first transport works, the record is removed.
   */

  /** @protected  start a round: try every transport once, the last one that worked first */
  _start() {
    const now = Date.now();
    const maxAge = this._o.rememberForMs;
    const fresh = (/** @type {number} */ at) => now - at < maxAge;
    if (!this._openedOnce && this._remembered) {
      const r = this._remembered.read();
      if (r && !fresh(r.at)) this._remembered.forget();
      else if (r && this.transports.includes(r.transport)) {
        this._preferred = r.transport;
        this._preferredAt = r.at;
      }
    }
    if (this._preferredAt && !fresh(this._preferredAt)) {
      this._preferred = this.transports[0];
      this._preferredAt = 0;
    }
    this._round = [this._preferred, ...this.transports.filter((t) => t !== this._preferred)];
    this._tryIdx = 0;
    this._failed = [];
    this._timedOut = false;
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
      // every transport failed; if one ran out of time, the network may just be slow: give the next
      // rounds more time (2×, then 4× connectTimeoutMs, until an open)
      if (this._timedOut) this._slow = Math.min(2, this._slow + 1);
      this._scheduleReconnect({ code: info.code, reason: info.reason || 'no transport could connect' });
      return;
    }
    const conn = new CONNS[this._round[this._tryIdx]](this);
    conn.resuming = this._resumable;
    this._conn = conn;
    const ms = this._o.connectTimeoutMs * 2 ** this._slow;
    this._connectTimer = setTimeout(() => {
      this._timedOut = true;
      conn.giveUp(`connect timeout (${ms} ms)`);
    }, ms);
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
   * @protected
   * @param {number} code
   * @param {string} reason
   */
  _finalClose(code, reason) {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this._conn) this._detach(this._conn);
    this._clearTimer();
    this._outq.length = 0;
    this._requests.failAll(() => new SwitchyardError('SY_CLIENT_CLOSED', `client closed before the reply arrived (${code} ${reason})`));
    this._fire('close', { code, reason });
  }

  /**
   * Forget a connection: tear it down silently and stop its timers.
   * @protected
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

  /** @private  heartbeat watchdog: no frame for ~2×pingMs means the connection is dead */
  _checkLive() {
    if (this._liveTimer) clearTimeout(this._liveTimer);
    this._liveTimer = null;
    const conn = this._conn;
    if (!conn?.opened || !conn.heartbeat || !this.pingMs) return;
    const limit = 2 * this.pingMs + 1000;
    const idle = Date.now() - this._lastRx;
    if (idle >= limit) {
      conn.kill(`no frame for ${idle} ms (pingMs ${this.pingMs})`);
      return;
    }
    this._liveTimer = setTimeout(() => this._checkLive(), limit - idle);
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
    if (f.sid !== this.sid) {
      // a new session: seq restarts at 1, and so does cseq (see _number)
      this.lastSeq = 0;
      this._epoch++;
      this._renumber();
    }
    this.sid = f.sid;
    this.token = f.token;
    // a resume's `last` acknowledged everything before it
    this._acked = this.lastSeq;
    if (typeof f.pingMs === 'number' && f.pingMs > 0) this.pingMs = f.pingMs;
    this._resumable = true;
    conn.opened = true;
    if (this._connectTimer) clearTimeout(this._connectTimer);
    this._connectTimer = null;
    this.state = 'open';
    this._attempt = 0;
    this._slow = 0;
    this._learn(conn.name);
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

  /**
   * A transport reached `open`: reconnects start with it, and if it is a fallback (a better one
   * failed in this round) it is remembered for the next clients.
   * @private
   * @param {TransportName} name
   */
  _learn(name) {
    const rank = this.transports.indexOf(name);
    this._preferred = name;
    if (rank === 0) {
      this._preferredAt = 0;
      if (this._remembered?.read()) this._remembered.forget();
    } else if (this._failed.some((t) => this.transports.indexOf(t) < rank)) {
      this._preferredAt = Date.now();
      this._remembered?.write(name, this._preferredAt);
    }
    // else: the fallback it started with worked again; it stays trusted until it expires
  }

  /** @private  requests whose frame already went out on a lost session can never be answered */
  _failSentRequests() {
    if (this._requests.size === 0) return;
    /** @type {Set<number>} */
    const queued = new Set();
    for (const f of this._outq) if (f.type === 'event' && f.ack !== undefined) queued.add(f.ack);
    this._requests.failAll(() => new SwitchyardError('SY_CLIENT_SESSION_LOST', 'the session was lost before the reply arrived'), queued);
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
    if (f.type === 'open') {
      this._connOpen(conn, f);
      return;
    }
    if (f.type === 'close') {
      this._serverClose(conn, f);
      return;
    }
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
          if (conn.name === 'websocket') this._ack(conn);
        }
        if (f.type === 'event') this._deliver(f);
        else this._requests.reply(f);
        return;
      case 'ping':
        conn.send({ type: 'pong' });
        if (!conn.heartbeat) {
          conn.heartbeat = true;
          this._checkLive();
        }
        return;
      default:
        return; // unknown server frame types are ignored (forward compatibility)
    }
  }

  /**
   * Acknowledge over WebSocket what has been received, every ACK_EVERY frames or a moment after
   * the last (see ACK_EVERY)
   * @private
   * @param {Conn} conn
   */
  _ack(conn) {
    if (this.lastSeq - this._acked >= ACK_EVERY) {
      conn.send(/** @type {Frame} */ (this._ackFrame()));
      return;
    }
    if (this._ackTimer) return;
    const t = /** @type {any} */ (
      setTimeout(() => {
        this._ackTimer = null;
        const ack = conn === this._conn && this.state === 'open' ? this._ackFrame() : null;
        if (ack) conn.send(ack);
      }, ACK_DELAY_MS)
    );
    if (t && typeof t.unref === 'function') t.unref();
    this._ackTimer = t;
  }

  /**
   * The ack frame for what has come since the last one, if anything has (internal; SSE sends it
   * with its next POST /rt/send)
   * @returns {Frame | null}
   */
  _ackFrame() {
    if (this.lastSeq <= this._acked) return null;
    this._acked = this.lastSeq;
    return { type: 'ack', last: this.lastSeq };
  }

  /**
   * @private
   * @param {Frame} f
   */
  _deliver(f) {
    if (typeof f.event !== 'string') return;
    const args = Array.isArray(f.args) ? f.args : [];
    this._fire('event', f.event, args);
    if (typeof f.ack === 'number' || typeof f.ack === 'string') this._serve(f.event, args, f.ack);
    else if (!RESERVED.has(f.event)) this._fire(f.event, ...args);
  }

  /**
   * A server request: an `event` frame with `ack`. The event's listeners get a reply callback as
   * their last argument; the first of: a call of it (reply `args`), a listener's exception or
   * rejected promise (reply `error`), answers, and later ones are ignored. No listener: reply
   * error `no handler for <event>`. ('event' listeners see the request as (event, args) only.)
   * @private
   * @param {string} event
   * @param {unknown[]} args
   * @param {number | string} ack
   */
  _serve(event, args, ack) {
    const epoch = this._epoch;
    let answered = false;
    /** @param {Frame} frame */
    const answer = (frame) => {
      if (answered) return false;
      answered = true;
      // never to a session that replaced the one that asked (the ack would mean nothing there)
      if (epoch !== this._epoch) return false;
      return this._enqueue(frame);
    };
    /** @type {Reply} */
    const reply = (...out) => answer({ type: 'reply', ack, args: out });
    const fail = (/** @type {unknown} */ e) => answer({ type: 'reply', ack, error: errText(e) });
    const listeners = RESERVED.has(event) ? [] : this._listeners(event);
    if (listeners.length === 0) {
      fail(`no handler for ${event}`);
      return;
    }
    for (const fn of listeners) {
      try {
        const r = fn.call(this, ...args, reply);
        if (r && typeof r.then === 'function') r.then(undefined, fail);
      } catch (e) {
        fail(e);
      }
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
      this._fire(
        'error',
        new SwitchyardError(reason.startsWith('SY_') ? reason : 'SY_CLIENT_RESUME_REFUSED', `could not resume session ${this.sid}: ${code} ${reason}`, {
          transport: conn.name,
        }),
      );
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
      this._sessionGone(
        new SwitchyardError('SY_CLIENT_RESUME_REFUSED', `could not resume session ${this.sid}: ${info.reason || ''}`, {
          transport: conn.name,
          status: info.status,
        }),
      );
      this._tryNext(info);
      return;
    }
    if (!conn.opened) {
      const why = info.reason || (info.error ? errText(info.error) : '') || (info.code ? `code ${info.code}` : 'failed');
      // A WebSocket the gateway itself closed with a close code (draining, overloaded) got through:
      // the next transport is tried, but that says nothing against the network path.
      const answered = conn.name === 'websocket' && typeof info.code === 'number' && info.code !== 1005 && info.code !== 1006 && info.code !== 1015;
      if (!answered) {
        this._failed.push(conn.name);
        // a fallback that fails is forgotten, here and for the next clients: the next round starts from the top
        if (conn.name === this._preferred) {
          this._preferred = this.transports[0];
          this._preferredAt = 0;
        }
        if (this._remembered && this._remembered.read()?.transport === conn.name) this._remembered.forget();
      }
      this._fire('error', new SwitchyardError('SY_CLIENT_TRANSPORT', `${conn.name}: ${why}`, { transport: conn.name, status: info.status, cause: info.error }));
      if (/** @type {string} */ (this.state) === 'closed' || this._conn) return; // a listener called close() or reconnect()
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

  // ------------------------------------------------------------------ routes

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
      // fetch sends the token in a header (_headers), out of URLs and access logs; WebSocket and
      // EventSource cannot set headers
      if (kind !== 'poll') p.set('token', this.token);
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
   * @param {AbortSignal} [signal]
   */
  _post(frames, binary, json, signal) {
    const fetch = /** @type {FetchFunction} */ (this._fetch);
    const url = `${this._http}/send?sid=${encodeURIComponent(this.sid || '')}`;
    const body = binary && this._codec ? this._codec.encode(frames) : `[${(json || frames.map((f) => JSON.stringify(f))).join(',')}]`;
    const type = binary && this._codec ? 'application/msgpack' : 'application/json';
    return fetch(url, { method: 'POST', headers: this._headers({ 'content-type': type }), body, signal });
  }

  /**
   * Headers of a request about the current session: `headers` and the session token
   * @param {Record<string, string>} headers
   * @returns {Record<string, string>}
   */
  _headers(headers) {
    if (this.token) headers['x-switchyard-token'] = this.token;
    return headers;
  }
}
