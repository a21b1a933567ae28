/** The native client (client/switchyard.js) in Node against a real gateway, over each transport. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { pack, unpack } from 'msgpackr';
import { connect } from '../client/switchyard.js';
import { closeAll, startNode, type Frame } from './helpers.ts';
import type { App } from '../cluster/app.ts';

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode();
});
afterAll(closeAll);

const base = { WebSocket, EventSource, minDelayMs: 20, maxDelayMs: 200 } as const;

describe.each(['websocket', 'sse', 'polling'] as const)('client over %s', (transport) => {
  it('opens, requests, receives events, and resumes after a drop without loss or duplicates', async () => {
    const c = connect(node.url, { ...base, transports: [transport] });
    const tx = connect(node.url, { ...base, transports: ['websocket'] });
    try {
      const said: string[] = [];
      c.on('said', (_room: string, text: string) => said.push(text));
      expect(await c.request('echo', 'hi', 2)).toEqual(['hi', 2]);
      expect(c.transport).toBe(transport);
      await c.request('join', 'r');
      await tx.request('join', 'r');
      for (let i = 0; i < 50; i++) tx.emit('say', 'r', `a${i}`);
      await vi.waitFor(() => expect(said.length).toBeGreaterThanOrEqual(10));
      c.drop(); // as a network failure would
      for (let i = 0; i < 50; i++) tx.emit('say', 'r', `b${i}`);
      await vi.waitFor(() => expect(said).toHaveLength(100), { timeout: 10_000 });
      expect(said).toEqual([...Array.from({ length: 50 }, (_, i) => `a${i}`), ...Array.from({ length: 50 }, (_, i) => `b${i}`)]);
      const who = (await c.request('whoami'))[0] as { sid: string };
      expect(who.sid).toBe(c.sid);
    } finally {
      c.close();
      tx.close();
    }
  });
});

describe.each(['websocket', 'sse', 'polling'] as const)('client acknowledgements over %s', (transport) => {
  it('acknowledges what it receives, so the gateway releases it from the outbox', async () => {
    const c = connect(node.url, { ...base, transports: [transport] });
    try {
      for (let i = 0; i < 40; i++) expect(await c.request('echo', i)).toEqual([i]);
      const box = node.gateway.sessions.get(c.sid!)!.outbox;
      expect(box.last).toBe(40);
      // websocket: an ack every 32 frames; sse: one with each POST (the next request's); polling: each poll's last
      await vi.waitFor(() => expect(box.first).toBeGreaterThan(32));
      if (transport === 'websocket') {
        // and the rest a second after the newest frame
        await vi.waitFor(() => expect(box.size).toBe(0), { timeout: 3000 });
      }
      // what was acknowledged is gone from the outbox, and the session goes on
      expect(await c.request('echo', 'more')).toEqual(['more']);
    } finally {
      c.close();
    }
  });
});

describe('client fallback and formats', () => {
  it('falls back to the next transport when WebSocket cannot connect', async () => {
    class BrokenWebSocket extends WebSocket {
      constructor(url: string) {
        super(url.replace('/rt/ws', '/nope'));
      }
    }
    const c = connect(node.url, { ...base, WebSocket: BrokenWebSocket as any, transports: ['websocket', 'sse', 'polling'] });
    try {
      expect(await c.request('echo', 1)).toEqual([1]);
      expect(c.transport).toBe('sse');
    } finally {
      c.close();
    }
  });

  it('speaks msgpack over WebSocket', async () => {
    const c = connect(node.url, {
      ...base,
      transports: ['websocket'],
      format: 'msgpack',
      msgpack: { encode: (v: unknown) => pack(v), decode: (b: Uint8Array) => unpack(b) },
    });
    try {
      expect(await c.request('echo', { deep: [1, 'x'] })).toEqual([{ deep: [1, 'x'] }]);
    } finally {
      c.close();
    }
  });

  it('close() ends the session on the server', async () => {
    const c = connect(node.url, { ...base, transports: ['polling'] });
    await c.request('echo', 1);
    const sid = c.sid!;
    expect(node.gateway.sessions.has(sid)).toBe(true);
    c.close();
    await vi.waitFor(() => expect(node.gateway.sessions.has(sid)).toBe(false));
  });
});

/**
 * The client's `event`/`reply` frames as they go on the wire (WebSocket messages and POST /rt/send
 * bodies, JSON only), recorded by a WebSocket subclass and a fetch wrapper passed in the options.
 * `hook` may replace a POST /rt/send (it gets the parsed frames and the real fetch).
 */
