/**
 * The SockJS dialect (protocol 0.3, for `sockjs-client` 1.x): the greeting, `/info`, `iframe.html`,
 * and the `websocket`, `xhr`, `xhr_send`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`,
 * `jsonp_send` and raw `websocket` transports, with sockjs-protocol 0.3.3's headers and bytes.
 *
 * - A SockJS message carries one native client frame as its JSON text; a message that is not one
 *   reaches the app as event `message` with the text as its one arg. What the app emits goes out as
 *   native frames' JSON text, one SockJS message each.
 * - The session id is the client's (`/<prefix>/<server>/<session>/<transport>`): the session is
 *   named by the key `sj:<session>`, looked up in the whole cluster before one is made (or it would
 *   fork). The id is the client's credential, so the session's sid is made from it by the port
 *   (Port.open) and reveals nothing of it. A WebSocket is a session of its own (the session is the
 *   connection; its URL's id may be reused).
 * @see ../../../docs/sockjs.md
 */
import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { ClientFrame, Frame, Port, Target } from '../../seam/port.ts';
import { escaped, isMessage, messages, OPEN, rawCodec, socketCodec } from './codec.ts';
import type { SessionMeta, TransportName } from '../../../cluster/types.ts';
import { Exchange, clientIp, readBody, readRequest, requestBytes, upgrade, wantsClose } from '../../wires/http.ts';
import { validateClientFrame } from '../../seam/client-frame.ts';
import { StreamConnection, type StreamFramer } from '../../wires/stream.ts';
import { PollConnection, type PollFramer } from '../../wires/poll.ts';
import { mountSocket, WsConnection } from '../../wires/websocket.ts';
import { warnOnce } from '../../../lib/log.ts';
import { connectQuery } from '../../wires/query.ts';
import type { ErrorCode } from '../../seam/errors.ts';
import { traffic } from '../../seam/traffic.ts';
import type { SockJsOptions } from './options.ts';

const DIALECT = 'sockjs';
/** the prefix of a SockJS session's key (Port.lookup): no other dialect's key can be the same */
const KEY_PREFIX = 'sj:';
/** what a session id or server id may be (SockJS: non-empty, no dots) */
const PART = /^[^./]{1,64}$/;
/** how long a send waits for the node holding its session to say so (a receive waits `lookupMs`, then claims) */
const SEND_LOOKUP_MS = 1000;
/** what the reference server answers for a URL or session it does not know */
const NOT_FOUND = '404 Error: Page not found\n';
/** what SockJS answers that must not be cached carry (sockjs-protocol 0.3.3's exact value; iOS 6 caches POSTs) */
const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0';
/** a year: iframe pages and CORS preflights are cached that long */
const YEAR_S = 31_536_000;
/** a cookie value we echo back (RFC 6265 cookie-octets), else `dummy` */
const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,256}$/;

/** the headers of a strongly cacheable answer */
function cacheFor(): Record<string, string> {
  return { 'Cache-Control': `public, max-age=${YEAR_S}`, Expires: new Date(Date.now() + YEAR_S * 1000).toUTCString() };
}

/**
 * An exchange with SockJS's own headers on every answer: its no-cache rule (unless the answer says
 * its own Cache-Control), the client's Access-Control-Request-Headers echoed, the JSESSIONID
 * cookie when configured; a stream's prelude goes in its own chunk (as the protocol's tests read it)
 */
class SockJsExchange extends Exchange {
  constructor(
    res: HttpResponse,
    cors: string,
    private readonly headers: Record<string, string>,
    private readonly prelude = 0,
    closeRequested = false,
  ) {
    super(res, cors, closeRequested);
  }

  override reply(status: number, contentType: string | null, body: string | Uint8Array = '', extra?: Record<string, string>, closeConnection = false): void {
    super.reply(status, contentType, body, { 'Cache-Control': NO_CACHE, ...this.headers, ...extra }, closeConnection);
  }

