import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSource } from 'eventsource';
import { pack, unpack } from 'msgpackr';
import { closeAll, http, send, startNode, until, WsClient, type Frame } from './helpers.ts';

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode();
});
afterAll(closeAll);

describe('WebSocket /rt/ws', () => {
  it('opens with sid, token and pingMs, and echoes with and without an ack', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    expect(c.open).toMatchObject({ type: 'open', pingMs: 25000, last: 0 });
    expect(c.open.sid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(c.open.token).toContain('.');
    c.emit('echo', 'a', 1, { b: [2] });
    const ev = await c.next((f) => f.type === 'event' && f.event === 'echo');
    expect(ev).toEqual({ type: 'event', seq: 1, event: 'echo', args: ['a', 1, { b: [2] }] });
    const reply = await c.request('echo', 'x');
    expect(reply).toEqual({ type: 'reply', seq: 2, ack: 1, args: ['x'] });
    c.sock.close();
  });

  it('speaks msgpack when asked', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws?format=msgpack`);
    expect(c.open.type).toBe('open');
    c.sock.send(pack({ type: 'event', event: 'echo', args: [new Uint8Array([1, 2, 3]), 'z'], ack: 'k' }));
    const reply = await c.next((f) => f.type === 'reply');
    expect(reply.ack).toBe('k');
    expect(Buffer.from(reply.args[0])).toEqual(Buffer.from([1, 2, 3]));
    expect(reply.args[1]).toBe('z');
    c.sock.close();
  });

  it('replies with an error when the app handler throws', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const r = await c.request('no-such-event');
    expect(r.error).toMatch(/unknown event/);
    expect(r.args).toBeUndefined();
    c.sock.close();
  });

  it('tells the app who the client is, without the transport leaking into the model', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws?room=x`);
    const r = await c.request('whoami');
    expect(r.args[0]).toEqual({ sid: c.open.sid, client: 'native', transport: 'websocket', ip: '127.0.0.1' });
    c.sock.close();
  });
});

/** Reads an SSE stream with the real `eventsource` client */
function sse(url: string): { es: EventSource; frames: Frame[]; ids: string[] } {
  const es = new EventSource(url);
  const frames: Frame[] = [];
  const ids: string[] = [];
  es.onmessage = (m) => {
    frames.push(JSON.parse(m.data));
    ids.push(m.lastEventId);
  };
  return { es, frames, ids };
}

describe('SSE /rt/sse + POST /rt/send', () => {
  it('opens, carries seq as the event id, and echoes events posted upstream', async () => {
    const s = sse(`${node.url}/rt/sse`);
    const open = await until(() => s.frames.find((f) => f.type === 'open'));
    const r = await send(node.url, open.sid, open.token, [
      { type: 'event', event: 'echo', args: ['one'] },
      { type: 'event', event: 'echo', args: ['two'], ack: 5 },
    ]);
    expect(r.status).toBe(204);
    await until(() => (s.frames.length >= 3 ? true : undefined));
    expect(s.frames.slice(1)).toEqual([
      { type: 'event', seq: 1, event: 'echo', args: ['one'] },
      { type: 'reply', seq: 2, ack: 5, args: ['two'] },
    ]);
    expect(s.ids.slice(1)).toEqual(['1', '2']);
    s.es.close();
  });

  it('answers with a text/event-stream and no-buffering headers', async () => {
    const ac = new AbortController();
    const r = await fetch(`${node.url}/rt/sse`, { signal: ac.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(r.headers.get('x-accel-buffering')).toBe('no');
    ac.abort();
  });
});

describe('long-polling /rt/poll + POST /rt/send', () => {
  it('opens with [open], answers held polls when frames arrive, and echoes', async () => {
    const first = await http(`${node.url}/rt/poll`);
    expect(first.status).toBe(200);
    expect(first.body).toHaveLength(1);
    const open = first.body[0];
    expect(open.type).toBe('open');
    const q = `sid=${open.sid}&token=${encodeURIComponent(open.token)}`;
    const held = http(`${node.url}/rt/poll?${q}&last=0`);
    // the poll is held: nothing to send yet. Posting an event answers it.
    await until(() => (node.gateway.sessions.get(open.sid)?.conn ? true : undefined));
    expect((await send(node.url, open.sid, open.token, [{ type: 'event', event: 'echo', args: [42] }])).status).toBe(204);
    const got = await held;
    expect(got.body).toEqual([{ type: 'event', seq: 1, event: 'echo', args: [42] }]);
    // a poll with the same `last` again gets the same frame again (a lost answer is asked for again)
    expect((await http(`${node.url}/rt/poll?${q}&last=0`)).body).toEqual(got.body);
  });

  it('answers an idle poll with [] after pollTimeoutMs', async () => {
    const quick = await startNode({ pollTimeoutMs: 200 });
    const open = (await http(`${quick.url}/rt/poll`)).body[0];
    const t0 = Date.now();
    const r = await http(`${quick.url}/rt/poll?sid=${open.sid}&token=${encodeURIComponent(open.token)}&last=0`);
    expect(r.body).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it('speaks msgpack when asked', async () => {
    const r = await fetch(`${node.url}/rt/poll?format=msgpack`);
    expect(r.headers.get('content-type')).toBe('application/msgpack');
    const [open] = unpack(Buffer.from(await r.arrayBuffer())) as Frame[];
    expect(open.type).toBe('open');
    const q = `sid=${open.sid}&token=${encodeURIComponent(open.token)}`;
    const post = await fetch(`${node.url}/rt/send?${q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/msgpack' },
      body: new Uint8Array(pack([{ type: 'event', event: 'echo', args: ['m'], ack: 1 }])),
    });
    expect(post.status).toBe(204);
    const p = await fetch(`${node.url}/rt/poll?${q}&last=0&format=msgpack`);
    expect(unpack(Buffer.from(await p.arrayBuffer()))).toEqual([{ type: 'reply', seq: 1, ack: 1, args: ['m'] }]);
  });

  it('ends the session on {"type":"close"} and tells a late poll why', async () => {
    const open = (await http(`${node.url}/rt/poll`)).body[0];
    const q = `sid=${open.sid}&token=${encodeURIComponent(open.token)}`;
    expect((await send(node.url, open.sid, open.token, [{ type: 'close' }])).status).toBe(204);
    expect(node.gateway.sessions.has(open.sid)).toBe(false);
    const late = await http(`${node.url}/rt/poll?${q}&last=0`);
    expect(late.body).toEqual([{ type: 'close', code: 1000, reason: 'client closed' }]);
  });
});
