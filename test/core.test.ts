/**
 * The protocol-neutral core through its port, with a small test dialect: carriers with several
 * sessions, binary args, and what crosses from one wire or format to another.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeAll, startNode, WsClient } from './helpers.ts';
import { encodeBatch, nativeCodecs } from '../transports/dialects/native/codec.ts';
import { Exchange } from '../transports/wires/http.ts';
import { StreamConnection, type StreamFramer } from '../transports/wires/stream.ts';
import { PollConnection, type PollFramer } from '../transports/wires/poll.ts';
import type { Carrier, Connection, OpenInfo, PortSession } from '../transports/seam/port.ts';
import type { App } from '../cluster/app.ts';
import type { SessionMeta } from '../cluster/types.ts';

/** the test dialect's carrier: counts its pings */
class TestCarrier implements Carrier {
  pingRound = 0;
  pings = 0;
  ping(): void {
    this.pings++;
  }
}

/** one session on a test carrier: records what it is given to write, decoded */
class TestConn implements Connection {
  readonly transport = 'websocket' as const;
  session: PortSession | null = null;
  readonly got: Array<Record<string, any>> = [];
  opened: OpenInfo[] = [];
  ended: { code: number; reason: string } | null = null;
  dropped = false;
  /** the wire takes nothing while blocked (a full socket) */
  blocked = false;
  constructor(readonly carrier: Carrier) {}
  sendOpen(_s: PortSession, info: OpenInfo): void {
    this.opened.push(info);
  }
  flush(s: PortSession): void {
    while (!this.blocked && s.sent < s.outbox.last) {
      const seq = ++s.sent;
      this.got.push(JSON.parse(nativeCodecs.json.encode(seq, s.outbox.get(seq)!) as string));
    }
  }
  end(_s: PortSession, code: number, reason: string): void {
    this.ended = { code, reason };
  }
  drop(): void {
    this.dropped = true;
  }
  restart(): void {}
  fail(): void {}
}

const meta: SessionMeta = { ip: '127.0.0.1', origin: '', userAgent: 'test', query: {}, auth: { token: 'an object' }, dialect: 'test' };
const opens: string[] = [];
const closes: string[] = [];

const app: App = {
  open(s) {
    opens.push(s.sid);
  },
  event(s, event, args, reply) {
    if (event === 'ask')
      return void s.request('question', ...args).then(
        (a) => reply?.('answered', ...a),
        (e: Error) => reply?.('failed', e.message),
      );
    if (event === 'bytes') s.emit('bytes', new Uint8Array([1, 2, 3]), 'x');
    else if (event === 'meta') reply?.(s.meta.dialect, s.meta.auth);
    else if (reply) reply(...args);
    else s.emit(event, ...args);
  },
  close(s) {
    closes.push(s.sid);
  },
};

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ app, requestTimeoutMs: 300 });
});
afterAll(closeAll);

const echo = (text: string) => ({ type: 'event' as const, event: 'echo', args: [text] });

describe('carriers', () => {
  it('one carrier holds two sessions, each with its own open, outbox and close; it is pinged once per round', async () => {
    const port = node.gateway;
    const carrier = new TestCarrier();
    const c1 = new TestConn(carrier);
    const c2 = new TestConn(carrier);
    const s1 = (c1.session = port.open('websocket', meta, c1));
    const s2 = (c2.session = port.open('websocket', meta, c2));
    expect(opens).toEqual(expect.arrayContaining([s1.sid, s2.sid]));
    expect([c1.opened.length, c2.opened.length]).toEqual([1, 1]);
    port.deliver(s1, echo('one'));
    port.deliver(s2, echo('two'));
    port.deliver(s2, echo('three'));
    expect(c1.got).toEqual([{ type: 'event', seq: 1, event: 'echo', args: ['one'] }]);
    expect(c2.got.map((f) => [f.seq, f.args[0]])).toEqual([
      [1, 'two'],
      [2, 'three'],
    ]);
    port.heartbeat();
    expect(carrier.pings).toBe(1);
    // one session of the carrier ends; the other goes on
    port.deliver(s1, { type: 'close' });
    expect(c1.ended).toEqual({ code: 1000, reason: 'client closed' });
    expect(closes).toContain(s1.sid);
    expect(closes).not.toContain(s2.sid);
    port.deliver(s2, echo('four'));
    expect(c2.got.at(-1)).toMatchObject({ seq: 3, args: ['four'] });
    port.heartbeat();
    expect(carrier.pings).toBe(2);
  });
});

