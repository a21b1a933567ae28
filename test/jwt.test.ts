/**
 * Built-in JWT verification (issue 11, item 5): HS256 with a secret, RS256 with a public key file,
 * ES256 from a JWKS URL; audience, issuer and expiry. Each dialect's real client brings its token
 * its own way and is accepted with the claims in `session.meta.auth`, or refused with its own
 * refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { io } from 'socket.io-client';
import * as signalR from '@microsoft/signalr';
import SockJS from 'sockjs-client';
import { closeAll, http, startNode, WsClient } from './helpers.ts';
import type { App } from '../cluster/app.ts';

afterAll(closeAll);

const SECRET = 'a-jwt-secret-of-at-least-32-bytes-long';
/** answers `whoami` with what the app sees as the session's credentials */
const app: App = {
  event(session, event, args, reply) {
    if (event === 'whoami') reply?.(session.meta.auth);
    else if (event === 'message')
      session.emit('auth', session.meta.auth); // SockJS: plain text is event `message`
    else reply?.(...args);
  },
};

async function hs256(claims: Record<string, unknown>, o: { exp?: string | number; aud?: string; iss?: string; secret?: string } = {}): Promise<string> {
  let j = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '5m');
  if (o.aud) j = j.setAudience(o.aud);
  if (o.iss) j = j.setIssuer(o.iss);
  return j.sign(Buffer.from(o.secret ?? SECRET));
}

