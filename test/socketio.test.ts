/**
 * The Socket.IO dialect with the real socket.io-client 4.8 on one node: every transport choice,
 * acks both ways, binary, namespaces, rooms shared with native clients, recovery, restarts and
 * the msgpack parser. The raw protocol cases are in socketio-protocol.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { closeAll, portBelowEphemeral, startNode, until, WsClient } from './helpers.ts';
import demo from '../demo/app.ts';
import type { App, AppHandlers } from '../cluster/app.ts';

/** The demo app, plus what these tests ask of an app: a server request, a kick, its view of the session */
const app: App = (ctx) => {
  const inner = (demo as (c: typeof ctx) => AppHandlers)(ctx);
  return {
    open(session) {
      if (session.meta.namespace === '/private') throw new Error('not allowed here');
    },
    async event(session, event, args, reply) {
      switch (event) {
        case 'ask': {
          const [answer] = await session.request('question', args[0]);
          return reply?.(answer);
        }
        case 'kick':
          return session.disconnect(4000, 'bye');
        case 'meta':
          return reply?.({
            namespace: session.meta.namespace,
            auth: session.meta.auth,
            dialect: session.meta.dialect,
            query: session.meta.query,
            transport: session.transport,
          });
        case 'emit-n':
          for (let i = 1; i <= Number(args[0]); i++) session.emit('n', i);
          return reply?.(true);
        default:
          return inner.event(session, event, args, reply);
      }
    },
  };
};

const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.disconnect();
  await closeAll();
});

type Opts = Parameters<typeof io>[1];

/** A connected socket.io-client socket (fails the test on connect_error) */
async function connect(url: string, opts: Opts = {}): Promise<Socket> {
  const s = io(url, { reconnectionDelay: 50, reconnectionDelayMax: 200, randomizationFactor: 0, ...opts });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  return s;
}

/** The error a socket that cannot connect gets */
function connectError(url: string, opts: Opts = {}): Promise<Error & { data?: unknown }> {
  const s = io(url, { reconnection: false, ...opts });
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once('connect', () => reject(new Error('connected')));
    s.once('connect_error', resolve);
  });
}

/** Collects every arrival of `event` (args without the recovery offset, which is checked separately) */
function collect(s: Socket, event: string): { args: unknown[][]; offsets: string[] } {
  const got = { args: [] as unknown[][], offsets: [] as string[] };
  s.on(event, (...a: unknown[]) => {
    got.offsets.push(a.pop() as string);
    got.args.push(a);
  });
  return got;
}

const NAMESPACES = ['/', '/admin', '/private'];

