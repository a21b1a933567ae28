/**
 * The SockJS dialect (protocol 0.3, for `sockjs-client` 1.x), first part: the greeting, `/info`,
 * and the `websocket`, `xhr`, `xhr_send`, `xhr_streaming` and `eventsource` transports.
 *
 * - A SockJS message carries one native client frame as its JSON text; a message that is not one
 *   reaches the app as event `message` with the text as its one arg. What the app emits goes out as
 *   native frames' JSON text, one SockJS message each.
 * - The session id is the client's (`/<prefix>/<server>/<session>/<transport>`): the session is
 *   `sj:<session>`, looked up in the whole cluster before one is made (or it would fork).
 * @see ../docs/sockjs.md
 */
import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { HttpResponse } from 'uWebSockets.js';
import type { ClientFrame, Codec, Frame, Port, Target } from './port.ts';
import type { Entry } from './entry.ts';
import { newCodecId } from './entry.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import { Exchange, clientIp, readBody, readRequest, upgrade } from './http.ts';
import { nativeCodecs, validateClientFrame } from './native-codec.ts';
import { StreamConnection, type StreamFramer } from './stream.ts';
import { PollConnection, type PollFramer } from './poll.ts';
import { WsConnection } from './websocket.ts';
import { warnOnce } from './log.ts';

export interface SockJsOptions {
  /** @default '/sockjs' */
  prefix: string;
}

const DIALECT = 'sockjs';
/** `:` is not in base64url, so no other dialect's sid (random base64url) can be a SockJS one */
const SID_PREFIX = 'sj:';
/** what a session id or server id may be (SockJS: non-empty, no dots) */
const PART = /^[^./]{1,64}$/;
const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;
/** what the reference server answers for a URL or session it does not know */
const NOT_FOUND = '404 Error: Page not found\n';
/** how long a node waits for another to say it holds a session, before making it */
const LOOKUP_MS = 250;

/**
 * JSON text as SockJS sends it: the characters some JavaScript engines or proxies mangle escaped
 * (line and paragraph separators, zero-width and specials), and `<` too, so that no frame can end
 * an htmlfile page's script element
 */
