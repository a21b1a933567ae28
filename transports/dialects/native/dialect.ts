/**
 * The native dialect's HTTP wires, and the mount of all its wires: `/rt/ws` (websocket.ts),
 * `GET /rt/sse` (a stream), `GET /rt/poll` (long-polling), and `POST /rt/send` upstream for both.
 * Sessions are addressed by `?sid=` and a signed token (the `X-Switchyard-Token` header, or the
 * query's `token` where a client cannot set headers: browsers' WebSocket and EventSource) and
 * resumed with `last` (a cursor: what the client has seen).
 * @see ../../../docs/protocol.md
 */
import type { Codec, Port } from '../../seam/port.ts';
import type { SessionMeta } from '../../../cluster/types.ts';
import type { HttpResponse } from 'uWebSockets.js';
import { Exchange, readBody, readRequest, wantsClose, type RequestInfo } from '../../wires/http.ts';
import { decodeClientBatch, encodeBatch, nativeCodecs, parseFormat, NATIVE_DIALECT } from './codec.ts';
import { connectQuery, parseLast } from '../../wires/query.ts';
import { StreamConnection, type StreamFramer } from '../../wires/stream.ts';
import { PollConnection, type PollFramer } from '../../wires/poll.ts';
import { mountWebSocket } from './websocket.ts';

const DIALECT = NATIVE_DIALECT;

function metaOf(r: RequestInfo): SessionMeta {
  return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: connectQuery(r.query), auth: r.query.get('auth') ?? r.authorization, dialect: DIALECT };
}

/** The session token a request names: the header first (it stays out of URLs and access logs) */
function tokenOf(r: RequestInfo): string {
  return r.token || (r.query.get('token') ?? '');
}

/** Server-Sent Events: `id: <seq>\ndata: <json>\n\n`; heartbeats are `ping` frames (EventSource hides comments) */
const sseFramer: StreamFramer = {
  headers: {
    'Content-Type': 'text/event-stream; charset=utf-8',
    // nginx and friends buffer responses unless told not to
    'X-Accel-Buffering': 'no',
  },
  prelude: '',
  open: (f) => 'retry: 1000\ndata: ' + (f as string) + '\n\n',
  entry: (seq, f) => 'id: ' + seq + '\ndata: ' + (f as string) + '\n\n',
  control: (f) => 'data: ' + (f as string) + '\n\n',
  rotateBytes: Infinity,
};

/** Long-polling: a JSON (or msgpack) array of frames; a second concurrent poll gets 409 and the first stays */
const pollFramer: PollFramer = {
  contentType: (codec) => (codec.binary ? 'application/msgpack' : 'application/json'),
  batch: (frames, codec) => encodeBatch(codec.binary, frames),
  conflict(held, incoming) {
    if (!held.active) return true;
    incoming.fail('SY_ERR_POLL_CONFLICT');
    return false;
  },
};

export function mountNative(port: Port): void {
  mountWebSocket(port);
  mountSse(port);
  mountPoll(port);
  mountSend(port);
  // a page on another origin sets X-Switchyard-Token (and sends JSON): its browser asks first
  for (const path of ['/rt/poll', '/rt/send'])
    port.app.options(path, (res, req) =>
      preflight(readRequest(res, req, port.options.trustProxy), exchangeFor(port, res, req.getHeader('origin'), wantsClose(req))),
    );
}