describe('the app API seen from every client kind', () => {
  it('meta says which dialect, and auth may be an object', () => {
    const c = new TestConn(new TestCarrier());
    const s = (c.session = node.gateway.open('websocket', meta, c));
    node.gateway.deliver(s, { type: 'event', event: 'meta', args: [], ack: 1 });
    expect(c.got.at(-1)).toMatchObject({ type: 'reply', ack: 1, args: ['test', { token: 'an object' }] });
  });

  it('binary args an app emits reach a msgpack client as bytes, and a JSON client as base64', async () => {
    const m = await WsClient.open(`${node.ws}/rt/ws?format=msgpack`);
    m.emit('bytes');
    const got = await m.next((f) => f.event === 'bytes');
    expect(new Uint8Array(got.args[0])).toEqual(new Uint8Array([1, 2, 3]));
    expect(got.args[1]).toBe('x');
    const j = await WsClient.open(`${node.ws}/rt/ws`);
    j.emit('bytes');
    expect((await j.next((f) => f.event === 'bytes')).args).toEqual(['AQID', 'x']);
    m.sock.close();
    j.sock.close();
  });
});

describe('delivery modes', () => {
  it('written = delivered: a wire that acknowledges what it wrote frees it; a later replay of it is reported lost', () => {
    const port = node.gateway;
    const c = new TestConn(new TestCarrier());
    const s = (c.session = port.open('polling', meta, c));
    for (const t of ['a', 'b', 'c']) port.deliver(s, echo(t));
    port.acknowledge(s, s.sent);
    expect(node.gateway.sessions.get(s.sid)!.outbox.size).toBe(0);
    // a client of such a dialect never asks for a replay; if one did, it is told nothing is held
    const again = new TestConn(new TestCarrier());
    expect(port.attach(s, again, 1, true)).toBe(false);
    port.deliver(s, echo('d'));
    expect(again.got.map((f) => [f.seq, f.args[0]])).toEqual([[4, 'd']]);
  });

  it('a cursor acknowledges too: entries up to `last` are freed when a connection attaches with it', () => {
    const port = node.gateway;
    const c = new TestConn(new TestCarrier());
    const s = (c.session = port.open('polling', meta, c));
    for (const t of ['a', 'b', 'c']) port.deliver(s, echo(t));
    const again = new TestConn(new TestCarrier());
    expect(port.attach(s, again, 2, true)).toBe(true);
    expect(node.gateway.sessions.get(s.sid)!.outbox.first).toBe(3);
    expect(again.got.map((f) => f.seq)).toEqual([3]);
  });
});

describe('session.request', () => {
  it('times out when the client does not answer; a late answer is ignored', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const r = c.request('ask', 'anyone?');
    const q = await c.next((f) => f.event === 'question');
    expect((await r).args).toEqual(['failed', 'no answer to request "question" within 300 ms']);
    c.send({ type: 'reply', ack: q.ack, args: ['too late'] });
    expect((await c.request('echo', 'still here')).args).toEqual(['still here']);
    c.sock.close();
  });

  it("an error answer rejects the request with the client's message", async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const r = c.request('ask', 'x');
    const q = await c.next((f) => f.event === 'question');
    c.send({ type: 'reply', ack: q.ack, error: 'I would rather not' });
    expect((await r).args).toEqual(['failed', 'I would rather not']);
    c.sock.close();
  });
});

describe('HTTP wires take a framer', () => {
  it('a stream writes its prelude first and ends after rotateBytes; the session lives on for the next one', async () => {
    const framer: StreamFramer = {
      headers: { 'Content-Type': 'text/plain' },
      prelude: 'h'.repeat(16) + '\n',
      open: (f) => `o ${f as string}\n`,
      entry: (seq, f) => `${seq} ${f as string}\n`,
      control: (f) => `c ${f as string}\n`,
      rotateBytes: 400,
    };
    const port = node.gateway;
    let session: PortSession | null = null;
    port.app.get('/test/stream', (res) => {
      const c = new StreamConnection(port, new Exchange(res, ''), nativeCodecs.json, framer, 'sse');
      if (session === null) session = c.session = port.open('sse', meta, c);
      else {
        c.session = session;
        port.attach(session, c, session.sent, false);
      }
    });
    const first = fetch(`${node.url}/test/stream`).then((r) => r.text());
    await vi.waitFor(() => expect((session as PortSession | null)?.conn).toBeTruthy());
    for (let i = 0; i < 10; i++) port.deliver(session!, echo('y'.repeat(30)));
    const body = await first; // ended by the rotation
    expect(body.startsWith(framer.prelude + 'o {"type":"open"')).toBe(true);
    const seqs = body
      .split('\n')
      .filter((l) => /^\d+ /.test(l))
      .map((l) => Number(l.split(' ')[0]));
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs.length).toBeLessThan(10);
    expect(node.gateway.sessions.has(session!.sid)).toBe(true);
    // the next stream continues where the last one stopped
    const next = fetch(`${node.url}/test/stream`).then((r) => r.text());
    const rest = (await next)
      .split('\n')
      .filter((l) => /^\d+ /.test(l))
      .map((l) => Number(l.split(' ')[0]));
    expect([...seqs, ...rest]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a poll framer decides what a second concurrent poll does: here the older one is answered and the newer one holds', async () => {
    const replaceOlder: PollFramer = {
      contentType: () => 'application/json',
      batch: (frames) => encodeBatch(false, frames),
      conflict: () => true, // the newer poll attaches; attach drops (answers) the older one
    };
    const port = node.gateway;
    const c0 = new TestConn(new TestCarrier());
    const s = (c0.session = port.open('polling', meta, c0));
    port.app.get('/test/poll', (res) => {
      const c = new PollConnection(port, new Exchange(res, ''), nativeCodecs.json, replaceOlder);
      if (s.conn instanceof PollConnection && !replaceOlder.conflict(s.conn, c, port)) return;
      c.session = s;
      port.attach(s, c, s.sent, false);
      if (c.session !== null) c.hold(5000);
    });
    const older = fetch(`${node.url}/test/poll`).then((r) => r.json());
    await vi.waitFor(() => expect(s.conn).toBeInstanceOf(PollConnection));
    const newer = fetch(`${node.url}/test/poll`).then((r) => r.json());
    expect(await older).toEqual([]);
    port.deliver(s, echo('to the newer'));
    expect(await newer).toEqual([{ type: 'event', seq: 1, event: 'echo', args: ['to the newer'] }]);
  });
});

