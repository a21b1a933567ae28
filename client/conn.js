// @ts-check
/**
 * What the connection types share. A connection is one attempt to reach `open` over one transport,
 * then the open connection; it is never reused (the client makes a new one for every attempt).
 * It reports to its client: `_connOpen`, `_connFrame`, `_badFrame`, and once, `_connDown`.
 *
 * A subclass implements `_open()` (start the transport; may throw, or return a promise that
 * rejects, to fail the attempt) and `_release(abrupt)` (free the transport's resources), and
 * either `flush()`/`send()` (WebSocket) or extends PostConn, whose frames go by POST /rt/send.
 */
import { errText } from './errors.js';
import { Upstream } from './upstream.js';
/** @import { DownInfo, Frame, TransportName } from './types.js' */
/** @import { ClientSession } from './session.js' */

export const noop = () => {};

export class Conn {
  /**
   * @param {ClientSession} c
   * @param {TransportName} name
   * @param {boolean} heartbeat  the client's watchdog runs from the open on (else once pings show up)
   */
  constructor(c, name, heartbeat) {
    this.c = c;
    /** @type {TransportName} */
    this.name = name;
    /** reached `open` */
    this.opened = false;
    /** torn down: the transport is ignored from now on */
    this.dead = false;
    /** connecting with the previous session's sid/token/last */
    this.resuming = false;
    this.heartbeat = heartbeat;
  }

  /** Start the transport; a failure, even a synchronous one, is reported through `_down`. */
  start() {
    let running;
    try {
      running = this._open();
    } catch (e) {
      queueMicrotask(() => this._down({ reason: errText(e), error: e }));
      return;
    }
    if (running) running.catch((e) => this._down({ reason: errText(e), error: e }));
  }

  /** @protected @returns {void | Promise<void>} */
  _open() {}

  /**
   * A message from the server: parse it and hand the frame to the client.
   * @protected
   * @param {unknown} data
   */
  _receive(data) {
    if (this.dead) return;
    let f;
    try {
      f = this._parse(data);
    } catch (e) {
      this.c._badFrame(this, e);
      return;
    }
    this.c._connFrame(this, f);
  }

  /** A message to a frame (JSON text; WebSocket overrides). @protected @param {unknown} data */
  _parse(data) {
    return JSON.parse(/** @type {string} */ (data));
  }

  /** Write the client's queued frames (`c._outq`). */
  flush() {}

  /** Write one control frame (a pong) now. @param {Frame} f */
  send(f) {}

  /** Write what is queued, then `bye`, and stop. @param {Frame} bye */
  end(bye) {
    this.flush();
    this.send(bye);
    this.stop();
  }

  /** Tear down without reporting (the session stays on the server). */
  stop() {
    this.dead = true;
    this._release(false);
  }

  /** Abrupt drop, reported like a network failure. @param {string} [reason] */
  kill(reason = 'killed') {
    this._down({ code: 1006, reason });
  }

  /**
   * The connect deadline passed before `open`: drop the attempt (reported like kill). The gateway
   * may have opened a session for it that the client never heard of; see WsConn.
   * @param {string} reason
   */
  giveUp(reason) {
    this.kill(reason);
  }

  /**
   * The transport ended or failed: tear down, and tell the client (once).
   * @protected
   * @param {DownInfo} info
   */
  _down(info) {
    if (this.dead) return;
    this.dead = true;
    this._release(true);
    this.c._connDown(this, info);
  }

  /**
   * Free the transport (it may already be gone; called again after a teardown).
   * @protected
   * @param {boolean} abrupt  a failure or kill rather than a clean stop
   */
  _release(abrupt) {}
}

/** A connection whose frames to the server go by POST /rt/send (SSE, long-polling). */
export class PostConn extends Conn {
  /**
   * @param {ClientSession} c
   * @param {TransportName} name
   * @param {boolean} heartbeat
   * @param {boolean} binary  POST msgpack bodies
   */
  constructor(c, name, heartbeat, binary) {
    super(c, name, heartbeat);
    this.binary = binary;
    /** @type {Upstream | null} */
    this.up = null;
  }

  /** @private */
  _up() {
    if (!this.up) this.up = new Upstream(this.c, this, this.binary);
    return this.up;
  }

  /** @override */
  flush() {
    if (this.opened && !this.dead && this.c._outq.length) this._up().schedule();
  }

  /** @override @param {Frame} f */
  send(f) {
    if (this.opened && !this.dead) this._up().control(f);
  }

  /** @override @param {Frame} bye */
  end(bye) {
    this._up().finish(bye);
    this.stop();
  }

  /** @override */
  stop() {
    if (!this.dead) this.up?.orphan();
    super.stop();
  }

  /**
   * A POST in flight outlives its connection for a while (Upstream.orphan); if it fails, its
   * frames are put back and resent, with the same `cseq`, once the client is connected again.
   * @override @protected
   * @param {DownInfo} info
   */
  _down(info) {
    if (!this.dead) this.up?.orphan();
    super._down(info);
  }
}
