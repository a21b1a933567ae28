import { afterAll, describe, expect, it, vi } from 'vitest';
import { closeAll, startNode, WsClient } from './helpers.ts';

afterAll(closeAll);

describe('resume', () => {
  it('a WebSocket that drops while 1,000 events are sent to it resumes with every event exactly once, in order', async () => {
    const node = await startNode();
    const sender = await WsClient.open(`${node.ws}/rt/ws`);
    const rx = await WsClient.open(`${node.ws}/rt/ws`);
    await rx.request('join', 'feed');
    await sender.request('join', 'feed'); // so the sender sees when all 1,000 went out
    const { sid, token } = rx.open;

    // 1,000 events: the receiver's connection is cut (no close handshake) part way through
    for (let i = 0; i < 300; i++) sender.emit('say', 'feed', String(i));
    await rx.next((f) => f.event === 'said' && f.args[1] === '99');
    rx.terminate();
    for (let i = 300; i < 1000; i++) sender.emit('say', 'feed', String(i));
    await sender.next((f) => f.event === 'said' && f.args[1] === '999');

    const seen = rx.frames.filter((f) => f.event === 'said');
    const last = seen.length ? seen[seen.length - 1]!.seq : 0;
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${sid}&token=${encodeURIComponent(token)}&last=${last}`);
    expect(again.open).toMatchObject({ type: 'open', sid, recovered: true });
    await again.next((f) => f.event === 'said' && f.args[1] === '999');

    const all = [...seen, ...again.frames.filter((f) => f.event === 'said')];
    expect(all.map((f) => f.args[1])).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    // seq has no gaps and no repeats
    const seqs = all.map((f) => f.seq);
    expect(new Set(seqs).size).toBe(1000);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs[999] - seqs[0]).toBe(999);
    // the session kept its rooms: new events still arrive
    sender.emit('say', 'feed', 'after');
    await again.next((f) => f.event === 'said' && f.args[1] === 'after');
  });

  it('says recovered: false when the session is gone, and opens a new one', async () => {
    const node = await startNode({ resumeWindowMs: 200 });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token } = c.open;
    c.terminate();
    await vi.waitFor(() => expect(node.gateway.sessions.has(sid)).toBe(false));
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${sid}&token=${encodeURIComponent(token)}&last=0`);
    // the old session timed out: the client learns that, with the reason
    expect(again.frames[0]).toEqual({ type: 'close', code: 4510, reason: 'SY_ERR_SESSION_TIMEOUT' });
    expect((await again.waitClosed()).code).toBe(4510);
    // once the tombstone is gone too, a resume gets a fresh session flagged recovered: false
    const fresh = await WsClient.open(`${node.ws}/rt/ws?sid=unknownsid000000&token=${encodeURIComponent(signFor(node, 'unknownsid000000'))}&last=5`);
    expect(fresh.open.recovered).toBe(false);
    expect(fresh.open.sid).not.toBe('unknownsid000000');
  });

  it('says recovered: false when `last` is older than the outbox still holds', async () => {
    const node = await startNode({ outboxMaxFrames: 10 });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    for (let i = 0; i < 30; i++) c.emit('echo', i);
    await c.next((f) => f.event === 'echo' && f.args[0] === 29);
    c.terminate();
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${c.open.sid}&token=${encodeURIComponent(c.open.token)}&last=3`);
    expect(again.open).toMatchObject({ recovered: false, last: 30 });
    // what is still held is replayed
    await again.next((f) => f.seq === 30);
    expect(again.frames.filter((f) => f.seq).map((f) => f.seq)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
  });

  it('an ack frame releases what the client has; a resume after it replays only the rest', async () => {
    const node = await startNode();
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const box = () => node.gateway.sessions.get(c.open.sid)!.outbox;
    for (let i = 0; i < 10; i++) c.emit('echo', i);
    await c.next((f) => f.event === 'echo' && f.args[0] === 9);
    expect([box().first, box().last]).toEqual([1, 10]);
    c.send({ type: 'ack', last: 6 });
    await vi.waitFor(() => expect(box().first).toBe(7));
    expect(box().last).toBe(10);
    // acknowledging 0 or what was already released changes nothing
    c.send({ type: 'ack', last: 0 });
    c.send({ type: 'ack', last: 3 });
    expect((await c.request('echo', 'ping')).args).toEqual(['ping']);
    expect([box().first, box().last]).toEqual([7, 11]);
    c.terminate();
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${c.open.sid}&token=${encodeURIComponent(c.open.token)}&last=8`);
    expect(again.open).toMatchObject({ recovered: true, last: 11 });
    await again.next((f) => f.seq === 11);
    expect(again.frames.filter((f) => f.seq).map((f) => f.seq)).toEqual([9, 10, 11]);
    // a resume from before what was acknowledged cannot be served in full: flagged lossy
    again.terminate();
    const late = await WsClient.open(`${node.ws}/rt/ws?sid=${c.open.sid}&token=${encodeURIComponent(c.open.token)}&last=2`);
    expect(late.open).toMatchObject({ recovered: false, last: 11 });
  });

  it('an ack beyond what the connection was sent releases only what it was sent', async () => {
    let held: ((v: unknown) => void) | null = null;
    const node = await startNode({
      app: {
        async event(s, e, args, reply) {
          if (e === 'slow') await new Promise((r) => (held = r));
          reply?.(...args);
        },
      },
    });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const s = () => node.gateway.sessions.get(c.open.sid)!;
    for (let i = 0; i < 3; i++) await c.request('fast', i);
    expect(s().sent).toBe(3);
    c.send({ type: 'ack', last: 1000 });
    await vi.waitFor(() => expect(s().outbox.size).toBe(0));
    // nothing was released that had not been written: the next entries carry on from seq 4
    const slow = c.request('slow', 'x');
    await vi.waitFor(() => expect(held).not.toBeNull());
    held!(undefined);
    expect(await slow).toMatchObject({ seq: 4, args: ['x'] });
  });

  it('a session moves between transports: WebSocket to long-polling and back, nothing lost', async () => {
    const node = await startNode();
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token } = c.open;
    const q = `sid=${sid}&token=${encodeURIComponent(token)}`;
    c.emit('echo', 1);
    await c.next((f) => f.seq === 1);
    c.terminate();
    await vi.waitFor(() => expect(node.gateway.sessions.get(sid)!.conn).toBe(null));
    const r = await fetch(`${node.url}/rt/send?${q}`, { method: 'POST', body: JSON.stringify([{ type: 'event', event: 'echo', args: [2] }]) });
    expect(r.status).toBe(204);
    const polled = await (await fetch(`${node.url}/rt/poll?${q}&last=1`)).json();
    expect(polled).toEqual([{ type: 'event', seq: 2, event: 'echo', args: [2] }]);
    const back = await WsClient.open(`${node.ws}/rt/ws?${q}&last=2`);
    expect(back.open).toMatchObject({ sid, recovered: true, last: 2 });
  });
});

import { signToken } from '../gateway/token.ts';
function signFor(node: Awaited<ReturnType<typeof startNode>>, sid: string): string {
  return signToken(node.gateway.options.secret, sid, node.gateway.nodeId);
}