function escaped(json: string): string {
  return json.replace(/[<\u2028\u2029\u200c-\u200f\ufff0-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** A SockJS message: a native frame's JSON text, as a JSON string (the `a[…]` array's element) */
class MessageCodec implements Codec {
  readonly id = newCodecId();
  readonly binary = false;
  encode(seq: number, e: Entry): Frame {
    return escaped(JSON.stringify(nativeCodecs.json.encode(seq, e) as string));
  }
  open(): Frame {
    return 'o';
  }
  ping(): Frame {
    return 'h';
  }
  close(code: number, reason: string): Frame {
    return 'c' + escaped(JSON.stringify([code, reason]));
  }
}

/** Over a WebSocket: each message its own `a[…]` frame */
class SocketCodec extends MessageCodec {
  override encode(seq: number, e: Entry): Frame {
    return 'a[' + (super.encode(seq, e) as string) + ']';
  }
}

/** The raw WebSocket: a message is the native frame's text itself; no open, no heartbeat frames */
class RawCodec extends MessageCodec {
  override encode(seq: number, e: Entry): Frame {
    return nativeCodecs.json.encode(seq, e);
  }
  override open(): Frame {
    return '';
  }
  override ping(): Frame {
    return '';
  }
  override close(): Frame {
    return '';
  }
}

const messages = new MessageCodec();
const rawCodec = new RawCodec();
const socketCodec = new SocketCodec();

/** a message (a JSON string) rather than a control frame (`o`, `h`, `c[…]`) */
function isMessage(f: Frame): boolean {
  return typeof f === 'string' && f.charCodeAt(0) === 34; /* " */
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
  refused: (code) => (code === 'SY_ERR_POLL_CONFLICT' ? [messages.close(2010, 'Another connection still open')] : null),
};

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
};

const eventSourceFramer: StreamFramer = {
  headers: { 'Content-Type': 'text/event-stream; charset=UTF-8', 'X-Accel-Buffering': 'no' },
  prelude: '\r\n',
  open: () => 'data: o\r\n\r\n',
  entry: (_seq, f) => 'data: a[' + (f as string) + ']\r\n\r\n',
  control: (f) => 'data: ' + (f as string) + '\r\n\r\n',
  rotateBytes: STREAM_BYTES,
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
    const greeting = (res: HttpResponse, req: { getHeader(h: string): string }) => this.exchange(res, req.getHeader('origin')).reply(200, 'text/plain; charset=UTF-8', 'Welcome to SockJS!\n');
    app.get(p, greeting);
    app.get(p + '/', greeting);
    app.get(`${p}/info`, (res, req) => {
      const ex = this.exchange(res, req.getHeader('origin'));
      ex.reply(200, 'application/json; charset=UTF-8', JSON.stringify({ websocket: true, cookie_needed: false, origins: ['*:*'], entropy: randomInt(2 ** 31) }));
    });
    app.options(`${p}/info`, (res, req) => this.preflight(res, req.getHeader('origin'), req.getHeader('access-control-request-headers'), 'OPTIONS, GET'));
    for (const t of ['xhr', 'xhr_send', 'xhr_streaming']) app.options(`${p}/:server/:session/${t}`, (res, req) => this.preflight(res, req.getHeader('origin'), req.getHeader('access-control-request-headers'), 'OPTIONS, POST'));
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
      const ex = this.exchange(res, '');
      if (!/^iframe[0-9a-z._-]*\.html$/.test(req.getParameter(0) ?? '')) return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
      const cache = { 'Cache-Control': 'public, max-age=31536000', ETag: etag };
      if (req.getHeader('if-none-match') === etag) return ex.reply(304, null, '', cache);
      ex.reply(200, 'text/html; charset=UTF-8', page, cache);
    });
    app.get(`${p}/sockjs.min.js`, (res) => {
      const ex = this.exchange(res, '');
      const lib = clientLibrary();
      if (lib === null) return ex.reply(404, 'text/plain', 'sockjs-client is not installed');
      ex.reply(200, 'application/javascript; charset=UTF-8', lib, { 'Cache-Control': 'public, max-age=86400' });
    });
    this.mountSocket();
    this.mountRawSocket();
  }

  private exchange(res: HttpResponse, origin: string): Exchange {
    // the node's allowed origins (any by default, `null` included: file:// pages), with credentials
    const ex = new Exchange(res, this.port.corsOrigin(origin));
    ex.closeAfter = this.port.closing;
    return ex;
  }

  private preflight(res: HttpResponse, origin: string, headers: string, methods: string): void {
    const ex = this.exchange(res, origin);
    const extra: Record<string, string> = { 'Access-Control-Allow-Methods': methods, 'Access-Control-Max-Age': '31536000' };
    if (headers) extra['Access-Control-Allow-Headers'] = headers;
    ex.reply(204, null, '', extra);
  }

  private meta(r: { ip: string; origin: string; userAgent: string }): SessionMeta {
    return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: EMPTY, auth: '', dialect: DIALECT };
  }

  /** The session a client's id names, here or anywhere in the cluster (null: none) */
  private session(server: string, session: string, done: (t: Target | null) => void): void {
    if (!PART.test(server) || !PART.test(session)) return done(null);
    // the holder answers within milliseconds; a new session's first request cannot wait long
    // (sockjs-client gives a transport up after about 600 ms without `o`)
    this.port.lookup(SID_PREFIX + session, (t) => done(t), LOOKUP_MS);
  }

  /** A receiving request: xhr (a poll), xhr_streaming, eventsource */
  private receive(res: HttpResponse, req: { getParameter(i: number): string; getHeader(h: string): string }, kind: 'polling' | 'xhr_streaming' | 'eventsource' | 'htmlfile' | 'jsonp'): void {
    const server = req.getParameter(0) ?? '';
    const id = req.getParameter(1) ?? '';
    const r = readRequest(res, req as never, this.port.options.trustProxy);
    const ex = this.exchange(res, r.origin);
    if (!PART.test(server) || !PART.test(id)) return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
    const refused = this.port.admit(r.origin, false);
    if (refused !== null) return ex.error(refused);
    // htmlfile and jsonp call back a page's function: `c=` names it
    let callback = '';
    if (kind === 'htmlfile' || kind === 'jsonp') {
      callback = r.query.get('c') ?? r.query.get('callback') ?? '';
      if (callback === '') return ex.reply(500, 'text/plain; charset=UTF-8', '"callback" parameter required');
      if (!/^[a-zA-Z0-9_.-]+$/.test(callback)) return ex.reply(500, 'text/plain; charset=UTF-8', 'invalid "callback" parameter');
    }
    const port = this.port;
    const polling = kind === 'polling' || kind === 'jsonp';
    const transport: TransportName = polling ? 'polling' : 'sse';
    const conn = polling
      ? new PollConnection(port, ex, messages, kind === 'jsonp' ? jsonpFramer(callback) : xhrFramer)
      : new StreamConnection(port, ex, messages, kind === 'xhr_streaming' ? xhrStreamingFramer : kind === 'eventsource' ? eventSourceFramer : htmlFileFramer(callback), 'sse');
    this.session(server, id, (t) => {
      if (!ex.open) return;
      try {
        if (t === null || t.kind === 'error') {
          const refused = port.admit(r.origin, true);
          if (refused !== null) return ex.error(refused);
          conn.session = port.open(transport, this.meta(r), conn, false, SID_PREFIX + id);
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
          return;
        }
        const s = t.session;
        if (conn instanceof PollConnection) {
          if (s.conn instanceof PollConnection && !xhrFramer.conflict(s.conn, conn, port)) return;
          conn.session = s;
          // written is delivered: SockJS receivers have no cursor
          port.attach(s, conn, s.sent, false);
          if (conn.session !== null) conn.hold(port.options.pollTimeoutMs);
          return;
        }
        if (s.conn !== null && s.conn !== undefined) return (conn as StreamConnection).finishEnded({ first: 1, entries: [], code: 2010, reason: 'Another connection still open' });
        conn.session = s;
        port.attach(s, conn, s.sent, false);
      } catch (err) {
        warnOnce('sockjs receive', err);
        ex.error('SY_ERR_INTERNAL');
      }
    });
  }

  /** xhr_send and jsonp_send: a JSON array of messages for a session (jsonp_send: also as a `d=` form field) */
  private send(res: HttpResponse, req: { getParameter(i: number): string; getHeader(h: string): string }, kind: 'xhr' | 'jsonp'): void {
    const server = req.getParameter(0) ?? '';
    const id = req.getParameter(1) ?? '';
    const r = readRequest(res, req as never, this.port.options.trustProxy);
    const ex = this.exchange(res, r.origin);
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
      this.session(server, id, (t) => {
        if (t === null || t.kind === 'error' || t.kind === 'ended') return ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND);
        const frames = (msgs as string[]).map(toFrame);
        if (t.kind === 'remote') return this.port.send(t.sid, t.token, frames, (error) => (error === null ? ok() : ex.reply(404, 'text/plain; charset=UTF-8', NOT_FOUND)));
        for (const f of frames) this.port.deliver(t.session, f);
        ok();
      });
    });
  }

  /** `/<prefix>/websocket`: one WebSocket message is one SockJS message, no framing; the session is the socket */
  private mountRawSocket(): void {
    const port = this.port;
    const o = port.options;
    type Data = { c: WsConnection | null; meta: SessionMeta };
    port.app.ws<Data>(`${this.o.prefix}/websocket`, {
      maxPayloadLength: o.maxPayloadBytes + 1024,
      maxBackpressure: o.wsHighWaterBytes,
      closeOnBackpressureLimit: 0,
      idleTimeout: Math.min(960, Math.max(8, Math.ceil((o.pingMs * 2) / 1000))),
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const meta = this.meta({ ip: clientIp(res, req, o.trustProxy), origin: req.getHeader('origin'), userAgent: req.getHeader('user-agent') });
        upgrade<Data>(res, req, context, { c: null, meta });
      },
      open: (ws) => {
        const d = ws.getUserData();
        const c = new WsConnection(ws as never, rawCodec);
        d.c = c;
        const refused = port.admit(d.meta.origin, true);
        if (refused !== null) return c.refuse(refused);
        c.session = port.open('websocket', d.meta, c);
      },
      message: (ws, message) => {
        const s = ws.getUserData().c?.session;
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
    });
  }

  private mountSocket(): void {
    const port = this.port;
    const o = port.options;
    type Data = { c: WsConnection | null; sid: string; meta: SessionMeta; bad: boolean };
    port.app.ws<Data>(`${this.o.prefix}/:server/:session/websocket`, {
      maxPayloadLength: o.maxPayloadBytes + 1024,
      maxBackpressure: o.wsHighWaterBytes,
      closeOnBackpressureLimit: 0,
      idleTimeout: Math.min(960, Math.max(8, Math.ceil((o.pingMs * 2) / 1000))),
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const server = req.getParameter(0) ?? '';
        const id = req.getParameter(1) ?? '';
        const meta = this.meta({ ip: clientIp(res, req, o.trustProxy), origin: req.getHeader('origin'), userAgent: req.getHeader('user-agent') });
        if (!PART.test(server) || !PART.test(id)) return this.exchange(res, meta.origin).reply(404, 'text/plain; charset=UTF-8', NOT_FOUND, undefined, true);
        upgrade<Data>(res, req, context, { c: null, sid: SID_PREFIX + id, meta, bad: false });
      },
      open: (ws) => {
        const d = ws.getUserData();
        const c = new WsConnection(ws as never, socketCodec);
        d.c = c;
        // the session is the connection (no resume over a WebSocket): a new one, unless the id is taken
        port.lookup(d.sid, (t) => {
          if (c.closed) return;
          // the SockJS close frame says why; the socket itself closes normally (2010 and 3000 are not
          // WebSocket close codes)
          if (t.kind === 'session' || t.kind === 'remote') return c.refuseWith(2010, 'Another connection still open', 1000);
          if (t.kind === 'ended') return c.refuseWith(t.ended.code, t.ended.reason, 1000);
          const refused = port.admit(d.meta.origin, true);
          if (refused !== null) return c.refuse(refused);
          c.session = port.open('websocket', d.meta, c, false, d.sid);
        }, LOOKUP_MS);
      },
      message: (ws, message) => {
        const c = ws.getUserData().c;
        const s = c?.session;
        if (!s) return;
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
    });
  }
}