function wire(hook?: (frames: Frame[], send: () => Promise<any>, init: any) => Promise<any>) {
  const frames: Frame[] = [];
  const record = (text: string): Frame[] => {
    const v = JSON.parse(text);
    const fs = (Array.isArray(v) ? v : [v]) as Frame[];
    for (const f of fs) if (f.type === 'event' || f.type === 'reply') frames.push(f);
    return fs;
  };
  class RecordingWebSocket extends WebSocket {
    override send(data: any, ...rest: any[]): void {
      if (typeof data === 'string') record(data);
      (super.send as (...a: unknown[]) => void).call(this, data, ...rest);
    }
  }
  const recordingFetch = async (input: string, init?: any): Promise<any> => {
    const send = () => fetch(input, init);
    if (init?.method !== 'POST' || !new URL(input).pathname.endsWith('/send') || typeof init.body !== 'string') return send();
    const fs = record(init.body);
    return hook ? hook(fs, send, init) : send();
  };
  return { frames, WebSocket: RecordingWebSocket, fetch: recordingFetch };
}

/** a wire whose first POST carrying an event with first arg `word` reaches the server, then fails as if the connection reset */
function failOnceDelivered(word: string) {
  let failed = false;
  const w = wire(async (frames, send) => {
    const res = await send(); // delivered…
    if (!failed && frames.some((f) => f.args?.[0] === word)) {
      failed = true;
      throw new TypeError('connection reset'); // …but the client can not know
    }
    return res;
  });
  return { w, failed: () => failed };
}

const words = (fs: Frame[]) => fs.map((f) => `${f.args[0]}:${f.cseq}`);

