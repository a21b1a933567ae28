/**
 * Whole requests forwarded to the node that holds a connection's state (Port.tunnel), for the
 * dialects whose state spans requests in ways the session relay (relay.ts) does not carry: an
 * Engine.IO carrier's polls, POSTs and upgrade WebSocket, a SignalR long-polling or SSE
 * connection's requests. One implementation for every dialect: the dialect describes a request
 * (any plain value) and answers it on the holding node through an `HttpAnswer` or a
 * `SocketSink`; what crosses the bus, the timeouts, streaming answers back, a client that goes
 * away and a node that dies are handled here.
 *
 * Edge (the node a request came to) → home: `req` (an HTTP request), `ws` (a WebSocket), `in` (its
 * message), `gone` (its close), `abort` (the client left before its answer). Home → edge: `res`
 * (an answer), `hold` (a long-poll is held: wait longer), `head` / `chunk` / `end` (a stream),
 * `ok` (a socket accepted), `out` (frames for it), `close` (close it, or it was refused). `t`
 * numbers the request on its edge node.
 */
import type { HttpAnswer, SocketSink, Tunnel, TunnelServer } from '../transports/seam/port.ts';
import { sizeOf, traffic } from '../transports/seam/traffic.ts';

type Message =
  | { o: 'req'; t: number; r: unknown }
  | { o: 'ws'; t: number; r: unknown }
  | { o: 'in'; t: number; d: string | Uint8Array }
  | { o: 'gone'; t: number }
  | { o: 'abort'; t: number }
  | { o: 'res'; t: number; s: number; y: string | null; b: string | Uint8Array; x?: Record<string, string>; c?: boolean }
  | { o: 'hold'; t: number }
  | { o: 'head'; t: number; s: number; h: Record<string, string>; c: string }
  | { o: 'chunk'; t: number; c: string }
  | { o: 'end'; t: number; c?: string }
  | { o: 'ok'; t: number }
  | { o: 'out'; t: number; f: Array<string | Uint8Array> }
  | { o: 'close'; t: number };

/** What a tunnel needs of its node: its id, and a way to post to another node on its channel */
export interface TunnelHost {
  readonly nodeId: string;
  readonly clustered: boolean;
  post(node: string, m: unknown): void;
}

/** uWS's answer to a send over the socket's limit: not sent */
const DROPPED = 2;
/** frames for a forwarded socket go back in batches of at most this many bytes (bus messages are bounded) */
const BATCH_BYTES = 256 * 1024;

interface Waiting {
  ex: HttpAnswer;
  home: string;
  timer: NodeJS.Timeout | null;
  heldMs: number;
  lost: (ex: HttpAnswer) => void;
  /** a stream began: no timeout, and a lost home just ends it */
  began: boolean;
}

export class RequestTunnel implements Tunnel {
  /**
   * numbers this node's forwarded requests, from a random start: a node restarted with the same id
   * must not take answers meant for its previous life's requests as answers to its own
   */
  private next = Math.floor(Math.random() * 2 ** 40);
  /** requests and sockets forwarded from here, and to here, since start */
  private out = 0;
  private in = 0;
  /** of which WebSockets, forwarded to here */
  private socketsIn = 0;
  private readonly waiting = new Map<number, Waiting>();
  private readonly sockets = new Map<number, { ws: SocketSink; home: string; timer: NodeJS.Timeout | null }>();
  /** requests forwarded to here, by `${edge}/${t}` */
  private readonly answers = new Map<string, ForwardedAnswer>();
  private readonly forwardedSockets = new Map<string, { sink: ForwardedSocket; on: { message(d: string | Uint8Array): void; closed(): void } }>();

  constructor(
    private readonly host: TunnelHost,
    private readonly server: TunnelServer,
  ) {}

  stats(): { out: number; in: number; sockets: number } {
    return { out: this.out, in: this.in, sockets: this.socketsIn };
  }

  get node(): string {
    return this.host.nodeId;
  }

  get clustered(): boolean {
    return this.host.clustered;
  }

  // ---- edge --------------------------------------------------------------------------------

  http(home: string, request: unknown, ex: HttpAnswer, o: { waitMs: number; heldMs?: number; lost: (ex: HttpAnswer) => void }): void {
    const t = this.next++;
    this.out++;
    const w: Waiting = { ex, home, timer: null, heldMs: o.heldMs ?? o.waitMs, lost: o.lost, began: false };
    w.timer = this.timeout(t, o.waitMs);
    this.waiting.set(t, w);
    ex.onAbort = () => {
      this.forget(t);
      this.host.post(home, { o: 'abort', t });
    };
    this.host.post(home, { o: 'req', t, r: request });
  }

