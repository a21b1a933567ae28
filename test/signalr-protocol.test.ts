/**
 * The SignalR dialect byte for byte: negotiate, the transports' status codes and long-polling
 * rules (TransportProtocols.md), the handshake and each hub message in both encodings
 * (HubProtocol.md), with raw HTTP and WebSockets: what the real client hides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Packr, pack } from 'msgpackr';
import { closeAll, http, startNode, unframeMsgpack, until } from './helpers.ts';
import type { App } from '../cluster/app.ts';
import { HubProtocolError, hubProtocols } from '../transports/dialects/signalr/codec.ts';

const RS = '\x1e';
let base: string;
let wsBase: string;
const closed: string[] = [];

const app: App = {
  open(session) {
    if (session.meta.query.deny) throw new Error('go away');
  },
  async event(session, event, args, reply) {
    switch (event) {
      case 'echo':
        return reply?.(...args);
      case 'void':
        return reply?.();
      case 'fail':
        throw new Error('it failed');
      case 'push':
        return session.emit('pushed', ...args);
      case 'ask': {
        const [a] = await session.request('question', args[0]);
        return reply?.(a);
      }
      case 'auth':
        return reply?.(session.meta.auth);
      case 'buffer':
        return reply?.(Buffer.from([1, 2, 3]));
      case 'big':
        for (let i = 0; i < 6; i++) session.emit('chunk', i, 'x'.repeat(100_000));
        return;
    }
  },
  close(session) {
    closed.push(session.sid);
  },
};

let gateway: Awaited<ReturnType<typeof startNode>>['gateway'];
beforeAll(async () => {
  const node = await startNode({ app, pollTimeoutMs: 400, signalr: { keepAliveMs: 300 } });
  gateway = node.gateway;
  base = `${node.url}/hubs/demo`;
  wsBase = `${node.ws}/hubs/demo`;
});
afterAll(closeAll);

async function negotiate(query = 'negotiateVersion=1', init: RequestInit = {}): Promise<{ status: number; body: any }> {
  return http(`${base}/negotiate?${query}`, { method: 'POST', ...init });
}

async function raw(
  method: string,
  query: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; text: string; bytes: Buffer }> {
  const res = await fetch(`${base}?${query}`, { method, body: body as BodyInit | undefined, headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type'), text: bytes.toString(), bytes };
}

/** A raw WebSocket recording messages (text as strings, binary as Buffers) */
class Socket {
  readonly got: Array<string | Buffer> = [];
  closed: number | null = null;
  refused: number | null = null;
  readonly ws: WebSocket;
  constructor(query: string) {
    this.ws = new WebSocket(`${wsBase}${query ? '?' + query : ''}`);
    this.ws.on('message', (d: Buffer, binary) => this.got.push(binary ? d : d.toString()));
    this.ws.on('close', (c) => (this.closed = c));
    this.ws.on('unexpected-response', (_q, res) => {
      this.refused = res.statusCode ?? 0;
      this.closed = 1006;
    });
    this.ws.on('error', () => {});
  }
  async opened(): Promise<void> {
    await until(() => (this.ws.readyState === WebSocket.OPEN || this.closed !== null ? true : undefined));
  }
  send(m: string | Buffer): void {
    this.ws.send(m);
  }
  /** the messages (records) so far, JSON ones parsed */
  records(): unknown[] {
    return this.got.flatMap((m) =>
      typeof m === 'string'
        ? m
            .split(RS)
            .filter(Boolean)
            .map((r) => JSON.parse(r))
        : [m],
    );
  }
  async record(pred: (r: any) => boolean, timeout = 3000): Promise<any> {
    return until(() => this.records().find(pred), timeout);
  }
}

/** A negotiated WebSocket connection with the JSON protocol, handshaken */
async function jsonSocket(): Promise<Socket> {
  const n = await negotiate();
  const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
  await s.opened();
  s.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
  await until(() => (s.got[0] === '{}' + RS ? true : undefined));
  return s;
}

/** MessagePack records from binary messages: VarInt length, then the array */
const unframe = unframeMsgpack;

function frame(a: unknown[]): Buffer {
  const body = pack(a);
  return Buffer.concat([Buffer.from([body.length]), body]);
}