  override begin(status: number, headers: Record<string, string>, first: string): void {
    if (!this.open) return;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(status === 200 ? '200 OK' : String(status));
      const all: Record<string, string> = { 'Cache-Control': NO_CACHE, ...this.headers, ...headers };
      if (this.closeRequested) all.Connection = 'close';
      if (this.cors) Object.assign(all, { 'Access-Control-Allow-Origin': this.cors, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' });
      for (const k in all) res.writeHeader(k, all[k]!);
      const n = this.prelude;
      if (n > 0 && first.length > n) {
        res.write(first.slice(0, n));
        res.write(first.slice(n));
      } else res.write(first);
    });
  }
}

/** xhr polling: one answer, its messages in one `a[…]` frame, each frame on its own line */
const xhrFramer: PollFramer = {
  contentType: () => 'application/javascript; charset=UTF-8',
  batch(frames) {
    let out = '';
    let run: string[] = [];
    const end = () => {
      if (run.length > 0) out += 'a[' + run.join(',') + ']\n';
      run = [];
    };
    for (const f of frames) {
      if (isMessage(f)) run.push(f as string);
      else {
        end();
        out += (f as string) + '\n';
      }
    }
    end();
    // nothing to say: a heartbeat (the poll timed out)
    return out === '' ? 'h\n' : out;
  },
  conflict(held, incoming) {
    // the first receiver stays; the second is told
    if (!held.active) return true;
    incoming.reply([messages.close(2010, 'Another connection still open')]);
    return false;
  },
  // the same when the session's node refuses a relayed second receiver
  refused: secondReceiver,
};

/** A second receiver (poll or stream), refused by the session's node: `c[2010,"Another connection still open"]` */
function secondReceiver(code: ErrorCode): Frame[] | null {
  return code === 'SY_ERR_POLL_CONFLICT' ? [messages.close(2010, 'Another connection still open')] : null;
}

/** Streams rotate after this many bytes (the client reconnects: proxies buffer nothing forever) */
const STREAM_BYTES = 128 * 1024;

const xhrStreamingFramer: StreamFramer = {
  headers: { 'Content-Type': 'application/javascript; charset=UTF-8' },
  // 2 KiB of h: some browsers show nothing of a response before that much arrived
  prelude: 'h'.repeat(2048) + '\n',
  open: () => 'o\n',
  entry: (_seq, f) => 'a[' + (f as string) + ']\n',
  control: (f) => (f as string) + '\n',
  rotateBytes: STREAM_BYTES,
  refused: secondReceiver,
};

const eventSourceFramer: StreamFramer = {
  headers: { 'Content-Type': 'text/event-stream; charset=UTF-8', 'X-Accel-Buffering': 'no' },
  prelude: '\r\n',
  open: () => 'data: o\r\n\r\n',
  entry: (_seq, f) => 'data: a[' + (f as string) + ']\r\n\r\n',
  control: (f) => 'data: ' + (f as string) + '\r\n\r\n',
  rotateBytes: STREAM_BYTES,
  refused: secondReceiver,
};

export function mountSockJs(port: Port, o: SockJsOptions): void {
  new SockJs(port, o);
}

