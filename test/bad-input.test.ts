import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pack } from 'msgpackr';
import { closeAll, http, send, startNode, WsClient } from './helpers.ts';
import { signToken } from '../gateway/token.ts';

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode({ maxPayloadBytes: 1024, allowedOrigins: ['http://good.example'] });
});
afterAll(closeAll);

/** after every bad input, the node still serves a fresh client */
async function stillServes(): Promise<void> {
  const c = await WsClient.open(`${node.ws}/rt/ws`);
  expect((await c.request('echo', 'ok')).args).toEqual(['ok']);
  c.sock.close();
}

const enc = encodeURIComponent;

describe('bad input on the WebSocket', () => {
  it.each([
    ['not JSON', 'this is not json'],
    ['JSON but not an object', '[1,2,3]'],
    ['an event without a name', '{"type":"event","args":[]}'],
    ['args that are not an array', '{"type":"event","event":"echo","args":"x"}'],
    ['an unknown type', '{"type":"subscribe"}'],
    ['an ack without last', '{"type":"ack"}'],
    ['an ack with a negative last', '{"type":"ack","last":-1}'],
    ['an ack with a fractional last', '{"type":"ack","last":1.5}'],
    ['an ack with a string last', '{"type":"ack","last":"3"}'],
    ['an ack with a cseq', '{"type":"ack","last":1,"cseq":1}'],
  ])('%s: close frame SY_ERR_MALFORMED_FRAME then close 1007', async (_name, payload) => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    c.send(payload);
    expect(await c.waitClosed()).toEqual({ code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' });
    expect(c.frames.at(-1)).toEqual({ type: 'close', code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' });
    expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    await stillServes();
  });

  it('invalid UTF-8 in a text message: uWS cuts the socket, the session ends with SY_ERR_MALFORMED_FRAME', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    c.sock.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await c.waitClosed()).code).toBe(1006); // uWS sends no close frame here
    await vi.waitFor(() => expect(node.gateway.sessions.has(c.open.sid)).toBe(false));
    // a resume learns why
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${c.open.sid}&token=${enc(c.open.token)}`);
    expect(again.frames).toEqual([{ type: 'close', code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' }]);
    await stillServes();
  });

  it('a binary frame that is not msgpack is malformed', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    c.sock.send(Buffer.from([0xc1, 0xc1]), { binary: true });
    expect((await c.waitClosed()).code).toBe(1007);
  });

  it('a message over maxPayloadBytes: close frame SY_ERR_PAYLOAD_TOO_LARGE, 1009, the session ends', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    c.emit('echo', 'x'.repeat(2000));
    expect(await c.waitClosed()).toEqual({ code: 1009, reason: 'SY_ERR_PAYLOAD_TOO_LARGE' });
    expect(c.frames.at(-1)).toEqual({ type: 'close', code: 1009, reason: 'SY_ERR_PAYLOAD_TOO_LARGE' });
    expect(node.gateway.sessions.has(c.open.sid)).toBe(false);
    await stillServes();
  });

  it('a message far over the limit is cut by uWS before it is read; the session still ends with SY_ERR_PAYLOAD_TOO_LARGE', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    c.emit('echo', 'x'.repeat(200_000));
    expect((await c.waitClosed()).code).toBe(1006);
    const again = await WsClient.open(`${node.ws}/rt/ws?sid=${c.open.sid}&token=${enc(c.open.token)}`);
    expect(again.frames).toEqual([{ type: 'close', code: 1009, reason: 'SY_ERR_PAYLOAD_TOO_LARGE' }]);
  });

  it('a forged token closes with 4401 SY_ERR_BAD_TOKEN', async () => {
    const victim = await WsClient.open(`${node.ws}/rt/ws`);
    const forged = `${node.gateway.nodeId}.AAAAAAAAAAAAAAAAAAAAAA`;
    const c = await WsClient.open(`${node.ws}/rt/ws?sid=${victim.open.sid}&token=${enc(forged)}`);
    expect(c.frames[0]).toEqual({ type: 'close', code: 4401, reason: 'SY_ERR_BAD_TOKEN' });
    expect(await c.waitClosed()).toEqual({ code: 4401, reason: 'SY_ERR_BAD_TOKEN' });
    // the victim's session is untouched
    expect((await victim.request('echo', 1)).args).toEqual([1]);
  });

  it('a token for another sid is refused', async () => {
    const a = await WsClient.open(`${node.ws}/rt/ws`);
    const b = await WsClient.open(`${node.ws}/rt/ws`);
    const c = await WsClient.open(`${node.ws}/rt/ws?sid=${a.open.sid}&token=${enc(b.open.token)}`);
    expect((await c.waitClosed()).code).toBe(4401);
  });

  it('a disallowed Origin is refused with 4403 SY_ERR_BAD_ORIGIN', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws`, { headers: { origin: 'http://evil.example' } });
    expect(await c.waitClosed()).toEqual({ code: 4403, reason: 'SY_ERR_BAD_ORIGIN' });
    const ok = await WsClient.open(`${node.ws}/rt/ws`, { headers: { origin: 'http://good.example' } });
    expect(ok.open.type).toBe('open');
  });

  it('an unknown format is refused', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws?format=xml`);
    expect(await c.waitClosed()).toEqual({ code: 4400, reason: 'SY_ERR_BAD_REQUEST' });
  });
});

describe('bad input over HTTP', () => {
  async function pollSession(base = node.url) {
    const open = (await http(`${base}/rt/poll`)).body[0];
    return { ...open, q: `sid=${open.sid}&token=${enc(open.token)}` };
  }

  it('unknown sid: 404 SY_ERR_UNKNOWN_SESSION on poll and send', async () => {
    const sid = 'nosuchsession000';
    const token = signToken(node.gateway.options.secret, sid, node.gateway.nodeId);
    const p = await http(`${node.url}/rt/poll?sid=${sid}&token=${enc(token)}`);
    expect(p).toMatchObject({ status: 404, body: { error: 'SY_ERR_UNKNOWN_SESSION' } });
    const s = await send(node.url, sid, token, [{ type: 'event', event: 'echo' }]);
    expect(s).toMatchObject({ status: 404, body: { error: 'SY_ERR_UNKNOWN_SESSION' } });
    const e = await http(`${node.url}/rt/sse?sid=${sid}&token=bad.token`);
    expect(e).toMatchObject({ status: 401, body: { error: 'SY_ERR_BAD_TOKEN' } });
  });

  it('bad token: 401 SY_ERR_BAD_TOKEN on poll and send', async () => {
    const s = await pollSession();
    const p = await http(`${node.url}/rt/poll?sid=${s.sid}&token=${enc(s.token + 'x')}`);
    expect(p).toMatchObject({ status: 401, body: { error: 'SY_ERR_BAD_TOKEN' } });
    const r = await send(node.url, s.sid, 'nonsense', [{ type: 'event', event: 'echo' }]);
    expect(r).toMatchObject({ status: 401, body: { error: 'SY_ERR_BAD_TOKEN' } });
    expect(node.gateway.sessions.has(s.sid)).toBe(true);
  });

  it('a malformed upstream body: 400 SY_ERR_MALFORMED_FRAME, and the session ends', async () => {
    for (const body of ['{not json', '{"type":"event"}', '[{"type":"event","event":""}]', '[1]']) {
      const s = await pollSession();
      const r = await http(`${node.url}/rt/send?${s.q}`, { method: 'POST', body });
      expect(r).toMatchObject({ status: 400, body: { error: 'SY_ERR_MALFORMED_FRAME' } });
      expect(node.gateway.sessions.has(s.sid)).toBe(false);
      // the next poll learns why
      expect((await http(`${node.url}/rt/poll?${s.q}`)).body).toEqual([{ type: 'close', code: 1007, reason: 'SY_ERR_MALFORMED_FRAME' }]);
    }
    const s = await pollSession();
    const bin = await fetch(`${node.url}/rt/send?${s.q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/msgpack' },
      body: new Uint8Array(pack({ type: 'x' })),
    });
    expect(bin.status).toBe(400);
    await stillServes();
  });

  it('an upstream body over maxPayloadBytes: 413 SY_ERR_PAYLOAD_TOO_LARGE', async () => {
    const s = await pollSession();
    const big = JSON.stringify([{ type: 'event', event: 'echo', args: ['y'.repeat(4000)] }]);
    const r = await http(`${node.url}/rt/send?${s.q}`, { method: 'POST', body: big });
    expect(r).toMatchObject({ status: 413, body: { error: 'SY_ERR_PAYLOAD_TOO_LARGE' } });
    await stillServes();
  });

  it('a second concurrent poll: 409 SY_ERR_POLL_CONFLICT, and the first still gets its frames', async () => {
    const s = await pollSession();
    const first = http(`${node.url}/rt/poll?${s.q}&last=0`);
    await vi.waitFor(() => expect(node.gateway.sessions.get(s.sid)!.conn).not.toBe(null));
    const second = await http(`${node.url}/rt/poll?${s.q}&last=0`);
    expect(second).toMatchObject({ status: 409, body: { error: 'SY_ERR_POLL_CONFLICT' } });
    await send(node.url, s.sid, s.token, [{ type: 'event', event: 'echo', args: ['still here'] }]);
    expect((await first).body).toEqual([{ type: 'event', seq: 1, event: 'echo', args: ['still here'] }]);
  });

  it('a disallowed Origin: 403 SY_ERR_BAD_ORIGIN', async () => {
    const r = await http(`${node.url}/rt/poll`, { headers: { origin: 'http://evil.example' } });
    expect(r).toMatchObject({ status: 403, body: { error: 'SY_ERR_BAD_ORIGIN' } });
    const ok = await http(`${node.url}/rt/poll`, { headers: { origin: 'http://good.example' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://good.example');
  });

  it('an unknown route: 404 SY_ERR_NOT_FOUND; SSE with msgpack: 400', async () => {
    expect(await http(`${node.url}/rt/nope`)).toMatchObject({ status: 404, body: { error: 'SY_ERR_NOT_FOUND' } });
    expect(await http(`${node.url}/rt/sse?format=msgpack`)).toMatchObject({ status: 400, body: { error: 'SY_ERR_BAD_REQUEST' } });
  });
});

describe('slow and absent readers', () => {
  it('a session whose outbox fills while it is away ends with SY_ERR_SLOW_CONSUMER; the resume learns it', async () => {
    const n = await startNode({ outboxMaxFrames: 10 });
    const rx = await WsClient.open(`${n.ws}/rt/ws`);
    await rx.request('join', 'r'); // seq 1
    rx.terminate();
    await vi.waitFor(() => expect(n.gateway.sessions.get(rx.open.sid)!.conn).toBe(null));
    const tx = await WsClient.open(`${n.ws}/rt/ws`);
    for (let i = 0; i < 12; i++) tx.emit('say', 'r', String(i));
    await vi.waitFor(() => expect(n.gateway.sessions.has(rx.open.sid)).toBe(false));
    const again = await WsClient.open(`${n.ws}/rt/ws?sid=${rx.open.sid}&token=${enc(rx.open.token)}&last=1`);
    // why it ended, nothing more: the outbox held 10 frames (says 0-9), the 11th could not be kept
    // without losing one, and an ended slow consumer's frames are freed at once (docs/errors.md)
    expect(again.frames.map((f) => f.args?.[1] ?? f.reason)).toEqual(['SY_ERR_SLOW_CONSUMER']);
    expect((await again.waitClosed()).code).toBe(4508);
  });

  it('a connected client that stops reading is cut off with 4508 and does not stall others', async () => {
    const n = await startNode({ outboxMaxFrames: 64, wsHighWaterBytes: 64 * 1024 });
    const slow = await WsClient.open(`${n.ws}/rt/ws`);
    await slow.request('join', 'big');
    const fast = await WsClient.open(`${n.ws}/rt/ws`);
    await fast.request('join', 'big');
    // stop reading: the kernel buffers fill, then uWS's, then the outbox
    (slow.sock as any)._socket.pause();
    const payload = 'z'.repeat(16 * 1024);
    let i = 0;
    await vi.waitFor(
      () => {
        for (let k = 0; k < 20; k++) fast.emit('say', 'big', payload + i++);
        expect(n.gateway.sessions.has(slow.open.sid)).toBe(false);
      },
      { timeout: 20000, interval: 20 },
    );
    (slow.sock as any)._socket.resume();
    // its pipe is full, so the close frame may not get through; the connection is closed either way
    await slow.waitClosed(10000);
    const again = await WsClient.open(`${n.ws}/rt/ws?sid=${slow.open.sid}&token=${enc(slow.open.token)}&last=${1 << 30}`);
    expect(again.frames.at(-1)).toEqual({ type: 'close', code: 4508, reason: 'SY_ERR_SLOW_CONSUMER' });
    // the fast reader got every one of its frames, in order
    await fast.next((f) => f.event === 'said' && f.args[1] === payload + (i - 1), 10000);
    const got = fast.events('said').map((f) => Number(f.args[1].slice(payload.length)));
    expect(got).toEqual(Array.from({ length: i }, (_, k) => k));
  });
});

describe('the application refuses a session', () => {
  it('open() that throws: 4403 with the reason, over WebSocket and long-polling', async () => {
    const n = await startNode({
      app: {
        open(s) {
          if (s.meta.auth !== 'letmein') throw new Error('unauthorized');
        },
        event(s, e, args, reply) {
          reply?.(...args);
        },
      },
    });
    const c = await WsClient.open(`${n.ws}/rt/ws`);
    expect(c.frames[0]).toEqual({ type: 'close', code: 4403, reason: 'unauthorized' });
    expect((await c.waitClosed()).code).toBe(4403);
    const p = await http(`${n.url}/rt/poll`);
    expect(p.body).toEqual([{ type: 'close', code: 4403, reason: 'unauthorized' }]);
    const ok = await WsClient.open(`${n.ws}/rt/ws?auth=letmein`);
    expect(ok.open.type).toBe('open');
    expect(n.gateway.sessions.size).toBe(1);
  });
});
