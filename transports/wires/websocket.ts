/**
 * The WebSocket wire: one session on one socket, one frame per WebSocket message, encoded by the
 * connection's codec (the native dialect's JSON or msgpack, SockJS's frames, …). The routes that
 * make such sockets live with their dialects (the native `/rt/ws`: dialects/native/websocket.ts).
 */
import type { WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { endedFrames, type Carrier, type Codec, type Connection, type Ended, type OpenInfo, type Port, type PortSession } from '../seam/port.ts';
import { errors, type ErrorCode } from '../seam/errors.ts';
import { sizeOf, traffic } from '../seam/traffic.ts';

/** How long a close waits for a full send buffer to drain before the socket is cut (every dialect's WebSocket) */
export const CLOSE_GRACE_MS = 5000;

/** One WebSocket: its own carrier, carrying one session (a dialect whose socket is its session uses it with its own codec) */
export class WsConnection implements Connection, Carrier {
  // getters, not fields: an idle connection costs every field it has
  get transport(): 'websocket' {
    return 'websocket';
  }
  /** its own carrier */
  get carrier(): this {
    return this;
  }
  session: PortSession | null = null;
  pingRound = 0;
  /** uWS's send buffer is at its limit: wait for `drain` */
  blocked = false;
  /** uWS closed the socket: it must not be touched any more */
  closed = false;
  /** a close waiting for the send buffer to drain (so that the client sees it) */
  private closing: { frame: string | Uint8Array; code: number; reason: string } | null = null;

  constructor(
    readonly ws: WebSocket<unknown>,
    readonly codec: Codec,
  ) {}

  sendOpen(_s: PortSession, info: OpenInfo): void {
    const f = this.codec.open(info);
    // (a codec with no such frame gives '': nothing is sent)
    if (this.closing === null && !this.closed && f !== '') {
      traffic.out += sizeOf(f);
      this.ws.send(f, this.codec.binary);
    }
  }

  flush(s: PortSession): void {
    if (this.blocked || this.closed || this.closing !== null || s.sent >= s.outbox.last) return;
    // one frame: no cork (inside a uWS callback we are corked already; outside, one write either way)
    if (s.sent + 1 === s.outbox.last) this.write(s);
    else this.ws.cork(() => this.write(s));
  }

  private write(s: PortSession): void {
    const box = s.outbox;
    const ws = this.ws;
    const codec = this.codec;
    while (s.sent < box.last) {
      const seq = s.sent + 1;
      // 2 = dropped (buffer over maxBackpressure): keep it in the outbox, resend on drain
      const f = codec.encode(seq, box.get(seq)!);
      traffic.out += sizeOf(f);
      if (ws.send(f, codec.binary) === 2) {
        this.blocked = true;
        return;
      }
      s.sent = seq;
    }
  }

  ping(): void {
    const f = this.codec.ping();
    if (!this.closed && this.closing === null && f !== '') {
      traffic.out += sizeOf(f);
      this.ws.send(f, this.codec.binary);
    }
  }

  end(_s: PortSession, code: number, reason: string): void {
    this.session = null;
    if (this.closed || this.closing !== null) return;
    const frame = this.codec.close(code, reason);
    if (!this.blocked) return this.finishNow([frame], code, reason);
    // the send buffer is full (a slow reader): sent now, the close would be dropped and the
    // client would see 1006. It goes once the buffer drains; a reader that never drains is cut.
    this.closing = { frame, code, reason };
    setTimeout(() => {
      if (!this.closed) this.ws.close();
    }, CLOSE_GRACE_MS).unref();
  }

  /** uWS's send buffer drained */
  drained(): void {
    this.blocked = false;
    const c = this.closing;
    if (c !== null) {
      this.closing = null;
      return this.finishNow([c.frame], c.code, c.reason);
    }
    if (this.session !== null) this.flush(this.session);
  }

  drop(): void {
    this.session = null;
    if (this.closed) return;
    this.closed = true;
    this.ws.end(1000, 'replaced by a newer connection');
  }

  fail(): void {
    this.drop();
  }

  restart(): void {
    // no native close frame: to the client this is a connection drop, and it resumes elsewhere
    if (!this.closed) this.ws.end(errors.SY_ERR_SHUTTING_DOWN.ws, 'SY_ERR_SHUTTING_DOWN');
  }

  /** Ends a connection that never got a session, with a dialect's own close */
  refuseWith(code: number, reason: string, wsCode = code): void {
    this.finishNow([this.codec.close(code, reason)], wsCode, reason);
  }

  /** Ends a connection that never got a session */
  refuse(code: ErrorCode): void {
    this.finishNow([this.codec.close(errors[code].ws, code)], errors[code].ws, code);
  }

  /** Sends what is left of a session that ended (unread entries, then the close), and closes */
  finish(ended: Ended): void {
    this.finishNow(endedFrames(this.codec, ended), ended.code, ended.reason);
  }

  private finishNow(frames: Array<string | Uint8Array>, code: number, reason: string): void {
    this.closed = true;
    this.ws.cork(() => {
      for (const f of frames) {
        if (f === '') continue;
        traffic.out += sizeOf(f);
        this.ws.send(f, this.codec.binary);
      }
      this.ws.end(code, reason);
    });
  }
}

/**
 * Mounts a WebSocket route with what every dialect's sockets share: messages up to
 * `maxPayloadBytes` plus `slack` (a larger one, up to there, is read and refused by the dialect
 * with a proper close instead of being cut by uWS), the node's send-buffer limit (past it a send
 * is dropped, not the socket: the wire decides), and an idle timeout of twice `silentMs`, the
 * longest a live client of the dialect stays silent (uWS counts it in seconds, 8 to 960).
 */
export function mountSocket<T>(
  port: Port,
  path: string,
  o: { maxPayloadBytes: number; slack?: number; silentMs: number; pings: boolean },
  behavior: Pick<WebSocketBehavior<T>, 'upgrade' | 'open' | 'message' | 'drain' | 'close'>,
): void {
  port.app.ws<T>(path, {
    maxPayloadLength: o.maxPayloadBytes + (o.slack ?? 1024),
    maxBackpressure: port.options.wsHighWaterBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: Math.min(960, Math.max(8, Math.ceil((2 * o.silentMs) / 1000))),
    sendPingsAutomatically: o.pings,
    ...behavior,
  });
}