describe('negotiate', () => {
  it('version 1: ids, the token, the three transports and their formats; no stateful reconnect unless asked', async () => {
    const n = await negotiate();
    expect(n.status).toBe(200);
    expect(Object.keys(n.body).sort()).toEqual(['availableTransports', 'connectionId', 'connectionToken', 'negotiateVersion']);
    expect(n.body.negotiateVersion).toBe(1);
    expect(n.body.connectionToken.startsWith(n.body.connectionId + '.')).toBe(true);
    expect(n.body.availableTransports).toEqual([
      { transport: 'WebSockets', transferFormats: ['Text', 'Binary'] },
      { transport: 'ServerSentEvents', transferFormats: ['Text'] },
      { transport: 'LongPolling', transferFormats: ['Text', 'Binary'] },
    ]);
    const stateful = await negotiate('negotiateVersion=1&useStatefulReconnect=true');
    expect(stateful.body.useStatefulReconnect).toBe(true);
  });

  it('version 0: no connectionToken; the connectionId is the id', async () => {
    const n = await negotiate('negotiateVersion=0');
    expect(n.body.connectionToken).toBeUndefined();
    expect(n.body.negotiateVersion).toBe(0);
    expect((await raw('GET', `id=${encodeURIComponent(n.body.connectionId)}`)).status).toBe(200);
  });

  it("the app's refusal: 401 with its message", async () => {
    const n = await http(`${base}/negotiate?negotiateVersion=1&deny=1`, { method: 'POST' });
    expect(n.status).toBe(401);
    expect(n.body).toBe('go away');
  });

  it('access_token in the query or a bearer token reaches the app as meta.auth', async () => {
    for (const [query, headers] of [
      ['negotiateVersion=1&access_token=tok-q', {}],
      ['negotiateVersion=1', { authorization: 'Bearer tok-h' }],
    ] as const) {
      const n = await negotiate(query, { headers });
      const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
      await s.opened();
      s.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 1, invocationId: '1', target: 'auth', arguments: [] }) + RS);
      expect((await s.record((r) => r.type === 3)).result).toBe(query.includes('tok-q') ? 'tok-q' : 'tok-h');
      s.ws.close();
    }
  });
});