describe('ids and tokens', () => {
  it('randomId: base64url of the asked length, never the same twice across pool refills', async () => {
    const { randomId } = await import('../transports/seam/ids.ts');
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = randomId(12); // 2000 × 12 bytes: several 4 KiB pools
      expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(2000);
    expect(randomId(15)).toMatch(/^[A-Za-z0-9_-]{20}$/);
  });

  it('a token is the HMAC-SHA256 of "<sid>.<node>" with the secret; one signed with another secret is refused', async () => {
    const { createHmac } = await import('node:crypto');
    const { signToken, verifyToken, signResumeKey, verifyResumeKey } = await import('../gateway/token.ts');
    const t = signToken('s3cret', 'abc', 'n1');
    expect(t).toBe('n1.' + createHmac('sha256', 's3cret').update('abc.n1').digest('base64url').slice(0, 22));
    expect(verifyToken('s3cret', 'abc', t)).toBe('n1');
    expect(verifyToken('other', 'abc', t)).toBeNull();
    expect(verifyToken('s3cret', 'abd', t)).toBeNull();
    // the key object is per secret: alternating secrets sign as each one alone does
    expect(signToken('other', 'abc', 'n1')).not.toBe(t);
    expect(signToken('s3cret', 'abc', 'n1')).toBe(t);
    const k = signResumeKey('s3cret', 'abc');
    expect(k).toBe('abc.' + createHmac('sha256', 's3cret').update('resume.abc').digest('base64url').slice(0, 22));
    expect(verifyResumeKey('s3cret', k)).toBe('abc');
    expect(verifyResumeKey('other', k)).toBeNull();
    // rotation: the first secret signs, any of the list verifies
    expect(verifyToken(['new-secret', 's3cret'], 'abc', t)).toBe('n1');
    expect(verifyToken(['new-secret'], 'abc', t)).toBeNull();
    expect(verifyResumeKey(['new-secret', 's3cret'], k)).toBe('abc');
    const { readConfig } = await import('../gateway/config.ts');
    expect(readConfig('gateway', {}, { SWITCHYARD_SECRET: 'a-new-secret-0123456, an-old-secret-0123456' }).gateway).toMatchObject({
      secret: 'a-new-secret-0123456',
      previousSecrets: ['an-old-secret-0123456'],
    });
    expect(readConfig('gateway', {}, {}).gateway.secret).toBeUndefined();
  });
});

describe('client frame numbers (cseq)', () => {
  /** sends events numbered `order` (ack 1000 + cseq), then an unnumbered request: every frame before it is handled by its reply */
  async function handled(order: number[]): Promise<number[]> {
    const node = await startNode({ ipOpenRate: 0 });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    for (const n of order) c.send({ type: 'event', event: 'echo', args: [n], ack: 1000 + n, cseq: n });
    await c.request('echo', 'done');
    c.sock.close();
    return c.frames.filter((f) => f.type === 'reply' && f.ack >= 1000).map((f) => f.ack - 1000);
  }

  it('frames that arrive out of order are each handled once, in the order they came; repeats are dropped', async () => {
    expect(await handled([1, 3, 2, 3, 2, 5, 4, 1, 5, 6])).toEqual([1, 3, 2, 5, 4, 6]);
  });

  it('a gap that never fills is given up past 1,024 frames above it: the missing frame, if it comes later, counts as a repeat', async () => {
    const ahead = Array.from({ length: 1025 }, (_, i) => i + 2);
    const got = await handled([...ahead, 1, 1027]);
    expect(got).toEqual([...ahead, 1027]);
  });
});
