/**
 * SignalR across two gateway nodes on NATS: negotiate on one node and connect on the other,
 * directly and through HAProxy round-robin without stickiness.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
    for (const [transport, protocol] of [
      ['LongPolling', 'json'],
      ['LongPolling', 'messagepack'],
      ['ServerSentEvents', 'json'],
    ] as const) {
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

  it('long-polling through the other node: a POST while another is in flight there gets 409 as on the holding node, and the connection stays', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const n = await http(`${a.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    const q = `id=${encodeURIComponent(n.body.connectionToken)}`;
    // everything through b: the connection is held on a
    expect((await fetch(`${b.url}/hubs/demo?${q}`)).status).toBe(200);
    const { request } = await import('node:http');
    const u = new URL(`${b.url}/hubs/demo?${q}`);
    const slow = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers: { 'content-length': '1000' } });
    slow.on('error', () => {});
    slow.write('{');
    await new Promise((r) => setTimeout(r, 100));
    const handshake = JSON.stringify({ protocol: 'json', version: 1 }) + RS;
    const second = await fetch(`${b.url}/hubs/demo?${q}`, { method: 'POST', body: handshake });
    expect(second.status).toBe(409);
    slow.destroy();
    // once b saw the first one go, the next POST is taken
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await fetch(`${b.url}/hubs/demo?${q}`, { method: 'POST', body: handshake })).status;
      if (status === 409) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(200);
    expect(await (await fetch(`${b.url}/hubs/demo?${q}`)).text()).toBe('{}' + RS);
    await fetch(`${b.url}/hubs/demo?${q}`, { method: 'DELETE' });
  });

  it('stateful reconnect through the other node (the session stays, relayed): Sequence names the first message not acked, the replay follows', async () => {
    const [a, b] = cluster.gateways as [Proc, Proc];
    const n = await http(`${a.url}/hubs/demo/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' });
    expect(n.body.useStatefulReconnect).toBe(true);
    const id = encodeURIComponent(n.body.connectionToken);
    const records = (got: string[]) =>
      got.flatMap((m) =>
        m
          .split(RS)
          .filter(Boolean)
          .map((r) => JSON.parse(r)),
      );
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
    first.ws.send(
      JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 1, invocationId: '1', target: 'join', arguments: ['rel'] }) + RS,
    );
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
    const records = got
      .join('')
      .split(RS)
      .filter(Boolean)
      .map((r) => JSON.parse(r));
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
    // what happened to the client's sockets, for a failure's message (which step it stopped at)
    const story: string[] = [];
    const t0 = Date.now();
    const note = (what: string) => story.push(`${Date.now() - t0}ms ${what}`);
    const Sockets = socketsNoted(note);
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`http://${lb}/hubs/demo`, {
        transport: signalR.HttpTransportType.WebSockets,
        httpClient: new Capture(signalR.NullLogger.instance),
        WebSocket: Sockets,
      } as signalR.IHttpConnectionOptions)
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
    const stopped = (step: string) => (err: Error) => {
      throw new Error(
        `stopped at: ${step} (${err.message})\nheard ${JSON.stringify(heard)}, client ${c.state}, holder ${holder.id}\nsockets: ${story.join('; ')}\n--- holder ${holder.id}:\n${holder.log()}\n--- other ${other.id}:\n${other.log()}`,
      );
    };
    await say(5);
    await until(() => heard.length === 5 || undefined, 10_000).catch(stopped('5 broadcasts before the drain'));
    note(`SIGTERM ${holder.id}`);
    holder.proc.kill('SIGTERM');
    await say(10);
    await until(() => heard.length === 15 || undefined, 15_000).catch(stopped('10 broadcasts during the drain'));
    // the drain's restart of the socket may come before, during or after this invocation
    note('invoke echo');
    const echo = await withTimeout(c.invoke('echo', 'after the drain'), 5000).catch(stopped('an invocation during or after the drain: no Completion'));
    note('echo answered');
    expect(echo).toBe('after the drain');
    await say(5);
    await until(() => heard.length === 20 || undefined, 10_000).catch(stopped('5 broadcasts after the drain'));
    expect(heard).toEqual(Array.from({ length: 20 }, (_, k) => String(k + 1)));
    expect(c.state).toBe(signalR.HubConnectionState.Connected);
    await holder.exited;
    expect(holder.log()).toMatch(/drained: [1-9]\d* sessions handed over/);
  });
});

/** A ws WebSocket class for the SignalR client that notes its sockets' opens and closes (and may send them to another host) */
function socketsNoted(note: (what: string) => void, rewrite: (url: string) => string = (u) => u) {
  let n = 0;
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      const to = rewrite(url);
      super(to, protocols, options);
      const k = ++n;
      const host = new URL(to).host;
      note(`socket ${k} to ${host}`);
      this.on('open', () => note(`socket ${k} open`));
      this.on('close', (code) => note(`socket ${k} closed ${code}`));
    }
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}