describe('WebSockets transport', () => {
  it('an unknown id gets 404 "No Connection with that ID"; a second socket 409', async () => {
    const unknown = new Socket('id=nope.nope.nope');
    await until(() => unknown.refused ?? undefined);
    expect(unknown.refused).toBe(404);
    const n = await negotiate();
    const first = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
    await first.opened();
    const second = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
    await until(() => second.refused ?? undefined);
    expect(second.refused).toBe(409);
    expect(first.closed).toBeNull();
  });

  it('the handshake: an unknown protocol or version gets an error, and the socket closes', async () => {
    for (const h of [
      { protocol: 'xml', version: 1 },
      { protocol: 'json', version: 99 },
    ]) {
      const n = await negotiate();
      const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
      await s.opened();
      s.send(JSON.stringify(h) + RS);
      const r = await s.record((x) => 'error' in x);
      expect(typeof r.error).toBe('string');
      await until(() => s.closed ?? undefined);
    }
  });

  it('JSON: Invocation with and without an id, Completion with a result, void, or an error; server Invocation; client results', async () => {
    const s = await jsonSocket();
    s.send(JSON.stringify({ type: 1, invocationId: '7', target: 'Echo', arguments: ['x', 1] }) + RS);
    expect(await s.record((r) => r.type === 3 && r.invocationId === '7')).toEqual({ type: 3, invocationId: '7', result: 'x' });
    s.send(JSON.stringify({ type: 1, invocationId: '8', target: 'void', arguments: [] }) + RS);
    expect(await s.record((r) => r.type === 3 && r.invocationId === '8')).toEqual({ type: 3, invocationId: '8' });
    s.send(JSON.stringify({ type: 1, invocationId: '9', target: 'fail', arguments: [] }) + RS);
    expect(await s.record((r) => r.type === 3 && r.invocationId === '9')).toEqual({ type: 3, invocationId: '9', error: 'it failed' });
    // send (no id): no Completion; the server's Invocation has no id either
    s.send(JSON.stringify({ type: 1, target: 'push', arguments: ['p'] }) + RS);
    expect(await s.record((r) => r.type === 1 && r.target === 'pushed')).toEqual({ type: 1, target: 'pushed', arguments: ['p'] });
    // a server request: an Invocation with an id, answered by the client's Completion
    s.send(JSON.stringify({ type: 1, invocationId: '10', target: 'ask', arguments: [5] }) + RS);
    const q = await s.record((r) => r.type === 1 && r.target === 'question');
    expect(typeof q.invocationId).toBe('string');
    s.send(JSON.stringify({ type: 3, invocationId: q.invocationId, result: 50 }) + RS);
    expect(await s.record((r) => r.type === 3 && r.invocationId === '10')).toEqual({ type: 3, invocationId: '10', result: 50 });
  });

  it('StreamInvocation and client-to-server streams get an error Completion, never silence', async () => {
    const s = await jsonSocket();
    s.send(JSON.stringify({ type: 4, invocationId: '1', target: 'Counter', arguments: [3] }) + RS);
    expect((await s.record((r) => r.type === 3 && r.invocationId === '1')).error).toMatch(/Streaming is not supported/);
    s.send(JSON.stringify({ type: 1, invocationId: '2', target: 'Upload', arguments: [], streamIds: ['s1'] }) + RS);
    expect((await s.record((r) => r.type === 3 && r.invocationId === '2')).error).toMatch(/Streaming is not supported/);
  });

  it('Ping at least every keep-alive interval (here 300 ms)', async () => {
    const s = await jsonSocket();
    const t = Date.now();
    await s.record((r) => r.type === 6, 2000);
    expect(Date.now() - t).toBeLessThan(1000);
  });

  it("a client's Close ends the session", async () => {
    const n = await negotiate();
    const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
    await s.opened();
    s.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 7 }) + RS);
    await until(() => (closed.includes(n.body.connectionId) ? true : undefined));
  });

  it('a message that is not a hub message closes the connection with a Close (no reconnect)', async () => {
    const s = await jsonSocket();
    s.send('{"type":1,"target":5}' + RS);
    const c = await s.record((r) => r.type === 7);
    expect(c.allowReconnect).toBeUndefined();
    await until(() => s.closed ?? undefined);
  });

  it('MessagePack: the handshake answered in binary, the array layouts, Completion result kinds, Ping exactly 0x91 0x06', async () => {
    const n = await negotiate();
    const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
    await s.opened();
    s.send(JSON.stringify({ protocol: 'messagepack', version: 1 }) + RS);
    await until(() => (s.got.length > 0 ? true : undefined));
    expect(Buffer.isBuffer(s.got[0])).toBe(true);
    expect((s.got[0] as Buffer).toString()).toBe('{}' + RS);
    const records = () => s.got.slice(1).flatMap((m) => unframe(m as Buffer));
    s.send(frame([1, {}, '1', 'echo', [new Uint8Array([1, 2]), 'x'], []]));
    s.send(frame([1, {}, '2', 'void', [], []]));
    s.send(frame([1, {}, '3', 'fail', [], []]));
    const done = await until(() => {
      const c = records().filter((r) => r[0] === 3);
      return c.length === 3 ? c : undefined;
    });
    expect(done[0]).toEqual([3, {}, '1', 3, Buffer.from([1, 2])]);
    expect(done[1]).toEqual([3, {}, '2', 2]);
    expect(done[2]).toEqual([3, {}, '3', 1, 'it failed']);
    const ping = await until(() => s.got.slice(1).find((m) => (m as Buffer).equals(Buffer.from([0x02, 0x91, 0x06]))));
    expect(ping).toBeDefined();
  });
});