class SockJs {
  constructor(
    private readonly port: Port,
    private readonly o: SockJsOptions,
  ) {
    const app = port.app;
    const p = o.prefix;
    const greeting = (res: HttpResponse, req: HttpRequest) => this.exchange(res, req).reply(200, 'text/plain; charset=UTF-8', 'Welcome to SockJS!\n');
    app.get(p, greeting);
    app.get(p + '/', greeting);
    app.get(`${p}/info`, (res, req) => {
      const ex = this.exchange(res, req);
      ex.reply(
        200,
        'application/json; charset=UTF-8',
        JSON.stringify({ websocket: true, cookie_needed: o.jsessionid, origins: ['*:*'], entropy: randomInt(2 ** 31) }),
      );
    });
    app.options(`${p}/info`, (res, req) => this.preflight(res, req, 'OPTIONS, GET'));
    for (const t of ['xhr', 'xhr_send', 'xhr_streaming']) app.options(`${p}/:server/:session/${t}`, (res, req) => this.preflight(res, req, 'OPTIONS, POST'));
    app.post(`${p}/:server/:session/xhr`, (res, req) => this.receive(res, req, 'polling'));
    app.post(`${p}/:server/:session/xhr_streaming`, (res, req) => this.receive(res, req, 'xhr_streaming'));
    app.get(`${p}/:server/:session/eventsource`, (res, req) => this.receive(res, req, 'eventsource'));
    app.post(`${p}/:server/:session/xhr_send`, (res, req) => this.send(res, req, 'xhr'));
    app.get(`${p}/:server/:session/htmlfile`, (res, req) => this.receive(res, req, 'htmlfile'));
    app.get(`${p}/:server/:session/jsonp`, (res, req) => this.receive(res, req, 'jsonp'));
    app.post(`${p}/:server/:session/jsonp_send`, (res, req) => this.send(res, req, 'jsonp'));
    // the page the iframe transports load: the client library, then its bootstrap
    const page = iframePage(`${p}/sockjs.min.js`);
    const etag = '"' + createHash('md5').update(page).digest('hex') + '"';
    // `/iframe.html`, `/iframe-<version>.html`, … (uWS matches the static routes here first)
    app.get(`${p}/:page`, (res, req) => {
      const ex = this.exchange(res, req, false);
      if (!/^iframe[0-9a-z._-]*\.html$/.test(req.getParameter(0) ?? '')) return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
      const cache = { ...cacheFor(), ETag: etag };
      if (req.getHeader('if-none-match') === etag) return ex.reply(304, null, '', cache);
      ex.reply(200, 'text/html; charset=UTF-8', page, cache);
    });
    app.get(`${p}/sockjs.min.js`, (res, req) => {
      const ex = this.exchange(res, req, false);
      const lib = clientLibrary();
      if (lib === null) return ex.reply(404, 'text/plain', 'sockjs-client is not installed');
      ex.reply(200, 'application/javascript; charset=UTF-8', lib, { 'Cache-Control': 'public, max-age=86400' });
    });
    this.mountSocket();
    this.mountRawSocket();
    // a WebSocket URL asked without a WebSocket handshake (uWS passes those on to these routes)
    for (const path of [`${p}/:server/:session/websocket`, `${p}/websocket`]) {
      app.get(path, (res, req) => {
        const ex = this.exchange(res, req, false);
        if (req.getHeader('upgrade').toLowerCase() !== 'websocket') return ex.reply(400, 'text/plain; charset=UTF-8', 'Can "Upgrade" only to "WebSocket".');
        if (!/(^|[\s,])upgrade($|[\s,])/i.test(req.getHeader('connection')))
          return ex.reply(400, 'text/plain; charset=UTF-8', '"Connection" must be "Upgrade".');
        ex.reply(400, 'text/plain; charset=UTF-8', 'Not a valid websocket request');
      });
      // only GET: 405, no body, no content type (the request body is not read: close after)
      const notAllowed = (res: HttpResponse, req: HttpRequest) => this.exchange(res, req, false).reply(405, null, '', { Allow: 'GET' }, true);
      app.post(path, notAllowed);
      app.put(path, notAllowed);
      app.del(path, notAllowed);
      app.patch(path, notAllowed);
    }
  }

  /**
   * An exchange with SockJS's CORS (the asking origin when allowed; `*` when there is none or it is
   * `null`, as from file:// pages: a browser takes an echoed `null` as a refusal) and, on session
   * requests (`session`), the JSESSIONID cookie when configured
   */
  private exchange(res: HttpResponse, req: HttpRequest, session = false, prelude = 0): SockJsExchange {
    const origin = req.getHeader('origin');
    const allowed = origin === '' ? '*' : this.port.corsOrigin(origin);
    const headers: Record<string, string> = {};
    const asked = req.getHeader('access-control-request-headers');
    if (asked !== '') headers['Access-Control-Allow-Headers'] = asked;
    if (session && this.o.jsessionid) headers['Set-Cookie'] = `JSESSIONID=${jsessionid(req.getHeader('cookie'))}; path=/`;
    const ex = new SockJsExchange(res, allowed === 'null' ? '*' : allowed, headers, prelude, wantsClose(req));
    ex.closeAfter = this.port.closing;
    return ex;
  }

