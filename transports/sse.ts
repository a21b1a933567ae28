/**
 * Server-Sent Events transport: `GET /rt/sse` down, `POST /rt/send` up (see longpoll.ts).
 * Each seq'd frame is `id: <seq>\ndata: <json>\n\n`; heartbeats are `ping` frames.
 * @see ../docs/protocol.md
 */
import type { Gateway } from '../gateway/gateway.ts';
import type { ErrorCode } from '../gateway/errors.ts';
import type { Connection, Session } from '../gateway/session.ts';
import { readRequest, type Exchange } from '../gateway/http.ts';
import { PING_JSON, type Frame } from './frames.ts';
import { parseLast } from './query.ts';
import { metaOf, target } from './http-session.ts';

const HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // nginx and friends buffer responses unless told not to
  'X-Accel-Buffering': 'no',
};

const PING = 'data: ' + PING_JSON + '\n\n';

/** Frames larger than this are written in several chunks so one replay does not build a huge string */
const CHUNK_CHARS = 64 * 1024;

class SseConnection implements Connection {
  readonly transport = 'sse' as const;
  session: Session | null = null;
  private started = false;
  private blocked = false;

  constructor(readonly ex: Exchange) {}

  /** writes a chunk, starting the response first if needed; @returns false on backpressure */
  private write(chunk: string): boolean {
    if (!this.started) {
      this.started = true;
      this.ex.begin(200, HEADERS, chunk);
      return true;
    }
    return this.ex.write(chunk);
  }

  sendOpen(_s: Session, open: Frame): void {
    this.write('retry: 1000\ndata: ' + (open as string) + '\n\n');
  }

  flush(s: Session): void {
    if (this.blocked || !this.ex.open) return;
    const box = s.outbox;
    while (s.sent < box.last) {
      let chunk = '';
      while (s.sent < box.last && chunk.length < CHUNK_CHARS) {
        const seq = ++s.sent;
        chunk += 'id: ' + seq + '\ndata: ' + (box.get(seq) as string) + '\n\n';
      }
      if (!this.write(chunk)) {
        // uWS keeps the chunk; we stop producing more until the socket drains
        this.blocked = true;
        this.ex.onWritable(() => {
          this.blocked = false;
          if (this.session !== null) this.flush(this.session);
        });
        return;
      }
    }
  }

  ping(): void {
    // a data frame, not a comment: EventSource hides comments, and clients need to see liveness
    this.write(PING);
  }

  end(_s: Session, close: Frame): void {
    this.session = null;
    this.finish(['data: ' + (close as string) + '\n\n']);
  }

  finish(chunks: string[]): void {
    if (!this.started) {
      this.started = true;
      this.ex.begin(200, HEADERS, '');
    }
    this.ex.end(chunks.join(''));
  }

  drop(): void {
    this.session = null;
    this.finish([]);
  }

  fail(code: ErrorCode): void {
    if (this.started) this.drop();
    else this.ex.error(code);
  }

  restart(): void {
    this.finish([]);
  }
}

export function mountSse(gw: Gateway): void {
  gw.app.get('/rt/sse', (res, req) => {
    const r = readRequest(res, req, gw.options.trustProxy);
    const ex = gw.exchange(res, r.origin);
    const format = r.query.get('format');
    if (format !== null && format !== 'json') return ex.error('SY_ERR_BAD_REQUEST', 'SSE carries JSON frames only');
    const resuming = r.query.has('sid');
    const refused = gw.admit(r.origin, !resuming);
    if (refused !== null) return ex.error(refused);
    const c = new SseConnection(ex);
    ex.onAbort = () => {
      const s = c.session;
      c.session = null;
      if (s !== null) gw.detach(s, c);
    };
    // EventSource's own reconnect sends Last-Event-ID: newer than the URL's `last`
    const last = parseLast(r.lastEventId || r.query.get('last'));
    if (resuming) {
      const t = target(gw, r, last);
      if (t.kind === 'session') {
        c.session = t.session;
        gw.attach(t.session, c, last, true);
        return;
      }
      if (t.kind === 'remote') {
        c.session = gw.relay.open(t.sid, t.token, t.home, 'json', metaOf(r), 'sse', c, last, false);
        return;
      }
      if (t.kind === 'ended') return c.finish(t.frames.map((f) => 'data: ' + (f as string) + '\n\n'));
      if (t.error !== 'SY_ERR_UNKNOWN_SESSION') return ex.error(t.error);
    }
    c.session = gw.openSession('sse', 'json', metaOf(r), c, resuming);
  });
}
