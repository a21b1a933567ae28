/**
 * Raw clients of each native (wire × format) pair, all with one interface, for the transport
 * contract suite. Each records every frame it receives, decoded; none hides the wire.
 */
import { vi } from 'vitest';
import { EventSource } from 'eventsource';
import { pack, unpack } from 'msgpackr';
import { until, WsClient, type Frame } from './helpers.ts';

export interface WireClient {
  readonly frames: Frame[];
  readonly open: Frame;
  /** sends client frames (WebSocket: one message each; HTTP wires: one POST) @returns the POST's status, or 0 */
  send(...frames: unknown[]): Promise<number>;
  /** sends bytes the wire cannot carry as frames: a WebSocket message or a POST body */
  sendRaw(body: string | Uint8Array): Promise<number>;
  next(pred: (f: Frame) => boolean, timeout?: number): Promise<Frame>;
  /** the connection went away without a close (a network drop) */
  drop(): void;
  /** the session's close frame, once it arrived */
  closed(timeout?: number): Promise<Frame>;
}

export interface Wire {
  name: string;
  connect(base: string, query?: string): Promise<WireClient>;
  /** a new connection resuming session `open` after `last` */
  resume(base: string, open: Frame, last: number): Promise<WireClient>;
}

const enc = encodeURIComponent;

function base(frames: Frame[]) {
  return {
    frames,
    get open(): Frame {
      return frames.find((f) => f.type === 'open')!;
    },
    next: (pred: (f: Frame) => boolean, timeout = 5000) =>
      vi.waitFor(
        () => {
          const f = frames.find(pred);
          if (!f) throw new Error(`no matching frame among ${frames.length}: ${JSON.stringify(frames.slice(-3))}`);
          return f;
        },
        { timeout, interval: 5 },
      ),
    closed: (timeout = 5000) => until(() => frames.find((f) => f.type === 'close'), timeout),
  };
}

function ws(binary: boolean): Wire {
  const fmt = binary ? '&format=msgpack' : '';
  const make = async (url: string): Promise<WireClient> => {
    const c = await WsClient.open(url);
    return {
      ...base(c.frames),
      async send(...frames) {
        for (const f of frames) c.sock.send(binary ? pack(f) : JSON.stringify(f));
        return 0;
      },
      async sendRaw(body) {
        c.sock.send(body);
        return 0;
      },
      drop: () => c.terminate(),
    };
  };
  return {
    name: binary ? 'websocket + msgpack' : 'websocket + json',
    connect: (b, query = '') => make(`${b.replace('http', 'ws')}/rt/ws?x=1${fmt}${query}`),
    resume: (b, open, last) => make(`${b.replace('http', 'ws')}/rt/ws?sid=${open.sid}&token=${enc(open.token)}&last=${last}${fmt}`),
  };
}

/** POSTs frames to /rt/send */
function poster(b: string, open: () => Frame, binary: boolean) {
  const post = async (body: string | Uint8Array, type: string) => {
    const o = open();
    const r = await fetch(`${b}/rt/send?sid=${o.sid}&token=${enc(o.token)}`, { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit });
    await r.arrayBuffer();
    return r.status;
  };
  return {
    send: (...frames: unknown[]) => (binary ? post(pack(frames), 'application/msgpack') : post(JSON.stringify(frames), 'application/json')),
    sendRaw: (body: string | Uint8Array) => post(body, binary ? 'application/msgpack' : 'application/json'),
  };
}

const sse: Wire = {
  name: 'sse + json',
  async connect(b, query = '') {
    return sseClient(b, `${b}/rt/sse?x=1${query}`);
  },
  async resume(b, open, last) {
    return sseClient(b, `${b}/rt/sse?sid=${open.sid}&token=${enc(open.token)}&last=${last}`);
  },
};

async function sseClient(b: string, url: string): Promise<WireClient> {
  const frames: Frame[] = [];
  const es = new EventSource(url);
  es.onmessage = (m) => frames.push(JSON.parse(m.data));
  // the stream ending is a drop to EventSource, which would reconnect by itself: we do not want that here
  es.onerror = () => es.close();
  const c = base(frames);
  await until(() => frames.find((f) => f.type === 'open' || f.type === 'close'));
  return { ...c, ...poster(b, () => c.open, false), drop: () => es.close() };
}

function poll(binary: boolean): Wire {
  const fmt = binary ? 'format=msgpack' : 'format=json';
  return {
    name: binary ? 'long-polling + msgpack' : 'long-polling + json',
    async connect(b, query = '') {
      return pollClient(b, `${b}/rt/poll?${fmt}${query}`, binary, null, 0);
    },
    async resume(b, open, last) {
      return pollClient(b, `${b}/rt/poll?${fmt}`, binary, open, last);
    },
  };
}

async function pollClient(b: string, first: string, binary: boolean, resuming: Frame | null, last: number): Promise<WireClient> {
  const frames: Frame[] = [];
  const c = base(frames);
  let stopped = false;
  const ac = new AbortController();
  const get = async (url: string): Promise<Frame[] | null> => {
    const r = await fetch(url, { signal: ac.signal });
    if (r.status !== 200) {
      await r.arrayBuffer();
      return null;
    }
    return binary ? (unpack(Buffer.from(await r.arrayBuffer())) as Frame[]) : ((await r.json()) as Frame[]);
  };
  let open = resuming;
  let seen = last;
  if (open === null) {
    const got = (await get(first))!;
    frames.push(...got);
    open = got[0]!;
  } else {
    // a resumed poll client's open is the session it resumes
    frames.push({ ...open, recovered: true });
  }
  const loop = async () => {
    while (!stopped && !frames.some((f) => f.type === 'close')) {
      let got: Frame[] | null;
      try {
        got = await get(`${first}&sid=${open!.sid}&token=${enc(open!.token)}&last=${seen}`);
      } catch {
        return; // aborted
      }
      if (got === null) return;
      for (const f of got) {
        if (typeof f.seq === 'number') seen = f.seq;
        frames.push(f);
      }
    }
  };
  if (open.type === 'open') void loop();
  return {
    ...c,
    ...poster(b, () => open!, binary),
    drop() {
      stopped = true;
      ac.abort();
    },
  };
}

export const wires: Wire[] = [ws(false), ws(true), sse, poll(false), poll(true)];