function once<T>(f: (resolve: (v: T) => void, reject: (e: unknown) => void) => void, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    f(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

describe('JWT (HS256, audience, issuer): every dialect accepted and refused its own way', () => {
  let node: Awaited<ReturnType<typeof startNode>>;
  let good: string;
  let expired: string;
  let wrongAud: string;
  let forged: string;
  beforeAll(async () => {
    node = await startNode({ app, jwt: { secret: SECRET, audience: 'switchyard', issuer: 'https://auth.example' } });
    good = await hs256({ sub: 'ada', role: 'admin' }, { aud: 'switchyard', iss: 'https://auth.example' });
    expired = await hs256({ sub: 'ada' }, { aud: 'switchyard', iss: 'https://auth.example', exp: Math.floor(Date.now() / 1000) - 60 });
    wrongAud = await hs256({ sub: 'ada' }, { aud: 'someone-else', iss: 'https://auth.example' });
    forged = await hs256({ sub: 'ada' }, { aud: 'switchyard', iss: 'https://auth.example', secret: 'another-secret-of-at-least-32-bytes!!' });
  });

  it('native WebSocket: the `auth` query; refusals close 4403 with SY_ERR_AUTH_FAILED and why', async () => {
    const c = await WsClient.open(`${node.ws}/rt/ws?auth=${good}`);
    expect(c.open.type).toBe('open');
    expect((await c.request('whoami')).args[0]).toMatchObject({ sub: 'ada', role: 'admin', aud: 'switchyard', iss: 'https://auth.example' });
    c.terminate();
    const cases: Array<[string, string]> = [
      [expired, 'SY_ERR_AUTH_FAILED: token expired'],
      [wrongAud, 'SY_ERR_AUTH_FAILED: claim aud does not match'],
      [forged, 'SY_ERR_AUTH_FAILED: bad signature'],
      ['not.a.jwt', 'SY_ERR_AUTH_FAILED: malformed token'],
    ];
    for (const [token, reason] of cases) {
      const r = await WsClient.open(`${node.ws}/rt/ws?auth=${encodeURIComponent(token)}`);
      expect(r.frames).toEqual([{ type: 'close', code: 4403, reason }]);
      expect((await r.waitClosed()).code).toBe(4403);
    }
    const none = await WsClient.open(`${node.ws}/rt/ws`);
    expect(none.frames).toEqual([{ type: 'close', code: 4403, reason: 'SY_ERR_AUTH_FAILED: no token' }]);
  });

  it('native long-polling and SSE: an Authorization: Bearer header', async () => {
    const ok = await http(`${node.url}/rt/poll`, { headers: { authorization: `Bearer ${good}` } });
    expect(ok.body[0]).toMatchObject({ type: 'open' });
    const no = await http(`${node.url}/rt/poll`, { headers: { authorization: `Bearer ${expired}` } });
    expect(no.body).toEqual([{ type: 'close', code: 4403, reason: 'SY_ERR_AUTH_FAILED: token expired' }]);
    const sse = await fetch(`${node.url}/rt/sse`, { headers: { authorization: `Bearer ${forged}` } });
    expect(await sse.text()).toContain('"reason":"SY_ERR_AUTH_FAILED: bad signature"');
  });

  it("socket.io-client: the auth payload's `token`; a refusal is a connect_error with the reason", async () => {
    const s = io(node.url, { auth: { token: good }, transports: ['websocket'], reconnection: false });
    try {
      await once<void>((ok, ko) => (s.on('connect', () => ok()), s.on('connect_error', ko)));
      expect(await s.emitWithAck('whoami')).toMatchObject({ sub: 'ada', role: 'admin' });
    } finally {
      s.close();
    }
    const bad = io(node.url, { auth: { token: expired }, reconnection: false });
    try {
      const err = await once<Error>((ok) => bad.on('connect_error', ok));
      expect(err.message).toBe('SY_ERR_AUTH_FAILED: token expired');
      expect(bad.connected).toBe(false);
    } finally {
      bad.close();
    }
  });

  it('@microsoft/signalr: accessTokenFactory (a bearer at negotiate, access_token on the socket); a refusal fails start() with 401', async () => {
    for (const transport of [signalR.HttpTransportType.WebSockets, signalR.HttpTransportType.LongPolling]) {
      const c = new signalR.HubConnectionBuilder()
        .withUrl(`${node.url}/hubs/demo`, { transport, accessTokenFactory: () => good })
        .configureLogging(signalR.LogLevel.None)
        .build();
      await c.start();
      try {
        expect(await c.invoke('whoami')).toMatchObject({ sub: 'ada', role: 'admin' });
      } finally {
        await c.stop();
      }
    }
    const bad = new signalR.HubConnectionBuilder()
      .withUrl(`${node.url}/hubs/demo`, { accessTokenFactory: () => wrongAud })
      .configureLogging(signalR.LogLevel.None)
      .build();
    await expect(bad.start()).rejects.toThrow(/401.*SY_ERR_AUTH_FAILED: claim aud does not match|SY_ERR_AUTH_FAILED: claim aud does not match.*401/s);
  });

  it('sockjs-client: the `auth` query of its URL; a refusal closes 4403', async () => {
    const sock = new SockJS(`${node.url}/sockjs?auth=${good}`, null, { transports: ['websocket', 'xhr-polling'] });
    try {
      await once<void>((ok, ko) => ((sock.onopen = () => ok()), (sock.onclose = (e) => ko(new Error(`closed ${e.code}`)))));
      const got = once<any>((ok) => (sock.onmessage = (m) => ok(JSON.parse(m.data))));
      sock.send('hi');
      expect(await got).toMatchObject({ type: 'event', event: 'auth', args: [{ sub: 'ada', role: 'admin' }] });
    } finally {
      sock.close();
    }
    const bad = new SockJS(`${node.url}/sockjs?auth=${forged}`);
    // (sockjs-client may try a transport or two first: room for a loaded machine)
    const closed = await once<{ code: number; reason: string }>((ok) => (bad.onclose = (e) => ok({ code: e.code, reason: e.reason })), 15_000);
    expect(closed).toEqual({ code: 4403, reason: 'SY_ERR_AUTH_FAILED: bad signature' });
  });

  it('counts refusals in /metrics', async () => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const m = /switchyard_admission_refusals_total\{code="SY_ERR_AUTH_FAILED"\} (\d+)/.exec(text);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(5);
  });
});

describe('JWT with public keys', () => {
  let jwks: Server;
  let rsa: { privateKey: KeyObject; publicKey: KeyObject };
  let ec: { privateKey: KeyObject; publicKey: KeyObject };
  let jwksRequests = 0;
  beforeAll(async () => {
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      jwksRequests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => jwks.close(() => r())));

  it("RS256 from a PEM public key file; an HS256 token signed with the key's text is refused (no algorithm confusion)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-jwt-'));
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeFileSync(join(dir, 'key.pem'), pem);
    const node = await startNode({ app, jwt: { publicKeyFile: join(dir, 'key.pem') } });
    const token = await new SignJWT({ sub: 'rs' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(rsa.privateKey);
    const c = await WsClient.open(`${node.ws}/rt/ws?auth=${token}`);
    expect((await c.request('whoami')).args[0]).toMatchObject({ sub: 'rs' });
    const confused = await new SignJWT({ sub: 'rs' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(Buffer.from(pem));
    const r = await WsClient.open(`${node.ws}/rt/ws?auth=${confused}`);
    expect(r.frames).toEqual([{ type: 'close', code: 4403, reason: 'SY_ERR_AUTH_FAILED: algorithm not allowed' }]);
    // a token without an expiry is refused too
    const forever = await new SignJWT({ sub: 'rs' }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    const f = await WsClient.open(`${node.ws}/rt/ws?auth=${forever}`);
    expect(f.frames[0]).toMatchObject({ type: 'close', code: 4403, reason: 'SY_ERR_AUTH_FAILED: claim exp missing' });
  });

  it('ES256 from a JWKS URL (fetched once, then cached); an unknown key id is refused', async () => {
    const node = await startNode({ app, jwt: { jwksUrl: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json` } });
    const sign = (kid: string) => new SignJWT({ sub: 'ec' }).setProtectedHeader({ alg: 'ES256', kid }).setExpirationTime('5m').sign(ec.privateKey);
    for (let i = 0; i < 3; i++) {
      const c = await WsClient.open(`${node.ws}/rt/ws?auth=${await sign('ec-1')}`);
      expect((await c.request('whoami')).args[0]).toMatchObject({ sub: 'ec' });
      c.terminate();
    }
    expect(jwksRequests).toBe(1);
    const r = await WsClient.open(`${node.ws}/rt/ws?auth=${await sign('ec-2')}`);
    expect(r.frames).toEqual([{ type: 'close', code: 4403, reason: 'SY_ERR_AUTH_FAILED: no matching key' }]);
  });

  it('a wrong configuration is refused at start', async () => {
    await expect(startNode({ jwt: { secret: 'short' } })).rejects.toThrow(/at least 32 bytes/);
    await expect(startNode({ jwt: {} })).rejects.toThrow(/exactly one of/);
    await expect(startNode({ jwt: { publicKeyFile: '/nonexistent.pem' } })).rejects.toThrow(/cannot read/);
  });
});
