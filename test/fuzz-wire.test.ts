/**
 * Property tests (fast-check) at the wire, against a running node: Engine.IO packets over
 * long-polling and WebSocket, SockJS frames over xhr_send and WebSocket, and arbitrary query
 * strings on every route that takes one. Whatever comes in, every request is answered (or its
 * socket closed) with a documented status, nothing hangs, and the node goes on serving a
 * well-behaved client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { closeAll, startNode, WsClient } from './helpers.ts';

const RUNS = 150;
let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ ipOpenRate: 0 });
});
afterAll(closeAll);

/** fetch that must be answered within 3 s */
async function answered(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(3000) });
  return { status: r.status, body: await r.text() };
}

/** a well-behaved client still gets its echo */
async function stillServes(): Promise<void> {
  const c = await WsClient.open(`${node.ws}/rt/ws`);
  expect((await c.request('echo', 'alive')).args).toEqual(['alive']);
  c.sock.close();
  const s = io(node.url, { transports: ['websocket'], reconnection: false });
  try {
    expect(await s.timeout(3000).emitWithAck('echo', 'alive')).toEqual('alive');
  } finally {
    s.close();
  }
}

/** one WebSocket that gets `messages`; resolves when they are sent and the socket either stays open 50 ms or closes */
async function wsGets(url: string, messages: Array<string | Uint8Array>): Promise<'open' | number> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  await Promise.race([new Promise((r) => ws.once('open', r)), closed]);
  for (const m of messages) if (ws.readyState === WebSocket.OPEN) ws.send(m, { binary: typeof m !== 'string' });
  const outcome = await Promise.race([closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 50))]);
  ws.terminate();
  return outcome;
}

/** Engine.IO packets: valid ones (types 0-6, messages carrying Socket.IO packets), mangled ones, noise */
const eioPacket = fc.oneof(
  fc.constantFrom(
    '2',
    '3',
    '5',
    '6',
    '1',
    '40',
    '40{"token":1}',
    '42["echo","x"]',
    '420["echo",1]',
    '41',
    '43[]',
    '451-["echo",{"_placeholder":true,"num":0}]',
    '4',
    '2probe',
    '3probe',
    '',
  ),
  fc.string({ maxLength: 40 }).map((s) => '4' + s),
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 20 }).map((s) => 'b' + s),
);

describe('Engine.IO at the wire', () => {
  it('long-polling POSTs of any packets are answered ok, 400 or 413, and the node serves on', async () => {
    let sid = '';
    const handshake = async () => {
      const r = await answered(`${node.url}/socket.io/?EIO=4&transport=polling`);
      expect(r.status).toBe(200);
      sid = JSON.parse(r.body.slice(1)).sid;
    };
    await handshake();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(eioPacket, { minLength: 1, maxLength: 6 }), async (packets) => {
        const r = await answered(`${node.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
          method: 'POST',
          body: packets.join('\x1e'),
          headers: { 'content-type': 'text/plain' },
        });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect([200, 400, 413]).toContain(r.status);
        if (r.status === 200) expect(r.body).toBe('ok');
        // a carrier the garbage closed: a new one for the next case
        if (r.status !== 200 || packets.some((p) => !/^[2-6]/.test(p) || p === '41')) await handshake();
      }),
      { numRuns: RUNS },
    );
    expect(statuses.get(200)).toBeGreaterThan(RUNS / 10);
    await stillServes();
  });

  it('WebSocket messages of any packets (text and binary) leave the socket open or close it, and the node serves on', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(eioPacket, fc.uint8Array({ maxLength: 40 })), { minLength: 1, maxLength: 6 }), async (packets) => {
        const outcome = await wsGets(`${node.ws}/socket.io/?EIO=4&transport=websocket`, packets);
        expect(outcome === 'open' || typeof outcome === 'number').toBe(true);
      }),
      { numRuns: RUNS },
    );
    await stillServes();
  });
});

/** SockJS frames: JSON arrays of strings (valid), native frames inside them, mangled JSON, noise */
const sockjsBody = fc.oneof(
  fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }).map((a) => JSON.stringify(a)),
  fc
    .array(
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ type: 'event', event: 'echo', args: [v] })),
      { maxLength: 3 },
    )
    .map((a) => JSON.stringify(a)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
);

describe('SockJS at the wire', () => {
  it('xhr_send bodies of any frames are answered 204 or 500 (broken JSON), and the node serves on', async () => {
    let session = '';
    const open = async () => {
      session = Math.random().toString(36).slice(2, 10);
      const r = await answered(`${node.url}/sockjs/000/${session}/xhr`, { method: 'POST' });
      expect(r).toEqual({ status: 200, body: 'o\n' });
    };
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(sockjsBody, async (body) => {
        await open();
        const r = await answered(`${node.url}/sockjs/000/${session}/xhr_send`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect([204, 500]).toContain(r.status);
      }),
      { numRuns: RUNS },
    );
    expect(statuses.get(204)).toBeGreaterThan(RUNS / 10);
    expect(statuses.get(500)).toBeGreaterThan(0);
    await stillServes();
  });

  it('WebSocket messages of any frames leave the socket open or close it, and the node serves on', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sockjsBody, { minLength: 1, maxLength: 4 }), async (bodies) => {
        const outcome = await wsGets(`${node.ws}/sockjs/000/${Math.random().toString(36).slice(2, 10)}/websocket`, bodies);
        expect(outcome === 'open' || typeof outcome === 'number').toBe(true);
      }),
      { numRuns: RUNS },
    );
    await stillServes();
  });
});

describe('query strings', () => {
  /** a query: known parameters and noise, values with raw %, +, unicode, very long ones */
  const query = fc
    .array(
      fc.tuple(
        fc.constantFrom(
          'sid',
          'token',
          'last',
          'format',
          'auth',
          'EIO',
          'transport',
          'id',
          't',
          'b64',
          'negotiateVersion',
          'useStatefulReconnect',
          'access_token',
          'x',
          '%',
          '',
        ),
        fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.constantFrom('%zz', '%', '+', '-1', '1e400', 'NaN', '99999999999999999999', '4', 'polling', 'websocket', 'msgpack', 'json', 'true'),
          fc.string({ minLength: 500, maxLength: 2000 }),
        ),
        fc.boolean(),
      ),
      { maxLength: 5 },
    )
    .map((ps) => ps.map(([k, v, raw]) => `${k}=${raw ? v.replace(/[#\s]/g, '') : encodeURIComponent(v)}`).join('&'));
  const routes = ['/rt/poll', '/rt/send', '/socket.io/', '/hubs/demo/negotiate', '/hubs/demo', '/sockjs/info', '/healthz', '/readyz'];

  it('every route answers any query with a status below 600 within 3 s, and the node serves on', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), query, fc.constantFrom('GET', 'POST'), async (route, q, method) => {
        const r = await answered(`${node.url}${route}?${q}`, { method, body: method === 'POST' ? '[]' : undefined });
        statuses.add(r.status);
        expect(r.status).toBeGreaterThanOrEqual(200);
        expect(r.status).toBeLessThan(600);
        expect(r.status).not.toBe(500);
      }),
      { numRuns: RUNS * 2 },
    );
    // the queries reach the accepting paths too
    expect([...statuses].some((s) => s < 300)).toBe(true);
    expect([...statuses].some((s) => s >= 400)).toBe(true);
    await stillServes();
  });
});