  private preflight(res: HttpResponse, req: HttpRequest, methods: string): void {
    // cacheable for a year (sockjs-protocol's verify_options); a session URL's sets the cookie too
    this.exchange(res, req, true).reply(204, null, '', { ...cacheFor(), 'Access-Control-Allow-Methods': methods, 'Access-Control-Max-Age': String(YEAR_S) });
  }

  /** sockjs-client keeps the query of the URL it was given on every request: the app's part, and `auth` */
  private meta(r: { ip: string; origin: string; userAgent: string; query: URLSearchParams }): SessionMeta {
    return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: connectQuery(r.query), auth: r.query.get('auth') ?? '', dialect: DIALECT };
  }

  /** The session a client's id names, here or anywhere in the cluster (null: none) */
  private session(server: string, session: string, done: (t: Target | null) => void, waitMs = this.o.lookupMs): void {
    if (!PART.test(server) || !PART.test(session)) return done(null);
    // the holder answers within milliseconds; a new session's first request cannot wait long
    // (sockjs-client gives a transport up after about 600 ms without `o`): a receive that finds
    // nothing claims the id (see receive); a send, which makes no session, waits longer
    this.port.lookup(KEY_PREFIX + session, (t) => done(t), waitMs);
  }

  /** A receiving request: xhr (a poll), xhr_streaming, eventsource, htmlfile, jsonp */
  private receive(res: HttpResponse, req: HttpRequest, kind: 'polling' | 'xhr_streaming' | 'eventsource' | 'htmlfile' | 'jsonp'): void {
    const server = req.getParameter(0) ?? '';
    const id = req.getParameter(1) ?? '';
    const r = readRequest(res, req, this.port.options.trustProxy);
    // htmlfile and jsonp call back a page's function: `c=` names it (at most 32 characters, as the reference server)
    let callback = '';
    let bad = '';
    if (kind === 'htmlfile' || kind === 'jsonp') {
      callback = r.query.get('c') ?? r.query.get('callback') ?? '';
      if (callback === '') bad = '"callback" parameter required';
      else if (!/^[a-zA-Z0-9_.-]{1,32}$/.test(callback)) bad = 'invalid "callback" parameter';
    }
    const framer =
      kind === 'xhr_streaming'
        ? xhrStreamingFramer
        : kind === 'eventsource'
          ? eventSourceFramer
          : kind === 'htmlfile' && bad === ''
            ? htmlFileFramer(callback)
            : null;
    const ex = this.exchange(res, req, true, framer?.prelude.length ?? 0);
    if (!PART.test(server) || !PART.test(id)) return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
    const refused = this.port.admit(r.origin, false);
    if (refused !== null) return ex.error(refused);
    if (bad !== '') return ex.reply(500, 'text/plain; charset=UTF-8', bad);
    const port = this.port;
    const polling = kind === 'polling' || kind === 'jsonp';
    const transport: TransportName = polling ? 'polling' : 'sse';
    const conn = polling
      ? new PollConnection(port, ex, messages, kind === 'jsonp' ? jsonpFramer(callback) : xhrFramer)
      : new StreamConnection(port, ex, messages, framer!, 'sse');
    const route = (t: Target | null): void => {
      if (!ex.open) return;
      try {
        // the session is there but may not come back now (the node is at its session limit)
        if (t !== null && t.kind === 'error' && t.error !== 'SY_ERR_UNKNOWN_SESSION') return ex.error(t.error);
        if (t === null || t.kind === 'error') {
          const refused = port.admit(r.origin, true, r.ip, r.bytes);
          if (refused !== null) return ex.error(refused);
          // `o` as soon as the id is this session's: at once on one node; in a cluster when the
          // sid's worker confirms the claim (before the app's open runs). The worker may say instead
          // that another node holds it (its holder was slow to answer the lookup) or that it ended
          // a moment ago: nothing was written, and the request is routed again
          conn.session = port.open(transport, this.meta(r), conn, false, KEY_PREFIX + id, (again) => {
            if (again === null) return conn.openNow(OPEN);
            conn.session = null;
            route(again);
          });
          return;
        }
        if (t.kind === 'ended') {
          // a closed session keeps saying so, with its own close (what it did not write is gone)
          const { code, reason } = t.ended;
          return conn instanceof PollConnection ? conn.reply([messages.close(code, reason)]) : conn.finishEnded({ ...t.ended, entries: [] });
        }
        if (t.kind === 'remote') {
          // no cursor in SockJS: the holder goes on after what it wrote
          conn.session = port.attachRemote(t, this.meta(r), conn, -1, polling);
          if (conn instanceof PollConnection) conn.hold(port.options.pollTimeoutMs + port.options.relayTimeoutMs);
          // a stream's head and prelude now, as the reference server writes them: the holder's
          // answer brings no open to start it (a second receiver's c[2010] still follows the prelude)
          else conn.start();
          return;
        }
        const s = t.session;
        // a second receiver (poll or stream) while the session has one (here, or relayed from
        // another node): refused with c[2010], the first stays (a held poll whose client is gone gives way)
        const held = s.conn;
        if (held !== null && !(held instanceof PollConnection && !held.active)) return conn.fail('SY_ERR_POLL_CONFLICT');
        if (conn instanceof PollConnection) {
          conn.session = s;
          // written is delivered: SockJS receivers have no cursor
          port.attach(s, conn, s.sent, false);
          if (conn.session !== null) conn.hold(port.options.pollTimeoutMs);
          return;
        }
        conn.session = s;
        port.attach(s, conn, s.sent, false);
        // the head and the prelude now, even with nothing to send (else they wait for the next
        // frame or heartbeat: a client or proxy waiting for them gives up first)
        conn.start();
      } catch (err) {
        warnOnce('sockjs receive', err);
        ex.error('SY_ERR_INTERNAL');
      }
    };
    this.session(server, id, route);
  }

  /** xhr_send and jsonp_send: a JSON array of messages for a session (jsonp_send: also as a `d=` form field) */
  private send(res: HttpResponse, req: HttpRequest, kind: 'xhr' | 'jsonp'): void {
    const server = req.getParameter(0) ?? '';
    const id = req.getParameter(1) ?? '';
    const r = readRequest(res, req, this.port.options.trustProxy);
    const ex = this.exchange(res, req, true);
    const ok = () => (kind === 'xhr' ? ex.reply(204, 'text/plain; charset=UTF-8', '') : ex.reply(200, 'text/plain; charset=UTF-8', 'ok'));
    readBody(ex, this.port.options.maxPayloadBytes, (body) => {
      if (body === null) return ex.reply(413, 'text/plain', 'Payload too large', undefined, true);
      let text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString();
      if (kind === 'jsonp' && r.contentType.startsWith('application/x-www-form-urlencoded')) text = new URLSearchParams(text).get('d') ?? '';
      if (text === '') return ex.reply(500, null, 'Payload expected.');
      let list: unknown;
      try {
        list = JSON.parse(text);
      } catch {
        return ex.reply(500, null, 'Broken JSON encoding.');
      }
      const msgs = Array.isArray(list) ? list : [list];
      if (!msgs.every((m) => typeof m === 'string')) return ex.reply(500, null, 'Broken JSON encoding.');
      this.session(
        server,
        id,
        (t) => {
          if (t !== null && t.kind === 'error' && t.error !== 'SY_ERR_UNKNOWN_SESSION') return ex.error(t.error);
          if (t === null || t.kind === 'error') return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
          // a session that ended a moment ago: what it is sent is dropped, as the reference server does
          if (t.kind === 'ended') return ok();
          const frames = (msgs as string[]).map(toFrame);
          if (t.kind === 'remote')
            return this.port.send(t.sid, t.token, frames, (error) => (error === null ? ok() : ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND)));
          for (const f of frames) this.port.deliver(t.session, f);
          ok();
        },
        SEND_LOOKUP_MS,
      );
    });
  }

  /** `/<prefix>/websocket`: one WebSocket message is one SockJS message, no framing; the session is the socket */
  private mountRawSocket(): void {
    const port = this.port;
    const o = port.options;
    type Data = { c: WsConnection | null; meta: SessionMeta; bytes: number };
    mountSocket<Data>(
      port,
      `${this.o.prefix}/websocket`,
      { maxPayloadBytes: o.maxPayloadBytes, silentMs: o.pingMs, pings: true },
      {
        upgrade: (res, req, context) => {
          const meta = this.meta({
            ip: clientIp(res, req, o.trustProxy),
            origin: req.getHeader('origin'),
            userAgent: req.getHeader('user-agent'),
            query: new URLSearchParams(req.getQuery() ?? ''),
          });
          upgrade<Data>(res, req, context, { c: null, meta, bytes: requestBytes(req) });
        },
        open: (ws) => {
          const d = ws.getUserData();
          const c = new WsConnection(ws as never, rawCodec);
          d.c = c;
          const refused = port.admit(d.meta.origin, true, d.meta.ip, d.bytes);
          if (refused !== null) return c.refuse(refused);
          c.session = port.open('websocket', d.meta, c);
        },
        message: (ws, message) => {
          const s = ws.getUserData().c?.session;
          traffic.in += message.byteLength;
          if (s) port.deliver(s, toFrame(Buffer.from(message).toString()));
        },
        drain: (ws) => {
          ws.getUserData().c?.drained();
        },
        close: (ws) => {
          const c = ws.getUserData().c;
          if (c === null) return;
          c.closed = true;
          const s = c.session;
          c.session = null;
          if (s !== null) port.deliver(s, { type: 'close' });
        },
      },
    );
  }

  private mountSocket(): void {
    const port = this.port;
    const o = port.options;
    type Data = { c: WsConnection | null; meta: SessionMeta; bytes: number };
    mountSocket<Data>(
      port,
      `${this.o.prefix}/:server/:session/websocket`,
      { maxPayloadBytes: o.maxPayloadBytes, silentMs: o.pingMs, pings: true },
      {
        upgrade: (res, req, context) => {
          const server = req.getParameter(0) ?? '';
          const id = req.getParameter(1) ?? '';
          const meta = this.meta({
            ip: clientIp(res, req, o.trustProxy),
            origin: req.getHeader('origin'),
            userAgent: req.getHeader('user-agent'),
            query: new URLSearchParams(req.getQuery() ?? ''),
          });
          if (!PART.test(server) || !PART.test(id)) return this.exchange(res, req).reply(404, 'text/plain; charset=UTF-8', NOT_FOUND, undefined, true);
          upgrade<Data>(res, req, context, { c: null, meta, bytes: requestBytes(req) });
        },
        open: (ws) => {
          const d = ws.getUserData();
          const c = new WsConnection(ws as never, socketCodec);
          d.c = c;
          // the session is the connection (no resume over a WebSocket): always a new one, of its own
          // sid, which no SockJS URL can name; the id in the URL may be reused, even by two
          // connections at once (sockjs-protocol's test_reuseSessionId; the reference server does so)
          const refused = port.admit(d.meta.origin, true, d.meta.ip, d.bytes);
          if (refused !== null) return c.refuse(refused);
          // `o` now, not when the worker accepted the session (see OPEN)
          traffic.out += OPEN.length;
          ws.send(OPEN);
          c.session = port.open('websocket', d.meta, c);
        },
        message: (ws, message) => {
          const c = ws.getUserData().c;
          const s = c?.session;
          if (!s) return;
          traffic.in += message.byteLength;
          const text = Buffer.from(message).toString();
          if (text === '') return;
          let list: unknown;
          try {
            list = JSON.parse(text);
          } catch {
            // broken JSON closes the connection (sockjs-protocol's WebSocket test)
            return port.fail(s, 'SY_ERR_MALFORMED_FRAME');
          }
          const msgs = Array.isArray(list) ? list : [list];
          for (const m of msgs) if (typeof m === 'string') port.deliver(s, toFrame(m));
        },
        drain: (ws) => {
          ws.getUserData().c?.drained();
        },
        close: (ws) => {
          const c = ws.getUserData().c;
          if (c === null) return;
          c.closed = true;
          const s = c.session;
          c.session = null;
          // the session is the connection: it ends with it
          if (s !== null) port.deliver(s, { type: 'close' });
        },
      },
    );
  }
}

