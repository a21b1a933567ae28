/**
 * The contract every dialect keeps, run with the real client of each (dialect × transport ×
 * format) line: the bundled native client, socket.io-client, @microsoft/signalr and
 * sockjs-client. One case list; each line goes through it against a real node.
 *
 * What a line cannot have, and why (not run for it):
 * - SignalR: a reply carries one value (a Completion's `result`), so every case here replies with
 *   one; Server-Sent Events carry text only (no MessagePack line).
 * - Socket.IO: the app's close code and reason do not reach the client (a DISCONNECT packet has
 *   none): the client sees "io server disconnect". With recovery (on by default) each event
 *   carries its offset as a last argument, which socket.io-client hands to the handler: compared
 *   here without it.
 * - SockJS: `jsonp` and `htmlfile` need a browser page: test/sockjs-browser.test.ts runs jsonp in
 *   Chromium; htmlfile's bytes are checked by test/sockjs-protocol.test.ts and test/sockjs.test.ts.
 *
 * Covered by their own suites, for every dialect: resume and recovery through other nodes
 * (test/*-cluster.test.ts, test/find-anywhere-cluster.test.ts), a broadcast encoded once per
 * (dialect, format) (test/encode-once.test.ts), request and payload limits (test/limits.test.ts),
 * slow readers (test/limits.test.ts, test/signalr-protocol.test.ts, test/signalr-memory.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { pack, unpack } from 'msgpackr';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { io } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import SockJS from 'sockjs-client';
import { connect as nativeConnect } from '../client/switchyard.js';
import { closeAll, startNode, until, WsClient } from './helpers.ts';
import demoApp from '../demo/app.ts';
import type { App } from '../cluster/app.ts';

/** the demo app, and: `ask` (asks the client `question`, replies with one value saying what came of it), `kick` (the app ends the session) */
const app: App = (ctx) => {
  const demo = typeof demoApp === 'function' ? demoApp(ctx) : demoApp;
  return {
    event(s, event, args, reply) {
      if (event === 'kick') return s.disconnect(4001, 'kicked');
      if (event !== 'ask') return demo.event(s, event, args, reply);
      return s.request('question', ...args).then(
        (answer) => reply?.({ answered: answer }),
        (err: Error) => reply?.({ failed: err.message }),
      );
    },
  };
};

/** A client of any dialect, as the cases use it */
interface Client {
  /** events the server sent it (its own answer tags left out) */
  readonly heard: Array<{ event: string; args: unknown[] }>;
  emit(event: string, ...args: unknown[]): void;
  /** an event with an acknowledgement: the reply's values */
  request(event: string, ...args: unknown[]): Promise<unknown[]>;
  /** the server's requests `event` get `handler`'s one value; undefined: never answered */
  answer(event: string, handler: (...args: unknown[]) => unknown): void;
  /** what the client was told when the server ended its session */
  readonly ended: Promise<string>;
  stop(): Promise<void>;
}

interface Line {
  name: string;
  /** the node it talks to (Socket.IO's parser is a node's option) */
  node: 'default' | 'msgpack';
  /** the events this client listens for must be named beforehand (SignalR) */
  connect(url: string): Promise<Client>;
  /** what `ended` says when the app closes with 4001 "kicked" */
  kicked: RegExp;
}

const HEARD = ['echo', 'said'];

function nativeLine(transport: 'websocket' | 'sse' | 'polling', format: 'json' | 'msgpack'): Line {
  return {
    name: `native ${transport} ${format}`,
    node: 'default',
    kicked: /^4001 kicked$/,
    async connect(url) {
      const c = nativeConnect(url, {
        transports: [transport],
        format,
        msgpack: { encode: pack, decode: unpack },
        WebSocket,
        EventSource,
        reconnect: false,
        rememberTransport: false,
      });
      const heard: Client['heard'] = [];
      c.on('event', (event: string, args: unknown[]) => {
        if (HEARD.includes(event)) heard.push({ event, args });
      });
      const ended = new Promise<string>((r) => c.on('close', (i: { code: number; reason: string }) => r(`${i.code} ${i.reason}`)));
      await c.ready();
      return {
        heard,
        ended,
        emit: (event, ...args) => void c.emit(event, ...args),
        request: (event, ...args) => c.request(event, ...args),
        answer(event, handler) {
          c.on(event, (...args: unknown[]) => {
            const reply = args.pop() as (...a: unknown[]) => void;
            const v = handler(...args);
            if (v !== undefined) reply(v);
          });
        },
        stop: async () => void c.close(),
      };
    },
  };
}

