/**
 * The transport contract: one list of behaviours, run against every (wire × format) pair of the
 * native dialect through the port. A later dialect adds its wires to `wires` (and its rules) to
 * get the whole suite.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeAll, startNode, WsClient, type Frame } from './helpers.ts';
import { wires } from './wire-clients.ts';
import demoApp from '../demo/app.ts';
import type { App } from '../cluster/app.ts';

/** What differs between wires, by rule */
const rules: Record<string, { secondReceiver: 'newest' | 'oldest'; oversizeEnds: boolean }> = {
  'websocket + json': { secondReceiver: 'newest', oversizeEnds: true },
  'websocket + msgpack': { secondReceiver: 'newest', oversizeEnds: true },
  'sse + json': { secondReceiver: 'newest', oversizeEnds: false },
  'long-polling + json': { secondReceiver: 'oldest', oversizeEnds: false },
  'long-polling + msgpack': { secondReceiver: 'oldest', oversizeEnds: false },
};

/** the demo app, plus `ask`: asks the client `question` and replies with its answer */
const app: App = (ctx) => {
  const demo = typeof demoApp === 'function' ? demoApp(ctx) : demoApp;
  return {
    event(s, event, args, reply) {
      if (event !== 'ask') return demo.event(s, event, args, reply);
      return s.request('question', ...args).then(
        (answer) => reply?.('answered', ...answer),
        (err: Error) => reply?.('failed', err.message),
      );
    },
  };
};

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ app, maxPayloadBytes: 2048 });
});
afterAll(closeAll);

const said = (c: { frames: Frame[] }) => c.frames.filter((f) => f.type === 'event' && f.event === 'said').map((f) => f.args[1]);

