/**
 * `session.transport` follows the client: the app sees the transport the client talks over now,
 * not only the one it opened with — after a Socket.IO upgrade, after a native resume over another
 * transport, and for SignalR after its negotiate (which opens the session before any transport).
 * The demo app's `whoami` answers with `session.transport`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import * as signalR from '@microsoft/signalr';
import { EventSource } from 'eventsource';
import { closeAll, http, startNode, until, WsClient } from './helpers.ts';

let node: Awaited<ReturnType<typeof startNode>>;
beforeAll(async () => {
  node = await startNode();
});
afterAll(closeAll);

describe('session.transport follows the client', () => {
  it('native: a session opened by long-polling and resumed over a WebSocket', async () => {
    const open = (await http(`${node.url}/rt/poll`)).body[0];
    expect(open.type).toBe('open');
    const ws = await WsClient.open(`${node.ws}/rt/ws?sid=${open.sid}&token=${encodeURIComponent(open.token)}&last=0`);
    expect(ws.open).toMatchObject({ sid: open.sid, recovered: true });
    ws.send({ type: 'event', event: 'whoami', args: [], ack: 1 });
    const reply = await ws.next((f) => f.type === 'reply' && f.ack === 1);
    expect(reply.args[0]).toMatchObject({ sid: open.sid, client: 'native', transport: 'websocket' });
    ws.sock.close();
  });

  it('socket.io-client: polling, then the upgrade', async () => {
    const s = io(node.url, { transports: ['polling', 'websocket'], reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('connect_error', reject);
      });
      // before the upgrade completes the app may see either; after it, websocket
      await until(() => (s.io.engine.transport.name === 'websocket' ? true : undefined), 10_000);
      const info = await s.timeout(5000).emitWithAck('whoami');
      expect(info).toMatchObject({ client: 'socket.io', transport: 'websocket' });
    } finally {
      s.disconnect();
    }
  });

  it('socket.io-client: polling only stays polling', async () => {
    const s = io(node.url, { transports: ['polling'], reconnection: false });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('connect', resolve);
        s.once('connect_error', reject);
      });
      expect(await s.timeout(5000).emitWithAck('whoami')).toMatchObject({ client: 'socket.io', transport: 'polling' });
    } finally {
      s.disconnect();
    }
  });

  for (const [transport, name] of [
    [signalR.HttpTransportType.WebSockets, 'websocket'],
    [signalR.HttpTransportType.ServerSentEvents, 'sse'],
    [signalR.HttpTransportType.LongPolling, 'polling'],
  ] as const) {
    it(`@microsoft/signalr over ${signalR.HttpTransportType[transport]}: the transport it connected with, not the negotiate's guess`, async () => {
      const h = new signalR.HubConnectionBuilder()
        .withUrl(`${node.url}/hubs/demo`, { transport, EventSource } as signalR.IHttpConnectionOptions)
        .configureLogging(signalR.LogLevel.None)
        .build();
      await h.start();
      try {
        expect(await h.invoke('WhoAmI')).toMatchObject({ client: 'signalr', transport: name });
      } finally {
        await h.stop();
      }
    });
  }
});
