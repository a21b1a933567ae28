// @ts-check
/** SwitchyardClient: the public methods. The connection machinery is in session.js. */
import { SwitchyardError } from './errors.js';
import { configure } from './options.js';
import { ClientSession } from './session.js';
/** @import { ClientOptions, CloseInfo, OpenInfo } from './types.js' */

/** @param {unknown} event */
function checkEvent(event) {
  if (typeof event !== 'string' || event.length === 0 || event.length > 256) {
    throw new TypeError('event must be a non-empty string of at most 256 characters');
  }
}

export class SwitchyardClient extends ClientSession {
  /**
   * @param {string | URL | ClientOptions} [url]  gateway base URL: http(s):// or ws(s)://, optionally with a path prefix and query
   * @param {ClientOptions} [options]
   */
  constructor(url, options) {
    super(configure(url, options));
  }

  /** True while a connection is open. */
  get connected() {
    return this.state === 'open';
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
      const offOpen = this.once('open', (info) => {
        offClose();
        resolve(info);
      });
      const offClose = this.once('close', (/** @type {CloseInfo} */ info) => {
        offOpen();
        reject(new SwitchyardError('SY_CLIENT_CLOSED', `closed before open: ${info.code} ${info.reason}`));
      });
    });
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
    // _enqueue (session.js) adds the frame's `cseq`
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
    const ack = this._requests.nextAck();
    return new Promise((resolve, reject) => {
      if (!this._enqueue({ type: 'event', event, args, ack })) {
        reject(new SwitchyardError('SY_CLIENT_QUEUE_FULL', `outbound queue is full (${this._o.maxQueue} frames)`));
        return;
      }
      this._requests.add(ack, timeoutMs, event, resolve, reject);
    });
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
    if (conn?.opened && !conn.dead) {
      conn.end(bye);
    } else if (this._resumable && this.sid && this.token && this._fetch) {
      // Not connected right now: end the server-side session anyway, best effort.
      this._post([bye], false).catch(() => {});
    }
    this._resumable = false;
    if (this.state === 'idle') {
      this.state = 'closed';
      return this;
    }
    this._finalClose(1000, 'client closed');
    return this;
  }
}
