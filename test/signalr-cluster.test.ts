/**
 * SignalR across two gateway nodes on NATS: negotiate on one node and connect on the other,
 * directly and through HAProxy round-robin without stickiness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import * as signalR from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { EventSource } from 'eventsource';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { startHaproxy } from './haproxy.ts';
import { http, until, WsClient } from './helpers.ts';

let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;
const conns: signalR.HubConnection[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--drain-window-ms', '300'] });
  ({ proc: haproxy, lb } = await startHaproxy(cluster));
});

afterAll(async () => {
  await Promise.all(conns.map((c) => c.stop().catch(() => undefined)));
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

const RS = '\x1e';

describe('SignalR across nodes', () => {
  it('negotiate on one node, the WebSocket on the other: the session is relayed, invocations and their results cross', async () => {
    const [a, b] = cluster.gateways;
    const n = await http(`${a!.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    expect(n.status).toBe(200);
    const ws = new WebSocket(`${b!.ws}/hubs/demo?id=${encodeURIComponent(n.body.connectionToken)}`);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    await until(() => (got.length > 0 ? true : undefined));
    expect(got[0]).toBe('{}' + RS);
    ws.send(JSON.stringify({ type: 1, invocationId: '1', target: 'Echo', arguments: ['across'] }) + RS);
    const done = await until(() => got.find((m) => m.includes('"type":3')));
    expect(JSON.parse(done.slice(0, -1))).toEqual({ type: 3, invocationId: '1', result: 'across' });
    ws.close();
  });

  it('WebSockets clients through HAProxy round-robin: negotiates and sockets land on either node', async () => {
    for (const protocol of ['json', 'messagepack'] as const) {
      for (let i = 0; i < 3; i++) {
        const c = new signalR.HubConnectionBuilder()
          .withUrl(`http://${lb}/hubs/demo`, { transport: signalR.HttpTransportType.WebSockets })
          .withHubProtocol(protocol === 'messagepack' ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol())
          .configureLogging(signalR.LogLevel.None)
          .build();
        conns.push(c);
        await c.start();
        expect(await c.invoke('echo', `${protocol} ${i}`)).toBe(`${protocol} ${i}`);
      }
    }
  });

  it('long-polling and SSE through HAProxy: polls, sends and the DELETE land on either node and are tunneled to the one holding the connection', async () => {
    const tunneled = async () => {
      let n = 0;
      for (const g of cluster.gateways) n += (await http(`${g.url}/healthz`)).body.signalr.tunneled.in;
      return n;
    };
    const before = await tunneled();
    for (const [transport, protocol] of [['LongPolling', 'json'], ['LongPolling', 'messagepack'], ['ServerSentEvents', 'json']] as const) {
      const c = new signalR.HubConnectionBuilder()
        .withUrl(`http://${lb}/hubs/demo`, { transport: signalR.HttpTransportType[transport], EventSource } as signalR.IHttpConnectionOptions)
        .withHubProtocol(protocol === 'messagepack' ? new MessagePackHubProtocol() : new signalR.JsonHubProtocol())
        .configureLogging(signalR.LogLevel.None)
        .build();
      conns.push(c);
      const said: string[] = [];
      c.on('said', (_r: string, text: string) => {
        said.push(text);
      });
      await c.start();
      expect(await c.invoke('join', 'lp')).toBe(true);
      for (let i = 0; i < 6; i++) expect(await c.invoke('echo', `${transport} ${protocol} ${i}`)).toBe(`${transport} ${protocol} ${i}`);
      await c.invoke('say', 'lp', 'heard');
      await until(() => said.includes('heard') || undefined);
      await c.stop();
    }
    expect((await tunneled()) - before).toBeGreaterThan(10);
  });

  it('stateful reconnect through the other node (the session stays, relayed): Sequence names the first message not acked, the replay follows', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const n = await http(`${a.url}/hubs/demo/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' });
    expect(n.body.useStatefulReconnect).toBe(true);
    const id = encodeURIComponent(n.body.connectionToken);
    const records = (got: string[]) => got.flatMap((m) => m.split(RS).filter(Boolean).map((r) => JSON.parse(r)));
    const open = async (url: string) => {
      const ws = new WebSocket(url);
      const got: string[] = [];
      ws.on('message', (d) => got.push(d.toString()));
      ws.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return { ws, got };
    };
    const first = await open(`${a.ws}/hubs/demo?id=${id}`);
    first.ws.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 1, invocationId: '1', target: 'join', arguments: ['rel'] }) + RS);
    await until(() => records(first.got).find((r) => r.type === 3));
    const sender = await WsClient.open(`${b.ws}/rt/ws`);
    await sender.request('join', 'rel');
    for (const t of ['1', '2', '3']) await sender.request('say', 'rel', t);
    await until(() => (records(first.got).filter((r) => r.target === 'said').length === 3 ? true : undefined));
    // the client has the Completion (#1) and the first said (#2); then its network drops
    first.ws.send(JSON.stringify({ type: 8, sequenceId: 2 }) + RS);
    await new Promise((r) => setTimeout(r, 100));
    first.ws.terminate();
    for (const t of ['4', '5']) await sender.request('say', 'rel', t);
    // back through the other node: no handshake, Sequence first (its next message would be #2)
    const second = await open(`${b.ws}/hubs/demo?id=${id}`);
    second.ws.send(JSON.stringify({ type: 9, sequenceId: 2 }) + RS);
    await until(() => (records(second.got).filter((r) => r.target === 'said').length === 4 ? true : undefined), 5000);
    const got = records(second.got).filter((r) => r.type !== 6 && r.type !== 8);
    expect(got[0]).toEqual({ type: 9, sequenceId: 3 });
    expect(got.slice(1).map((r) => r.arguments[1])).toEqual(['2', '3', '4', '5']);
    // and the connection goes on there
    second.ws.send(JSON.stringify({ type: 1, invocationId: '2', target: 'echo', arguments: ['relayed'] }) + RS);
    expect((await until(() => records(second.got).find((r) => r.type === 3 && r.invocationId === '2'))).result).toBe('relayed');
    second.ws.close();
    sender.send({ type: 'close' });
  });

  it('a stateful resume of a connection that ended, through the other node: the client gets Sequence and a Close (no reconnect loop)', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const n = await http(`${a.url}/hubs/demo/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' });
    const id = encodeURIComponent(n.body.connectionToken);
    const first = new WebSocket(`${a.ws}/hubs/demo?id=${id}`);
    await new Promise((r) => first.once('open', r));
    first.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 7 }) + RS);
    await new Promise((r) => first.once('close', r));
    const second = new WebSocket(`${b.ws}/hubs/demo?id=${id}`);
    const got: string[] = [];
    second.on('message', (d) => got.push(d.toString()));
    second.on('error', () => {});
    await new Promise((r) => second.once('open', r));
    second.send(JSON.stringify({ type: 9, sequenceId: 1 }) + RS);
    await until(() => (got.join('').includes('"type":7') ? true : undefined), 5000);
    const records = got.join('').split(RS).filter(Boolean).map((r) => JSON.parse(r));
    expect(records[0]).toEqual({ type: 9, sequenceId: 1 });
    expect(records[1].type).toBe(7);
    expect(records[1].allowReconnect).toBeUndefined();
  });

  it('stateful reconnect through the other node after a drain: nothing missed, nothing twice', async () => {
    await Promise.all(conns.splice(0).map((c) => c.stop().catch(() => undefined)));
    // the negotiate answer's token names the node holding the connection
    let token = '';
    class Capture extends signalR.DefaultHttpClient {
      override async send(request: signalR.HttpRequest): Promise<signalR.HttpResponse> {
        const response = await super.send(request);
        if (request.url?.includes('/negotiate')) token = JSON.parse(response.content as string).connectionToken;
        return response;
      }
    }
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`http://${lb}/hubs/demo`, { transport: signalR.HttpTransportType.WebSockets, httpClient: new Capture(signalR.NullLogger.instance) })
      .withHubProtocol(new MessagePackHubProtocol())
      .withStatefulReconnect()
      .configureLogging(signalR.LogLevel.None)
      .build();
    conns.push(c);
    const heard: string[] = [];
    c.on('said', (_r: string, text: string) => {
      heard.push(text);
    });
    await c.start();
    await c.invoke('join', 'drain');
    const holder = cluster.gateways.find((g) => g.id === token.split('.')[1])!;
    const other = cluster.gateways.find((g) => g !== holder)!;
    expect(holder).toBeDefined();
    const sender = await WsClient.open(`${other.ws}/rt/ws`);
    await sender.request('join', 'drain');
    let n = 0;
    const say = async (k: number) => {
      for (let j = 0; j < k; j++) await sender.request('say', 'drain', String(++n));
    };
    await say(5);
    await until(() => heard.length === 5 || undefined, 10_000);
    holder.proc.kill('SIGTERM');
    await say(10);
    await until(() => heard.length === 15 || undefined, 15_000).catch((err: Error) => {
      throw new Error(`${err.message}: heard ${JSON.stringify(heard)}, client ${c.state}\n${holder.log()}\n${other.log()}`);
    });
    const echo = await Promise.race([c.invoke('echo', 'after the drain'), new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer after the drain: client ${c.state}\n${other.log()}`)), 5000))]);
    expect(echo).toBe('after the drain');
    await say(5);
    await until(() => heard.length === 20 || undefined, 10_000);
    expect(heard).toEqual(Array.from({ length: 20 }, (_, k) => String(k + 1)));
    expect(c.state).toBe(signalR.HubConnectionState.Connected);
    await holder.exited;
    expect(holder.log()).toMatch(/drained: [1-9]\d* sessions handed over/);
  });
});