describe.each(wires)('$name', (wire) => {
  const rule = rules[wire.name]!;

  it('echoes an event without an ack as an event, and one with an ack as a reply, each with its seq', async () => {
    const c = await wire.connect(node.url);
    expect(c.open).toMatchObject({ type: 'open', last: 0 });
    await c.send({ type: 'event', event: 'echo', args: ['a', 1] });
    expect(await c.next((f) => f.type === 'event')).toEqual({ type: 'event', seq: 1, event: 'echo', args: ['a', 1] });
    await c.send({ type: 'event', event: 'echo', args: [{ b: 2 }], ack: 7 });
    expect(await c.next((f) => f.type === 'reply')).toEqual({ type: 'reply', seq: 2, ack: 7, args: [{ b: 2 }] });
    c.drop();
  });

  it('a room spans connections of every wire', async () => {
    const a = await wire.connect(node.url);
    const b = await wire.connect(node.url);
    const w = await WsClient.open(`${node.ws}/rt/ws`);
    const room = `room-${wire.name}`;
    await a.send({ type: 'event', event: 'join', args: [room], ack: 1 });
    await b.send({ type: 'event', event: 'join', args: [room], ack: 1 });
    await a.next((f) => f.type === 'reply');
    await b.next((f) => f.type === 'reply');
    await w.request('join', room);
    w.emit('say', room, 'hello');
    for (const c of [a, b]) await c.next((f) => f.event === 'said');
    await w.next((f) => f.event === 'said');
    expect([said(a), said(b)]).toEqual([['hello'], ['hello']]);
    a.drop();
    b.drop();
  });

  it('resumes after a drop with every missed event once, in order', async () => {
    const a = await wire.connect(node.url);
    const room = `resume-${wire.name}`;
    await a.send({ type: 'event', event: 'join', args: [room], ack: 1 });
    const joined = await a.next((f) => f.type === 'reply');
    a.drop();
    await vi.waitFor(() => expect(node.gateway.sessions.get(a.open.sid)!.conn).toBe(null));
    const w = await WsClient.open(`${node.ws}/rt/ws`);
    for (let i = 0; i < 5; i++) w.emit('say', room, String(i));
    const again = await wire.resume(node.url, a.open, joined.seq);
    await again.next((f) => f.event === 'said' && f.args[1] === '4');
    expect(said(again)).toEqual(['0', '1', '2', '3', '4']);
    const seqs = again.frames.filter((f) => f.event === 'said').map((f) => f.seq);
    expect(seqs).toEqual([2, 3, 4, 5, 6]);
    again.drop();
  });

  it(`a second receiver for one session: the ${rule.secondReceiver} one gets what follows, and only it`, async () => {
    const first = await wire.connect(node.url);
    await vi.waitFor(() => expect(node.gateway.sessions.get(first.open.sid)!.conn).not.toBe(null));
    const second = await wire.resume(node.url, first.open, 0);
    await second.send({ type: 'event', event: 'echo', args: ['once'] });
    const winner = rule.secondReceiver === 'newest' ? second : first;
    const loser = rule.secondReceiver === 'newest' ? first : second;
    await winner.next((f) => f.event === 'echo');
    expect(loser.frames.filter((f) => f.event === 'echo')).toEqual([]);
    first.drop();
    second.drop();
  });

  it(`oversized input: ${rule.oversizeEnds ? 'the session ends with 1009' : '413, and the session lives on'}`, async () => {
    const c = await wire.connect(node.url);
    const status = await c.send({ type: 'event', event: 'echo', args: ['x'.repeat(4000)] });
    if (rule.oversizeEnds) {
      expect(await c.closed()).toEqual({ type: 'close', code: 1009, reason: 'SY_ERR_PAYLOAD_TOO_LARGE' });
      expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    } else {
      expect(status).toBe(413);
      await c.send({ type: 'event', event: 'echo', args: ['still'] });
      expect((await c.next((f) => f.event === 'echo')).args).toEqual(['still']);
    }
    c.drop();
  });

  it('malformed input ends the session with 1007, and the client is told', async () => {
    const c = await wire.connect(node.url);
    await vi.waitFor(() => expect(node.gateway.sessions.get(c.open.sid)!.conn).not.toBe(null));
    await c.sendRaw('{"type":"nonsense"}');
    expect(await c.closed()).toEqual({ type: 'close', code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' });
    expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    c.drop();
  });

  it('the client closes: its session ends with 1000 and the client is told', async () => {
    const c = await wire.connect(node.url);
    await vi.waitFor(() => expect(node.gateway.sessions.get(c.open.sid)!.conn).not.toBe(null));
    await c.send({ type: 'close' });
    expect(await c.closed()).toEqual({ type: 'close', code: 1000, reason: 'client closed' });
    expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    c.drop();
  });

  it('the app asks the client (session.request): the answer comes back; a repeated frame (same cseq) is handled once', async () => {
    const c = await wire.connect(node.url);
    await c.send({ type: 'event', event: 'ask', args: ['why?'], ack: 1, cseq: 1 });
    const q = await c.next((f) => f.type === 'event' && f.event === 'question');
    expect(q).toMatchObject({ args: ['why?'] });
    expect(q.ack).toBeDefined();
    const answer = { type: 'reply', ack: q.ack, args: ['because'], cseq: 2 };
    await c.send(answer);
    await c.send(answer); // resent: dropped by cseq
    expect(await c.next((f) => f.type === 'reply' && f.ack === 1)).toMatchObject({ args: ['answered', 'because'] });
    await c.send({ type: 'event', event: 'echo', args: ['dup'], cseq: 3 });
    await c.send({ type: 'event', event: 'echo', args: ['dup'], cseq: 3 });
    await c.send({ type: 'event', event: 'echo', args: ['next'], cseq: 4 });
    await c.next((f) => f.event === 'echo' && f.args[0] === 'next');
    expect(c.frames.filter((f) => f.event === 'echo').map((f) => f.args[0])).toEqual(['dup', 'next']);
    c.drop();
  });
});

describe('a session resumed on another wire or format', () => {
  const byName = (n: string) => wires.find((w) => w.name === n)!;
  it.each([
    ['websocket + msgpack', 'long-polling + json'],
    ['websocket + msgpack', 'sse + json'],
    ['long-polling + msgpack', 'websocket + json'],
    ['sse + json', 'websocket + msgpack'],
  ])('%s → %s: every missed event once, in order, encoded for the new connection', async (from, to) => {
    const a = await byName(from).connect(node.url);
    const room = `cross-${from}-${to}`;
    await a.send({ type: 'event', event: 'join', args: [room], ack: 1 });
    const joined = await a.next((f) => f.type === 'reply');
    a.drop();
    await vi.waitFor(() => expect(node.gateway.sessions.get(a.open.sid)!.conn).toBe(null));
    const w = await WsClient.open(`${node.ws}/rt/ws`);
    for (let i = 0; i < 4; i++) w.emit('say', room, String(i));
    const again = await byName(to).resume(node.url, a.open, joined.seq);
    await again.next((f) => f.event === 'said' && f.args[1] === '3');
    expect(again.frames.filter((f) => f.event === 'said').map((f) => [f.seq, f.args[1]])).toEqual([
      [2, '0'],
      [3, '1'],
      [4, '2'],
      [5, '3'],
    ]);
    again.drop();
  });
});
