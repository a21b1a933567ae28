// @ts-check
/** The WebSocket connection: GET /rt/ws, frames both ways on the socket, as JSON or msgpack. */
import { Conn, noop } from './conn.js';
import { errText } from './errors.js';
/** @import { Codec, Frame } from './types.js' */
/** @import { ClientSession } from './session.js' */

/**
 * @param {Codec | null} codec  null: JSON
 * @param {Frame} frame
 * @returns {string | Uint8Array}
 */
function encode(codec, frame) {
  return codec ? codec.encode(frame) : JSON.stringify(frame);
}

/**
 * @param {Codec | null} codec
 * @param {unknown} data  a WebSocket message
 * @returns {unknown}
 */
function decode(codec, data) {
  if (typeof data === 'string') return JSON.parse(data);
  /** @type {Uint8Array | null} */
  let bytes = null;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!bytes) throw new TypeError('unsupported message type');
  if (codec) return codec.decode(bytes);
  return JSON.parse(new TextDecoder().decode(bytes));
}

export class WsConn extends Conn {
  /** @param {ClientSession} c */
  constructor(c) {
    super(c, 'websocket', true);
    /** @type {any} */
    this.ws = null;
    /** @type {unknown} */
    this.error = undefined;
    /** flush() waits for another connection's POST /rt/send */
    this.waiting = false;
    /** given up on after the upgrade: close politely (see giveUp) */
    this.abandoned = false;
  }

  /** @override @protected */
  _open() {
    const ws = new this.c._WebSocket(this.c._url('ws', this.resuming));
    this.ws = ws;
    try {
      ws.binaryType = 'arraybuffer';
    } catch {
      /* read-only in some polyfills */
    }
    ws.onmessage = (/** @type {any} */ ev) => this._receive(ev.data);
    ws.onerror = (/** @type {any} */ ev) => {
      this.error = (ev && (ev.error || ev.message)) || 'websocket error';
    };
    ws.onclose = (/** @type {any} */ ev) => {
      this._down({
        code: ev && typeof ev.code === 'number' ? ev.code : 1006,
        reason: ev?.reason || (this.error ? errText(this.error) : ''),
        error: this.error,
      });
    };
  }

  /** @override @protected @param {unknown} data */
  _parse(data) {
    return decode(this.c._codec, data);
  }

  /** @override */
  flush() {
    const sending = this.c._sending;
    if (sending) {
      // a POST /rt/send of an earlier (SSE or polling) connection is still out: its frames go first
      if (!this.waiting) {
        this.waiting = true;
        sending.then(() => {
          this.waiting = false;
          this.flush();
        });
      }
      return;
    }
    const q = this.c._outq;
    while (q.length && !this.dead && this.ws && this.ws.readyState === 1) {
      this.ws.send(encode(this.c._codec, /** @type {Frame} */ (q.shift())));
    }
  }

  /** @override @param {Frame} f */
  send(f) {
    if (!this.dead && this.ws && this.ws.readyState === 1) this.ws.send(encode(this.c._codec, f));
  }

  /**
   * No `open` frame within the deadline. If the upgrade went through, the gateway has most likely
   * opened a session for this socket (its `open` is slow, or a proxy eats the frames): ask it to end
   * that session (`{"type":"close"}`, then a close handshake), so that it does not wait out its
   * resume window should the frame get through. The socket is cut a second later regardless.
   * Not when resuming: the session behind the socket is then the client's own, which the next
   * transport resumes.
   * @override
   * @param {string} reason
   */
  giveUp(reason) {
    const ws = this.ws;
    if (ws && ws.readyState === 1 && !this.opened && !this.dead && !this.resuming) {
      try {
        ws.send(encode(this.c._codec, { type: 'close' }));
        this.abandoned = true;
      } catch {
        /* closing already */
      }
    }
    this.kill(reason);
  }

  /**
   * A clean stop closes with 1000 (the session stays on the server); a failure terminates.
   * @override @protected
   * @param {boolean} abrupt
   */
  _release(abrupt) {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = noop;
    try {
      if (!abrupt || this.abandoned) {
        ws.close(1000, 'client');
        if (this.abandoned && typeof ws.terminate === 'function') {
          const t = /** @type {any} */ (
            setTimeout(() => {
              try {
                ws.terminate();
              } catch {
                /* gone */
              }
            }, 1000)
          );
          if (t && typeof t.unref === 'function') t.unref();
        }
      } else if (typeof ws.terminate === 'function') ws.terminate();
      else if (ws.readyState < 2) ws.close();
    } catch {
      /* already closed */
    }
  }
}
