/**
 * A room broadcast is encoded once per (dialect, format), not once per member: the real clients of
 * every dialect in one room, the encoders' own counters read around the broadcasts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import SockJS from 'sockjs-client';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { closeAll, startNode, until, WsClient } from './helpers.ts';
import { Entry } from '../transports/seam/entry.ts';
import { encodeStats as nativeStats } from '../transports/dialects/native/codec.ts';
import { encodeEntry, encodeStats as signalrStats, hubProtocols } from '../transports/dialects/signalr/codec.ts';
import { encodeStats as sockjsStats, MessageCodec, SocketCodec, escaped } from '../transports/dialects/sockjs/codec.ts';
import { encodeStats as socketioStats } from '../transports/dialects/socketio/dialect.ts';
import { nativeCodecs } from '../transports/dialects/native/codec.ts';

let node: Awaited<ReturnType<typeof startNode>>;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  // Socket.IO with the msgpack parser (a node speaks one), recovery off: its offset is each
  // member's own seq, inside the msgpack packet
  node = await startNode({ socketio: { recovery: false, parser: 'msgpack' } });
});

afterAll(async () => {
  for (const c of closers) await c();
  await closeAll();
});

describe('encoded once per (dialect, format)', () => {
  it('SignalR: one hub message per protocol for a shared entry, the same bytes as encoding it anew', () => {
    const e = Entry.event('said', ['r', 'hi', new Uint8Array([1, 2])], undefined, undefined, true)!;
    const before = signalrStats.entries;
    const j1 = encodeEntry(hubProtocols.json, e);
    const j2 = encodeEntry(hubProtocols.json, e);
    const m1 = encodeEntry(hubProtocols.messagepack, e);
    encodeEntry(hubProtocols.messagepack, e);
    expect(signalrStats.entries - before).toBe(2);
    expect(j2).toBe(j1);
    const fresh = Entry.event('said', ['r', 'hi', new Uint8Array([1, 2])])!;
    expect(encodeEntry(hubProtocols.json, fresh)).toEqual(j1);
    expect(encodeEntry(hubProtocols.messagepack, fresh)).toEqual(m1);
    encodeEntry(hubProtocols.json, fresh);
    expect(signalrStats.entries - before).toBe(5); // not shared: not cached
  });

  it('SockJS: a shared entry’s message made once for every transport; each seq’s message is what encoding it anew gives, escapes included', () => {
    const text = 'a\u2028b<c>\u200e😀"\\';
    const e = Entry.event('said', ['r', text], undefined, undefined, true)!;
    const messages = new MessageCodec();
    const socket = new SocketCodec();
    const before = sockjsStats.messages;
    const m1 = messages.encode(1, e) as string;
    const m300 = messages.encode(300, e) as string;
    const s7 = socket.encode(7, e) as string;
    expect(sockjsStats.messages - before).toBe(1);
    for (const [seq, got] of [
      [1, m1],
      [300, m300],
    ] as const)
      expect(got).toBe(escaped(JSON.stringify(nativeCodecs.json.encode(seq, Entry.event('said', ['r', text])!) as string)));
    expect(s7).toBe(`a[${escaped(JSON.stringify(nativeCodecs.json.encode(7, Entry.event('said', ['r', text])!) as string))}]`);
    expect(JSON.parse(JSON.parse(m300))).toEqual({ type: 'event', seq: 300, event: 'said', args: ['r', text] });
  });

  it('a broadcast to members of every dialect and format: each encoder runs once per message, whatever the number of members', async () => {
    const ROOM = 'once';
    const got = new Map<string, string[]>();
    const heard = (who: string) => (text: string) => {
      if (!got.has(who)) got.set(who, []);
      got.get(who)!.push(text);
    };
    // SignalR: three JSON and two MessagePack connections
    for (const [k, msgpack] of [
      [1, false],
      [2, false],
      [3, false],
      [4, true],
      [5, true],
    ] as const) {
      const b = new signalR.HubConnectionBuilder()
        .withUrl(`${node.url}/hubs/demo`, { transport: signalR.HttpTransportType.WebSockets })
        .configureLogging(signalR.LogLevel.None);
      if (msgpack) b.withHubProtocol(new MessagePackHubProtocol());
      const c = b.build();
      c.on('said', (_r: string, text: string) => heard(`signalr${k}`)(text));
      await c.start();
      closers.push(() => c.stop());
      await c.invoke('join', ROOM);
    }
    // SockJS over three transports
    for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling']) {
      const s = new SockJS(`${node.url}/sockjs`, null, { transports: [transport] });
      closers.push(() => s.close());
      await new Promise<void>((resolve, reject) => {
        s.onopen = () => resolve();
        s.onclose = (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      const frames: any[] = [];
      s.onmessage = (m: { data: string }) => {
        const f = JSON.parse(m.data);
        frames.push(f);
        if (f.event === 'said') heard(`sockjs-${transport}`)(f.args[1]);
      };
      s.send(JSON.stringify({ type: 'event', event: 'join', args: [ROOM], ack: 1 }));
      await until(() => frames.find((f) => f.type === 'reply' && f.ack === 1));
    }
    // Socket.IO with the msgpack parser, three sockets
    for (const k of [1, 2, 3]) {
      const s: Socket = io(node.url, { transports: ['websocket'], parser: msgpackParser, forceNew: true });
      closers.push(() => s.close());
      s.on('said', (_r: string, text: string) => heard(`socketio${k}`)(text));
      await s.timeout(5000).emitWithAck('join', ROOM);
    }
    // native: three members, one of them the sender
    const natives = await Promise.all([1, 2, 3].map(() => WsClient.open(`${node.ws}/rt/ws`)));
    for (const c of natives) await c.request('join', ROOM);
    for (const [k, c] of natives.entries()) closers.push(() => c.sock.close());

    const before = { native: nativeStats.bodies, signalr: signalrStats.entries, sockjs: sockjsStats.messages, socketio: socketioStats.packets };
    const N = 5;
    for (let i = 1; i <= N; i++) await natives[0]!.request('say', ROOM, `m${i}`);
    const members = [1, 2, 3, 4, 5]
      .map((k) => `signalr${k}`)
      .concat(
        ['websocket', 'xhr-streaming', 'xhr-polling'].map((t) => `sockjs-${t}`),
        ['socketio1', 'socketio2', 'socketio3'],
      );
    await until(() => (members.every((m) => got.get(m)?.length === N) && natives.every((c) => c.events('said').length === N) ? true : undefined), 10_000);
    for (const m of members) expect(got.get(m), m).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect({
      native: nativeStats.bodies - before.native,
      signalr: signalrStats.entries - before.signalr,
      sockjs: sockjsStats.messages - before.sockjs,
      socketio: socketioStats.packets - before.socketio,
    }).toEqual({ native: N, signalr: 2 * N, sockjs: N, socketio: N });
  });
});
