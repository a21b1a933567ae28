/**
 * The SignalR dialect with the real @microsoft/signalr 10 (and its MessagePack protocol) on one
 * node: every transport × protocol the client offers, the app API through hub calls, rooms
 * shared with Socket.IO and native clients, refusals, restarts and keep-alive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { EventSource } from 'eventsource';
import { io, type Socket } from 'socket.io-client';
import { closeAll, portBelowEphemeral, startNode, until, WsClient } from './helpers.ts';
import demo from '../demo/app.ts';
import type { App, AppHandlers } from '../cluster/app.ts';

/** sessions the app saw close */
const closedSids: string[] = [];

/** The demo app, plus a server request, an error, bytes, a kick, the session's view; it refuses `?deny=…` */
const app: App = (ctx) => {
  const inner = (demo as (c: typeof ctx) => AppHandlers)(ctx);
  return {
    close(session) {
      closedSids.push(session.sid);
    },
    open(session) {
      if (session.meta.query.deny) throw new Error(`refused: ${session.meta.query.deny}`);
    },
    async event(session, event, args, reply) {
      switch (event) {
        case 'ask': {
          const [answer] = await session.request('question', args[0]);
          return reply?.(answer);
        }
        case 'fail':
          throw new Error(`it failed: ${String(args[0])}`);
        case 'bytes':
          return reply?.(new Uint8Array([0, 1, 254, 255]));
        case 'meta':
          return reply?.({ hub: session.meta.hub, auth: session.meta.auth, dialect: session.meta.dialect, query: session.meta.query });
        case 'kick':
          return session.disconnect(4000, 'bye');
        default:
          return inner.event(session, event, args, reply);
      }
    },
  };
};

const BIN = join(import.meta.dirname, '..', 'bin', 'switchyard.mjs');
const children: ChildProcess[] = [];

