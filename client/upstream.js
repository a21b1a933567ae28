// @ts-check
/**
 * Upstream for SSE and long-polling: POST /rt/send with batches of frames, one request in flight
 * (per client: a new connection waits for the POST of the one before it, see `c._sending`).
 * Frames emitted in the same tick go in one POST; frames emitted while a POST is in flight go in the
 * next one. A POST that fails puts its frames back, with their `cseq` (session.js `_requeue`).
 */
import { errText, httpError } from './errors.js';
/** @import { Frame } from './types.js' */
/** @import { PostConn } from './conn.js' */
/** @import { ClientSession } from './session.js' */

export class Upstream {
  /**
   * @param {ClientSession} c
   * @param {PostConn} conn
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
    /** aborts the POST in flight @type {AbortController | null} */
    this.ac = null;
    /** see orphan() @type {ReturnType<typeof setTimeout> | null} */
    this.abortTimer = null;
  }

  schedule() {
    if (this.busy || this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      this.pump();
    });
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
    const o = this.c._o;
    const src = this.final || this.c._outq;
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
    // SSE: what has come down the stream is acknowledged with whatever goes up (see session.js, ACK_EVERY)
    if (frames.length > 0 && !this.final && this.conn.name === 'sse') {
      const ack = this.c._ackFrame();
      if (ack !== null) {
        frames.unshift(ack);
        json.unshift(JSON.stringify(ack));
      }
    }
    return { frames, json, user };
  }

  /**
   * The connection is gone. Its POST in flight (unless finishing) gets `connectTimeoutMs` more to
   * settle, since the next connection waits for it; then it is aborted and its frames are put back.
   * (Not at once: it has most likely arrived, and frames put back may go to a new session.)
   */
  orphan() {
    const ac = this.ac;
    if (this.final || !ac || this.abortTimer) return;
    this.abortTimer = setTimeout(() => ac.abort(), this.c._o.connectTimeoutMs);
  }

  /** @private */
  clearAbort() {
    this.ac = null;
    if (this.abortTimer) clearTimeout(this.abortTimer);
    this.abortTimer = null;
  }

  async pump() {
    const c = this.c;
    while (!this.busy) {
      if (!this.final && (this.conn.dead || c._conn !== this.conn)) return;
      const other = c._sending;
      if (other) {
        // A POST of an earlier connection is still out: wait for it, so frames reach the gateway in
        // cseq order (it drops a frame whose cseq is not above the highest it has handled) and its
        // frames, if put back, go first.
        this.busy = true;
        await other;
        this.busy = false;
        continue;
      }
      const { frames, json, user } = this.take();
      if (frames.length === 0) return;
      const epoch = c._epoch;
      this.busy = true;
      /** @type {() => void} */
      let done = () => {};
      const sending = (c._sending = new Promise((resolve) => {
        done = resolve;
      }));
      const ac = typeof AbortController === 'function' ? new AbortController() : null;
      this.ac = ac;
      try {
        let res = null;
        let err = null;
        try {
          res = await c._post(frames, this.binary, this.binary ? undefined : json, ac ? ac.signal : undefined);
        } catch (e) {
          err = e;
        }
        this.clearAbort();
        if (this.final) {
          if (err) return;
          continue;
        }
        if (err || !res) {
          // Not known to have arrived: put the frames back (same cseq) and let the reconnect resend them.
          c._requeue(user, epoch);
          this.conn.kill(`POST /rt/send failed: ${errText(err)}`);
          return;
        }
        if (!res.ok) {
          const e = await httpError(res, this.conn.name);
          const st = res.status;
          if (st === 401 || st === 403 || st === 404 || st === 410 || st === 429 || st >= 500) {
            // Session unknown/expired or server trouble: retry these frames after reconnecting.
            c._requeue(user, epoch);
            c._fire('error', e);
            this.conn.kill(`POST /rt/send: ${st} ${e.code}`);
            return;
          }
          // The frames themselves were refused (malformed, too large, ...): drop them.
          c._fire('error', e);
          for (const f of user) {
            if (f.ack !== undefined && f.type === 'event') c._requests.fail(f.ack, e);
          }
        }
      } finally {
        this.clearAbort();
        this.busy = false;
        if (c._sending === sending) c._sending = null;
        done();
      }
    }
  }
}