function preflight(r: RequestInfo, ex: Exchange): void {
  if (ex.cors === '') return ex.error('SY_ERR_BAD_ORIGIN');
  const extra: Record<string, string> = { 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Max-Age': '600' };
  if (r.requestHeaders) extra['Access-Control-Allow-Headers'] = r.requestHeaders;
  ex.reply(204, null, '', extra);
}

/** An exchange for an HTTP request (CORS, and keep-alive off while draining) */
function exchangeFor(port: Port, res: HttpResponse, origin: string, close: boolean): Exchange {
  const ex = new Exchange(res, port.corsOrigin(origin), close);
  ex.closeAfter = port.closing;
  return ex;
}

function mountSse(port: Port): void {
  port.app.get('/rt/sse', (res, req) => {
    const r = readRequest(res, req, port.options.trustProxy);
    const ex = exchangeFor(port, res, r.origin, r.close);
    const format = r.query.get('format');
    if (format !== null && format !== 'json') return ex.error('SY_ERR_BAD_REQUEST', 'SSE carries JSON frames only');
    const resuming = r.query.has('sid');
    const refused = port.admit(r.origin, !resuming, r.ip, r.bytes);
    if (refused !== null) return ex.error(refused);
    const c = new StreamConnection(port, ex, nativeCodecs.json, sseFramer, 'sse');
    // EventSource's own reconnect sends Last-Event-ID: newer than the URL's `last`
    const last = parseLast(r.lastEventId || r.query.get('last'));
    if (resuming) {
      const t = port.find(r.query.get('sid') ?? '', tokenOf(r), last);
      switch (t.kind) {
        case 'session':
          c.session = t.session;
          port.attach(t.session, c, last, true);
          return;
        case 'remote':
          c.session = port.attachRemote(t, metaOf(r), c, last, false);
          return;
        case 'ended':
          return c.finishEnded(t.ended);
        case 'error':
          if (t.error !== 'SY_ERR_UNKNOWN_SESSION') return ex.error(t.error);
      }
    }
    c.session = port.open('sse', metaOf(r), c, resuming);
  });
}

function mountPoll(port: Port): void {
  const o = port.options;
  port.app.get('/rt/poll', (res, req) => {
    const r = readRequest(res, req, o.trustProxy);
    const ex = exchangeFor(port, res, r.origin, r.close);
    const format = parseFormat(r.query.get('format') ?? undefined);
    if (format === null) return ex.error('SY_ERR_BAD_REQUEST', 'format must be json or msgpack');
    const resuming = r.query.has('sid');
    const refused = port.admit(r.origin, !resuming, r.ip, r.bytes);
    if (refused !== null) return ex.error(refused);
    const codec: Codec = nativeCodecs[format];
    const c = new PollConnection(port, ex, codec, pollFramer);
    if (!resuming) {
      c.session = port.open('polling', metaOf(r), c);
      return;
    }
    const last = parseLast(r.query.get('last'));
    const t = port.find(r.query.get('sid') ?? '', tokenOf(r), last);
    switch (t.kind) {
      case 'ended':
        return c.replyEnded(t.ended);
      case 'error':
        return ex.error(t.error);
      case 'remote':
        // the holder answers (or times out) the poll; our own timer only guards against its silence
        c.session = port.attachRemote(t, metaOf(r), c, last, true);
        c.hold(o.pollTimeoutMs + o.relayTimeoutMs);
        return;
      case 'session': {
        const s = t.session;
        if (s.conn instanceof PollConnection && !pollFramer.conflict(s.conn, c, port)) return;
        c.session = s;
        port.attach(s, c, last, false);
        if (c.session !== null) c.hold(o.pollTimeoutMs);
      }
    }
  });
}

function mountSend(port: Port): void {
  const o = port.options;
  port.app.post('/rt/send', (res, req) => {
    const r = readRequest(res, req, o.trustProxy);
    const ex = exchangeFor(port, res, r.origin, r.close);
    const binary = r.contentType.startsWith('application/msgpack');
    readBody(ex, o.maxPayloadBytes, (body) => {
      // the body is not read: the session lives on (the client may send smaller batches)
      if (body === null) return ex.error('SY_ERR_PAYLOAD_TOO_LARGE', undefined, true);
      const sid = r.query.get('sid') ?? '';
      const token = tokenOf(r);
      const frames = decodeClientBatch(body, binary);
      if (frames === null) {
        // looked up after the body arrived: the session may have ended meanwhile
        const t = port.find(sid, token, 0);
        ex.error(t.kind === 'error' ? t.error : t.kind === 'ended' ? 'SY_ERR_UNKNOWN_SESSION' : 'SY_ERR_MALFORMED_FRAME');
        if (t.kind === 'session') port.fail(t.session, 'SY_ERR_MALFORMED_FRAME');
        return;
      }
      // answered once the holder handled the frames: the client's next POST cannot overtake them
      port.send(sid, token, frames, (error) => (error === null ? ex.reply(204, null) : ex.error(error)));
    });
  });
}
