/**
 * Differential: the same raw SockJS request sequences sent to the reference `sockjs` 0.3.24 server
 * (on Node's http) and to the gateway's SockJS dialect; statuses, content types and bodies must match.
 * What the app says differs by design (the gateway carries native frames): only the protocol's
 * own answers are compared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sockjs from 'sockjs';
import { closeAll, startNode, until } from './helpers.ts';
import demo from '../demo/app.ts';
import type { App, AppHandlers } from '../cluster/app.ts';

let ref: string;
let ours: string;
let httpServer: Server;
let oursNode: Awaited<ReturnType<typeof startNode>>;

beforeAll(async () => {
  const echo = sockjs.createServer({ log: () => {} });
  // an echo, that closes the session with 3000 "Go away!" when told `close-me`
  echo.on('connection', (conn) =>
    conn.on('data', (d) =>
      d === 'close-me' ? conn.close(3000 as unknown as string, 'Go away!') /* its types say string; the frame needs the number */ : conn.write(d),
    ),
  );
  httpServer = createServer();
  echo.installHandlers(httpServer, { prefix: '/sockjs' });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', () => r()));
  ref = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/sockjs`;
  // the demo app, which closes the session as the reference does when told `close-me`
  const app: App = (ctx) => {
    const inner = (demo as (c: typeof ctx) => AppHandlers)(ctx);
    return {
      event(session, event, args, reply) {
        if (event === 'message' && args[0] === 'close-me') return session.disconnect(3000, 'Go away!');
        return inner.event(session, event, args, reply);
      },
    };
  };
  oursNode = await startNode({ app });
  ours = `${oursNode.url}/sockjs`;
});

afterAll(async () => {
  httpServer?.close();
  await closeAll();
});

/**
 * Resolves once the receiver `session`'s next request makes is held: the reference server's has
 * arrived (its handlers register a receiver as the request comes in, before later `request`
 * listeners run); the gateway's session has it as its connection
 */
function held(base: string, session: string): Promise<void> {
  if (base === ours)
    return until(() => (oursNode.gateway.sessions.get(oursNode.gateway.chosenSid('sj:' + session))?.conn ? true : undefined)).then(() => undefined);
  return new Promise((resolve) => {
    const seen = (r: IncomingMessage) => {
      if (r.url !== `/sockjs/000/${session}/xhr`) return;
      httpServer.off('request', seen);
      resolve();
    };
    httpServer.on('request', seen);
  });
}

interface Seen {
  status: number;
  type: string | null;
  body: string;
}

async function req(base: string, path: string, init?: RequestInit): Promise<Seen> {
  const r = await fetch(base + path, init);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

/** Runs `script` against both servers (each with its own session id) and compares what came back */
async function same(script: (base: string, session: string) => Promise<Seen[]>): Promise<Seen[]> {
  const id = () => Math.random().toString(36).slice(2, 10);
  const [theirs, mine] = await Promise.all([script(ref, id()), script(ours, id())]);
  expect(mine).toEqual(theirs);
  return mine;
}

describe('the same SockJS requests to sockjs 0.3.24 and to the gateway', () => {
  it('the greeting', async () => {
    await same(async (b) => [await req(b, '')]);
  });

  it('/info (entropy aside)', async () => {
    await same(async (b) => {
      const r = await req(b, '/info');
      const body = JSON.parse(r.body);
      body.entropy = typeof body.entropy;
      return [{ ...r, body: JSON.stringify(Object.fromEntries(Object.entries(body).sort())) }];
    });
  });

  it('open, send (good, empty, broken JSON, to an unknown session), a second receiver', async () => {
    await same(async (b, s) => {
      const out: Seen[] = [];
      out.push(await req(b, `/000/${s}/xhr`, { method: 'POST' }));
      // a message both answer (an echo: the reference echoes any text; ours, this native frame)
      const echo = JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['x'] })]);
      out.push(await req(b, `/000/${s}/xhr_send`, { method: 'POST', body: echo }));
      out.push(await req(b, `/000/${s}/xhr_send`, { method: 'POST', body: '' }));
      out.push(await req(b, `/000/${s}/xhr_send`, { method: 'POST', body: '[x' }));
      out.push(await req(b, `/000/unknown${s}/xhr_send`, { method: 'POST', body: '["x"]' }));
      // a receiver is held (ours has a message waiting: take it first, then hold one)
      await req(b, `/000/${s}/xhr`, { method: 'POST' });
      const attached = held(b, s);
      const first = req(b, `/000/${s}/xhr`, { method: 'POST' });
      await attached;
      out.push(await req(b, `/000/${s}/xhr`, { method: 'POST' }));
      // release the held one
      void req(b, `/000/${s}/xhr_send`, { method: 'POST', body: echo });
      await first;
      return out.map((x) => (x.status === 204 ? { ...x, body: '' } : x));
    });
  });

  it('a session the app closes: the receiver gets the close, and so does every later one', async () => {
    await same(async (b, s) => {
      const out: Seen[] = [];
      out.push(await req(b, `/000/${s}/xhr`, { method: 'POST' }));
      out.push(await req(b, `/000/${s}/xhr_send`, { method: 'POST', body: '["close-me"]' }));
      out.push(await req(b, `/000/${s}/xhr`, { method: 'POST' }));
      out.push(await req(b, `/000/${s}/xhr`, { method: 'POST' }));
      out.push(await req(b, `/000/${s}/xhr_send`, { method: 'POST', body: '["x"]' }));
      return out.map((x) => (x.status === 204 ? { ...x, body: '' } : x));
    });
  });

  it('bad session URLs', async () => {
    await same(async (b) =>
      [await req(b, '/000/a.b/xhr', { method: 'POST' }), await req(b, '/a.b/abc/xhr', { method: 'POST' })].map((x) => ({ ...x, type: null, body: '' })),
    );
  });
});
