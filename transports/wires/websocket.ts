/**
 * Native WebSocket wire: `GET /rt/ws`. One frame per WebSocket message, encoded by the
 * connection's codec (native JSON or msgpack). One connection carries one session.
 * @see ../docs/protocol.md
 */
import type { WebSocket } from 'uWebSockets.js';
import { endedFrames, type Carrier, type Codec, type Connection, type Ended, type OpenInfo, type Port, type PortSession } from './port.ts';
import type { SessionMeta } from '../cluster/types.ts';
import { clientIp, requestBytes, upgrade } from './http.ts';
import { errors, type ErrorCode } from './errors.ts';
import { decodeClientFrame, NATIVE_DIALECT, nativeCodecs, parseFormat } from './native-codec.ts';
import { connectQuery, parseLast } from './query.ts';
import { warnOnce } from '../lib/log.ts';
import { sizeOf, traffic } from './traffic.ts';

/** How long a close waits for a full send buffer to drain before the socket is cut (every dialect's WebSocket) */
export const CLOSE_GRACE_MS = 5000;

/** What the upgrade learned, kept until `open` */
interface Boot {
  /** see requestBytes */
  bytes: number;
  sid: string;
  token: string;
  last: number;
  codec: Codec;
  meta: SessionMeta;
  error: ErrorCode | null;
}

interface WsData {
  c: WsConnection | null;
  boot: Boot | null;
}

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
    readonly ws: WebSocket<WsData>,
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

/** reasons uWS gives when it force-closes a socket for what the client sent */
const UWS_FAULTS: Record<string, ErrorCode> = {
  'Received too big message': 'SY_ERR_PAYLOAD_TOO_LARGE',
  'Received invalid UTF-8': 'SY_ERR_MALFORMED_FRAME',
};

export function mountWebSocket(port: Port): void {
  const o = port.options;
  port.app.ws<WsData>('/rt/ws', {
    // uWS cuts a larger message abruptly (no close frame); up to this cap we read it and answer
    // over-large ones ourselves with a proper 1009
    maxPayloadLength: o.maxPayloadBytes + Math.max(16 * 1024, o.maxPayloadBytes),
    maxBackpressure: o.wsHighWaterBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: Math.min(960, Math.max(8, Math.ceil((o.pingMs * 2) / 1000))),
    sendPingsAutomatically: true,

    upgrade(res, req, context) {
      // copy everything now: req is gone once this handler returns
      const q = new URLSearchParams(req.getQuery() ?? '');
      const sid = q.get('sid') ?? '';
      const origin = req.getHeader('origin');
      const format = parseFormat(q.get('format') ?? undefined);
      const ip = clientIp(res, req, o.trustProxy);
      const bytes = requestBytes(req);
      const boot: Boot = {
        bytes,
        sid,
        // browsers cannot set headers on a WebSocket: the query's token then
        token: req.getHeader('x-switchyard-token') || (q.get('token') ?? ''),
        last: parseLast(q.get('last')),
        codec: nativeCodecs[format ?? 'json'],
        meta: {
          ip,
          origin,
          userAgent: req.getHeader('user-agent'),
          query: connectQuery(q),
          auth: q.get('auth') ?? req.getHeader('authorization'),
          dialect: NATIVE_DIALECT,
        },
        error: format === null ? 'SY_ERR_BAD_REQUEST' : port.admit(origin, sid === '', ip, bytes),
      };
      upgrade<WsData>(res, req, context, { c: null, boot });
    },

    open(ws) {
      const d = ws.getUserData();
      const boot = d.boot!;
      d.boot = null;
      const c = new WsConnection(ws, boot.codec);
      d.c = c;
      if (boot.error !== null) return c.refuse(boot.error);
      let resumeFailed = false;
      if (boot.sid !== '') {
        const t = port.find(boot.sid, boot.token, boot.last);
        switch (t.kind) {
          case 'session':
            c.session = t.session;
            port.attach(t.session, c, boot.last, true);
            return;
          case 'remote':
            c.session = port.attachRemote(t, boot.meta, c, boot.last, false);
            return;
          case 'ended':
            return c.finish(t.ended);
          case 'error':
            if (t.error === 'SY_ERR_BAD_TOKEN') return c.refuse(t.error);
        }
        const admitted = port.admit(boot.meta.origin, true, boot.meta.ip, boot.bytes);
        if (admitted !== null) return c.refuse(admitted);
        resumeFailed = true;
      }
      c.session = port.open('websocket', boot.meta, c, resumeFailed);
    },

    message(ws, message, isBinary) {
      const c = ws.getUserData().c;
      const s = c?.session;
      if (!s) return;
      traffic.in += message.byteLength;
      if (message.byteLength > o.maxPayloadBytes) return port.fail(s, 'SY_ERR_PAYLOAD_TOO_LARGE');
      const f = decodeClientFrame(message, isBinary);
      if (f === null) return port.fail(s, 'SY_ERR_MALFORMED_FRAME');
      try {
        port.deliver(s, f);
      } catch (err) {
        // a bug of ours must cost this session, never the node
        warnOnce('error handling a frame', err);
        port.fail(s, 'SY_ERR_INTERNAL');
      }
    },

    drain(ws) {
      ws.getUserData().c?.drained();
    },

    close(ws, code, message) {
      const c = ws.getUserData().c;
      if (c === null) return;
      c.closed = true;
      const s = c.session;
      if (s === null) return;
      c.session = null;
      // uWS itself cut the connection for the client's fault (no close frame reaches the
      // client, but the session ends and a resume learns why): not a transport blip
      const fault = code === 1006 ? UWS_FAULTS[Buffer.from(message).toString()] : undefined;
      if (fault !== undefined) port.fail(s, fault);
      else port.detach(s, c);
    },
  });
}
