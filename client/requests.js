// @ts-check
/** Requests waiting for their reply frame, by `ack` id. */
import { SwitchyardError } from './errors.js';
/** @import { Frame } from './types.js' */

/**
 * @typedef {object} Pending
 * @property {(args: unknown[]) => void} resolve
 * @property {(err: Error) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

export class Requests {
  constructor() {
    /** @private @type {Map<number, Pending>} */ this._map = new Map();
    /** @private */ this._seq = 0;
  }

  /** A new ack id. */
  nextAck() {
    return ++this._seq;
  }

  /**
   * Wait for the reply to `ack`; after `timeoutMs` (0 or Infinity: never) reject with SY_CLIENT_TIMEOUT.
   * @param {number} ack
   * @param {number} timeoutMs
   * @param {string} event  the request's event, for the timeout message
   * @param {(args: unknown[]) => void} resolve
   * @param {(err: Error) => void} reject
   */
  add(ack, timeoutMs, event, resolve, reject) {
    /** @type {Pending} */
    const p = { resolve, reject, timer: undefined };
    if (timeoutMs > 0 && timeoutMs < Infinity) {
      p.timer = setTimeout(() => {
        this._map.delete(ack);
        reject(new SwitchyardError('SY_CLIENT_TIMEOUT', `no reply to '${event}' within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    this._map.set(ack, p);
  }

  /**
   * Settle a request with its reply frame: resolve with `args`, or reject on `error`.
   * @param {Frame} f
   */
  reply(f) {
    const p = this._take(f.ack);
    if (!p) return; // timed out, or not ours
    if (f.error !== undefined && f.error !== null) {
      const msg = typeof f.error === 'string' ? f.error : JSON.stringify(f.error);
      const code = typeof f.code === 'string' ? f.code : /^SY_[A-Z0-9_]+$/.test(msg) ? msg : 'SY_APP_ERROR';
      p.reject(new SwitchyardError(code, msg, { reply: f }));
    } else {
      p.resolve(Array.isArray(f.args) ? f.args : []);
    }
  }

  /**
   * Reject one request, if it is still waiting.
   * @param {number} ack
   * @param {Error} err
   */
  fail(ack, err) {
    this._take(ack)?.reject(err);
  }

  /**
   * Reject every waiting request (but those in `keep`), each with an error of its own.
   * @param {() => Error} error
   * @param {Set<number>} [keep]
   */
  failAll(error, keep) {
    for (const ack of [...this._map.keys()]) {
      if (!keep?.has(ack)) this.fail(ack, error());
    }
  }

  /** Is `ack` still waiting for its reply? @param {number} ack */
  has(ack) {
    return this._map.has(ack);
  }

  get size() {
    return this._map.size;
  }

  /** @private @param {number} ack */
  _take(ack) {
    const p = this._map.get(ack);
    if (!p) return undefined;
    this._map.delete(ack);
    if (p.timer) clearTimeout(p.timer);
    return p;
  }
}