describe('MessagePack hub messages: plain values only', () => {
  const decode = (body: Uint8Array) => hubProtocols.messagepack.decode(Buffer.concat([Buffer.from([body.length]), body]));
  // [1, {}, "1", "Echo", [<the 64-bit integer>], []]
  const withInt64 = (b: number[]) => Buffer.from([0x96, 0x01, 0x80, 0xa1, 0x31, 0xa4, ...Buffer.from('Echo'), 0x91, ...b, 0x90]);

  it('64-bit integers: exact ones are numbers, one past 2^53 is refused (it was rounded)', () => {
    expect(decode(withInt64([0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))[0]!.arguments).toEqual([2 ** 53 - 1]);
    expect(decode(withInt64([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]))[0]!.arguments).toEqual([-2]);
    expect(() => decode(withInt64([0xcf, 0, 0x20, 0, 0, 0, 0, 0, 1]))).toThrow(HubProtocolError);
    expect(() => decode(withInt64([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]))).toThrow(HubProtocolError);
  });

  it('shared references and other extensions (a timestamp too) are a protocol error', () => {
    const shared = { a: [1] };
    expect(() => decode(new Packr({ structuredClone: true, useRecords: false }).pack([1, {}, '1', 'Echo', [shared, shared], []]))).toThrow(HubProtocolError);
    expect(() => decode(pack([1, {}, '1', 'Echo', [new Date(1)], []]))).toThrow(HubProtocolError);
    expect(decode(pack([1, {}, '1', 'Echo', ['x', new Uint8Array([1])], []]))[0]).toMatchObject({ target: 'Echo', arguments: ['x', Buffer.from([1])] });
  });
});

describe('long-polling', () => {
  it('without an id 400; an unknown id 404', async () => {
    expect((await raw('GET', '')).status).toBe(400);
    expect((await raw('GET', 'id=nope.no.pe')).status).toBe(404);
    expect((await raw('POST', 'id=nope.no.pe', 'x')).status).toBe(404);
  });

  it('the first GET at once and empty; later GETs held, empty on timeout; a new GET ends the older one with 204', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    const first = await raw('GET', q);
    expect(first).toMatchObject({ status: 200, text: '' });
    expect((await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS)).status).toBe(200);
    expect((await raw('GET', q)).text).toBe('{}' + RS);
    const t = Date.now();
    expect(await raw('GET', q)).toMatchObject({ status: 200, text: '' });
    expect(Date.now() - t).toBeGreaterThan(300);
    const older = raw('GET', q);
    await new Promise((r) => setTimeout(r, 50));
    const newer = raw('GET', q);
    expect((await older).status).toBe(204);
    expect((await newer).status).toBe(200);
  });

  it('messages come in the held poll; DELETE closes: the held poll gets 204, and so does the next', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    await raw('GET', q);
    const held = raw('GET', q);
    await raw('POST', q, JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['lp'] }) + RS);
    expect((await held).text).toBe(JSON.stringify({ type: 3, invocationId: '1', result: 'lp' }) + RS);
    const next = raw('GET', q);
    await new Promise((r) => setTimeout(r, 50));
    expect((await raw('DELETE', q)).status).toBe(202);
    expect((await next).status).toBe(204);
    expect((await raw('GET', q)).status).toBe(204);
    await until(() => (closed.includes(n.body.connectionId) ? true : undefined));
  });

  it('a POST whose messages meet an internal error gets 500, not 200, and the connection ends with a Close that lets the client reconnect', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    expect((await raw('GET', q)).text).toBe('{}' + RS);
    // a bug of ours, injected into this node: handling the invocation `boom` throws
    const deliver = gateway.deliver;
    gateway.deliver = function (this: typeof gateway, s, f) {
      if (f.type === 'event' && f.event === 'boom') throw new Error('injected');
      return deliver.call(this, s, f);
    };
    try {
      const post = await raw('POST', q, JSON.stringify({ type: 1, invocationId: '1', target: 'boom', arguments: [] }) + RS);
      expect(post.status).toBe(500);
      const last = await raw('GET', q);
      expect(last.text).toBe(JSON.stringify({ type: 7, error: 'Server closed the connection: SY_ERR_INTERNAL', allowReconnect: true }) + RS);
      await until(() => (closed.includes(n.body.connectionId) ? true : undefined));
    } finally {
      gateway.deliver = deliver;
    }
  });

  it('a POST while another is in flight gets 409, and the connection stays', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    // a POST whose body is still coming
    const { request } = await import('node:http');
    const u = new URL(`${base}?${q}`);
    const slow = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers: { 'content-length': '1000' } });
    slow.on('error', () => {});
    slow.write('{');
    await new Promise((r) => setTimeout(r, 100));
    expect((await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS)).status).toBe(409);
    slow.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS)).status).toBe(200);
    expect((await raw('GET', q)).text).toBe('{}' + RS);
  });

  it('MessagePack over long-polling: binary bodies, length-prefixed', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    await raw('POST', q, JSON.stringify({ protocol: 'messagepack', version: 1 }) + RS);
    expect((await raw('GET', q)).text).toBe('{}' + RS);
    await raw('POST', q, frame([1, {}, '1', 'echo', ['mp'], []]));
    expect(unframe((await raw('GET', q)).bytes)).toEqual([[3, {}, '1', 3, 'mp']]);
  });
});

describe('Server-Sent Events', () => {
  it('headers and a first chunk at once, then data: lines; messages upstream by POST', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    const res = await fetch(`${base}?${q}`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = async (want: string) => {
      while (!text.includes(want)) text += Buffer.from((await reader.read()).value!).toString();
    };
    await read(':\r\n\r\n');
    await raw(
      'POST',
      q,
      JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 1, invocationId: '1', target: 'echo', arguments: ['sse'] }) + RS,
    );
    await read('"result":"sse"');
    expect(text).toContain('data: {}' + RS + '\r\n\r\n');
    expect(text).toContain('data: ' + JSON.stringify({ type: 3, invocationId: '1', result: 'sse' }) + RS + '\r\n\r\n');
    await reader.cancel();
  });
});

