/**
 * Token hygiene (issue 11): a native client gets a new session token on every connect; an older
 * one opens the session only until a grace after the client used the newer one. The bundled
 * client sends its token in a header on fetch requests, never in their URLs.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { connect } from '../client/switchyard.js';
import { closeAll, http, send, startNode, WsClient } from './helpers.ts';
import { TestCluster } from './cluster-harness.ts';
import { generationOf, readToken, signToken, TokenGens } from '../gateway/token.ts';

afterAll(closeAll);
const enc = encodeURIComponent;
const GRACE = 300;

/** a WebSocket resume of `sid` with `token` */
function resume(node: { ws: string }, sid: string, token: string, last = 0): Promise<WsClient> {
  return WsClient.open(`${node.ws}/rt/ws?sid=${sid}&token=${enc(token)}&last=${last}`);
}

/** POST a pong with the token in the X-Switchyard-Token header (no token in the URL) */
function pongWithHeader(url: string, sid: string, token: string): Promise<{ status: number; body: any }> {
  return http(`${url}/rt/send?sid=${sid}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-switchyard-token': token },
    body: '[{"type":"pong"}]',
  });
}

describe('session tokens rotate', () => {
  it("every connect gives a new token; the old one is refused once the grace after the new one's first use has passed, and the session goes on under the new one", async () => {
    const node = await startNode({ tokenGraceMs: GRACE });
    const first = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token: t1 } = first.open;
    expect(generationOf(t1)).toBe(1);
    first.terminate();
    await vi.waitFor(() => expect(node.gateway.sessions.get(sid)!.conn).toBe(null));

    const second = await resume(node, sid, t1);
    const t2 = second.open.token;
    expect(second.open).toMatchObject({ sid, recovered: true });
    expect(t2).not.toBe(t1);
    expect(generationOf(t2)).toBe(2);
    // the new token used once: the old one is still good for the grace (a request under way)…
    expect((await pongWithHeader(node.url, sid, t2)).status).toBe(204);
    expect((await pongWithHeader(node.url, sid, t1)).status).toBe(204);
    // …then refused, on every wire
    await vi.waitFor(async () => expect((await pongWithHeader(node.url, sid, t1)).status).toBe(401), { timeout: 5000, interval: 50 });
    expect(await send(node.url, sid, t1, [{ type: 'event', event: 'echo', args: ['stale'] }])).toMatchObject({
      status: 401,
      body: { error: 'SY_ERR_BAD_TOKEN' },
    });
    expect(await http(`${node.url}/rt/poll?sid=${sid}&last=0`, { headers: { 'x-switchyard-token': t1 } })).toMatchObject({
      status: 401,
      body: { error: 'SY_ERR_BAD_TOKEN' },
    });
    const stale = await resume(node, sid, t1);
    expect(stale.frames[0]).toEqual({ type: 'close', code: 4401, reason: 'SY_ERR_BAD_TOKEN' });
    expect(stale.frames.some((f) => f.type === 'open')).toBe(false);

    // the refusal took nothing from the session: the client's connection still works
    expect(second.closed).toBe(null);
    expect((await second.request('echo', 'still here')).args).toEqual(['still here']);
    // and a resume with the token it holds gets the next one
    second.terminate();
    const third = await resume(node, sid, t2, second.frames.at(-1)!.seq);
    expect(third.open).toMatchObject({ sid, recovered: true });
    expect(generationOf(third.open.token)).toBe(3);
    expect((await third.request('echo', 'after')).args).toEqual(['after']);
  });

  it('a token whose open never reached the client (the connection dropped first) does not cost the client its session', async () => {
    const node = await startNode({ tokenGraceMs: GRACE });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token: t1 } = c.open;
    c.terminate();
    // two connects whose `open` the client never read: t2 and t3 were given, never used
    for (let i = 0; i < 2; i++) {
      const lost = await resume(node, sid, t1);
      lost.terminate();
      await vi.waitFor(() => expect(node.gateway.sessions.get(sid)!.conn).toBe(null));
    }
    await new Promise((r) => setTimeout(r, GRACE * 2)); // no grace is running: nothing newer was used
    const back = await resume(node, sid, t1);
    expect(back.open).toMatchObject({ sid, recovered: true });
    expect(generationOf(back.open.token)).toBe(4);
  });

  it('a superseded token learns nothing of an ended session', async () => {
    const node = await startNode({ tokenGraceMs: GRACE });
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token: t1 } = c.open;
    c.terminate();
    const again = await resume(node, sid, t1);
    expect((await pongWithHeader(node.url, sid, again.open.token)).status).toBe(204);
    again.send({ type: 'close' });
    await again.waitClosed();
    await vi.waitFor(async () => expect((await pongWithHeader(node.url, sid, t1)).status).toBe(401), { timeout: 5000, interval: 50 });
    // the current token still hears how it ended
    const late = await resume(node, sid, again.open.token);
    expect(late.frames.at(-1)).toMatchObject({ type: 'close', code: 1000 });
  });

  it('a token without a generation (other dialects) and a forged generation', async () => {
    const node = await startNode();
    const c = await WsClient.open(`${node.ws}/rt/ws`);
    const { sid, token } = c.open;
    const secret = node.gateway.options.secret;
    // a generation not yet given is refused though signed
    expect((await pongWithHeader(node.url, sid, signToken(secret, sid, node.gateway.nodeId, 9))).status).toBe(401);
    // the generation is signed: changing it breaks the token
    const [n, , sig] = token.split('.');
    expect(readToken(secret, sid, `${n}.2.${sig}`)).toBeNull();
    expect(readToken(secret, sid, token)).toEqual({ node: node.gateway.nodeId, gen: 1 });
  });

  it('TokenGens: the grace starts at the first use of a newer token, and only the given ones are accepted', () => {
    // every session's first generation is one shared, frozen object: accepting never writes to it
    const s: { tokens: TokenGens | null } = { tokens: null };
    expect(TokenGens.next(s)).toBe(1);
    let t = s.tokens!;
    expect(t).toBe(TokenGens.FIRST);
    expect(t.accept(1, 0, 100)).toBe(true);
    expect(t.accept(2, 0, 100)).toBe(false);
    expect(t.accept(0, 0, 100)).toBe(false);
    // the second open gives the session its own
    expect(TokenGens.next(s)).toBe(2);
    t = s.tokens!;
    expect(t).not.toBe(TokenGens.FIRST);
    expect(TokenGens.FIRST.gen).toBe(1);
    expect(TokenGens.next(s)).toBe(3);
    expect(t.accept(1, 1000, 100)).toBe(true); // 2 and 3 unused: 1 is still the client's
    expect(t.accept(3, 1000, 100)).toBe(true); // 3 used: 1 and 2 for 100 ms more
    expect(t.accept(2, 1100, 100)).toBe(true);
    expect(t.accept(1, 1101, 100)).toBe(false);
    expect(t.accept(3, 5000, 100)).toBe(true);
    const moved = TokenGens.fromWire(t.toWire(5000), 9000);
    expect([moved.gen, moved.floor]).toEqual([3, 3]);
  });
});

describe('the bundled client keeps tokens out of URLs', () => {
  it.each(['polling', 'sse'] as const)('over %s: POST /rt/send (and polls) carry the token in X-Switchyard-Token only', async (transport) => {
    const node = await startNode();
    const seen: Array<{ url: string; token: string | undefined }> = [];
    const recordingFetch = (input: string, init?: any) => {
      seen.push({ url: input, token: init?.headers?.['x-switchyard-token'] });
      return fetch(input, init);
    };
    const c = connect(node.url, { WebSocket, EventSource, fetch: recordingFetch, transports: [transport], minDelayMs: 20, maxDelayMs: 200 });
    try {
      expect(await c.request('echo', 'a')).toEqual(['a']);
      expect(await c.request('echo', 'b')).toEqual(['b']);
      const sessionRequests = seen.filter((r) => r.url.includes('sid='));
      expect(sessionRequests.length).toBeGreaterThan(0);
      for (const r of seen) expect(r.url).not.toMatch(/[?&]token=/);
      for (const r of sessionRequests) expect(r.token).toBe(c.token);
    } finally {
      c.close();
    }
  });

  it('a page on another origin may send the header: the preflight allows it for an allowed origin only', async () => {
    const node = await startNode({ allowedOrigins: ['https://app.example'] });
    const ask = (origin: string) =>
      fetch(`${node.url}/rt/send?sid=x`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-switchyard-token' },
      });
    const ok = await ask('https://app.example');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(ok.headers.get('access-control-allow-headers')).toBe('content-type,x-switchyard-token');
    const no = await ask('https://evil.example');
    expect(no.status).toBe(403);
    expect(no.headers.get('access-control-allow-origin')).toBe(null);
  });
});

describe('token rotation across nodes', () => {
  let cluster: TestCluster | null = null;
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it('a session resumed through another node gets a new token from its holder; past the grace the old one is refused on both nodes', async () => {
    cluster = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--token-grace-ms', String(GRACE)] });
    const [a, b] = cluster.gateways as [any, any];
    const c = await WsClient.open(`${a.ws}/rt/ws`);
    const { sid, token: t1 } = c.open;
    c.terminate();
    const via = await resume(b, sid, t1);
    expect(via.open).toMatchObject({ sid, recovered: true });
    const t2 = via.open.token;
    expect(generationOf(t2)).toBe(2);
    expect((await via.request('echo', 'relayed')).args).toEqual(['relayed']);
    expect((await pongWithHeader(b.url, sid, t2)).status).toBe(204);
    expect((await pongWithHeader(a.url, sid, t2)).status).toBe(204);
    await vi.waitFor(
      async () => {
        expect((await pongWithHeader(a.url, sid, t1)).status).toBe(401);
        expect((await pongWithHeader(b.url, sid, t1)).status).toBe(401);
      },
      { timeout: 5000, interval: 50 },
    );
    expect((await via.request('echo', 'still relayed')).args).toEqual(['still relayed']);
  });
});
