/**
 * Long-polling transport: `GET /rt/poll` down, and `POST /rt/send` up (shared with SSE).
 * A poll is answered at once when frames are waiting, else held until some are or
 * `pollTimeoutMs` passes. One poll per session at a time.
 * @see ../docs/protocol.md
 */
import type { Gateway } from '../gateway/gateway.ts';
import type { ErrorCode } from '../gateway/errors.ts';
import type { Connection, Session } from '../gateway/session.ts';
import { readBody, readRequest, type Exchange } from '../gateway/http.ts';
import { errors } from '../gateway/errors.ts';
import { decodeClientBatch, encodeBatch, parseFormat, type Format, type Frame } from './frames.ts';
import { parseLast } from './query.ts';
import { metaOf, target } from './http-session.ts';

const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', msgpack: 'application/msgpack' };

/** One held poll. Frames produced in the same tick go out in one answer. */
class PollConnection implements Connection {
  readonly transport = 'polling' as const;
  session: Session | null = null;
  private open: Frame | null = null;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly gw: Gateway, readonly ex: Exchange, readonly format: Format) {}

  hold(ms: number): void {
    this.timer = setTimeout(() => this.answer(null), ms);
  }

  sendOpen(_s: Session, open: Frame): void {
    this.open = open;
    this.schedule();
  }

  flush(s: Session): void {
    if (s.sent < s.outbox.last) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.answer(null));
  }

  /** Answers the poll with everything pending (and `close`, when the session ended) */
  private answer(close: Frame | null): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const s = this.session;
    this.session = null;
    const frames: Frame[] = [];
    if (this.open !== null) frames.push(this.open);
    if (s !== null) {
      frames.push(...s.outbox.since(s.sent));
      s.sent = s.outbox.last;
    }
    if (close !== null) frames.push(close);
    this.reply(frames);
    if (s !== null) this.gw.detach(s, this);
  }

  reply(frames: Frame[]): void {
    this.ex.reply(200, CONTENT_TYPE[this.format], encodeBatch(this.format, frames));
  }

  ping(): void {}

  end(s: Session, close: Frame): void {
    this.session = s; // still ours for this last answer; closeSession already cleared s.conn
    this.answer(close);
  }

  drop(): void {
    this.answer(null);
  }

  fail(code: ErrorCode): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.session = null;
    this.ex.error(code);
  }

  restart(): void {
    this.answer(null);
  }

  /** the client went away: the session stays, waiting for the next poll */
  aborted(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const s = this.session;
    this.session = null;
    if (s !== null) this.gw.detach(s, this);
  }

  get active(): boolean {
    return this.session !== null && this.ex.open;
  }
}

export function mountLongPoll(gw: Gateway): void {
  const o = gw.options;

  gw.app.get('/rt/poll', (res, req) => {
    const r = readRequest(res, req, o.trustProxy);
    const ex = gw.exchange(res, r.origin);
    const format = parseFormat(r.query.get('format') ?? undefined);
    if (format === null) return ex.error('SY_ERR_BAD_REQUEST', 'format must be json or msgpack');
    const resuming = r.query.has('sid');
    const refused = gw.admit(r.origin, !resuming);
    if (refused !== null) return ex.error(refused);
    const c = new PollConnection(gw, ex, format);
    ex.onAbort = () => c.aborted();
    if (!resuming) {
      c.session = gw.openSession('polling', format, metaOf(r), c);
      return;
    }
    const last = parseLast(r.query.get('last'));
    const t = target(gw, r, last);
    if (t.kind === 'ended') return c.reply(t.frames);
    if (t.kind === 'error') return ex.error(t.error);
    if (t.kind === 'remote') {
      // the holder answers (or times out) the poll; our own timer only guards against its silence
      c.session = gw.relay.open(t.sid, t.token, t.home, format, metaOf(r), 'polling', c, last, true);
      c.hold(o.pollTimeoutMs + o.relayTimeoutMs);
      return;
    }
    const s = t.session;
    if (s.conn instanceof PollConnection && s.conn.active) return ex.error('SY_ERR_POLL_CONFLICT');
    c.session = s;
    gw.attach(s, c, last, false);
    if (c.session !== null) c.hold(o.pollTimeoutMs);
  });

  gw.app.post('/rt/send', (res, req) => {
    const r = readRequest(res, req, o.trustProxy);
    const ex = gw.exchange(res, r.origin);
    const binary = r.contentType.startsWith('application/msgpack');
    readBody(ex, o.maxPayloadBytes, (body) => {
      if (body === null) return ex.error('SY_ERR_PAYLOAD_TOO_LARGE', undefined, true);
      // looked up after the body arrived: the session may have ended meanwhile
      const t = target(gw, r, 0);
      if (t.kind === 'error' || t.kind === 'ended') return ex.error(t.kind === 'error' ? t.error : 'SY_ERR_UNKNOWN_SESSION');
      const frames = decodeClientBatch(body, binary);
      if (t.kind === 'remote') {
        // answered once the holder handled the frames: the client's next POST cannot overtake them
        if (frames === null) return ex.error('SY_ERR_MALFORMED_FRAME');
        gw.relay.send(t.sid, t.token, t.home, frames, (error) => (error === null ? ex.reply(204, null) : ex.error(error)));
        return;
      }
      if (frames === null) {
        ex.error('SY_ERR_MALFORMED_FRAME');
        gw.closeSession(t.session, errors.SY_ERR_MALFORMED_FRAME.ws, 'SY_ERR_MALFORMED_FRAME', true);
        return;
      }
      for (const f of frames) gw.handleFrame(t.session, f);
      ex.reply(204, null);
    });
  });
}