/**
 * jsonp: one answer is one frame, handed to the page's callback (after an empty comment: no content
 * sniffing). The poll takes one frame's worth (`oneFrame`): the open alone, else the messages (one
 * a[…]), else the close; the rest waits in the session for the next poll
 */
function jsonpFramer(callback: string): PollFramer {
  return {
    contentType: () => 'application/javascript; charset=UTF-8',
    batch(frames, codec) {
      // one frame (xhr's batch of a one-frame answer has one line; nothing: a heartbeat)
      const frame = (xhrFramer.batch(frames, codec) as string).slice(0, -1);
      return `/**/${callback}(${escaped(JSON.stringify(frame))});\r\n`;
    },
    conflict: xhrFramer.conflict,
    refused: xhrFramer.refused,
    oneFrame: true,
  };
}

/** htmlfile: a page (over 1 KiB, so that browsers render as it comes) calling the parent's callback per frame (sockjs-protocol 0.3.3's page, byte for byte) */
function htmlFileFramer(callback: string): StreamFramer {
  const head = `<!doctype html>\n<html><head>\n  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n</head><body><h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.${callback};\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>`;
  const call = (f: string) => `<script>\np(${escaped(JSON.stringify(f))});\n</script>\r\n`;
  return {
    headers: { 'Content-Type': 'text/html; charset=UTF-8', 'X-Content-Type-Options': 'nosniff' },
    prelude: head + ' '.repeat(Math.max(0, 1025 - head.length)) + '\r\n\r\n',
    open: () => call('o'),
    entry: (_seq, f) => call('a[' + (f as string) + ']'),
    control: (f) => call(f as string),
    rotateBytes: STREAM_BYTES,
    refused: secondReceiver,
  };
}