function socketIoLine(transports: string[], parser: 'default' | 'msgpack'): Line {
  return {
    name: `socketio ${transports.join('→')} ${parser}`,
    node: parser,
    kicked: /^io server disconnect$/,
    async connect(url) {
      const s = io(url, { transports, forceNew: true, reconnection: false, ...(parser === 'msgpack' ? { parser: msgpackParser } : {}) });
      const heard: Client['heard'] = [];
      s.onAny((event: string, ...args: unknown[]) => {
        if (HEARD.includes(event)) heard.push({ event, args });
      });
      const ended = new Promise<string>((r) => s.on('disconnect', (reason) => r(reason)));
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      // an upgrade line: its WebSocket in place before the cases run
      if (transports.length > 1) await until(() => (s.io.engine.transport.name === 'websocket' ? true : undefined));
      return {
        heard,
        ended,
        emit: (event, ...args) => void s.emit(event, ...args),
        request: (event, ...args) =>
          new Promise((resolve, reject) =>
            s.timeout(5000).emit(event, ...args, (err: Error | null, ...reply: unknown[]) => (err ? reject(err) : resolve(reply))),
          ),
        answer(event, handler) {
          s.on(event, (...args: unknown[]) => {
            const ack = args.pop() as (...a: unknown[]) => void;
            const v = handler(...args);
            if (v !== undefined) ack(v);
          });
        },
        stop: async () => void s.close(),
      };
    },
  };
}

function signalRLine(transport: 'WebSockets' | 'ServerSentEvents' | 'LongPolling', protocol: 'json' | 'messagepack'): Line {
  return {
    name: `signalr ${transport} ${protocol}`,
    node: 'default',
    kicked: /kicked/,
    async connect(url) {
      const b = new signalR.HubConnectionBuilder()
        .withUrl(`${url}/hubs/demo`, { transport: signalR.HttpTransportType[transport], EventSource } as signalR.IHttpConnectionOptions)
        .configureLogging(signalR.LogLevel.None);
      if (protocol === 'messagepack') b.withHubProtocol(new MessagePackHubProtocol());
      const c = b.build();
      const heard: Client['heard'] = [];
      for (const event of HEARD) c.on(event, (...args: unknown[]) => void heard.push({ event, args }));
      const ended = new Promise<string>((r) => c.onclose((err) => r(err?.message ?? 'closed')));
      const answers = new Map<string, (...args: unknown[]) => unknown>();
      // client results: a handler's value is the Completion's result (never settling: no Completion)
      c.on('question', (...args: unknown[]) => {
        const v = answers.get('question')?.(...args);
        return v === undefined ? new Promise(() => {}) : v;
      });
      await c.start();
      return {
        heard,
        ended,
        emit: (event, ...args) => void c.send(event, ...args),
        request: async (event, ...args) => [await c.invoke(event, ...args)],
        answer: (event, handler) => void answers.set(event, handler),
        stop: () => c.stop(),
      };
    },
  };
}

function sockJsLine(transport: string): Line {
  return {
    name: `sockjs ${transport}`,
    node: 'default',
    kicked: /^4001 kicked$/,
    async connect(url) {
      const s = new SockJS(`${url}/sockjs`, null, { transports: [transport] });
      const heard: Client['heard'] = [];
      const replies = new Map<number, unknown[]>();
      const handlers = new Map<string, (...args: unknown[]) => unknown>();
      let ack = 0;
      s.onmessage = (m: { data: string }) => {
        const f = JSON.parse(m.data);
        if (f.type === 'reply') replies.set(f.ack, f.args ?? [f.error]);
        else if (f.type === 'event' && f.ack !== undefined) {
          const v = handlers.get(f.event)?.(...f.args);
          if (v !== undefined) s.send(JSON.stringify({ type: 'reply', ack: f.ack, args: [v] }));
        } else if (f.type === 'event' && HEARD.includes(f.event)) heard.push({ event: f.event, args: f.args });
      };
      const ended = new Promise<string>((r) => {
        s.onclose = (e: { code: number; reason: string }) => r(`${e.code} ${e.reason}`);
      });
      await new Promise<void>((resolve, reject) => {
        s.onopen = () => resolve();
        void ended.then((why) => reject(new Error(`closed: ${why}`)));
      });
      return {
        heard,
        ended,
        emit: (event, ...args) => s.send(JSON.stringify({ type: 'event', event, args })),
        async request(event, ...args) {
          const id = ++ack;
          s.send(JSON.stringify({ type: 'event', event, args, ack: id }));
          return until(() => replies.get(id), 5000);
        },
        answer: (event, handler) => void handlers.set(event, handler),
        stop: async () => s.close(),
      };
    },
  };
}