/** jsonp: one answer is one frame, handed to the page's callback (after an empty comment: no content sniffing) */
function jsonpFramer(callback: string): PollFramer {
  return {
    contentType: () => 'application/javascript; charset=UTF-8',
    batch(frames, codec) {
      // messages in one a[…]; an open or a close alone (the first answer, or a closed session)
      const text = (xhrFramer.batch(frames, codec) as string).split('\n').filter(Boolean);
      const frame = text.find((f) => f.startsWith('a[')) ?? text[0] ?? 'h';
      return `/**/${callback}(${escaped(JSON.stringify(frame))});\r\n`;
    },
    conflict: xhrFramer.conflict,
    refused: xhrFramer.refused,
  };
}

/** htmlfile: a page (over 1 KiB, so that browsers render as it comes) calling the parent's callback per frame */
function htmlFileFramer(callback: string): StreamFramer {
  const head = `<!doctype html>\n<html><head><meta charset="UTF-8"></head><body><h2>SockJS htmlfile</h2>\n<script>\n  document.domain = document.domain;\n  var c = parent.${callback};\n  c.start();\n  function p(d) { c.message(d); }\n  window.onload = function () { c.stop(); };\n</script>`;
  const call = (f: string) => `<script>\np(${escaped(JSON.stringify(f))});\n</script>\r\n`;
  return {
    headers: { 'Content-Type': 'text/html; charset=UTF-8', 'X-Content-Type-Options': 'nosniff' },
    prelude: head + ' '.repeat(Math.max(0, 1025 - head.length)) + '\r\n\r\n',
    open: () => call('o'),
    entry: (_seq, f) => call('a[' + (f as string) + ']'),
    control: (f) => call(f as string),
    rotateBytes: STREAM_BYTES,
  };
}

/** The iframe transports' page: the client library from this server, then its bootstrap */
function iframePage(libraryUrl: string): string {
  return `<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n  <script src="${libraryUrl}"></script>\n  <script>\n    document.domain = document.domain;\n    SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  <p>SockJS iframe transport.</p>\n</body>\n</html>`;
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
