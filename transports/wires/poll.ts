/**
 * A long-poll as a connection: answered at once when entries are waiting, else held until some
 * are or the poll times out; entries produced in the same tick go out in one answer. What differs
 * per dialect is the `PollFramer`: how a batch of encoded frames becomes one body, and what a
 * second concurrent poll gets (native: 409 and the first stays; SockJS: `c[2010,…]` to the newer
 * one). The native and SockJS dialects poll through it (and the relay, for a poll on another
 * node); Engine.IO (dialects/socketio/engineio.ts) and SignalR (dialects/signalr/dialect.ts) still
 * have long-polling of their own.
 */
import type { Exchange } from './http.ts';
import { endedFrames, type Carrier, type Codec, type Connection, type Ended, type Frame, type OpenInfo, type Port, type PortSession } from '../seam/port.ts';
import type { ErrorCode } from '../seam/errors.ts';

export interface PollFramer {
  /** Content-Type of an answer */
  contentType(codec: Codec): string;
  /** one answer's body from encoded frames (maybe none) */
  batch(frames: Frame[], codec: Codec): Frame;
  /**
   * `incoming` is a poll for a session that `held` already waits on (same node). Do what the
   * dialect says; @returns whether `incoming` goes on to attach (replacing `held`)
   */
  conflict(held: PollConnection, incoming: PollConnection, port: Port): boolean;
  /** How a refused poll is answered in the dialect's own terms (frames), when not with the HTTP error */
  refused?(code: ErrorCode, codec: Codec): Frame[] | null;
  /**
   * An answer carries one frame of the dialect (SockJS jsonp: one callback call): the open alone,
   * else the pending entries (one frame of messages), else the close; what does not fit stays in
   * the session for the next poll (a close left out: the ended session says it to the next poll)
   */
  readonly oneFrame?: boolean;
}

export class PollConnection implements Connection, Carrier {
  readonly transport = 'polling' as const;
  /** its own carrier (a getter, not a field: one less per connection) */
  get carrier(): this {
    return this;
  }
  session: PortSession | null = null;
  pingRound = 0;
  private open: Frame | null = null;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly port: Port,
    readonly ex: Exchange,
    readonly codec: Codec,
    readonly framer: PollFramer,
  ) {
    ex.onAbort = () => this.aborted();
  }

  hold(ms: number): void {
    this.timer = setTimeout(() => this.answer(null), ms);
  }

  sendOpen(_s: PortSession, info: OpenInfo): void {
    const f = this.codec.open(info);
    // (a codec with no such frame gives '': nothing to say, the poll waits for entries)
    if (f === '') return;
    this.open = f;
    this.schedule();
  }

  /** The wire says the session is open itself, before its worker accepted it (SockJS's `o`, as the session is made): this poll answers with it */
  openNow(frame: Frame): void {
    this.open = frame;
    this.schedule();
  }

  flush(s: PortSession): void {
    if (s.sent < s.outbox.last) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.answer(null));
  }

  /** Answers the poll with everything pending (and the close, when the session ended) */
  private answer(close: Frame | null): void {
    this.stopTimer();
    const s = this.session;
    this.session = null;
    const frames: Frame[] = [];
    if (this.open !== null) frames.push(this.open);
    const one = this.framer.oneFrame === true;
    if (s !== null && !(one && frames.length > 0)) {
      const box = s.outbox;
      for (let seq = s.sent + 1; seq <= box.last; seq++) {
        const e = box.get(seq);
        if (e !== undefined) frames.push(this.codec.encode(seq, e));
      }
      s.sent = box.last;
    }
    if (close !== null && !(one && frames.length > 0)) frames.push(close);
    this.reply(frames);
    // answered: the client polls again at once (its session stays counted against maxSessions)
    if (s !== null) this.port.detach(s, this, false);
  }

  reply(frames: Frame[]): void {
    this.ex.reply(200, this.framer.contentType(this.codec), this.framer.batch(frames, this.codec));
  }

  /** What is left of a session that ended: unread entries, then the close */
  replyEnded(ended: Ended): void {
    this.reply(endedFrames(this.codec, ended));
  }

  ping(): void {}

  end(s: PortSession, code: number, reason: string): void {
    this.session = s; // still ours for this last answer; the core already let go of it
    this.answer(this.codec.close(code, reason));
  }

  drop(): void {
    this.answer(null);
  }

  fail(code: ErrorCode): void {
    this.stopTimer();
    this.session = null;
    const frames = this.framer.refused?.(code, this.codec) ?? null;
    if (frames !== null) this.reply(frames);
    else this.ex.error(code);
  }

  restart(): void {
    this.answer(null);
  }

  /** the client went away: the session stays, waiting for the next poll */
  private aborted(): void {
    this.stopTimer();
    const s = this.session;
    this.session = null;
    if (s !== null) this.port.detach(s, this);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** held, and its client still waiting */
  get active(): boolean {
    return this.session !== null && this.ex.open;
  }
}
