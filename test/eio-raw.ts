/**
 * Raw Engine.IO for protocol tests: plain HTTP requests and a WebSocket that records every
 * message, so a test says byte for byte what goes over the wire (no client library in between).
 */
import WebSocket from 'ws';
import { until } from './helpers.ts';

export interface Answer {
  status: number;
  type: string | null;
  body: string;
}

/** The Engine.IO endpoint of a server: `http://host:port/socket.io/` */
export class RawEio {
  constructor(readonly base: string) {}

  async request(method: string, query: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${this.base}?${query}`, {
      method,
      body,
      headers: body !== undefined ? { 'content-type': 'text/plain;charset=UTF-8', ...headers } : headers,
    });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  }

  get(query: string): Promise<Answer> {
    return this.request('GET', query);
  }

  post(query: string, body: string, headers?: Record<string, string>): Promise<Answer> {
    return this.request('POST', query, body, headers);
  }

  /** A polling handshake. @returns the sid and the open packet's fields */
  async handshake(): Promise<{ sid: string; open: Record<string, unknown>; body: string }> {
    const a = await this.get('EIO=4&transport=polling');
    if (a.status !== 200 || !a.body.startsWith('0')) throw new Error(`handshake failed: ${a.status} ${a.body}`);
    const open = JSON.parse(a.body.slice(1)) as Record<string, unknown>;
    return { sid: open.sid as string, open, body: a.body };
  }

  poll(sid: string): Promise<Answer> {
    return this.get(`EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
  }

  send(sid: string, body: string): Promise<Answer> {
    return this.post(`EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, body);
  }

  socket(query: string): RawSocket {
    return new RawSocket(`${this.base.replace(/^http/, 'ws')}?${query}`);
  }
}

/** A WebSocket recording every message (text as strings, binary as Buffers) */
export class RawSocket {
  readonly messages: Array<string | Buffer> = [];
  /** messages taken by `next` so far */
  private taken = 0;
  closed: number | null = null;
  /** the HTTP status of a refused upgrade */
  refused: number | null = null;
  readonly ws: WebSocket;
  /** answer the server's pings (`2`) with `3`, and keep them out of `messages` */
  autoPong = false;

  constructor(url: string) {
    this.ws = new WebSocket(url, { allowSynchronousEvents: false });
    this.ws.on('message', (d: Buffer, binary) => {
      const m = binary ? d : d.toString();
      if (this.autoPong && m === '2') return this.ws.send('3');
      this.messages.push(m);
    });
    this.ws.on('close', (code) => (this.closed = code));
    this.ws.on('unexpected-response', (_req, res) => {
      this.refused = res.statusCode ?? 0;
      this.closed = 1006;
    });
    this.ws.on('error', () => {});
  }

  async opened(): Promise<void> {
    await until(() => (this.ws.readyState === WebSocket.OPEN || this.closed !== null ? true : undefined));
    if (this.closed !== null) throw new Error(`refused or closed (${this.refused ?? this.closed})`);
  }

  send(m: string | Buffer): void {
    this.ws.send(m);
  }

  /** The next message not yet taken */
  async next(timeout = 3000): Promise<string | Buffer> {
    await until(() => this.messages.length > this.taken || undefined, timeout);
    return this.messages[this.taken++]!;
  }

  /** The next `n` messages */
  async take(n: number, timeout = 3000): Promise<Array<string | Buffer>> {
    const out: Array<string | Buffer> = [];
    for (let i = 0; i < n; i++) out.push(await this.next(timeout));
    return out;
  }

  /** Waits for the close. @returns its code */
  async close(timeout = 3000): Promise<number> {
    return until(() => this.closed ?? undefined, timeout);
  }

  end(): void {
    this.ws.terminate();
  }
}
