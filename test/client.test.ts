/** The native client (client/switchyard.js) in Node against a real gateway, over each transport. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { pack, unpack } from 'msgpackr';
import { connect } from '../client/switchyard.js';
import { closeAll, startNode } from './helpers.ts';

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
    const c = connect(node.url, { ...base, transports: ['websocket'], format: 'msgpack', msgpack: { encode: (v: unknown) => pack(v), decode: (b: Uint8Array) => unpack(b) } });
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
