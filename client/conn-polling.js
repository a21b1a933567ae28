// @ts-check
/** The long-polling connection: frames from the server on GET /rt/poll, to the server by POST /rt/send. */
import { PostConn } from './conn.js';
import { errText, httpError, isRefusal } from './errors.js';
/** @import { FetchFunction } from './types.js' */
/** @import { ClientSession } from './session.js' */

export class PollConn extends PostConn {
  /** @param {ClientSession} c */
  constructor(c) {
    // liveness comes from the poll loop itself (each request has a deadline)
    super(c, 'polling', false, !!c._codec);
    /** @type {AbortController | null} */
    this.ac = null;
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
      const fetch = /** @type {FetchFunction} */ (this.c._fetch);
      const res = await fetch(url, { ...init, signal: ac.signal });
      /** @type {unknown} */
      let body;
      if (res.ok && res.status !== 204) {
        const type = String(res.headers.get('content-type') || '');
        const codec = this.c._codec;
        if (type.includes('msgpack') && codec) body = codec.decode(new Uint8Array(await res.arrayBuffer()));
        else {
          const text = await res.text();
          body = text ? JSON.parse(text) : [];
        }
      }
      return { res, body };
    } finally {
      clearTimeout(t);
      if (this.ac === ac) this.ac = null;
    }
  }

  /** The session answered a resume without a new `open` frame: it is the same, alive session. @private */
  _resumed() {
    const c = this.c;
    c._connOpen(this, { type: 'open', sid: c.sid, token: c.token, pingMs: c.pingMs, recovered: true });
  }

  /** The poll loop. @override @protected */
  async _open() {
    const c = this.c;
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
        this._resumed();
      } else {
        const err = await httpError(res, this.name);
        if (this.dead) return;
        if (res.status === 404) {
          // Unknown or just ended: one poll tells which. An ended session answers at once with its
          // unread frames and `close`; an unknown one with 404 (handled in the loop).
        } else if (isRefusal(res.status)) {
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
        r = await this.fetchWithin(url, { method: 'GET', headers: session ? c._headers({ accept }) : { accept } }, c._o.pollTimeoutMs + 10000);
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
        if (session && res.status !== 409 && isRefusal(res.status)) {
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
      // a resume poll answered with frames but no `close`: the session is alive after all
      if (!this.opened) this._resumed();
      session = true;
    }
  }

  /** @override @protected */
  _release() {
    const ac = this.ac;
    this.ac = null;
    if (ac)
      try {
        ac.abort();
      } catch {
        /* ignore */
      }
  }
}
