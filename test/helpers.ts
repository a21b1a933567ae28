/** Test helpers: real nodes on port 0, real clients, and waiting without fixed sleeps. */
import WebSocket from 'ws';
import { connect as tcpConnect, createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { expect, vi } from 'vitest';
import { startEmbedded, type Embedded } from '../gateway/embedded.ts';
import type { GatewayOptions } from '../gateway/options.ts';
import type { App } from '../cluster/app.ts';
import demoApp from '../demo/app.ts';

export type Frame = Record<string, any>;

const started: Embedded[] = [];

/** A whole single-process node on a free port. Closed by `closeAll` (call it in afterEach/afterAll). */
export async function startNode(opts: GatewayOptions & { app?: App; requestTimeoutMs?: number } = {}): Promise<Embedded & { url: string; ws: string }> {
  const node = await startEmbedded({ host: '127.0.0.1', port: 0, ...opts, app: opts.app ?? demoApp });
  started.push(node);
  return Object.assign(node, { url: `http://127.0.0.1:${node.port}`, ws: `ws://127.0.0.1:${node.port}` });
}

export async function closeAll(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((n) => n.close()));
}

/** A raw native-protocol WebSocket client that records every frame and close. */
export class WsClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  readonly sock: WebSocket;
  private opened: Promise<void>;

  constructor(url: string, opts: { binary?: boolean; headers?: Record<string, string>; localAddress?: string } = {}) {
    this.sock = new WebSocket(url, { headers: opts.headers, localAddress: opts.localAddress });
    this.sock.on('message', (d, isBinary) => {
      this.frames.push(isBinary ? unpackFrame(d as Buffer) : JSON.parse(d.toString()));
    });
    this.sock.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    this.sock.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.sock.once('open', () => resolve());
      this.sock.once('error', reject);
    });
  }

  static async open(url: string, opts?: { binary?: boolean; headers?: Record<string, string>; localAddress?: string }): Promise<WsClient> {
    const c = new WsClient(url, opts);
    await c.opened;
    await c.next((f) => f.type === 'open' || f.type === 'close');
    return c;
  }

  get open(): Frame {
    return this.frames.find((f) => f.type === 'open')!;
  }

  send(frame: unknown): void {
    this.sock.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? (frame as string) : JSON.stringify(frame));
  }

  emit(event: string, ...args: unknown[]): void {
    this.send({ type: 'event', event, args });
  }

  private ackSeq = 0;
  /** emit with an ack and wait for the reply frame */
  async request(event: string, ...args: unknown[]): Promise<Frame> {
    const ack = ++this.ackSeq;
    this.send({ type: 'event', event, args, ack });
    return this.next((f) => f.type === 'reply' && f.ack === ack);
  }

  /** waits until a frame matching `pred` has arrived (searching all frames received so far) */
  async next(pred: (f: Frame) => boolean, timeout = 5000): Promise<Frame> {
    return vi.waitFor(
      () => {
        const f = this.frames.find(pred);
        if (!f) throw new Error(`no matching frame among ${this.frames.length}: ${JSON.stringify(this.frames.slice(-3))}`);
        return f;
      },
      { timeout, interval: 5 },
    );
  }

  async waitClosed(timeout = 5000): Promise<{ code: number; reason: string }> {
    return vi.waitFor(
      () => {
        if (!this.closed) throw new Error('still open');
        return this.closed;
      },
      { timeout, interval: 5 },
    );
  }

  events(name: string): Frame[] {
    return this.frames.filter((f) => f.type === 'event' && f.event === name);
  }

  terminate(): void {
    this.sock.terminate();
  }
}

import { unpack } from 'msgpackr';
function unpackFrame(b: Buffer): Frame {
  return unpack(b) as Frame;
}

/** SignalR MessagePack messages in one binary message: each a VarInt length, then a msgpack array */
export function unframeMsgpack(b: Uint8Array): unknown[][] {
  const out: unknown[][] = [];
  let i = 0;
  while (i < b.length) {
    let len = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = b[i++]!;
      len |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    out.push(unpack(b.subarray(i, i + len)) as unknown[]);
    i += len;
  }
  return out;
}

/** waits until `f` returns something other than undefined, and returns it */
export async function until<T>(f: () => T | undefined, timeout = 5000): Promise<T> {
  return vi.waitFor(
    () => {
      const v = f();
      if (v === undefined) throw new Error('not yet');
      return v;
    },
    { timeout, interval: 5 },
  );
}

/** GET/POST with fetch, returning status and parsed body */
export async function http(url: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, init);
  const text = await r.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {}
  return { status: r.status, body, headers: r.headers };
}

/** POST client frames to /rt/send */
export function send(base: string, sid: string, token: string, frames: unknown[]): Promise<{ status: number; body: any }> {
  return http(`${base}/rt/send?sid=${sid}&token=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(frames),
  });
}

export { WebSocket };

/**
 * A free port below the kernel's ephemeral range (20000-29999), for a server that restarts on
 * its port while clients retry against it: a client retrying against a port in the ephemeral
 * range can connect to itself (a TCP self-connect) and hold the very port the server needs
 */
export async function portBelowEphemeral(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Collects a gateway child process's output and waits until it listens on 127.0.0.1. @returns its port and output */
export async function listening(child: ChildProcess, timeout = 15_000): Promise<{ port: number; out: () => string }> {
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const port = await vi.waitFor(
    () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) throw new Error(out);
      return Number(m[1]);
    },
    { timeout, interval: 50 },
  );
  return { port, out: () => out };
}

/**
 * One keep-alive HTTP connection to 127.0.0.1:`port`, opened now: `ask` sends a GET on it and
 * resolves with the whole raw answer (JSON bodies), so a test can ask a node that no longer
 * accepts new connections (draining, saturated)
 */
export async function keepAliveHttp(port: number): Promise<{ ask: (path: string) => Promise<string>; close: () => void }> {
  const sock = tcpConnect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let got = '';
  sock.on('data', (d) => (got += d));
  return {
    async ask(path) {
      got = '';
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await vi.waitFor(() => expect(got).toMatch(/\r\n\r\n.*\}$/s), { timeout: 3000 });
      return got;
    },
    close: () => sock.destroy(),
  };
}
