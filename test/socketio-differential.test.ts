/**
 * Differential: the same raw Engine.IO request sequences sent to the real socket.io 4.8 server
 * and to the gateway's Socket.IO dialect, configured alike; status codes, content types and bodies
 * must match (sids masked). Where we differ on purpose it is said in docs/socketio.md, and not
 * compared here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { closeAll, startNode } from './helpers.ts';
import { RawEio, type Answer } from './eio-raw.ts';
import type { App } from '../cluster/app.ts';

/**
 * pings 3 s apart: a sequence on a loaded machine must not see one slip in at a different point on
 * each server; and timeouts far longer than any sequence (the raw client never answers pings)
 */
const CONFIG = { pingInterval: 3000, pingTimeout: 10_000, connectTimeout: 5000 };

const suiteApp: App = {
  open(session) {
    session.emit('auth', session.meta.auth);
  },
  event(session, event, args, reply) {
    if (event === 'message') session.emit('message-back', ...args);
    else if (event === 'message-with-ack') reply?.(...args);
  },
};

let ref: RawEio;
let ours: RawEio;
let httpServer: HttpServer;
let io: Server;

beforeAll(async () => {
  httpServer = createServer();
  io = new Server(httpServer, { ...CONFIG, maxHttpBufferSize: 1_000_000 });
  for (const nsp of [io.of('/'), io.of('/custom')]) {
    nsp.on('connection', (socket) => {
      socket.emit('auth', socket.handshake.auth);
      socket.on('message', (...args: unknown[]) => socket.emit('message-back', ...args));
      socket.on('message-with-ack', (...args: unknown[]) => (args.pop() as (...a: unknown[]) => void)(...args));
    });
  }
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', () => r()));
  ref = new RawEio(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/socket.io/`);
  const node = await startNode({
    app: suiteApp,
    maxPayloadBytes: 1_000_000,
    socketio: {
      pingIntervalMs: CONFIG.pingInterval,
      pingTimeoutMs: CONFIG.pingTimeout,
      connectTimeoutMs: CONFIG.connectTimeout,
      namespaces: ['/', '/custom'],
      recovery: false,
    },
  });
  ours = new RawEio(`${node.url}/socket.io/`);
});

afterAll(async () => {
  io?.close();
  await closeAll();
});

/** What a client sees of an answer, with ids masked */
function seen(a: Answer, sids: string[]): string {
  let body = a.body;
  for (const sid of sids) body = body.split(sid).join('<sid>');
  // socket ids in CONNECT answers
  body = body.replace(/"sid":"[^"]+"/g, '"sid":"<sid>"');
  return `${a.status} ${a.type ?? '-'} ${body}`;
}

/** Runs `script` against both servers and compares what they answered, step by step */
async function same(script: (eio: RawEio, log: (a: Answer) => void, sid: () => string) => Promise<void>): Promise<string[]> {
  const run = async (eio: RawEio) => {
    const answers: Answer[] = [];
    let sid = '';
    const log = (a: Answer) => {
      answers.push(a);
      if (sid === '' && a.body.startsWith('0{')) sid = JSON.parse(a.body.slice(1)).sid;
    };
    await script(eio, log, () => sid);
    return answers.map((a) => seen(a, [sid]));
  };
  const [theirs, mine] = await Promise.all([run(ref), run(ours)]);
  expect(mine).toEqual(theirs);
  return mine;
}

const P = 'EIO=4&transport=polling';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = (sid: string) => `${P}&sid=${encodeURIComponent(sid)}`;

describe('the same requests to socket.io 4.8 and to the Socket.IO dialect', () => {
  it('handshake, and every handshake failure', async () => {
    const seenBoth = await same(async (eio, log) => {
      log(await eio.get(P));
      for (const query of [
        'transport=polling',
        'EIO=3&transport=polling',
        'EIO=abc&transport=polling',
        'EIO=4',
        'EIO=4&transport=abc',
        'EIO=4&transport=websocket',
      ])
        log(await eio.get(query));
      log(await eio.request('POST', P));
      log(await eio.request('PUT', P));
      log(await eio.get(`${P}&sid=nope`));
      log(await eio.post(`${P}&sid=nope`, '40'));
    });
    expect(seenBoth[0]).toBe(
      '200 text/plain; charset=UTF-8 0{"sid":"<sid>","upgrades":["websocket"],"pingInterval":3000,"pingTimeout":10000,"maxPayload":1000000}',
    );
  });

  it('connect, events, acks, binary, several packets per payload, an unknown namespace', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      log(await eio.post(q(sid()), '40'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '42["message",1,"2",{"3":[true]}]\x1e421["message-with-ack","a"]'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '452-3["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]\x1ebAQID\x1ebBAUG'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '451-["message",{"_placeholder":true,"num":0}]\x1ebAQID'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '40/custom,{"token":"abc"}'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '40/random,'));
      log(await eio.get(q(sid())));
    });
  });

  it('an invalid packet: the POST is answered, the session is gone', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      log(await eio.post(q(sid()), 'abc'));
      log(await eio.get(q(sid())));
    });
  });

  it('an invalid Socket.IO packet over polling: the held poll gets the close', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      log(await eio.post(q(sid()), '40'));
      log(await eio.get(q(sid())));
      const held = eio.get(q(sid()));
      await sleep(30);
      log(await eio.post(q(sid()), '42{}'));
      log(await held);
      log(await eio.get(q(sid())));
    });
  });

  it('a duplicate poll ends the session; the first poll gets the close packet', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      const first = eio.get(q(sid()));
      await sleep(30);
      log(await eio.get(q(sid())));
      log(await first);
      log(await eio.get(q(sid())));
    });
  });

  it('the client closes: its held poll gets a noop, then the session is gone', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      const held = eio.get(q(sid()));
      await sleep(30);
      log(await eio.post(q(sid()), '1'));
      log(await held);
      log(await eio.get(q(sid())));
    });
  });

  it('heartbeat: a held poll gets the ping; a client ping ends the session', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '3'));
      log(await eio.post(q(sid()), '2'));
      log(await eio.get(q(sid())));
    });
  });

  it('a POST over maxPayload is refused and the session lives on; a binary (v3) body ends it', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      log(await eio.post(q(sid()), '4' + 'x'.repeat(1_000_000)));
      log(await eio.post(q(sid()), '40'));
      log(await eio.get(q(sid())));
      log(await eio.post(q(sid()), '42["message"]', { 'content-type': 'application/octet-stream' }));
      log(await eio.get(q(sid())));
    });
  });

  it('after the upgrade, polling requests are refused', async () => {
    await same(async (eio, log, sid) => {
      log(await eio.get(P));
      const s = eio.socket(`EIO=4&transport=websocket&sid=${encodeURIComponent(sid())}`);
      try {
        await s.opened();
        s.send('2probe');
        s.send('5');
        expect(await s.next()).toBe('3probe');
        await sleep(30);
        log(await eio.get(q(sid())));
        log(await eio.post(q(sid()), '40'));
      } finally {
        s.end();
      }
    });
  });
});