describe('SignalR stateful reconnect across a drain: what the client sends while its session changes node', () => {
  let own: TestCluster | null = null;
  afterEach(async () => {
    await own?.stop();
    own = null;
  });

  it('invocations sent right after the Sequence, on the node the session is being handed to, are answered (not dropped by the draining node)', async () => {
    own = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--drain-window-ms', '300'] });
    const [a, b] = own.gateways as [Proc, Proc];
    const n = await http(`${a.url}/hubs/demo/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: 'POST' });
    const id = encodeURIComponent(n.body.connectionToken);
    const records = (got: string[]) =>
      got.flatMap((m) =>
        m
          .split(RS)
          .filter(Boolean)
          .map((r) => JSON.parse(r)),
      );
    const first = new WebSocket(`${a.ws}/hubs/demo?id=${id}`);
    const got1: string[] = [];
    first.on('message', (d) => got1.push(d.toString()));
    first.on('error', () => {});
    await new Promise((r) => first.once('open', r));
    // message #1: join (a session in a room: the hand-over subscribes the new node first)
    first.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS + JSON.stringify({ type: 1, invocationId: '1', target: 'join', arguments: ['h'] }) + RS);
    await until(() => records(got1).find((r) => r.type === 3 && r.invocationId === '1'));
    const closed = new Promise((r) => first.once('close', r));
    a.proc.kill('SIGTERM');
    // the drain's restart: a closes the socket (a stateful client comes back by itself)
    await closed;
    // back through b; Sequence (the next message would be #2), and at once invocations #2 and #3:
    // b has asked a for the session, which a hands over instead of relaying
    const second = new WebSocket(`${b.ws}/hubs/demo?id=${id}`);
    const got2: string[] = [];
    second.on('message', (d) => got2.push(d.toString()));
    second.on('error', () => {});
    await new Promise((r) => second.once('open', r));
    second.send(
      JSON.stringify({ type: 9, sequenceId: 2 }) +
        RS +
        JSON.stringify({ type: 1, invocationId: '2', target: 'echo', arguments: ['in the hand-over'] }) +
        RS +
        JSON.stringify({ type: 1, invocationId: '3', target: 'echo', arguments: ['and after it'] }) +
        RS,
    );
    const answers = await until(() => {
      const c = records(got2).filter((r) => r.type === 3 && (r.invocationId === '2' || r.invocationId === '3'));
      return c.length === 2 ? c : undefined;
    }, 5000).catch(() => {
      throw new Error(
        `no Completion for invocations sent while the session was handed over: got ${JSON.stringify(records(got2))}\n--- a:\n${a.log()}\n--- b:\n${b.log()}`,
      );
    });
    expect(answers.map((r) => [r.invocationId, r.result])).toEqual([
      ['2', 'in the hand-over'],
      ['3', 'and after it'],
    ]);
    expect(records(got2).filter((r) => r.type === 3 && (r.invocationId === '2' || r.invocationId === '3'))).toHaveLength(2);
    second.close();
    expect(await a.exited).toBe(0);
    expect(a.log()).toMatch(/drained: 1 sessions handed over/);
  });

  it('@microsoft/signalr relayed through the other node, invoking without pause while the holder drains: every invocation answered once', async () => {
    own = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--drain-window-ms', '300'] });
    const [a, b] = own.gateways as [Proc, Proc];
    const story: string[] = [];
    const t0 = Date.now();
    const note = (what: string) => story.push(`${Date.now() - t0}ms ${what}`);
    // negotiate on a (which holds the connection), every socket to b (which relays it, then takes it over)
    const bHost = new URL(b.url).host;
    const Sockets = socketsNoted(note, (url) => {
      const u = new URL(url);
      u.host = bHost;
      return u.toString();
    });
    const c = new signalR.HubConnectionBuilder()
      .withUrl(`${a.url}/hubs/demo`, { transport: signalR.HttpTransportType.WebSockets, WebSocket: Sockets } as signalR.IHttpConnectionOptions)
      .withStatefulReconnect()
      .configureLogging(signalR.LogLevel.None)
      .build();
    await c.start();
    try {
      expect(await c.invoke('join', 'r')).toBe(true);
      expect((await http(`${b.url}/healthz`)).body.relay.open).toBeGreaterThan(0);
      let exited = false;
      void a.exited.then(() => (exited = true));
      note(`SIGTERM ${a.id}`);
      a.proc.kill('SIGTERM');
      // an invocation every 2 ms, whatever is answered (so that some go while the socket is down
      // and are resent after the Sequence), until the holder is gone and 50 more
      const answers = new Map<number, unknown[]>();
      const sent: number[] = [];
      let after = 0;
      const pace = setInterval(() => {
        if (exited) after++;
        if (after > 50) return clearInterval(pace);
        const k = sent.length;
        sent.push(k);
        c.invoke('echo', k).then(
          (v) => void (answers.get(k) ?? answers.set(k, []).get(k)!).push(v),
          () => {},
        );
      }, 2);
      await until(() => (after > 50 ? true : undefined), 20_000).finally(() => clearInterval(pace));
      await until(() => (answers.size === sent.length ? true : undefined), 5000).catch(() => {
        const missing = sent.filter((k) => !answers.has(k));
        throw new Error(
          `invocations without a Completion: ${missing.join(',')} of ${sent.length} (client ${c.state})\nsockets: ${story.join('; ')}\n--- a:\n${a.log()}\n--- b:\n${b.log()}`,
        );
      });
      for (const [k, v] of answers) expect(v, `invocation ${k}`).toEqual([k]);
      expect(c.state).toBe(signalR.HubConnectionState.Connected);
      expect(a.log()).toMatch(/drained: 1 sessions handed over/);
      // the client's socket was restarted by the drain and came back through b
      expect(story.filter((l) => / open$/.test(l)).length).toBeGreaterThan(1);
    } finally {
      await c.stop().catch(() => undefined);
    }
  });
});