const LINES: Line[] = [
  nativeLine('websocket', 'json'),
  nativeLine('websocket', 'msgpack'),
  nativeLine('sse', 'json'),
  nativeLine('polling', 'json'),
  nativeLine('polling', 'msgpack'),
  ...(['default', 'msgpack'] as const).flatMap((p) => [
    socketIoLine(['polling'], p),
    socketIoLine(['websocket'], p),
    socketIoLine(['polling', 'websocket'], p),
  ]),
  signalRLine('WebSockets', 'json'),
  signalRLine('WebSockets', 'messagepack'),
  signalRLine('ServerSentEvents', 'json'),
  signalRLine('LongPolling', 'json'),
  signalRLine('LongPolling', 'messagepack'),
  sockJsLine('websocket'),
  sockJsLine('xhr-streaming'),
  sockJsLine('eventsource'),
  sockJsLine('xhr-polling'),
];

const REQUEST_TIMEOUT_MS = 800;
const nodes: Record<Line['node'], Awaited<ReturnType<typeof startNode>>> = {} as never;
const clients: Client[] = [];

beforeAll(async () => {
  nodes.default = await startNode({ app, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  nodes.msgpack = await startNode({ app, requestTimeoutMs: REQUEST_TIMEOUT_MS, socketio: { parser: 'msgpack' } });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
  await closeAll();
});

async function open(line: Line): Promise<Client> {
  const c = await line.connect(nodes[line.node].url);
  clients.push(c);
  return c;
}

/** the args of what `c` heard of `event`, without a Socket.IO recovery offset after `n` values */
const heardArgs = (c: Client, event: string, n: number) => c.heard.filter((h) => h.event === event).map((h) => h.args.slice(0, n));

describe.each(LINES)('$name', (line) => {
  it('an event without an acknowledgement is answered by an event; one with an acknowledgement by its reply', async () => {
    const c = await open(line);
    c.emit('echo', 'a', 1);
    await until(() => (heardArgs(c, 'echo', 2).length === 1 ? true : undefined));
    expect(heardArgs(c, 'echo', 2)).toEqual([['a', 1]]);
    expect(await c.request('echo', { b: [2, 'x'] })).toEqual([{ b: [2, 'x'] }]);
    await c.stop();
  });

  it('a server request is answered by the client; one the client leaves unanswered times out on the server', async () => {
    const c = await open(line);
    c.answer('question', (q) => (q === 'ignore me' ? undefined : `yes to ${String(q)}`));
    expect(await c.request('ask', 'tea?')).toEqual([{ answered: ['yes to tea?'] }]);
    const t0 = Date.now();
    const [r] = (await c.request('ask', 'ignore me')) as [{ failed?: string }];
    expect(r.failed).toBe(`no answer to request "question" within ${REQUEST_TIMEOUT_MS} ms`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    await c.stop();
  });

  it('a room broadcast reaches it, with members of other dialects in the room', async () => {
    const c = await open(line);
    const room = `contract ${line.name}`;
    expect(await c.request('join', room)).toEqual([true]);
    const other = await WsClient.open(`${nodes[line.node].ws}/rt/ws`);
    await other.request('join', room);
    await other.request('say', room, 'hello');
    await until(() => (heardArgs(c, 'said', 2).length === 1 ? true : undefined));
    expect(heardArgs(c, 'said', 2)).toEqual([[room, 'hello']]);
    await other.next((f) => f.event === 'said');
    other.sock.close();
    await c.stop();
  });

  it("the app's close reaches the client in its dialect's terms, before the connection ends", async () => {
    const c = await open(line);
    c.emit('kick');
    expect(await Promise.race([c.ended, new Promise((r) => setTimeout(() => r('nothing within 5 s'), 5000))])).toMatch(line.kicked);
  });
});
