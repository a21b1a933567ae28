/**
 * The native dialect's WebSocket route: `GET /rt/ws`. One frame per WebSocket message, encoded by
 * the connection's codec (native JSON or msgpack). One connection carries one session.
 * @see ../../../docs/protocol.md
 */
import type { SessionMeta } from '../../../cluster/types.ts';
import { warnOnce } from '../../../lib/log.ts';
import type { ErrorCode } from '../../seam/errors.ts';
import type { Codec, Port } from '../../seam/port.ts';
import { traffic } from '../../seam/traffic.ts';
import { clientIp, requestBytes, upgrade } from '../../wires/http.ts';
import { connectQuery, parseLast } from '../../wires/query.ts';
import { mountSocket, WsConnection } from '../../wires/websocket.ts';
import { decodeClientFrame, NATIVE_DIALECT, nativeCodecs, parseFormat } from './codec.ts';

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

/** reasons uWS gives when it force-closes a socket for what the client sent */
const UWS_FAULTS: Record<string, ErrorCode> = {
  'Received too big message': 'SY_ERR_PAYLOAD_TOO_LARGE',
  'Received invalid UTF-8': 'SY_ERR_MALFORMED_FRAME',
};

export function mountWebSocket(port: Port): void {
  const o = port.options;
  // uWS cuts a larger message abruptly (no close frame); up to the slack we read it and answer
  // over-large ones ourselves with a proper 1009
  mountSocket<WsData>(
    port,
    '/rt/ws',
    { maxPayloadBytes: o.maxPayloadBytes, slack: Math.max(16 * 1024, o.maxPayloadBytes), silentMs: o.pingMs, pings: true },
    {
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
    },
  );
}