  private timeout(t: number, ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      const w = this.waiting.get(t);
      if (w === undefined) return;
      this.forget(t);
      // the home did not answer: as far as this client can tell, its connection is gone; should
      // the home be alive after all, it must not answer a request that is no longer there
      this.host.post(w.home, { o: 'abort', t });
      w.lost(w.ex);
    }, ms);
  }

  private forget(t: number): Waiting | undefined {
    const w = this.waiting.get(t);
    if (w === undefined) return undefined;
    if (w.timer !== null) clearTimeout(w.timer);
    this.waiting.delete(t);
    w.ex.onAbort = null;
    return w;
  }

  socket(home: string, request: unknown, ws: SocketSink, waitMs: number): { message(d: string | Uint8Array): void; closed(): void } {
    const t = this.next++;
    this.out++;
    const s = { ws, home, timer: null as NodeJS.Timeout | null };
    // accepted within waitMs, or closed
    s.timer = setTimeout(() => this.closeSocket(t), waitMs);
    this.sockets.set(t, s);
    this.host.post(home, { o: 'ws', t, r: request });
    return {
      message: (d) => {
        if (this.sockets.has(t)) this.host.post(home, { o: 'in', t, d });
      },
      closed: () => {
        const had = this.sockets.get(t);
        if (had === undefined) return;
        if (had.timer !== null) clearTimeout(had.timer);
        this.sockets.delete(t);
        this.host.post(home, { o: 'gone', t });
      },
    };
  }

  private closeSocket(t: number): void {
    const s = this.sockets.get(t);
    if (s === undefined) return;
    this.sockets.delete(t);
    if (s.timer !== null) clearTimeout(s.timer);
    s.ws.end();
  }

  // ---- both --------------------------------------------------------------------------------

  onMessage(from: string, m: Message): void {
    switch (m.o) {
      case 'req':
      case 'ws':
      case 'in':
      case 'gone':
      case 'abort':
        return this.atHome(from, m);
      case 'res': {
        const w = this.forget(m.t);
        if (w !== undefined) w.ex.reply(m.s, m.y, m.b, m.x, m.c);
        return;
      }
      case 'hold': {
        const w = this.waiting.get(m.t);
        if (w === undefined || w.began) return;
        // a long-poll is held there: now it has its hold time to answer
        if (w.timer !== null) clearTimeout(w.timer);
        w.timer = this.timeout(m.t, w.heldMs);
        return;
      }
      case 'head': {
        const w = this.waiting.get(m.t);
        if (w === undefined) return;
        // a stream: no timeout any more
        if (w.timer !== null) clearTimeout(w.timer);
        w.timer = null;
        w.began = true;
        return w.ex.begin(m.s, m.h, m.c);
      }
      case 'chunk':
        this.waiting.get(m.t)?.ex.write(m.c);
        return;
      case 'end': {
        const w = this.forget(m.t);
        if (w !== undefined) w.ex.end(m.c);
        return;
      }
      case 'ok': {
        const s = this.sockets.get(m.t);
        if (s !== undefined && s.timer !== null) {
          clearTimeout(s.timer);
          s.timer = null;
        }
        return;
      }
      case 'out': {
        const s = this.sockets.get(m.t);
        if (s === undefined) return;
        let dropped = false;
        s.ws.cork(() => {
          for (const f of m.f) {
            traffic.out += sizeOf(f);
            if (s.ws.send(f, typeof f !== 'string') === DROPPED) dropped = true;
          }
        });
        // a reader too slow for its buffer: closed rather than fed with gaps (it reconnects)
        if (dropped) this.closeSocket(m.t);
        return;
      }
      case 'close':
        return this.closeSocket(m.t);
    }
  }

  /**
   * Node `node` died. Here, what waits for it gets `lost` (a stream that began ends) and sockets
   * forwarded to it close; what it forwarded here is gone, as if its clients had left.
   */
  nodeLost(node: string): void {
    for (const [t, w] of [...this.waiting]) {
      if (w.home !== node) continue;
      this.forget(t);
      if (w.began) w.ex.end();
      else w.lost(w.ex);
    }
    for (const [t, s] of [...this.sockets]) if (s.home === node) this.closeSocket(t);
    const prefix = node + '/';
    for (const [key, a] of [...this.answers]) {
      if (!key.startsWith(prefix)) continue;
      this.answers.delete(key);
      a.aborted();
    }
    for (const [key, s] of [...this.forwardedSockets]) {
      if (!key.startsWith(prefix)) continue;
      this.forwardedSockets.delete(key);
      s.sink.closed = true;
      s.on.closed();
    }
  }

  // ---- home --------------------------------------------------------------------------------

  private atHome(from: string, m: Extract<Message, { o: 'req' | 'ws' | 'in' | 'gone' | 'abort' }>): void {
    const key = from + '/' + m.t;
    switch (m.o) {
      case 'req': {
        this.in++;
        const a = new ForwardedAnswer(this.host, from, m.t, () => {
          if (this.answers.get(key) === a) this.answers.delete(key);
        });
        this.answers.set(key, a);
        return this.server.http(m.r, a);
      }
      case 'abort': {
        const a = this.answers.get(key);
        if (a === undefined) return;
        this.answers.delete(key);
        return a.aborted();
      }
      case 'ws': {
        this.in++;
        this.socketsIn++;
        const sink = new ForwardedSocket(this.host, from, m.t, () => {
          if (this.forwardedSockets.get(key)?.sink === sink) this.forwardedSockets.delete(key);
        });
        const on = this.server.socket?.(m.r, sink) ?? null;
        if (on === null) return this.host.post(from, { o: 'close', t: m.t });
        this.forwardedSockets.set(key, { sink, on });
        this.host.post(from, { o: 'ok', t: m.t });
        return;
      }
      case 'in':
        this.forwardedSockets.get(key)?.on.message(m.d);
        return;
      case 'gone': {
        const s = this.forwardedSockets.get(key);
        if (s === undefined) return;
        this.forwardedSockets.delete(key);
        s.sink.closed = true;
        return s.on.closed();
      }
    }
  }
}