/**
 * The iframe transports' page (sockjs-protocol 0.3.3's, byte for byte): `_sockjs_onload` bootstraps
 * the iframe once the client library, served by this node, has loaded
 */
function iframePage(libraryUrl: string): string {
  return `<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n  <script>\n    document.domain = document.domain;\n    _sockjs_onload = function(){SockJS.bootstrap_iframe();};\n  </script>\n  <script src="${libraryUrl}"></script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>`;
}

/** The JSESSIONID to set: the client's own (from its Cookie header), else `dummy` (as the reference server) */
function jsessionid(cookies: string): string {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === 'JSESSIONID') {
      const v = part.slice(eq + 1).trim();
      return COOKIE_VALUE.test(v) ? v : 'dummy';
    }
  }
  return 'dummy';
}

let library: Buffer | null | undefined;
/** sockjs-client's browser bundle, from node_modules (null when it is not installed) */
function clientLibrary(): Buffer | null {
  if (library !== undefined) return library;
  try {
    library = readFileSync(createRequire(import.meta.url).resolve('sockjs-client/dist/sockjs.min.js'));
  } catch {
    library = null;
  }
  return library;
}

/** A SockJS message as a client frame: a native frame's JSON text, or anything else as event `message` */
function toFrame(m: string): ClientFrame {
  if (m.charCodeAt(0) === 123 /* { */) {
    try {
      const f = validateClientFrame(JSON.parse(m));
      if (f !== null) return f;
    } catch {
      // not JSON: a plain message
    }
  }
  return { type: 'event', event: 'message', args: [m] };
}
