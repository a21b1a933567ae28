/**
 * Finding a session is the same for every dialect: the local table, the node the client's token
 * names, then the cluster's directory (only the holder answers), then unknown. A SignalR
 * connection token never changes, so after a hand-over it names a node that no longer holds the
 * session: a stateful reconnect through a third node, or through the named node after it
 * restarted, must still find it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { until, WsClient } from './helpers.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 3, workers: 1, gatewayArgs: ['--drain-window-ms', '300'] });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('a SignalR stateful reconnect after its session was handed over', () => {
  it('through a third node, then through the node its token names after that node restarted: nothing missed, nothing twice', async () => {
    const [g1, g2, g3] = cluster.gateways as [Proc, Proc, Proc];
    // every socket the client opens, and where the test sends it: the first to g1 (which
    // negotiated: the token names g1), the next ones where `next` says
    const sockets: WebSocket[] = [];
    const story: string[] = [];
    const t0 = Date.now();
    const note = (what: string) => story.push(`${Date.now() - t0}ms ${what}`);
    let next = g1;
    class Sockets extends WebSocket {
      constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
        const u = new URL(url);
        const to = `${next.ws}${u.pathname}${u.search}`;
        super(to, protocols, options);
        const k = sockets.push(this);
        note(`socket ${k} to ${next.id}`);
        this.on('open', () => note(`socket ${k} open`));
        this.on('message', (d: Buffer) => note(`socket ${k} got ${d.length} B`));
        this.on('close', (code) => note(`socket ${k} closed ${code}`));
      }
    }
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`${g1.url}/hubs/demo`, { transport: signalR.HttpTransportType.WebSockets, WebSocket: Sockets } as signalR.IHttpConnectionOptions)
      .withHubProtocol(new MessagePackHubProtocol())
      .withStatefulReconnect()
      .configureLogging(signalR.LogLevel.None)
      .build();
    const heard: string[] = [];
    c.on('said', (_r: string, text: string) => {
      heard.push(text);
    });
    const sender = await WsClient.open(`${g3.ws}/rt/ws`);
    const stopped = (step: string) => (err: Error) => {
      throw new Error(
        `stopped at: ${step} (${err.message})\nheard ${JSON.stringify(heard)}, client ${c.state}\nsockets: ${story.join('; ')}\n` +
          cluster.gateways.map((g) => `--- ${g.id}:\n${g.log()}`).join('\n'),
      );
    };
    let n = 0;
    const say = async (k: number, total: number, step: string) => {
      for (let j = 0; j < k; j++) await sender.request('say', 'anywhere', String(++n));
      await until(() => heard.length === total || undefined, 10_000).catch(stopped(step));
    };
    try {
      await c.start();
      await c.invoke('join', 'anywhere');
      await sender.request('join', 'anywhere');
      await say(3, 3, 'before the drain');

      // g1 drains: the client's socket is restarted, it reconnects to g2, which takes the session over
      next = g2;
      g1.proc.kill('SIGTERM');
      await g1.exited;
      expect(g1.log()).toMatch(/drained: [1-9]\d* sessions handed over/);
      await say(3, 6, 'after the hand-over to g2');
      expect(sockets.length).toBe(2);

      // the socket to g2 drops (no close frame): the client comes back through g3, with a token
      // naming g1, which is gone: g3 asks the directory, which says g2
      next = g3;
      sockets[1]!.terminate();
      await until(() => (sockets.length === 3 && sockets[2]!.readyState === WebSocket.OPEN) || undefined, 10_000).catch(stopped('the reconnect to g3'));
      await say(3, 9, 'reconnected through g3');
      expect(await c.invoke('echo', 'through g3')).toBe('through g3');

      // g1 comes back (the same node id, a new life, no sessions): the token names it, it has
      // nothing: it asks the directory too
      const again = await cluster.addGateway('g1', ['--drain-window-ms', '300']);
      next = again;
      sockets[2]!.terminate();
      await until(() => (sockets.length === 4 && sockets[3]!.readyState === WebSocket.OPEN) || undefined, 10_000).catch(
        stopped('the reconnect to the restarted g1'),
      );
      await say(3, 12, 'reconnected through the restarted g1');
      expect(await c.invoke('echo', 'through g1 again')).toBe('through g1 again');
      expect(heard).toEqual(Array.from({ length: 12 }, (_, k) => String(k + 1)));
      expect(c.state).toBe(signalR.HubConnectionState.Connected);
    } finally {
      await c.stop().catch(() => undefined);
      sender.send({ type: 'close' });
    }
  });
});