describe.each(['websocket', 'sse', 'polling'] as const)('client frame numbering (cseq) over %s', (transport) => {
  it('numbers event frames 1, 2, 3… per session, as their last key, from frames queued before the first open on', async () => {
    const w = wire();
    const c = connect(node.url, { ...base, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      c.emit('echo', 'q1'); // queued before the session exists
      c.emit('echo', 'q2');
      expect(await c.request('echo', 'r1')).toEqual(['r1']);
      c.emit('echo', 'e1');
      expect(await c.request('echo', 'r2')).toEqual(['r2']);
      expect(words(w.frames)).toEqual(['q1:1', 'q2:2', 'r1:3', 'e1:4', 'r2:5']);
      for (const f of w.frames) expect(Object.keys(f).at(-1)).toBe('cseq');
      expect(Object.keys(w.frames[0])).toEqual(['type', 'event', 'args', 'cseq']);
      expect(Object.keys(w.frames[2])).toEqual(['type', 'event', 'args', 'ack', 'cseq']);

      // a resume of the same session keeps counting
      const sid = c.sid;
      c.drop();
      c.emit('echo', 'd1'); // queued while reconnecting
      expect(await c.request('echo', 'r3')).toEqual(['r3']);
      expect(c.sid).toBe(sid);
      expect(words(w.frames.slice(5))).toEqual(['d1:6', 'r3:7']);

      // a new session after close() + open() counts from 1 again
      c.close();
      c.open();
      expect(await c.request('echo', 'n1')).toEqual(['n1']);
      expect(c.sid).not.toBe(sid);
      expect(words(w.frames.slice(7))).toEqual(['n1:1']);
    } finally {
      c.close();
    }
  });

  it('renumbers the queue from 1 when a resume is refused and a new session replaces the old one', async () => {
    const w = wire();
    const c = connect(node.url, { ...base, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      await c.request('echo', 'a');
      await c.request('echo', 'b');
      const sid = c.sid;
      const reopened = new Promise<{ recovered: boolean }>((resolve) => c.once('open', resolve));
      (c as any).token = `${c.token}x`; // the resume is refused (SY_ERR_BAD_TOKEN): a new session
      c.on('error', () => {});
      c.drop();
      c.emit('echo', 'q1'); // numbered 3 and 4 for the old session while disconnected…
      c.emit('echo', 'q2');
      expect((await reopened).recovered).toBe(false);
      expect(await c.request('echo', 'n')).toEqual(['n']);
      expect(c.sid).not.toBe(sid);
      // …and sent to the new one as 1 and 2
      expect(words(w.frames)).toEqual(['a:1', 'b:2', 'q1:1', 'q2:2', 'n:3']);
    } finally {
      c.close();
    }
  });
});

describe.each(['sse', 'polling'] as const)('client resending over %s', (transport) => {
  it('resends the frames of a POST /rt/send that failed after reaching the server with the same cseq', async () => {
    const { w, failed } = failOnceDelivered('b');
    const c = connect(node.url, { ...base, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      expect(await c.request('echo', 'a')).toEqual(['a']);
      const sid = c.sid;
      expect(await c.request('echo', 'b')).toEqual(['b']);
      c.emit('echo', 'c');
      expect(await c.request('echo', 'd')).toEqual(['d']);
      expect(failed()).toBe(true);
      expect(c.sid).toBe(sid); // resumed, same session
      expect(words(w.frames)).toEqual(['a:1', 'b:2', 'b:2', 'c:3', 'd:4']);
      expect(w.frames[2]).toEqual(w.frames[1]);
    } finally {
      c.close();
    }
  });

  it('frames emitted after reconnect() wait for the POST still out: in order, nothing resent', async () => {
    let slowSent: () => void = () => {};
    const slowOut = new Promise<void>((resolve) => (slowSent = resolve));
    let slowed = false;
    const w = wire(async (frames, send) => {
      if (!slowed && frames.some((f) => f.args?.[0] === 'slow')) {
        slowed = true;
        slowSent();
        await new Promise((resolve) => setTimeout(resolve, 200)); // still out when reconnect() is called
      }
      return send();
    });
    const c = connect(node.url, { ...base, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      const echoes: string[] = [];
      c.on('echo', (x: string) => echoes.push(x));
      await c.request('echo', 'a');
      c.emit('echo', 'slow');
      await slowOut;
      c.reconnect();
      c.emit('echo', 'after');
      await vi.waitFor(() => expect(echoes).toEqual(['slow', 'after']));
      expect(words(w.frames)).toEqual(['a:1', 'slow:2', 'after:3']);
    } finally {
      c.close();
    }
  });

  it('aborts a POST still out connectTimeoutMs after its connection ended, and resends it with the same cseq first', async () => {
    let slowSent: () => void = () => {};
    const slowOut = new Promise<void>((resolve) => (slowSent = resolve));
    let slowed = false;
    const w = wire(async (frames, send, init) => {
      if (!slowed && frames.some((f) => f.args?.[0] === 'slow')) {
        slowed = true;
        slowSent();
        await new Promise<void>((resolve) => init.signal.addEventListener('abort', () => resolve())); // hangs until aborted
      }
      return send();
    });
    const c = connect(node.url, { ...base, connectTimeoutMs: 500, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      const echoes: string[] = [];
      c.on('echo', (x: string) => echoes.push(x));
      await c.request('echo', 'a');
      c.emit('echo', 'slow');
      await slowOut;
      c.reconnect();
      c.emit('echo', 'after');
      await vi.waitFor(() => expect(echoes).toEqual(['slow', 'after']));
      expect(words(w.frames)).toEqual(['a:1', 'slow:2', 'slow:2', 'after:3']);
    } finally {
      c.close();
    }
  });
});

/** the app counts each event it handles, and `ask` asks the client `question` */
const handled: string[] = [];
const askingApp: App = {
  event(s, event, args, reply) {
    handled.push(`${s.sid} ${event} ${String(args[0])}`);
    if (event === 'ask')
      return s.request('question', args[0]).then(
        (a) => reply?.(...a),
        (e: Error) => reply?.(`failed: ${e.message}`),
      );
    reply?.(...args);
  },
};
let asking: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  asking = await startNode({ app: askingApp });
});

describe.each(['websocket', 'sse', 'polling'] as const)('the app asks the client over %s', (transport) => {
  it('session.request: the listener answers; with no listener the client answers with an error', async () => {
    const c = connect(asking.url, { ...base, transports: [transport] });
    try {
      c.on('question', (q: string, reply: (...a: unknown[]) => void) => reply(`answer to ${q}`));
      expect(await c.request('ask', 'life')).toEqual(['answer to life']);
      c.off('question');
      expect(await c.request('ask', 'again')).toEqual(['failed: no handler for question']);
    } finally {
      c.close();
    }
  });
});

describe.each(['sse', 'polling'] as const)('client and gateway dedupe over %s', (transport) => {
  it('a frame resent after a POST that failed once it had arrived reaches the app once', async () => {
    const { w, failed } = failOnceDelivered('twice?');
    const c = connect(asking.url, { ...base, transports: [transport], WebSocket: w.WebSocket as any, fetch: w.fetch });
    try {
      expect(await c.request('echo', 'twice?')).toEqual(['twice?']);
      // the reply may come (over the stream) before the client learns that its POST "failed"
      await vi.waitFor(() => expect(w.frames.filter((f) => f.args?.[0] === 'twice?')).toHaveLength(2)); // sent twice…
      expect(failed()).toBe(true);
      // a request after the resend: once it is answered, the resend has been handled (or dropped)
      expect(await c.request('echo', 'after')).toEqual(['after']);
      expect(handled.filter((h) => h === `${c.sid} echo twice?`)).toHaveLength(1); // …handled once
    } finally {
      c.close();
    }
  });
});