/** `switchyard start` as its own process (on `port`; 0: any), once it listens */
async function gatewayProcess(port: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, 'start', '--host', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const m = await until(() => {
    if (child.exitCode !== null) throw new Error(`the gateway exited:\n${out}`);
    return /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out) ?? undefined;
  }, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${out}`);
  });
  return { child, port: Number(m[1]) };
}

const open: signalR.HubConnection[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.stop().catch(() => undefined)));
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const s of sockets.splice(0)) s.disconnect();
  await closeAll();
});

type Protocol = 'json' | 'messagepack';

function build(
  url: string,
  transport: keyof typeof signalR.HttpTransportType,
  protocol: Protocol,
  options: Partial<signalR.IHttpConnectionOptions> = {},
  configure?: (b: signalR.HubConnectionBuilder) => void,
): signalR.HubConnection {
  const b = new signalR.HubConnectionBuilder()
    // EventSource: the polyfill the client takes in Node (an option its types do not list)
    .withUrl(url, { transport: signalR.HttpTransportType[transport], EventSource, ...options } as signalR.IHttpConnectionOptions)
    .withHubProtocol(protocol === 'messagepack' ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol())
    .configureLogging(signalR.LogLevel.None);
  configure?.(b);
  const c = b.build();
  open.push(c);
  return c;
}

const MATRIX: Array<[keyof typeof signalR.HttpTransportType, Protocol]> = [
  ['WebSockets', 'json'],
  ['ServerSentEvents', 'json'],
  ['LongPolling', 'json'],
  ['WebSockets', 'messagepack'],
  ['LongPolling', 'messagepack'],
];

describe('@microsoft/signalr on one node', () => {
  for (const [transport, protocol] of MATRIX) {
    it(`${transport} × ${protocol}: invoke, send, a server → client call, objects, an app error, bytes`, async () => {
      const node = await startNode({ app });
      const c = build(`${node.url}/hubs/demo?room=x`, transport, protocol, { accessTokenFactory: () => 'secret-token' });
      c.on('question', (x: number) => x * 2);
      const said: unknown[][] = [];
      c.on('said', (...a: unknown[]) => {
        said.push(a);
      });
      await c.start();
      expect(c.state).toBe(signalR.HubConnectionState.Connected);
      // method names are case-insensitive: 'Echo' reaches the app as 'echo'
      expect(await c.invoke('Echo', 'héllo wörld ✓ 😀')).toBe('héllo wörld ✓ 😀');
      expect(await c.invoke('echo', { nested: { list: [1, 'two', null, true] } })).toEqual({ nested: { list: [1, 'two', null, true] } });
      expect(await c.invoke('ask', 21)).toBe(42);
      await expect(c.invoke('fail', 'x')).rejects.toThrow('it failed: x');
      const bytes = await c.invoke('bytes');
      if (protocol === 'messagepack') expect(Buffer.from(bytes as Uint8Array)).toEqual(Buffer.from([0, 1, 254, 255]));
      else expect(bytes).toBe(Buffer.from([0, 1, 254, 255]).toString('base64'));
      expect(await c.invoke('meta')).toEqual({ hub: 'demo', auth: 'secret-token', dialect: 'signalr', query: { room: 'x' } });
      expect(await c.invoke('join', 'r')).toBe(true);
      await c.send('say', 'r', 'sent, not invoked');
      await until(() => said.length === 1 || undefined);
      expect(said[0]!.slice(0, 2)).toEqual(['r', 'sent, not invoked']);
      await c.stop();
      expect(c.state).toBe(signalR.HubConnectionState.Disconnected);
    });
  }

  it('WebSockets with skipNegotiation', async () => {
    const node = await startNode({ app });
    for (const protocol of ['json', 'messagepack'] as const) {
      const c = build(`${node.url}/hubs/demo`, 'WebSockets', protocol, { skipNegotiation: true });
      await c.start();
      expect(await c.invoke('echo', protocol)).toBe(protocol);
    }
  });

  it('a SignalR WebSockets+MessagePack, a SignalR long-polling, a Socket.IO and a native client share a room', async () => {
    const node = await startNode({ app });
    const ws = build(`${node.url}/hubs/demo`, 'WebSockets', 'messagepack');
    const lp = build(`${node.url}/hubs/demo`, 'LongPolling', 'json');
    const heard: Record<string, string[]> = { ws: [], lp: [], sio: [] };
    ws.on('said', (_r: string, text: string) => {
      heard.ws!.push(text);
    });
    lp.on('said', (_r: string, text: string) => {
      heard.lp!.push(text);
    });
    await ws.start();
    await lp.start();
    const sio = io(node.url, { transports: ['websocket'] });
    sockets.push(sio);
    sio.on('said', (_r: string, text: string) => heard.sio!.push(text));
    const native = await WsClient.open(`${node.ws}/rt/ws`);
    await ws.invoke('join', 'mix');
    await lp.invoke('join', 'mix');
    await sio.emitWithAck('join', 'mix');
    await native.request('join', 'mix');
    await ws.invoke('say', 'mix', 'from signalr ws');
    await lp.invoke('say', 'mix', 'from signalr lp');
    await sio.emitWithAck('say', 'mix', 'from socket.io');
    await native.request('say', 'mix', 'from native');
    const all = ['from signalr ws', 'from signalr lp', 'from socket.io', 'from native'];
    await until(() => (heard.ws!.length === 4 && heard.lp!.length === 4 && heard.sio!.length === 4) || undefined);
    expect(heard).toEqual({ ws: all, lp: all, sio: all });
    await native.next((f) => f.event === 'said' && f.args[1] === 'from native');
  });

  it("the app's refusal is a 401 at negotiate, with its message", async () => {
    const node = await startNode({ app });
    const c = build(`${node.url}/hubs/demo?deny=nobody`, 'WebSockets', 'json');
    await expect(c.start()).rejects.toThrow(/refused: nobody.*401|401.*refused: nobody/s);
  });

  it("the app's session.disconnect closes the connection with its reason; no automatic reconnect", async () => {
    const node = await startNode({ app });
    const c = build(`${node.url}/hubs/demo`, 'WebSockets', 'json', {}, (b) => b.withAutomaticReconnect([0, 100]));
    const closed = new Promise<Error | undefined>((r) => c.onclose((e) => r(e)));
    let reconnecting = false;
    c.onreconnecting(() => (reconnecting = true));
    await c.start();
    await c.send('kick');
    expect(String(await closed)).toMatch(/bye/);
    expect(reconnecting).toBe(false);
  });

  it('withAutomaticReconnect comes back after a gateway restart', async () => {
    // a real restart: the gateway process dies and a new one takes its port. The port is outside
    // the ephemeral range: a client retrying against a port in it can connect to itself (a TCP
    // self-connect) and hold the very port the new process needs
    const first = await gatewayProcess(await portBelowEphemeral());
    const c = build(`http://127.0.0.1:${first.port}/hubs/demo`, 'WebSockets', 'json', {}, (b) => b.withAutomaticReconnect([0, 100, 200, 400, 800, 1600]));
    await c.start();
    const reconnected = new Promise<void>((r) => c.onreconnected(() => r()));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await gatewayProcess(first.port);
    await reconnected;
    expect(await c.invoke('echo', 'back')).toBe('back');
  });

  it("an idle connection outlives the client's server timeout: the gateway pings within it", async () => {
    const node = await startNode({ app, signalr: { keepAliveMs: 200 } });
    for (const transport of ['WebSockets', 'ServerSentEvents'] as const) {
      const c = build(`${node.url}/hubs/demo`, transport, 'json');
      c.serverTimeoutInMilliseconds = 600;
      c.keepAliveIntervalInMilliseconds = 200;
      let closed = false;
      c.onclose(() => (closed = true));
      await c.start();
      await new Promise((r) => setTimeout(r, 1500));
      expect(closed).toBe(false);
      expect(await c.invoke('echo', 'still here')).toBe('still here');
    }
  });

  for (const protocol of ['json', 'messagepack'] as const) {
    it(`stateful reconnect (${protocol}): a socket cut off comes back with its token and gets everything missed, once, in order`, async () => {
      const node = await startNode({ app });
      const c = build(`${node.url}/hubs/demo`, 'WebSockets', protocol, {}, (b) => b.withStatefulReconnect());
      const heard: string[] = [];
      c.on('said', (_r: string, text: string) => {
        heard.push(text);
      });
      await c.start();
      const connectionId = c.connectionId;
      await c.invoke('join', 'st');
      const other = await WsClient.open(`${node.ws}/rt/ws`);
      await other.request('join', 'st');
      let n = 0;
      const say = async (k: number) => {
        for (let i = 0; i < k; i++) await other.request('say', 'st', String(++n));
      };
      await say(3);
      await until(() => heard.length === 3 || undefined);
      // the network cuts the socket: no close frame; the client reconnects with its token
      const transport = (c as unknown as { connection: { transport: { _webSocket: { _socket: { destroy(): void } } } } }).connection.transport;
      const cut = transport._webSocket;
      cut._socket.destroy();
      await say(5);
      await until(() => heard.length === 8 || undefined, 10_000);
      // and the client's own calls after the reconnect work, on the same connection
      expect(await c.invoke('echo', 'after')).toBe('after');
      await say(2);
      await until(() => heard.length === 10 || undefined);
      expect(heard).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));
      expect(c.connectionId).toBe(connectionId);
      expect(transport._webSocket).not.toBe(cut); // a new socket
      expect(c.state).toBe(signalR.HubConnectionState.Connected);
    });
  }

  it("a stateful client's stop() ends its connection at once (a close frame is not a drop)", async () => {
    const node = await startNode({ app });
    const c = build(`${node.url}/hubs/demo`, 'WebSockets', 'json', {}, (b) => b.withStatefulReconnect());
    await c.start();
    const id = c.connectionId!;
    await c.stop();
    await until(() => (closedSids.includes(id) ? true : undefined), 2000);
  });
});
