/**
 * The Socket.IO dialect byte for byte: one test per case of the official engine.io-protocol and
 * socket.io-protocol test suites (socketio/engine.io-protocol and socketio/socket.io-protocol,
 * test-suite/test-suite.js; read, not copied), with the suites' server configuration: pingInterval
 * 300, pingTimeout 200 (1000 here: a pong under a full test run's load can take longer than 200 ms
 * to come back; and so connectTimeout 2500 with it, for a ping timeout to come first), connectTimeout 1000, maxPayload 1000000, namespaces / and /custom, and
 * their handlers (`message` → `message-back`, `message-with-ack` acks its args, an `auth` emit on
 * connect). Engine.IO's own `message` cases carry Socket.IO packets here: our Engine.IO always has
 * Socket.IO above it.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { closeAll, startNode, until } from './helpers.ts';
import { RawEio, type RawSocket } from './eio-raw.ts';
import type { App } from '../cluster/app.ts';

/** the suites' server, as an app */
const suiteApp: App = {
  open(session) {
    session.emit('auth', session.meta.auth);
  },
  event(session, event, args, reply) {
    if (event === 'message') session.emit('message-back', ...args);
    else if (event === 'message-with-ack') reply?.(...args);
  },
};

/**
 * The endpoint the tests talk to. Two nodes: the suites' 300 ms ping interval (with a 1 s timeout)
 * for the heartbeat cases (`fast`), and pings far apart for the others (`relaxed`), whose exact
 * bodies a ping must not slip into (on a loaded machine a sequence can take longer than 300 ms)
 */
let eio: RawEio;
let relaxed: RawEio;
let fast: RawEio;

beforeAll(async () => {
  const start = async (pingIntervalMs: number, pingTimeoutMs: number, connectTimeoutMs: number) => {
    const node = await startNode({
      app: suiteApp,
      maxPayloadBytes: 1_000_000,
      socketio: { pingIntervalMs, pingTimeoutMs, connectTimeoutMs, namespaces: ['/', '/custom'], recovery: false },
    });
    return new RawEio(`${node.url}/socket.io/`);
  };
  fast = await start(300, 1000, 2500);
  relaxed = await start(20_000, 20_000, 1000);
  eio = relaxed;
});
afterAll(closeAll);

/** This one test runs against the node with the suites' fast heartbeat */
function useFastHeartbeat(): void {
  eio = fast;
  onTestFinished(() => {
    eio = relaxed;
  });
}

/** The describe block's tests run against the node with the suites' fast heartbeat */
function withFastHeartbeat(): void {
  beforeAll(() => {
    eio = fast;
  });
  afterAll(() => {
    eio = relaxed;
  });
}

const P = 'EIO=4&transport=polling';
const W = 'EIO=4&transport=websocket';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opened: RawSocket[] = [];

/** A WebSocket-only session: open, the handshake taken */
async function wsSession(): Promise<{ s: RawSocket; open: Record<string, unknown> }> {
  const s = eio.socket(W);
  opened.push(s);
  const first = (await s.next()) as string;
  expect(first[0]).toBe('0');
  return { s, open: JSON.parse(first.slice(1)) };
}

