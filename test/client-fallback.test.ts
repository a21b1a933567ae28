/**
 * The native client's fallback against hostile networks (issue 9, item 3): the real client in
 * Node, a real gateway, and a real proxy in between that refuses, cuts, swallows or eats WebSocket
 * upgrades, or buffers whole HTTP responses (test/hostile-proxy.ts).
 *
 * - WebSocket refused or cut by the proxy → SSE at once.
 * - WebSocket swallowed (no answer) or eaten (upgraded, then no frame gets through) → SSE after the
 *   connect deadline; the session the gateway opened for the eaten socket ends by itself.
 * - SSE buffered (its open frame never arrives) → long-polling after the deadline.
 * - What worked is remembered: the next client starts with it; `rememberTransport` turns it off or
 *   names the key; a remembered transport that fails is forgotten; it expires.
 * - A WebSocket the gateway side closes with a close code is not held against the network.
 * - An app slower to open than the deadline: the deadline grows, and the WebSocket sessions given
 *   up on are ended at once by the client's `close` frame.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { EventSource } from 'eventsource';
import { connect, type ClientOptions, type SwitchyardClient, type SwitchyardError } from '../client/switchyard.js';
import { closeAll, startNode, until } from './helpers.ts';
import { closeHostileProxies, startHostileProxy, type HostileProxy } from './hostile-proxy.ts';
import type { App } from '../cluster/app.ts';

/** echo (a reply, or an `echo` event back), join a room, say something to a room */
const app: App = (ctx) => ({
  event(session, event, args, reply) {
    if (event === 'echo') return reply ? reply(...args) : session.emit('echo', ...args);
    if (event === 'join') {
      session.join(String(args[0]));
      return reply?.(true);
    }
    if (event === 'say') {
      ctx.broadcast(String(args[0]), 'said', [String(args[0]), String(args[1])]);
      return reply?.(true);
    }
  },
});

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  // a short resume window: a session the client gave up on (it never heard of it) ends soon
  node = await startNode({ app, resumeWindowMs: 1000 });
});
afterAll(async () => {
  await closeHostileProxies();
  await closeAll();
});

const base = { WebSocket, EventSource, minDelayMs: 20, maxDelayMs: 200 } as const;

/** a client with its errors and the transports it opened on, in order */
function client(url: string, opts: ClientOptions = {}) {
  const c = connect(url, { ...base, ...opts });
  const errors: SwitchyardError[] = [];
  const opens: string[] = [];
  c.on('error', (e) => errors.push(e));
  c.on('open', (i) => opens.push(i.transport));
  return { c, errors, opens };
}

/** waits for the client to be open and returns how long that took from `t0` */
async function opened(c: SwitchyardClient, t0: number, timeout = 5000): Promise<number> {
  await until(() => (c.state === 'open' ? true : undefined), timeout);
  return Date.now() - t0;
}

let rooms = 0;
/** the session works: a request is answered, and events from the server (its own and a room's) arrive */
async function works(c: SwitchyardClient): Promise<void> {
  expect(await c.request('echo', 'ping', 1)).toEqual(['ping', 1]);
  const echoed: unknown[] = [];
  c.on('echo', (x: unknown) => echoed.push(x));
  c.emit('echo', 'back');
  await until(() => (echoed.includes('back') ? true : undefined));
  const room = `r${++rooms}`;
  const said: string[] = [];
  c.on('said', (_room: string, text: string) => said.push(text));
  expect(await c.request('join', room)).toEqual([true]);
  const other = connect(node.url, { ...base, transports: ['websocket'], rememberTransport: false });
  try {
    expect(await other.request('say', room, 'hello')).toEqual([true]);
    await until(() => (said.includes('hello') ? true : undefined));
  } finally {
    other.close();
  }
}

/** sids of the gateway's sessions that are not in `before` */
function newSessions(before: Set<string>): string[] {
  return [...node.gateway.sessions.keys()].filter((sid) => !before.has(sid));
}

const proxies: HostileProxy[] = [];
async function proxy(mode: Parameters<typeof startHostileProxy>[1]): Promise<HostileProxy> {
  const p = await startHostileProxy(node.url, mode);
  proxies.push(p);
  return p;
}

