/**
 * Native WebSocket transport: `GET /rt/ws`. One protocol frame per WebSocket message.
 * @see ../docs/protocol.md
 */
import type { Gateway } from '../gateway/gateway.ts';
import type { Connection, Session } from '../gateway/session.ts';
import type { WebSocket } from '../gateway/uws.ts';
import { clientIp } from '../gateway/http.ts';
import { errors, type ErrorCode } from '../gateway/errors.ts';
import type { SessionMeta } from '../cluster/types.ts';
import { decodeClientFrame, encodeClose, parseFormat, PING_JSON, PING_MSGPACK, type Format, type Frame } from './frames.ts';
import { connectQuery, parseLast } from './query.ts';

/** What the upgrade learned, kept until `open` */
interface Boot {
  sid: string;
  token: string;
  last: number;
  format: Format;
  meta: SessionMeta;
  error: ErrorCode | null;
}

interface WsData {
  c: WsConnection | null;
  boot: Boot | null;
}

class WsConnection implements Connection {
  readonly transport = 'websocket' as const;
  session: Session | null = null;
  /** uWS's send buffer is at its limit: wait for `drain` */
  blocked = false;
  closed = false;

  constructor(readonly ws: WebSocket<WsData>) {}

  sendOpen(_s: Session, open: Frame): void {
    if (!this.closed) this.ws.send(open, typeof open !== 'string');
  }

  flush(s: Session): void {
    if (this.blocked || this.closed || s.sent >= s.outbox.last) return;
    // one frame: no cork (inside a uWS callback we are corked already; outside, one write either way)
    if (s.sent + 1 === s.outbox.last) this.write(s);
    else this.ws.cork(() => this.write(s));
  }

  private write(s: Session): void {
    const box = s.outbox;
    const ws = this.ws;
    while (s.sent < box.last) {
      const f = box.get(s.sent + 1)!;
      // 2 = dropped (buffer over maxBackpressure): keep it in the outbox, resend on drain
      if (ws.send(f, typeof f !== 'string') === 2) {
        this.blocked = true;
        return;
      }
      s.sent++;
    }
  }

  ping(s: Session): void {
    if (!this.closed) this.ws.send(s.format === 'json' ? PING_JSON : PING_MSGPACK, s.format !== 'json');
  }

  end(_s: Session, close: Frame, code: number, reason: string): void {
    this.session = null;
    if (this.closed) return;
    this.closed = true;
    this.ws.cork(() => {
      this.ws.send(close, typeof close !== 'string');
      this.ws.end(code, reason);
    });
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

  /** Ends a connection that never got a session */
  refuse(code: ErrorCode, format: Format): void {
    this.finish([encodeClose(format, errors[code].ws, code)], errors[code].ws, code);
  }

  /** Sends the last frames of a connection without a live session, then closes */
  finish(frames: Frame[], code: number, reason: string): void {
    this.closed = true;
    this.ws.cork(() => {
      for (const f of frames) this.ws.send(f, typeof f !== 'string');
      this.ws.end(code, reason);
    });
  }
}

/** reasons uWS gives when it force-closes a socket for what the client sent */
const UWS_FAULTS: Record<string, ErrorCode> = {
  'Received too big message': 'SY_ERR_PAYLOAD_TOO_LARGE',
  'Received invalid UTF-8': 'SY_ERR_MALFORMED_FRAME',
};

export function mountWebSocket(gw: Gateway): void {
  const o = gw.options;
  gw.app.ws<WsData>('/rt/ws', {
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
      const boot: Boot = {
        sid,
        token: q.get('token') ?? '',
        last: parseLast(q.get('last')),
        format: format ?? 'json',
        meta: {
          ip: clientIp(res, req, o.trustProxy),
          origin,
          userAgent: req.getHeader('user-agent'),
          query: connectQuery(q),
          auth: q.get('auth') ?? req.getHeader('authorization'),
        },
        error: format === null ? 'SY_ERR_BAD_REQUEST' : gw.admit(origin, sid === ''),
      };
      res.upgrade<WsData>(
        { c: null, boot },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },

    open(ws) {
      const d = ws.getUserData();
      const boot = d.boot!;
      d.boot = null;
      const c = new WsConnection(ws);
      d.c = c;
      if (boot.error !== null) return c.refuse(boot.error, boot.format);
      let resumeFailed = false;
      if (boot.sid !== '') {
        const found = gw.lookup(boot.sid, boot.token);
        if ('session' in found) {
          c.session = found.session;
          gw.attach(found.session, c, boot.last, true);
          return;
        }
        if ('home' in found) {
          c.session = gw.relay.open(boot.sid, boot.token, found.home, boot.format, boot.meta, 'websocket', c, boot.last, false);
          return;
        }
        if (found.error === 'SY_ERR_BAD_TOKEN') return c.refuse(found.error, boot.format);
        const ended = gw.endedSession(boot.sid, boot.last);
        if (ended !== null) return c.finish([...ended.frames, ended.close], ended.code, ended.reason);
        const admitted = gw.admit(boot.meta.origin, true);
        if (admitted !== null) return c.refuse(admitted, boot.format);
        resumeFailed = true;
      }
      c.session = gw.openSession('websocket', boot.format, boot.meta, c, resumeFailed);
    },

    message(ws, message, isBinary) {
      const c = ws.getUserData().c;
      const s = c?.session;
      if (!s) return;
      if (message.byteLength > o.maxPayloadBytes) {
        gw.closeSession(s, errors.SY_ERR_PAYLOAD_TOO_LARGE.ws, 'SY_ERR_PAYLOAD_TOO_LARGE', true);
        return;
      }
      const f = decodeClientFrame(message, isBinary);
      if (f === null) {
        gw.closeSession(s, errors.SY_ERR_MALFORMED_FRAME.ws, 'SY_ERR_MALFORMED_FRAME', true);
        return;
      }
      try {
        gw.handleFrame(s, f);
      } catch (err) {
        // a bug of ours must cost this session, never the node
        console.error('[switchyard] error handling a frame:', err);
        gw.closeSession(s, errors.SY_ERR_INTERNAL.ws, 'SY_ERR_INTERNAL', true);
      }
    },

    drain(ws) {
      const c = ws.getUserData().c;
      if (c === null || c.session === null) return;
      c.blocked = false;
      c.flush(c.session);
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
      if (fault !== undefined) gw.closeSession(s, errors[fault].ws, fault, true);
      else gw.detach(s, c);
    },
  });
}