/** A WebSocket-only session connected to the main namespace (`40{sid}` and the auth emit taken) */
async function sioSession(): Promise<RawSocket> {
  const { s } = await wsSession();
  s.autoPong = true;
  s.send('40');
  const [connect, auth] = await s.take(2);
  expect(connect).toMatch(/^40\{"sid":"[^"]+"\}$/);
  expect(auth).toBe('42["auth",{}]');
  return s;
}

/** A polling session connected to the main namespace */
async function pollingSession(): Promise<string> {
  const { sid } = await eio.handshake();
  expect((await eio.send(sid, '40')).body).toBe('ok');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: \x1e is Engine.IO's packet separator
  expect((await eio.poll(sid)).body).toMatch(/^40\{"sid":"[^"]+"\}\x1e42\["auth",\{\}\]$/);
  return sid;
}

afterAll(() => {
  for (const s of opened) s.end();
});

describe('engine.io-protocol suite: handshake', () => {
  it('HTTP long-polling: successfully opens a session', async () => {
    const a = await eio.get(P);
    expect(a.status).toBe(200);
    expect(a.type).toBe('text/plain; charset=UTF-8');
    expect(a.body[0]).toBe('0');
    const open = JSON.parse(a.body.slice(1));
    expect(Object.keys(open)).toEqual(['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    expect(open).toMatchObject({ upgrades: ['websocket'], pingInterval: 20_000, pingTimeout: 20_000, maxPayload: 1_000_000 });
    expect(typeof open.sid).toBe('string');
  });

  it("HTTP long-polling: fails with an invalid 'EIO' query parameter", async () => {
    for (const q of ['transport=polling', 'EIO=abc&transport=polling', 'EIO=3&transport=polling', 'EIO=5&transport=polling']) {
      const a = await eio.get(q);
      expect(a.status).toBe(400);
      expect(a.type).toBe('application/json');
      expect(a.body).toBe('{"code":5,"message":"Unsupported protocol version"}');
    }
  });

  it("HTTP long-polling: fails with an invalid 'transport' query parameter", async () => {
    for (const q of ['EIO=4', 'EIO=4&transport=abc']) expect(await eio.get(q)).toMatchObject({ status: 400, body: '{"code":0,"message":"Transport unknown"}' });
  });

  it('HTTP long-polling: fails with an invalid request method', async () => {
    expect(await eio.request('POST', P)).toMatchObject({ status: 400, body: '{"code":2,"message":"Bad handshake method"}' });
    expect(await eio.request('PUT', P)).toMatchObject({ status: 400, body: '{"code":2,"message":"Bad handshake method"}' });
  });

  it('WebSocket: successfully opens a session', async () => {
    const { open } = await wsSession();
    expect(Object.keys(open)).toEqual(['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    expect(open).toMatchObject({ upgrades: [], pingInterval: 20_000, pingTimeout: 20_000, maxPayload: 1_000_000 });
  });

  it("WebSocket: fails with an invalid 'EIO' or 'transport' query parameter", async () => {
    for (const q of ['transport=websocket', 'EIO=abc&transport=websocket', 'EIO=4', 'EIO=4&transport=abc']) {
      const s = eio.socket(q);
      await s.close();
      expect(s.refused).toBe(400);
    }
  });
});

describe('engine.io-protocol suite: message', () => {
  it('HTTP long-polling: one packet, several packets in one payload, text and binary packets', async () => {
    const sid = await pollingSession();
    expect(await eio.send(sid, '42["message","one"]')).toMatchObject({ status: 200, type: 'text/html', body: 'ok' });
    expect((await eio.poll(sid)).body).toBe('42["message-back","one"]');
    expect((await eio.send(sid, '42["message","a"]\x1e42["message","b"]\x1e42["message","c"]')).body).toBe('ok');
    expect((await eio.poll(sid)).body).toBe('42["message-back","a"]\x1e42["message-back","b"]\x1e42["message-back","c"]');
    // a binary attachment travels as b<base64>
    expect((await eio.send(sid, '42["message","text"]\x1e451-["message",{"_placeholder":true,"num":0}]\x1ebAQIDBA==')).body).toBe('ok');
    expect((await eio.poll(sid)).body).toBe('42["message-back","text"]\x1e451-["message-back",{"_placeholder":true,"num":0}]\x1ebAQIDBA==');
  });

  it('HTTP long-polling: closes the session upon invalid packet format', async () => {
    const { sid } = await eio.handshake();
    // the POST is answered (as the reference server does); the session is gone
    expect((await eio.send(sid, 'abc')).body).toBe('ok');
    expect(await eio.poll(sid)).toMatchObject({ status: 400, body: '{"code":1,"message":"Session ID unknown"}' });
  });

  it('HTTP long-polling: closes the session upon duplicate poll requests', async () => {
    const { sid } = await eio.handshake();
    const first = eio.poll(sid);
    await sleep(20);
    const second = await eio.poll(sid);
    expect(second.status).toBe(400);
    expect(await first).toMatchObject({ status: 200, body: '1' });
    expect((await eio.poll(sid)).status).toBe(400);
  });

  it('WebSocket: a plain text packet and a binary packet', async () => {
    const s = await sioSession();
    s.send('42["message","hello"]');
    expect(await s.next()).toBe('42["message-back","hello"]');
    s.send('451-["message",{"_placeholder":true,"num":0}]');
    s.send(Buffer.from([1, 2, 3, 4]));
    expect(await s.take(2)).toEqual(['451-["message-back",{"_placeholder":true,"num":0}]', Buffer.from([1, 2, 3, 4])]);
  });

  it('WebSocket: closes the session upon invalid packet format', async () => {
    const { s } = await wsSession();
    s.send('abc');
    expect(await s.close()).toBe(1005);
  });
});

describe('engine.io-protocol suite: heartbeat', () => {
  withFastHeartbeat();

  it('HTTP long-polling: sends ping/pong packets', async () => {
    const { sid } = await eio.handshake();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      expect(await eio.poll(sid)).toMatchObject({ status: 200, body: '2' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect((await eio.send(sid, '3')).body).toBe('ok');
    }
  });

  it('HTTP long-polling: closes the session upon ping timeout', async () => {
    const { sid } = await eio.handshake();
    // polls without pongs: pings (one per pingInterval: ours go on while a pong is due, see
    // docs/socketio.md), the close packet to the poll held when the timeout passed, then the sid is gone
    expect((await eio.poll(sid)).body).toBe('2');
    const t = Date.now();
    const bodies: string[] = [];
    for (let r = await eio.poll(sid); ; r = await eio.poll(sid)) {
      if (r.status === 400) {
        expect(r.body).toBe('{"code":1,"message":"Session ID unknown"}');
        break;
      }
      bodies.push(r.body);
    }
    expect(bodies.at(-1)).toBe('1');
    expect(new Set(bodies.slice(0, -1))).toEqual(new Set(bodies.length > 1 ? ['2'] : []));
    // pingTimeout after the first ping (less a tick of the heartbeat's clock)
    expect(Date.now() - t).toBeGreaterThan(800);
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it('HTTP long-polling: a poll held when the ping times out gets the close packet', async () => {
    const { sid } = await eio.handshake();
    expect((await eio.poll(sid)).body).toBe('2');
    let r = await eio.poll(sid);
    while (r.body === '2') r = await eio.poll(sid);
    expect(r).toMatchObject({ status: 200, body: '1' });
  });

  it('WebSocket: sends ping/pong packets, also while other traffic flows', async () => {
    const s = await sioSession();
    s.autoPong = false;
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      s.send('42["message",1]');
      expect(await s.next()).toBe('42["message-back",1]');
      expect(await s.next()).toBe('2');
      expect(Date.now() - t).toBeLessThan(1000);
      s.send('3');
    }
  });

  it('WebSocket: closes the session upon ping timeout', async () => {
    const { s } = await wsSession();
    expect(await s.next()).toBe('2');
    const t = Date.now();
    expect(await s.close()).toBe(1005);
    // nothing but pings before the close (one per pingInterval while the pong is due)
    expect(new Set(s.messages.slice(1))).toEqual(new Set(s.messages.length > 1 ? ['2'] : []));
    // pingTimeout after the first ping (less a tick of the heartbeat's clock)
    expect(Date.now() - t).toBeGreaterThan(800);
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it('a client ping (the v3 direction) closes the session', async () => {
    const { sid } = await eio.handshake();
    expect((await eio.send(sid, '2')).body).toBe('ok');
    expect((await eio.poll(sid)).status).toBe(400);
  });
});

describe('engine.io-protocol suite: close', () => {
  withFastHeartbeat();

  it('HTTP long-polling: forcefully closes the session', async () => {
    const { sid } = await eio.handshake();
    const [held, posted] = await Promise.all([eio.poll(sid), sleep(20).then(() => eio.send(sid, '1'))]);
    expect(posted.body).toBe('ok');
    expect(held).toMatchObject({ status: 200, body: '6' });
    expect((await eio.poll(sid)).status).toBe(400);
  });

  it('WebSocket: forcefully closes the session (a `1` is ignored there; the socket closes by ping timeout)', async () => {
    const { s } = await wsSession();
    s.send('1');
    expect(await s.close()).toBe(1005);
  });
});

describe('engine.io-protocol suite: upgrade', () => {
  it('successfully upgrades from HTTP long-polling to WebSocket', async () => {
    const sid = await pollingSession();
    const s = eio.socket(`${W}&sid=${sid}`);
    opened.push(s);
    await s.opened();
    s.send('2probe');
    expect(await s.next()).toBe('3probe');
    // the poll the client holds is released with a noop so that it can pause polling
    expect(await eio.poll(sid)).toMatchObject({ status: 200, body: '6' });
    s.send('5');
    s.send('42["message","over websocket"]');
    expect(await s.next()).toBe('42["message-back","over websocket"]');
  });

  it('ignores HTTP requests with the same sid after the upgrade', async () => {
    const sid = await pollingSession();
    const s = eio.socket(`${W}&sid=${sid}`);
    opened.push(s);
    await s.opened();
    s.send('2probe');
    s.send('5');
    expect(await s.next()).toBe('3probe');
    expect(await eio.poll(sid)).toMatchObject({ status: 400, body: '{"code":3,"message":"Bad request"}' });
    expect(await eio.send(sid, '42["message",1]')).toMatchObject({ status: 400, body: '{"code":3,"message":"Bad request"}' });
    s.send('42["message","still here"]');
    expect(await s.next()).toBe('42["message-back","still here"]');
  });

  it('ignores a WebSocket connection with the same sid after the upgrade', async () => {
    const sid = await pollingSession();
    const s = eio.socket(`${W}&sid=${sid}`);
    opened.push(s);
    await s.opened();
    s.send('2probe');
    s.send('5');
    expect(await s.next()).toBe('3probe');
    const second = eio.socket(`${W}&sid=${sid}`);
    expect(await second.close()).toBe(1005);
    s.send('42["message","first one"]');
    expect(await s.next()).toBe('42["message-back","first one"]');
  });

  it('a probe that sends anything but the upgrade is closed; polling goes on', async () => {
    const sid = await pollingSession();
    const s = eio.socket(`${W}&sid=${sid}`);
    await s.opened();
    s.send('42["message","too early"]');
    expect(await s.close()).toBe(1005);
    expect((await eio.send(sid, '42["message","polling"]')).body).toBe('ok');
    expect((await eio.poll(sid)).body).toBe('42["message-back","polling"]');
  });
});

describe('socket.io-protocol suite: connect', () => {
  it('allows connection to the main namespace', async () => {
    const { s } = await wsSession();
    s.send('40');
    const [connect, auth] = (await s.take(2)) as string[];
    expect(connect!.startsWith('40')).toBe(true);
    expect(Object.keys(JSON.parse(connect!.slice(2)))).toEqual(['sid']);
    expect(auth).toBe('42["auth",{}]');
  });

  it('allows connection to the main namespace with a payload', async () => {
    const { s } = await wsSession();
    s.send('40{"token":"123"}');
    expect((await s.take(2))[1]).toBe('42["auth",{"token":"123"}]');
  });

  it('allows connection to a custom namespace, with and without a payload', async () => {
    const { s } = await wsSession();
    s.send('40/custom,');
    const [connect, auth] = (await s.take(2)) as string[];
    expect(connect!.startsWith('40/custom,')).toBe(true);
    expect(Object.keys(JSON.parse(connect!.slice(10)))).toEqual(['sid']);
    expect(auth).toBe('42/custom,["auth",{}]');
    const other = (await wsSession()).s;
    other.send('40/custom,{"token":"abc"}');
    expect((await other.take(2))[1]).toBe('42/custom,["auth",{"token":"abc"}]');
  });

  it('disallows connection to an unknown namespace (the connection stays)', async () => {
    const { s } = await wsSession();
    s.autoPong = true;
    s.send('40/random');
    expect(await s.next()).toBe('44/random,{"message":"Invalid namespace"}');
    s.send('40');
    expect(((await s.next()) as string).startsWith('40{')).toBe(true);
  });

  it('disallows connection with an invalid handshake', async () => {
    const { s } = await wsSession();
    s.send('4abc');
    expect(await s.close()).toBe(1005);
  });

  it('closes the connection if no handshake is received (connectTimeout), even while it answers pings', async () => {
    useFastHeartbeat();
    const { s } = await wsSession();
    s.autoPong = true;
    const t = Date.now();
    expect(await s.close()).toBe(1005);
    expect(Date.now() - t).toBeGreaterThan(800);
  });

  it('a packet before the CONNECT closes the connection', async () => {
    const { s } = await wsSession();
    s.send('42["message",1]');
    expect(await s.close()).toBe(1005);
  });

  it('polling: CONNECT to an unknown namespace', async () => {
    const { sid } = await eio.handshake();
    expect((await eio.send(sid, '40/random,')).body).toBe('ok');
    expect((await eio.poll(sid)).body).toBe('44/random,{"message":"Invalid namespace"}');
  });

  it('polling: the connectTimeout releases the held poll with a close packet', async () => {
    useFastHeartbeat();
    const { sid } = await eio.handshake();
    const t = Date.now();
    const bodies: string[] = [];
    for (;;) {
      const a = await eio.poll(sid);
      bodies.push(a.body);
      if (a.body !== '2') break;
      await eio.send(sid, '3');
    }
    expect(bodies.at(-1)).toBe('1');
    expect(bodies.slice(0, -1).every((b) => b === '2')).toBe(true);
    expect(Date.now() - t).toBeGreaterThan(800);
  });
});

describe('socket.io-protocol suite: disconnect', () => {
  withFastHeartbeat();

  it('disconnects from the main namespace: the next frame is a ping', async () => {
    const s = await sioSession();
    s.autoPong = false;
    s.send('41');
    expect(await s.next()).toBe('2');
  });

  it('connects then disconnects from a custom namespace; the main one goes on', async () => {
    const s = await sioSession();
    s.send('40/custom');
    const [connect, auth] = (await s.take(2)) as string[];
    expect(connect!.startsWith('40/custom,')).toBe(true);
    expect(auth).toBe('42/custom,["auth",{}]');
    s.send('41/custom');
    s.send('42["message","message to main namespace"]');
    expect(await s.next()).toBe('42["message-back","message to main namespace"]');
  });
});

describe('socket.io-protocol suite: message', () => {
  it('sends a plain-text packet', async () => {
    const s = await sioSession();
    s.send('42["message",1,"2",{"3":[true]}]');
    expect(await s.next()).toBe('42["message-back",1,"2",{"3":[true]}]');
  });

  it('sends a packet with binary attachments', async () => {
    const s = await sioSession();
    s.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    s.send(Buffer.from([1, 2, 3]));
    s.send(Buffer.from([4, 5, 6]));
    expect(await s.take(3)).toEqual([
      '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      Buffer.from([1, 2, 3]),
      Buffer.from([4, 5, 6]),
    ]);
  });

  it('sends a plain-text packet with an ack', async () => {
    const s = await sioSession();
    s.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    expect(await s.next()).toBe('43456[1,"2",{"3":[false]}]');
  });

  it('sends a packet with binary attachments and an ack', async () => {
    const s = await sioSession();
    s.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    s.send(Buffer.from([1, 2, 3]));
    s.send(Buffer.from([4, 5, 6]));
    expect(await s.take(3)).toEqual(['462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', Buffer.from([1, 2, 3]), Buffer.from([4, 5, 6])]);
  });

  for (const [name, packet] of [
    ['unknown packet type', '4abc'],
    ['invalid payload format', '42{}'],
    ['invalid ack id', '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ['a reserved event name', '42["disconnect"]'],
    ['an ACK without an id', '43[1]'],
    ['an attachment count without a dash', '451["message"]'],
    ['a placeholder out of range', '451-["message",{"_placeholder":true,"num":3}]'],
    ['text where an attachment is due', '451-["message",{"_placeholder":true,"num":0}]'],
  ] as const) {
    it(`closes the connection upon invalid format: ${name}`, async () => {
      const s = await sioSession();
      s.send(packet);
      if (name === 'a placeholder out of range' || name === 'text where an attachment is due')
        s.send(name === 'a placeholder out of range' ? Buffer.from([1]) : '42["message",1]');
      expect(await s.close()).toBe(1005);
    });
  }

  it('a WebSocket message over maxPayload closes the connection with 1009; one of exactly maxPayload bytes is taken', async () => {
    const s = await sioSession();
    const fits = '42["message","' + 'x'.repeat(1_000_000 - 16) + '"]';
    expect(fits.length).toBe(1_000_000);
    s.send(fits);
    expect(((await s.next()) as string).startsWith('42["message-back","xxx')).toBe(true);
    s.send(fits + ' ');
    expect(await s.close()).toBe(1009);
  });

  it('binary data where no attachment is due closes the connection', async () => {
    const s = await sioSession();
    s.send(Buffer.from([1, 2]));
    expect(await s.close()).toBe(1005);
  });
});

describe('sessions the gateway ends', () => {
  it("a slow consumer: the transport closes (no DISCONNECT), and the client's return finds a new session", async () => {
    const node = await startNode({
      outboxMaxFrames: 4,
      app: {
        event(session, event, args) {
          if (event === 'emit-n') for (let i = 0; i < Number(args[0]); i++) session.emit('n', i);
        },
      },
    });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const { sid } = await raw.handshake();
    expect((await raw.send(sid, '40')).body).toBe('ok');
    const connect = (await raw.poll(sid)).body;
    const { pid } = JSON.parse(connect.slice(2)) as { sid: string; pid: string };
    // ten events while the client holds no poll: more unsent entries than the outbox takes
    expect((await raw.send(sid, '42["emit-n",10]')).body).toBe('ok');
    expect(await raw.poll(sid)).toMatchObject({ status: 400, body: '{"code":1,"message":"Session ID unknown"}' });
    // the client reconnects and tries to recover: the session ended, so it gets a new one
    const again = await raw.handshake();
    expect((await raw.send(again.sid, `40{"pid":${JSON.stringify(pid)},"offset":"1"}`)).body).toBe('ok');
    const answer = JSON.parse((await raw.poll(again.sid)).body.slice(2)) as { sid: string; pid: string };
    expect(answer.pid).not.toBe(pid);
    expect(answer.sid).not.toBe(JSON.parse(connect.slice(2)).sid);
  });
});

describe('hostile and edge cases', () => {
  it('a sid we did not make names no carrier (its node part never reaches a bus subject)', async () => {
    for (const sid of ['x.y\r\nPUB evil 1', 'aaaaaaaaaaaaaaaaaaaa.node\r\nX', 'no-dot', '../..']) {
      expect(await eio.poll(sid)).toMatchObject({ status: 400, body: '{"code":1,"message":"Session ID unknown"}' });
      expect((await eio.send(sid, '40')).status).toBe(400);
      const s = eio.socket(`${W}&sid=${encodeURIComponent(sid)}`);
      await s.close();
      expect(s.refused).toBe(400);
    }
  });

  it('an event without a payload, or with more than 10 attachments, closes the connection', async () => {
    for (const packet of ['42', '4511-["message"]']) {
      const s = await sioSession();
      s.send(packet);
      expect(await s.close()).toBe(1005);
    }
  });

  it('a CONNECT to an unknown namespace does not stop the connect timeout', async () => {
    const { s } = await wsSession();
    s.autoPong = true;
    const t = Date.now();
    for (let i = 0; i < 3; i++) {
      s.send('40/random');
      expect(await s.next()).toBe('44/random,{"message":"Invalid namespace"}');
      await sleep(200);
    }
    expect(await s.close()).toBe(1005);
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('a poll while a probe socket is open but has not sent 2probe is held, not released with a noop', async () => {
    useFastHeartbeat();
    const sid = await pollingSession();
    const s = eio.socket(`${W}&sid=${sid}`);
    opened.push(s);
    await s.opened();
    const t = Date.now();
    expect((await eio.poll(sid)).body).toBe('2'); // the next ping, not an immediate 6
    expect(Date.now() - t).toBeGreaterThan(100);
  });

  it('a large backlog goes out over several polls, in order', async () => {
    const node = await startNode({
      app: {
        event: (session, event, args) => void (event === 'big' && Array.from({ length: 6 }, (_, i) => session.emit('chunk', i, 'x'.repeat(Number(args[0]))))),
      },
      outboxMaxBytes: 4 * 1024 * 1024,
    });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const { sid } = await raw.handshake();
    await raw.send(sid, '40');
    await raw.poll(sid);
    await raw.send(sid, '42["big",100000]');
    const chunks: number[] = [];
    let polls = 0;
    while (chunks.length < 6) {
      const body = (await raw.poll(sid)).body;
      polls++;
      for (const p of body.split('\x1e')) if (p.startsWith('42["chunk"')) chunks.push(JSON.parse(p.slice(2))[1]);
    }
    expect(chunks).toEqual([0, 1, 2, 3, 4, 5]);
    expect(polls).toBeGreaterThan(1);
  });

  it('a client that never polls while its answers pile up is closed', async () => {
    const { sid } = await eio.handshake();
    // each refused CONNECT answers with its (long) namespace name; the client never reads them
    let status = 200;
    for (let i = 0; i < 10 && status === 200; i++) {
      status = (await eio.send(sid, `40/${'n'.repeat(400_000)},`)).status;
      await eio.send(sid, '3');
    }
    expect((await eio.poll(sid)).status).toBe(400);
  });

  it('CONNECT past the session limit closes the transport (the client retries later)', async () => {
    const node = await startNode({ app: suiteApp, maxSessions: 1, socketio: { namespaces: ['/', '/custom'] } });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const s = raw.socket(W);
    opened.push(s);
    await s.next();
    s.send('40');
    expect(((await s.next()) as string).startsWith('40{')).toBe(true);
    s.send('40/custom,');
    await s.next(); // the main namespace's auth emit
    expect(await s.close()).toBe(1005);
  });
});

describe('recovery, byte for byte', () => {
  const recoveryApp: App = {
    event(session, event, args, reply) {
      if (event === 'n') for (let i = 0; i < Number(args[0]); i++) session.emit('n', i);
      if (event === 'echo') reply?.(...args);
    },
  };

  async function connected(raw: RawEio, connect = '40'): Promise<{ s: RawSocket; answer: { sid: string; pid: string } }> {
    const s = raw.socket(W);
    opened.push(s);
    await s.next();
    s.autoPong = true;
    s.send(connect);
    const packet = (await s.next()) as string;
    const answer = JSON.parse(packet.slice(packet.indexOf('{'))) as { sid: string; pid: string };
    return { s, answer };
  }

  it('a recovered client gets back exactly the pid it sent, also after a recovery that lost entries', async () => {
    const node = await startNode({ app: recoveryApp, outboxMaxFrames: 4 });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const first = await connected(raw);
    const pid = first.answer.pid;
    first.s.send('42["n",10]');
    const got = (await first.s.take(10)) as string[];
    expect(got[9]).toMatch(/^42\["n",9,"\d+"\]$/);
    first.s.end();
    // back with an old offset: entries after it are gone (the outbox keeps 4): not recovered
    const offset2 = JSON.parse(got[1]!.slice(2))[2] as string;
    const second = await connected(raw, `40{"pid":${JSON.stringify(pid)},"offset":${JSON.stringify(offset2)}}`);
    expect(second.answer.sid).toBe(first.answer.sid);
    expect(second.answer.pid).not.toBe(pid);
    second.s.end();
    // back again with that pid and the newest offset: nothing lost, the same pid comes back
    const offset10 = JSON.parse(got[9]!.slice(2))[2] as string;
    const third = await connected(raw, `40{"pid":${JSON.stringify(second.answer.pid)},"offset":${JSON.stringify(offset10)}}`);
    expect(third.answer).toEqual({ sid: first.answer.sid, pid: second.answer.pid });
  });

  it('a recovery replays events after the offset, but not the acks the client was already sent', async () => {
    const node = await startNode({ app: recoveryApp });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const first = await connected(raw);
    first.s.send('42["n",1]');
    const event = (await first.s.next()) as string;
    const offset = JSON.parse(event.slice(2))[2] as string;
    first.s.send('427["echo","acked"]');
    expect(await first.s.next()).toBe('437["acked"]');
    first.s.end();
    const again = await connected(raw, `40{"pid":${JSON.stringify(first.answer.pid)},"offset":${JSON.stringify(offset)}}`);
    expect(again.answer.pid).toBe(first.answer.pid);
    again.s.send('42["n",1]');
    // the next thing is the new event: the ack was not written again
    expect(await again.s.next()).toMatch(/^42\["n",0,"\d+"\]$/);
  });

  it("a pid of another namespace does not recover this one's session", async () => {
    const node = await startNode({ app: recoveryApp, socketio: { namespaces: ['/', '/custom'] } });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const first = await connected(raw);
    const other = await connected(raw, `40/custom,{"pid":${JSON.stringify(first.answer.pid)}}`);
    expect(other.answer.sid).not.toBe(first.answer.sid);
  });

  it('a client coming back on a new transport takes its session over; the old transport, left with nothing, is closed', async () => {
    const node = await startNode({ app: recoveryApp });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const first = await connected(raw);
    const second = await connected(raw, `40{"pid":${JSON.stringify(first.answer.pid)}}`);
    expect(second.answer.sid).toBe(first.answer.sid);
    expect(await first.s.close()).toBe(1005);
  });

  it('without recovery, a closed transport ends its sessions at once (nothing can come back to them)', async () => {
    const closed: string[] = [];
    const node = await startNode({ app: { event() {}, close: (s) => void closed.push(s.sid) }, socketio: { recovery: false } });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const s = raw.socket(W);
    await s.next();
    s.send('40');
    const answer = JSON.parse(((await s.next()) as string).slice(2)) as { sid: string; pid?: string };
    expect(answer.pid).toBeUndefined();
    s.end();
    await until(() => (closed.includes(answer.sid) ? true : undefined), 2000);
  });
});

describe('the heartbeat counts from each connection’s own handshake', () => {
  it('the first ping comes a whole pingInterval after the handshake, never earlier (the heartbeat clock ticks every 250 ms here)', async () => {
    // pingInterval 1000 with these timeouts makes the heartbeat tick every 250 ms: a first ping
    // scheduled from the last tick (up to a tick old) would come up to 250 ms early
    const node = await startNode({
      app: suiteApp,
      socketio: { pingIntervalMs: 1000, pingTimeoutMs: 1000, connectTimeoutMs: 4000, namespaces: ['/'], recovery: false },
    });
    const raw = new RawEio(`${node.url}/socket.io/`);
    const gaps = await Promise.all(
      [0, 40, 90, 130, 170, 210].map(async (delay) => {
        await new Promise((r) => setTimeout(r, delay));
        const { sid } = await raw.handshake();
        const opened = Date.now();
        const poll = await raw.poll(sid);
        expect(poll.body).toBe('2');
        return Date.now() - opened;
      }),
    );
    // (the handshake's answer reaches the client after the server started counting: a ms or two)
    for (const gap of gaps) expect(gap, String(gaps)).toBeGreaterThanOrEqual(995);
    // and well before the client would give up (pingInterval + pingTimeout), even on a loaded machine
    for (const gap of gaps) expect(gap, String(gaps)).toBeLessThan(2000);
  });
});