describe('the hostile proxy itself', () => {
  it('passes HTTP (any method, body, keep-alive) and WebSocket upgrades through', async () => {
    const p = await proxy({ upgrade: 'pass' });
    const c = connect(p.url, { ...base, transports: ['websocket'], rememberTransport: false });
    try {
      await works(c);
      expect(p.counts.upgrades).toBe(1);
    } finally {
      c.close();
    }
    // any method, with a body, over one kept-alive connection: answered as the gateway answers directly
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const via = async (origin: string, method: string, path: string, body?: string) => {
        const u = new URL(path, origin);
        return new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: u.hostname,
              port: u.port,
              method,
              path: u.pathname + u.search,
              agent,
              headers: body ? { 'content-type': 'application/json', origin: 'http://x.test' } : { origin: 'http://x.test' },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (d: string) => (text += d));
              res.on('end', () => resolve({ status: res.statusCode!, body: text, reused: req.reusedSocket }));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      };
      const requests = p.counts.requests;
      for (const [method, path, body] of [
        ['POST', '/rt/send?sid=x&token=y', '[{"type":"pong"}]'],
        ['OPTIONS', '/rt/send', undefined],
        ['GET', '/rt/nope', undefined],
      ] as const) {
        const direct = await via(node.url, method, path, body);
        const proxied = await via(p.url, method, path, body);
        expect([proxied.status, proxied.body]).toEqual([direct.status, direct.body]);
      }
      expect(p.counts.requests).toBe(requests + 3);
      const again = await via(p.url, 'GET', '/healthz');
      expect(again.status).toBe(200);
      expect(again.reused).toBe(true); // the same client connection to the proxy, kept alive
    } finally {
      agent.destroy();
    }
  });

  it('holds a streaming response whole when buffering (an SSE stream never arrives), and aborts it upstream when its client goes', async () => {
    const p = await proxy({ bufferResponses: true });
    const before = new Set(node.gateway.sessions.keys());
    const ac = new AbortController();
    let settled = false;
    const sse = fetch(`${p.url}/rt/sse`, { signal: ac.signal })
      .then(
        (r) => r.status,
        (e: Error) => e.name,
      )
      .finally(() => (settled = true));
    // the request reached the gateway, which opened a session and started the stream…
    await until(() => (newSessions(before).length === 1 ? true : undefined));
    // …and meanwhile a response that ends passes, in one piece
    const health = await fetch(`${p.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-length')).toBe(String(Buffer.byteLength(await health.text())));
    expect(settled).toBe(false); // not even the stream's headers came through
    ac.abort();
    expect(await sse).toBe('AbortError');
    // the proxy aborted the upstream request: the session lost its stream and ends after its resume window
    await until(() => (newSessions(before).length === 0 ? true : undefined), 5000);
  });
});

describe.each(['refuse', 'close'] as const)('WebSocket upgrade answered with %s', (mode) => {
  it('the client moves on to SSE at once, the session works, and the next client starts with SSE', async () => {
    const p = await proxy({ upgrade: mode });
    // a deadline far longer than the test waits: only the refusal itself can make it move on
    const a = client(p.url, { connectTimeoutMs: 20_000 });
    try {
      await opened(a.c, Date.now(), 4000);
      expect(a.c.transport).toBe('sse');
      expect(p.counts.upgrades).toBe(1);
      expect(a.errors.map((e) => [e.code, e.transport])).toEqual([['SY_CLIENT_TRANSPORT', 'websocket']]);
      await works(a.c);

      // its own reconnect starts with what worked: no WebSocket attempt
      const sid = a.c.sid;
      a.c.drop();
      await until(() => (a.opens.length === 2 ? true : undefined));
      expect(a.opens).toEqual(['sse', 'sse']);
      expect(a.c.sid).toBe(sid);
      expect(p.counts.upgrades).toBe(1);
    } finally {
      a.c.close();
    }

    // a new client for this gateway: SSE first, the WebSocket is not tried
    const b = client(p.url, { connectTimeoutMs: 20_000 });
    try {
      await opened(b.c, Date.now());
      expect(b.opens).toEqual(['sse']);
      expect(b.errors).toEqual([]);
      expect(p.counts.upgrades).toBe(1);
      await works(b.c);
    } finally {
      b.c.close();
    }
  });
});

describe.each(['blackhole', 'eat'] as const)('WebSocket swallowed by the proxy (%s)', (mode) => {
  it('the client gives up on it at the connect deadline, opens over SSE, and no session is left behind', async () => {
    const p = await proxy({ upgrade: mode });
    const before = new Set(node.gateway.sessions.keys());
    const t0 = Date.now();
    const a = client(p.url, { connectTimeoutMs: 1000 });
    try {
      const took = await opened(a.c, t0);
      expect(took).toBeGreaterThanOrEqual(990);
      expect(a.c.transport).toBe('sse');
      expect(a.errors.map((e) => e.transport)).toEqual(['websocket']);
      expect(a.errors[0].message).toMatch(/connect timeout \(1000 ms\)/);
      expect(p.counts.upgrades).toBe(1);
      const fresh = newSessions(before);
      if (mode === 'eat') {
        // the gateway opened a session for the eaten socket too; the client never heard of it
        expect(fresh).toHaveLength(2);
        expect(fresh).toContain(a.c.sid);
      } else {
        expect(fresh).toEqual([a.c.sid]);
      }
      await works(a.c);
      // the abandoned one ends by itself (its socket is cut, then its resume window passes); the
      // client's session is the only one left, and still works
      await until(() => (newSessions(before).length === 1 ? true : undefined), 8000);
      expect(newSessions(before)).toEqual([a.c.sid]);
      expect(await a.c.request('echo', 'still')).toEqual(['still']);
    } finally {
      a.c.close();
    }

    const b = client(p.url, { connectTimeoutMs: 1000 });
    try {
      await opened(b.c, Date.now()); // no error below: nothing was tried before it
      expect(b.opens).toEqual(['sse']);
      expect(b.errors).toEqual([]);
      expect(p.counts.upgrades).toBe(1);
    } finally {
      b.c.close();
    }
  });
});

describe('a proxy that buffers whole responses (and refuses upgrades)', () => {
  it('SSE never opens; the client falls back to long-polling at the deadline, which works, and the next client starts with it', async () => {
    const p = await proxy({ upgrade: 'refuse', bufferResponses: true });
    const before = new Set(node.gateway.sessions.keys());
    const t0 = Date.now();
    const a = client(p.url, { connectTimeoutMs: 1000 });
    try {
      const took = await opened(a.c, t0);
      expect(took).toBeGreaterThanOrEqual(990);
      expect(a.c.transport).toBe('polling');
      expect(a.errors.map((e) => e.transport)).toEqual(['websocket', 'sse']);
      expect(a.errors[1].message).toMatch(/connect timeout/);
      await works(a.c);
      // the session the gateway opened for the buffered stream ends by itself
      await until(() => (newSessions(before).length === 1 ? true : undefined), 8000);
      expect(newSessions(before)).toEqual([a.c.sid]);
    } finally {
      a.c.close();
    }

    const b = client(p.url, { connectTimeoutMs: 1000 });
    try {
      await opened(b.c, Date.now()); // no error below: nothing was tried before it
      expect(b.opens).toEqual(['polling']);
      expect(b.errors).toEqual([]);
      expect(p.counts.upgrades).toBe(1);
      await works(b.c);
    } finally {
      b.c.close();
    }
  });
});

describe('what worked is remembered', () => {
  it('rememberTransport: false remembers nothing: the next client tries WebSocket again', async () => {
    const p = await proxy({ upgrade: 'refuse' });
    const a = client(p.url, { rememberTransport: false });
    await opened(a.c, Date.now());
    expect(a.c.transport).toBe('sse');
    a.c.close();
    const b = client(p.url, { rememberTransport: false });
    try {
      await opened(b.c, Date.now());
      expect(b.c.transport).toBe('sse');
      expect(b.errors.map((e) => e.transport)).toEqual(['websocket']);
      expect(p.counts.upgrades).toBe(2);
    } finally {
      b.c.close();
    }
  });

  it('a named key is shared; a remembered transport that fails is forgotten, and what works then is remembered', async () => {
    const key = `fallback-test-${Date.now()}`;
    const refusing = await proxy({ upgrade: 'refuse' });
    const a = client(refusing.url, { rememberTransport: key, connectTimeoutMs: 1000 });
    await opened(a.c, Date.now());
    expect(a.c.transport).toBe('sse');
    a.c.close();

    // the same key behind a proxy that also buffers: SSE first (remembered), it fails and is
    // forgotten, WebSocket is refused, long-polling works and is remembered
    const buffering = await proxy({ upgrade: 'refuse', bufferResponses: true });
    const b = client(buffering.url, { rememberTransport: key, connectTimeoutMs: 1000 });
    try {
      await opened(b.c, Date.now());
      expect(b.errors.map((e) => e.transport)).toEqual(['sse', 'websocket']);
      expect(b.c.transport).toBe('polling');
      await works(b.c);
    } finally {
      b.c.close();
    }

    const c = client(buffering.url, { rememberTransport: key, connectTimeoutMs: 1000 });
    try {
      await opened(c.c, Date.now());
      expect(c.opens).toEqual(['polling']);
      expect(c.errors).toEqual([]);
      expect(buffering.counts.upgrades).toBe(1);
    } finally {
      c.c.close();
    }

    // another key knows nothing of it
    const d = client(buffering.url, { rememberTransport: `${key}-other`, connectTimeoutMs: 1000 });
    try {
      await opened(d.c, Date.now());
      expect(d.errors.map((e) => e.transport)).toEqual(['websocket', 'sse']);
    } finally {
      d.c.close();
    }
  });

  it('in localStorage when there is one, under switchyard.transport <routes URL>; a fallback expires after rememberForMs', async () => {
    // Node 20 has no localStorage: a plain Storage over a Map stands in for the browser's
    const items = new Map<string, string>();
    const storage = {
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, String(v)),
      removeItem: (k: string) => void items.delete(k),
    };
    (globalThis as any).localStorage = storage;
    try {
      const p = await proxy({ upgrade: 'refuse' });
      const key = `switchyard.transport ${p.url}/rt`;
      const t0 = Date.now();
      const a = client(p.url);
      await opened(a.c, t0);
      expect(a.c.transport).toBe('sse');
      a.c.close();
      const rec = JSON.parse(items.get(key)!);
      expect(rec.transport).toBe('sse');
      expect(rec.at).toBeGreaterThanOrEqual(t0);

      // still fresh: SSE first
      const b = client(p.url);
      await opened(b.c, Date.now());
      expect(b.errors).toEqual([]);
      b.c.close();
      expect(p.counts.upgrades).toBe(1);
      expect(JSON.parse(items.get(key)!).at).toBe(rec.at); // working again does not renew it

      // older than rememberForMs (default 4 h): WebSocket is tried again (refused: SSE, remembered anew)
      items.set(key, JSON.stringify({ transport: 'sse', at: Date.now() - 4 * 3600 * 1000 - 1 }));
      const c = client(p.url);
      await opened(c.c, Date.now());
      expect(c.errors.map((e) => e.transport)).toEqual(['websocket']);
      expect(p.counts.upgrades).toBe(2);
      c.c.close();
      expect(JSON.parse(items.get(key)!).at).toBeGreaterThan(rec.at);

      // a remembered transport that fails is forgotten at once, even when nothing else works either
      const dead = await proxy({ upgrade: 'refuse', bufferResponses: true });
      const deadKey = `switchyard.transport ${dead.url}/rt`;
      items.set(deadKey, JSON.stringify({ transport: 'sse', at: Date.now() }));
      const d = client(dead.url, { transports: ['websocket', 'sse'], connectTimeoutMs: 300 });
      try {
        await until(() => (d.errors.length >= 1 ? true : undefined));
        expect(d.errors[0].transport).toBe('sse');
        expect(items.has(deadKey)).toBe(false);
        await until(() => (d.errors.length >= 2 ? true : undefined));
        expect(d.errors[1].transport).toBe('websocket');
        // the next round starts with the first transport
        await until(() => (d.errors.length >= 3 ? true : undefined));
        expect(d.errors[2].transport).toBe('websocket');
      } finally {
        d.c.close();
      }
    } finally {
      delete (globalThis as any).localStorage;
    }
  });
});

describe('a WebSocket given up on while resuming', () => {
  it('the next transport resumes the same session: the client sends no close on it', async () => {
    // a WebSocket whose messages never reach the client (as if eaten after the upgrade), while what
    // the client sends does reach the gateway: a close frame from the client would end the session
    class DeafWebSocket extends WebSocket {
      constructor(url: string) {
        super(url);
        Object.defineProperty(this, 'onmessage', { get: () => null, set: () => {} });
      }
    }
    const before = new Set(node.gateway.sessions.keys());
    // rememberForMs 0: a fallback is never trusted, so every round starts with the WebSocket again
    const a = client(node.url, { WebSocket: DeafWebSocket as any, transports: ['websocket', 'sse'], connectTimeoutMs: 500, rememberForMs: 0 });
    try {
      await opened(a.c, Date.now());
      expect(a.opens).toEqual(['sse']);
      // the first attempt's session (not a resume: the client sent it a close frame) is gone
      await until(() => (newSessions(before).length === 1 ? true : undefined));
      const sid = a.c.sid;
      const said: string[] = [];
      a.c.on('echo', (x: string) => said.push(x));
      a.c.emit('echo', 'before');
      await until(() => (said.length === 1 ? true : undefined));
      const reopened = new Promise<{ recovered: boolean; sid: string }>((resolve) => a.c.once('open', resolve));
      a.c.drop();
      // the reconnect tries the (deaf) WebSocket first, with sid/token/last; it is given up on…
      const info = await reopened;
      expect(a.errors.map((e) => `${e.transport}: ${e.message}`)).toEqual([
        'websocket: websocket: connect timeout (500 ms)',
        'websocket: websocket: connect timeout (500 ms)',
      ]);
      // …and SSE resumes the same session, without loss
      expect(info).toMatchObject({ sid, recovered: true });
      a.c.emit('echo', 'after');
      await until(() => (said.length === 2 ? true : undefined));
      expect(said).toEqual(['before', 'after']);
      expect(newSessions(before)).toEqual([sid]);
    } finally {
      a.c.close();
    }
  });
});

describe('a WebSocket the gateway side closes with a close code before open', () => {
  it('is not held against the network: the next transport is tried, and nothing is remembered', async () => {
    // a WebSocket server that accepts the upgrade and closes with 1013 (try again later), as an
    // overloaded gateway does; SSE goes to the real gateway
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => ws.close(1013, 'overloaded'));
    const port = (wss.address() as { port: number }).port;
    class BusyWebSocket extends WebSocket {
      constructor(url: string) {
        super(url.replace(/^ws:\/\/[^/]+/, `ws://127.0.0.1:${port}`));
      }
    }
    const key = `busy-test-${Date.now()}`;
    try {
      const a = client(node.url, { WebSocket: BusyWebSocket as any, rememberTransport: key });
      await opened(a.c, Date.now());
      expect(a.c.transport).toBe('sse');
      expect(a.errors.map((e) => e.message)).toEqual(['websocket: overloaded']);
      a.c.close();
      const b = client(node.url, { rememberTransport: key });
      try {
        await opened(b.c, Date.now());
        expect(b.opens).toEqual(['websocket']);
        expect(b.errors).toEqual([]);
      } finally {
        b.c.close();
      }
    } finally {
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});