describe('what review found', () => {
  it('a failed handshake ends the session (the app hears of it)', async () => {
    const n = await negotiate();
    const s = new Socket(`id=${encodeURIComponent(n.body.connectionToken)}`);
    await s.opened();
    s.send(JSON.stringify({ protocol: 'xml', version: 1 }) + RS);
    await until(() => (closed.includes(n.body.connectionId) ? true : undefined));
  });

  it('a long-polling client that never handshakes is reaped after the client timeout', async () => {
    const node = await startNode({ app, signalr: { clientTimeoutMs: 300, keepAliveMs: 300 } });
    const n = await http(`${node.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    expect((await fetch(`${node.url}/hubs/demo?id=${encodeURIComponent(n.body.connectionToken)}`)).status).toBe(200);
    await until(() => (closed.includes(n.body.connectionId) ? true : undefined), 3000);
  });

  it('a Buffer reaches a JSON client as base64', async () => {
    const s = await jsonSocket();
    s.send(JSON.stringify({ type: 1, invocationId: '1', target: 'buffer', arguments: [] }) + RS);
    expect((await s.record((r) => r.type === 3)).result).toBe(Buffer.from([1, 2, 3]).toString('base64'));
  });

  it("an ended long-polling connection's last answer is for its token only", async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    expect((await raw('DELETE', q)).status).toBe(202);
    const forged = `id=${encodeURIComponent(n.body.connectionId + '.someone.else')}`;
    expect((await raw('GET', forged)).status).toBe(404);
    expect((await raw('GET', q)).status).toBe(204);
  });

  it('negotiate without a version answers version 0', async () => {
    const n = await negotiate('');
    expect(n.body.negotiateVersion).toBe(0);
    expect(n.body.connectionToken).toBeUndefined();
  });

  it('MessagePack over Server-Sent Events is refused at the handshake', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    const res = await fetch(`${base}?${q}`, { headers: { accept: 'text/event-stream' } });
    const reader = res.body!.getReader();
    let text = '';
    await raw('POST', q, JSON.stringify({ protocol: 'messagepack', version: 1 }) + RS);
    while (!text.includes('"error"')) text += Buffer.from((await reader.read()).value!).toString();
    expect(text).toMatch(/binary transport/);
    await reader.cancel();
  });

  it("skipNegotiation: the app's refusal is the handshake's error", async () => {
    const s = new Socket('deny=1');
    await s.opened();
    s.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    expect((await s.record((r) => 'error' in r)).error).toBe('go away');
  });

  it('a large backlog goes out over several polls, in order', async () => {
    const n = await negotiate();
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    await raw('GET', q);
    await raw('POST', q, JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    await raw('GET', q);
    await raw('POST', q, JSON.stringify({ type: 1, target: 'big', arguments: [] }) + RS);
    const chunks: number[] = [];
    let polls = 0;
    while (chunks.length < 6) {
      const body = (await raw('GET', q)).text;
      polls++;
      for (const r of body.split(RS).filter(Boolean)) {
        const m = JSON.parse(r);
        if (m.target === 'chunk') chunks.push(m.arguments[0]);
      }
    }
    expect(chunks).toEqual([0, 1, 2, 3, 4, 5]);
    expect(polls).toBeGreaterThan(1);
  });
});

describe('a slow reader over WebSockets', () => {
  it('is ended with a Close it gets before the socket ends (the Close waits for the full send buffer to drain)', async () => {
    const node = await startNode({
      app: {
        event(session, event) {
          if (event === 'flood') for (let i = 0; i < 400; i++) session.emit('chunk', i, 'y'.repeat(16 * 1024));
        },
      },
      outboxMaxFrames: 64,
      wsHighWaterBytes: 64 * 1024,
    });
    const ws = new WebSocket(`${node.ws}/hubs/demo`);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    await until(() => (got.length > 0 ? true : undefined));
    expect(node.gateway.sessions.size).toBe(1);
    // it stops reading; the app writes far more than the socket's buffer and the outbox hold
    (ws as any)._socket.pause();
    ws.send(JSON.stringify({ type: 1, target: 'flood', arguments: [] }) + RS);
    await until(() => (node.gateway.sessions.size === 0 ? true : undefined), 20_000);
    const ended = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    (ws as any)._socket.resume();
    await ended;
    const records = got
      .join('')
      .split(RS)
      .filter(Boolean)
      .map((r) => JSON.parse(r));
    expect(records.at(-1)).toEqual({ type: 7, error: 'Server closed the connection: SY_ERR_SLOW_CONSUMER', allowReconnect: true });
  });
});