/** On the holding node: the answer to a request forwarded from node `edge`, sent back over the bus */
class ForwardedAnswer implements HttpAnswer {
  onAbort: (() => void) | null = null;
  private done = false;

  constructor(
    private readonly host: TunnelHost,
    private readonly edge: string,
    private readonly t: number,
    private readonly forget: () => void,
  ) {}

  get open(): boolean {
    return !this.done;
  }

  reply(status: number, contentType: string | null, body: string | Uint8Array = '', extra?: Record<string, string>, closeConnection?: boolean): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    const m: Message = { o: 'res', t: this.t, s: status, y: contentType, b: body };
    if (extra !== undefined) m.x = extra;
    if (closeConnection === true) m.c = true;
    this.host.post(this.edge, m);
  }

  hold(): void {
    if (!this.done) this.host.post(this.edge, { o: 'hold', t: this.t });
  }

  begin(status: number, headers: Record<string, string>, first: string): void {
    if (!this.done) this.host.post(this.edge, { o: 'head', t: this.t, s: status, h: headers, c: first });
  }

  write(chunk: string): boolean {
    if (!this.done) this.host.post(this.edge, { o: 'chunk', t: this.t, c: chunk });
    return true;
  }

  onWritable(): void {}

  end(last?: string): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    this.host.post(this.edge, last !== undefined && last !== '' ? { o: 'end', t: this.t, c: last } : { o: 'end', t: this.t });
  }

  /** the client went away at the edge (or the edge died) */
  aborted(): void {
    if (this.done) return;
    this.done = true;
    const f = this.onAbort;
    this.onAbort = null;
    f?.();
  }
}

/** On the holding node: a WebSocket on node `edge`; writes go over the bus, batched per tick */
class ForwardedSocket implements SocketSink {
  closed = false;
  /** frames of this tick, and their size (null: none queued, no flush scheduled) */
  private batch: Array<string | Uint8Array> | null = null;
  private bytes = 0;

  constructor(
    private readonly host: TunnelHost,
    private readonly edge: string,
    private readonly t: number,
    private readonly gone: () => void,
  ) {}

  send(f: string | Uint8Array, _binary: boolean): number {
    if (this.closed) return 1;
    if (this.batch === null) {
      this.batch = [];
      this.bytes = 0;
      queueMicrotask(() => {
        this.flush();
        this.batch = null;
      });
    }
    this.batch.push(f);
    this.bytes += typeof f === 'string' ? f.length : f.byteLength;
    if (this.bytes > BATCH_BYTES) this.flush();
    return 1;
  }

  private flush(): void {
    const f = this.batch;
    if (f === null || f.length === 0) return;
    this.batch = [];
    this.bytes = 0;
    this.host.post(this.edge, { o: 'out', t: this.t, f });
  }

  cork(f: () => void): void {
    f();
  }

  /** the edge closes the client's socket (without a status code: the edge decides nothing else) */
  end(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.gone();
    this.host.post(this.edge, { o: 'close', t: this.t });
  }
}