describe('an app whose open is slower than the connect deadline', () => {
  it('the deadline grows after rounds that timed out, and the sessions given up on are ended at once', async () => {
    const slow: App = {
      async open() {
        await new Promise((resolve) => setTimeout(resolve, 1500)); // the scenario, not a wait of the test
      },
      event(_s, _e, args, reply) {
        reply?.(...args);
      },
    };
    const slowNode = await startNode({ app: slow }); // resume window: the default minute
    const c = client(slowNode.url, { transports: ['websocket'], connectTimeoutMs: 600, rememberTransport: false });
    try {
      // 600 ms: given up; 1200 ms: given up; 2400 ms: opens (the app answers at 1500 ms)
      await opened(c.c, Date.now(), 10_000);
      expect(c.errors.map((e) => e.message)).toEqual(['websocket: connect timeout (600 ms)', 'websocket: connect timeout (1200 ms)']);
      expect(await c.c.request('echo', 'late')).toEqual(['late']);
      // the two sessions it gave up on got its {"type":"close"}: gone long before a resume window
      await until(() => (slowNode.gateway.sessions.size === 1 ? true : undefined), 5000);
      expect([...slowNode.gateway.sessions.keys()]).toEqual([c.c.sid]);
    } finally {
      c.c.close();
    }
  });
});
