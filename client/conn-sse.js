// @ts-check
/**
 * The SSE connection: frames from the server on GET /rt/sse (always JSON), to the server by
 * POST /rt/send.
 */
import { noop, PostConn } from './conn.js';
import { isRefusal } from './errors.js';
/** @import { ClientSession } from './session.js' */

export class SseConn extends PostConn {
  /** @param {ClientSession} c */
  constructor(c) {
    // SSE heartbeats are comments, invisible to EventSource: watch liveness only once ping frames show up
    super(c, 'sse', false, false);
    /** @type {any} */
    this.es = null;
  }

  /** @override @protected */
  _open() {
    const es = new this.c._EventSource(this.c._url('sse', this.resuming));
    this.es = es;
    es.onmessage = (/** @type {any} */ ev) => this._receive(ev.data);
    // EventSource would reconnect to its original URL on its own; the client reconnects instead,
    // with the current sid/token/last.
    es.onerror = (/** @type {any} */ ev) => {
      // (the `eventsource` package reports the HTTP status as `code`; browsers report nothing)
      const status = ev && typeof ev.code === 'number' ? ev.code : undefined;
      const sessionGone = !this.opened && this.resuming && status !== undefined && isRefusal(status);
      this._down({ status, sessionGone, reason: ev?.message || (status ? `HTTP ${status}` : 'event stream failed') });
    };
  }

  /** @override @protected */
  _release() {
    const es = this.es;
    this.es = null;
    if (!es) return;
    es.onmessage = es.onerror = noop;
    try {
      es.close();
    } catch {
      /* ignore */
    }
  }
}