describe('socket.io-client on one node', () => {
  it('starts polling and upgrades to WebSocket; echo with and without acks', async () => {
    const node = await startNode({ app, socketio: { namespaces: NAMESPACES } });
    const s = io(node.url, {});
    sockets.push(s);
    let first = '';
    const upgraded = new Promise<string>((resolve) =>
      s.io.on('open', () => {
        first = s.io.engine.transport.name;
        s.io.engine.once('upgrade', (t: { name: string }) => resolve(t.name));
      }),
    );
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    expect(first).toBe('polling');
    expect(await upgraded).toBe('websocket');
    expect(s.io.engine.transport.name).toBe('websocket');
    expect(await s.emitWithAck('echo', 1, 'two', { three: [3] })).toBe(1);
    const echoed = collect(s, 'echo');
    s.emit('echo', 'a', { b: [1, null, true] });
    await until(() => echoed.args.length === 1 || undefined);
    expect(echoed.args[0]).toEqual(['a', { b: [1, null, true] }]);
    expect(await s.emitWithAck('meta')).toMatchObject({ namespace: '/', dialect: 'socket.io', transport: 'websocket' }); // the transport it talks over now, after the upgrade
  });

  for (const transport of ['websocket', 'polling'] as const) {
    it(`${transport} only: echo, acks, binary args both ways`, async () => {
      const node = await startNode({ app });
      const s = await connect(node.url, { transports: [transport] });
      expect(s.io.engine.transport.name).toBe(transport);
      const bytes = Buffer.from([0, 1, 2, 254, 255]);
      // an ack carrying bytes (BINARY_ACK) and an event carrying bytes (BINARY_EVENT), nested too
      const acked = await s.timeout(3000).emitWithAck('echo', bytes, { nested: [bytes] });
      expect(Buffer.from(acked as Uint8Array)).toEqual(bytes);
      const echoed = collect(s, 'echo');
      s.emit('echo', 'x', { nested: [bytes] }, bytes);
      await until(() => echoed.args.length === 1 || undefined);
      const [x, obj, b] = echoed.args[0] as [string, { nested: Uint8Array[] }, Uint8Array];
      expect(x).toBe('x');
      expect(Buffer.from(obj.nested[0]!)).toEqual(bytes);
      expect(Buffer.from(b)).toEqual(bytes);
      expect(await s.emitWithAck('meta')).toMatchObject({ transport });
    });
  }

  it('a handler that throws answers the ack with { error }', async () => {
    const node = await startNode({ app });
    const s = await connect(node.url, { transports: ['websocket'] });
    expect(await s.timeout(3000).emitWithAck('no-such-event', 1)).toEqual({ error: 'unknown event "no-such-event"' });
  });

  it('the server asks the client (session.request) and gets its ack', async () => {
    const node = await startNode({ app });
    const s = await connect(node.url, { transports: ['websocket'] });
    s.on('question', (x: number, cb: (v: number) => void) => cb(x * 2));
    expect(await s.timeout(3000).emitWithAck('ask', 21)).toBe(42);
  });

  it('polling-only, websocket-only and native clients share a room', async () => {
    const node = await startNode({ app });
    const polling = await connect(node.url, { transports: ['polling'], forceNew: true });
    const ws = await connect(node.url, { transports: ['websocket'], forceNew: true });
    const native = await WsClient.open(`${node.ws}/rt/ws`);
    expect(await polling.emitWithAck('join', 'lobby')).toBe(true);
    expect(await ws.emitWithAck('join', 'lobby')).toBe(true);
    expect((await native.request('join', 'lobby')).args).toEqual([true]);
    const heardPolling = collect(polling, 'said');
    const heardWs = collect(ws, 'said');
    await polling.emitWithAck('say', 'lobby', 'from polling');
    await ws.emitWithAck('say', 'lobby', 'from websocket');
    await native.request('say', 'lobby', 'from native');
    const texts = ['from polling', 'from websocket', 'from native'];
    for (const heard of [heardPolling, heardWs]) {
      await until(() => heard.args.length === 3 || undefined);
      expect(heard.args.map((a) => a[1])).toEqual(texts);
    }
    await native.next((f) => f.type === 'event' && f.event === 'said' && f.args[1] === 'from native');
    expect(native.frames.filter((f) => f.event === 'said').map((f) => f.args[1])).toEqual(texts);
    // senders are told apart by sid: each socket.io namespace session has its own
    expect(new Set([polling.id, ws.id, native.open.sid]).size).toBe(3);
  });

  it('two namespaces on one connection, each its own session with the auth it sent; the app refuses a third', async () => {
    const node = await startNode({ app, socketio: { namespaces: NAMESPACES } });
    const main = await connect(node.url, { auth: { token: 'main-token' }, transports: ['websocket'] });
    const admin = await connect(`${node.url}/admin`, { auth: { role: 'ops' }, transports: ['websocket'] });
    expect(admin.io).toBe(main.io); // one Engine.IO connection
    expect(admin.id).not.toBe(main.id);
    expect(await main.emitWithAck('meta')).toMatchObject({ namespace: '/', auth: { token: 'main-token' } });
    expect(await admin.emitWithAck('meta')).toMatchObject({ namespace: '/admin', auth: { role: 'ops' } });
    const refused = await connectError(`${node.url}/private`, { transports: ['websocket'] });
    expect(refused.message).toBe('not allowed here');
    // the others are not affected
    expect(await admin.emitWithAck('echo', 'still here')).toBe('still here');
    admin.disconnect();
    expect(await main.emitWithAck('echo', 'main too')).toBe('main too');
  });

  it('an unknown namespace gets "Invalid namespace"', async () => {
    const node = await startNode({ app });
    const err = await connectError(`${node.url}/nope`, { transports: ['websocket'] });
    expect(err.message).toBe('Invalid namespace');
  });

  it("the app's session.disconnect is 'io server disconnect': the client does not reconnect", async () => {
    const node = await startNode({ app });
    const s = await connect(node.url, { transports: ['websocket'] });
    const reason = new Promise<string>((resolve) => s.once('disconnect', (r) => resolve(r)));
    s.emit('kick');
    expect(await reason).toBe('io server disconnect');
    expect(s.active).toBe(false);
  });

  it('events carry the session sequence as an offset; a client cut off recovers every missed event once, in order', async () => {
    const node = await startNode({ app });
    const s = await connect(node.url, { transports: ['websocket'] });
    await s.emitWithAck('join', 'r');
    const heard = collect(s, 'said');
    const other = await WsClient.open(`${node.ws}/rt/ws`);
    await other.request('say', 'r', 'm1');
    await until(() => heard.args.length === 1 || undefined);
    const offset1 = Number(heard.offsets[0]);
    expect(Number.isInteger(offset1) && offset1 > 0).toBe(true);
    const firstId = s.id;
    // the network drops the socket: no close frame, the client notices and reconnects
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    (s.io.engine.transport as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy();
    for (const m of ['m2', 'm3', 'm4']) await other.request('say', 'r', m);
    await reconnected;
    await until(() => heard.args.length === 4 || undefined);
    expect(s.recovered).toBe(true);
    expect(s.id).toBe(firstId);
    expect(heard.args.map((a) => a[1])).toEqual(['m1', 'm2', 'm3', 'm4']);
    // offsets grow with each event
    const offsets = heard.offsets.map(Number);
    expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    expect(new Set(offsets).size).toBe(4);
    // and the session goes on
    await other.request('say', 'r', 'm5');
    await until(() => heard.args.length === 5 || undefined);
    expect(heard.args[4]![1]).toBe('m5');
  });

  it('a polling client whose poll is cut recovers too', async () => {
    const node = await startNode({ app });
    const s = await connect(node.url, { transports: ['polling'] });
    const got = collect(s, 'n');
    await s.emitWithAck('emit-n', 3);
    await until(() => got.args.length === 3 || undefined);
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    // the client's transport fails as if the network went away (its poll is abandoned)
    (s.io.engine.transport as unknown as { onError(reason: string): void }).onError('cut by the test');
    await reconnected;
    expect(s.recovered).toBe(true);
    await s.emitWithAck('emit-n', 2);
    await until(() => got.args.length === 5 || undefined);
    expect(got.args.map((a) => a[0])).toEqual([1, 2, 3, 1, 2]);
  });

  it('reconnects after a gateway restart (a new session: nothing to recover after a restart)', async () => {
    // outside the ephemeral range: a retrying client could connect to itself on the port (see portBelowEphemeral)
    const port = await portBelowEphemeral();
    const first = await startNode({ app, port });
    const s = await connect(first.url, { transports: ['websocket'] });
    const firstId = s.id;
    const disconnected = new Promise<string>((resolve) => s.once('disconnect', (r) => resolve(r)));
    await first.close();
    // a shutdown closes the transport, never the namespace: the client comes back
    expect(await disconnected).toBe('transport close');
    const reconnected = new Promise<void>((resolve) => s.once('connect', () => resolve()));
    const second = await startNode({ app, port });
    await reconnected;
    await until(() => s.connected || undefined);
    expect(s.recovered).toBe(false);
    expect(s.id).not.toBe(firstId);
    expect(await s.emitWithAck('echo', 'back')).toBe('back');
    await second.close();
  });

  it('the msgpack parser, when configured on both sides', async () => {
    const node = await startNode({ app, socketio: { parser: 'msgpack' } });
    for (const transport of ['websocket', 'polling'] as const) {
      const s = await connect(node.url, { transports: [transport], parser: msgpackParser, forceNew: true });
      const bytes = Buffer.from([9, 8, 7]);
      expect(Buffer.from((await s.emitWithAck('echo', bytes)) as Uint8Array)).toEqual(bytes);
      const echoed = collect(s, 'echo');
      s.emit('echo', { a: 1 }, bytes);
      await until(() => echoed.args.length === 1 || undefined);
      expect(echoed.args[0]![0]).toEqual({ a: 1 });
      expect(Buffer.from(echoed.args[0]![1] as Uint8Array)).toEqual(bytes);
      s.on('question', (x: number, cb: (v: number) => void) => cb(x + 1));
      expect(await s.timeout(3000).emitWithAck('ask', 1)).toBe(2);
    }
  });
});
