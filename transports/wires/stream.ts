/**
 * A streaming HTTP response as a connection: native SSE, and SockJS's xhr-streaming, eventsource
 * and htmlfile (SignalR's Server-Sent Events still stream on their own). What differs per dialect is the
 * `StreamFramer`: headers, a prelude, how one encoded frame is wrapped, and the byte count after
 * which the response is ended so that the client opens a new one (proxies that buffer a response
 * until it ends, and browsers that keep a whole response in memory, need that).
 */
import type { Exchange } from './http.ts';
import type { Carrier, Codec, Connection, Ended, Frame, OpenInfo, Port, PortSession } from '../seam/port.ts';
import type { ErrorCode } from '../seam/errors.ts';

export interface StreamFramer {
  readonly headers: Record<string, string>;
  /** written first, before anything else (SockJS xhr-streaming: 2048 `h`; eventsource: `\r\n`) */
  readonly prelude: string;
  /** the dialect's open, wrapped (native: `retry: 1000\ndata: <open>\n\n`) */
  open(frame: Frame): string;
  /** one entry's frame, wrapped (native: `id: <seq>\ndata: <frame>\n\n`) */
  entry(seq: number, frame: Frame): string;
  /** a control frame (ping, close), wrapped */
  control(frame: Frame): string;
  /** after this many bytes the response ends and the client reconnects (Infinity: never) */
  readonly rotateBytes: number;
  /** How a refused stream is answered in the dialect's own terms (frames, each written as `control`), when not with the HTTP error */
  refused?(code: ErrorCode, codec: Codec): Frame[] | null;
}

/** Frames larger than this are written in several chunks so one replay does not build a huge string */
const CHUNK_CHARS = 64 * 1024;

export class StreamConnection implements Connection, Carrier {
  session: PortSession | null = null;
  pingRound = 0;
  /** its own carrier (a getter, not a field: one less per connection) */
  get carrier(): this {
    return this;
  }
  private started = false;
  private blocked = false;
  private written = 0;

  constructor(
    private readonly port: Port,
    readonly ex: Exchange,
    readonly codec: Codec,
    readonly framer: StreamFramer,
    readonly transport: 'sse',
  ) {
    ex.onAbort = () => {
      const s = this.session;
      this.session = null;
      if (s !== null) port.detach(s, this);
    };
  }

  /** writes a chunk, starting the response first if needed; @returns false on backpressure */
  private write(chunk: string): boolean {
    this.written += chunk.length;
    if (!this.started) {
      this.started = true;
      this.ex.begin(200, this.framer.headers, this.framer.prelude + chunk);
      return true;
    }
    return this.ex.write(chunk);
  }

  /**
   * Starts the response now (status line, headers, prelude) if nothing has yet: a receiver that
   * attaches with nothing to send gets its head at once, not with the next frame or heartbeat (a
   * client or a proxy waiting for it would give up first; the reference SockJS server writes it
   * as the request comes)
   */
  start(): void {
    if (this.started || !this.ex.open) return;
    this.started = true;
    this.ex.begin(200, this.framer.headers, this.framer.prelude);
  }

  sendOpen(_s: PortSession, info: OpenInfo): void {
    const f = this.codec.open(info);
    // (a codec with no such frame gives '': nothing is written)
    if (f !== '') this.write(this.framer.open(f));
  }

  /** The wire says the session is open itself, before its worker accepted it (SockJS's `o`, as the session is made) */
  openNow(frame: Frame): void {
    this.write(this.framer.open(frame));
  }

  flush(s: PortSession): void {
    if (this.blocked || !this.ex.open) return;
    const box = s.outbox;
    const { codec, framer } = this;
    while (s.sent < box.last) {
      let chunk = '';
      while (s.sent < box.last && chunk.length < CHUNK_CHARS) {
        const seq = ++s.sent;
        chunk += framer.entry(seq, codec.encode(seq, box.get(seq)!));
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
    // long enough: end this response, the client comes back with a new one and resumes
    if (this.written >= framer.rotateBytes && this.session !== null) {
      this.session = null;
      this.finish('');
      this.port.detach(s, this, false);
    }
  }

  ping(): void {
    this.write(this.framer.control(this.codec.ping()));
  }

  end(_s: PortSession, code: number, reason: string): void {
    this.session = null;
    this.finish(this.framer.control(this.codec.close(code, reason)));
  }

  /** What is left of a session that ended: unread entries, then the close */
  finishEnded(ended: Ended): void {
    let body = '';
    for (let i = 0; i < ended.entries.length; i++) body += this.framer.entry(ended.first + i, this.codec.encode(ended.first + i, ended.entries[i]!));
    this.finish(body + this.framer.control(this.codec.close(ended.code, ended.reason)));
  }

  private finish(last: string): void {
    if (!this.started) {
      this.started = true;
      this.ex.begin(200, this.framer.headers, this.framer.prelude);
    }
    this.ex.end(last);
  }

  drop(): void {
    this.session = null;
    this.finish('');
  }

  fail(code: ErrorCode): void {
    // the dialect's own answer (SockJS's c[2010] to a second receiver), also after the head went
    const frames = this.framer.refused?.(code, this.codec) ?? null;
    if (frames !== null) {
      this.session = null;
      return this.finish(frames.map((f) => this.framer.control(f)).join(''));
    }
    if (this.started) return this.drop();
    this.ex.error(code);
  }

  restart(): void {
    this.finish('');
  }
}
