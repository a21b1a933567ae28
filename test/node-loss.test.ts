/**
 * A gateway node killed (SIGKILL) in a cluster: every client relayed to it through a survivor is
 * told its session is lost within a stated time (so it reconnects, to a new session), and the
 * workers end the dead node's sessions (the app's `close` runs with SY_ERR_NODE_LOST). Real
 * processes: nats-server, two gateways, one worker.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { TestCluster, type Proc } from './cluster-harness.ts';
import { http, until, WsClient } from './helpers.ts';

/** gateway nodes announce themselves every 200 ms and are taken for dead after 1 s of silence */
const NODE_TIMEOUT_MS = 1000;
/** the goal: every relayed client told within this long of the kill */
const TOLD_WITHIN_MS = 5000;
const RS = '\x1e';
const enc = encodeURIComponent;

let cluster: TestCluster;
let g1: Proc;
let g2: Proc;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1, gatewayArgs: ['--heartbeat-ms', '200', '--member-timeout-ms', String(NODE_TIMEOUT_MS)] });
  [g1, g2] = cluster.gateways as [Proc, Proc];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** reads a streaming HTTP answer as text, as it comes */
function stream(url: string, init?: RequestInit): { text: () => string; status: Promise<number>; abort: () => void } {
  const ac = new AbortController();
  let text = '';
  const status = fetch(url, { ...init, signal: ac.signal }).then(async (r) => {
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += dec.decode(value, { stream: true });
      }
    })().catch(() => {});
    return r.status;
  });
  status.catch(() => {});
  return { text: () => text, status, abort: () => ac.abort() };
}

async function wsOpen(url: string): Promise<{ ws: WebSocket; got: string[]; closed: () => { code: number; reason: string; at: number } | null }> {
  const ws = new WebSocket(url);
  const got: string[] = [];
  let closed: { code: number; reason: string; at: number } | null = null;
  ws.on('message', (d) => got.push(d.toString()));
  ws.on('close', (code, reason) => (closed = { code, reason: reason.toString(), at: Date.now() }));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, got, closed: () => closed };
}

describe('a gateway node killed (SIGKILL): what was relayed to it, and its sessions', () => {
  it('every relayed client is told within 5 s, the worker closes every session of the dead node, and the survivor keeps nothing of it', async () => {
    const told = new Map<string, number>();
    const mark = (what: string) => {
      if (!told.has(what)) told.set(what, Date.now());
    };

    // native WebSocket: opened on g1, resumed through g2 (relayed)
    const first = await WsClient.open(`${g1.ws}/rt/ws`);
    const { sid: wsSid, token: wsToken } = first.open;
    first.terminate();
    const viaG2 = await WsClient.open(`${g2.ws}/rt/ws?sid=${wsSid}&token=${enc(wsToken)}&last=0`);
    expect((await viaG2.request('echo', 'relayed')).args).toEqual(['relayed']);

    // native long-poll: opened on g1, a poll held through g2
    const opened = (await http(`${g1.url}/rt/poll`)).body[0];
    const pollQ = `sid=${opened.sid}&token=${enc(opened.token)}`;
    const heldPoll = http(`${g2.url}/rt/poll?${pollQ}&last=0`).then((r) => (mark('native poll'), r));

    // native SSE: opened on g1 by a poll, the stream through g2
    const sseOpen = (await http(`${g1.url}/rt/poll`)).body[0];
    const sse = stream(`${g2.url}/rt/sse?sid=${sseOpen.sid}&token=${enc(sseOpen.token)}&last=0`);
    expect(await sse.status).toBe(200);

    // SignalR WebSockets: negotiated on g1, the socket on g2 (relayed)
    const n = await http(`${g1.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    const sr = await wsOpen(`${g2.ws}/hubs/demo?id=${enc(n.body.connectionToken)}`);
    sr.ws.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
    sr.ws.send(JSON.stringify({ type: 1, invocationId: '1', target: 'Echo', arguments: ['sr'] }) + RS);
    await until(() => sr.got.find((m) => m.includes('"result":"sr"')));

    // SignalR long-polling: negotiated on g1, the polls through g2 (tunneled), one held
    const lp = await http(`${g1.url}/hubs/demo/negotiate?negotiateVersion=1`, { method: 'POST' });
    const lpUrl = `${g2.url}/hubs/demo?id=${enc(lp.body.connectionToken)}`;
    expect((await fetch(lpUrl)).status).toBe(200); // the first poll returns at once
    expect((await fetch(lpUrl, { method: 'POST', body: JSON.stringify({ protocol: 'json', version: 1 }) + RS })).status).toBe(200);
    expect(await (await fetch(lpUrl)).text()).toBe('{}' + RS);
    const srPoll = fetch(lpUrl).then((r) => (mark('signalr long-poll'), r.status));

    // SockJS xhr polling: the session made on g1, a receiver held on g2 (relayed)
    const sj = `/sockjs/000/nl${Date.now().toString(36)}`;
    expect((await http(`${g1.url}${sj}/xhr`, { method: 'POST' })).body).toBe('o\n');
    const sjPoll = http(`${g2.url}${sj}/xhr`, { method: 'POST' }).then((r) => (mark('sockjs xhr'), r));

    // Engine.IO: the carrier on g1 (main namespace connected), a poll held through g2 (tunneled)
    const hs = await (await fetch(`${g1.url}/socket.io/?EIO=4&transport=polling`)).text();
    const eioSid = JSON.parse(hs.slice(1)).sid as string;
    await fetch(`${g1.url}/socket.io/?EIO=4&transport=polling&sid=${eioSid}`, { method: 'POST', body: '40' });
    expect(await (await fetch(`${g1.url}/socket.io/?EIO=4&transport=polling&sid=${eioSid}`)).text()).toMatch(/^40\{"sid"/);
    const eioPoll = fetch(`${g2.url}/socket.io/?EIO=4&transport=polling&sid=${eioSid}`).then(
      async (r) => (mark('engine.io poll'), { status: r.status, body: await r.text() }),
    );

    // ten more native sessions held on g1, each connected there
    const direct = await Promise.all(Array.from({ length: 10 }, () => WsClient.open(`${g1.ws}/rt/ws`)));
    const g1Sids = [wsSid, opened.sid, sseOpen.sid, n.body.connectionId, lp.body.connectionId, ...direct.map((c) => c.open.sid)];

    // everything is in place on g2: five relayed connections (the Engine.IO poll is tunneled)
    await vi.waitFor(async () => expect((await http(`${g2.url}/healthz`)).body.relay.open).toBe(5), { timeout: 5000, interval: 50 });

    const killedAt = Date.now();
    g1.proc.kill('SIGKILL');
    expect(await g1.exited).toBeNull();

    // the relayed WebSocket: a close frame SY_ERR_NODE_LOST, then the close
    const wsClose = await viaG2.waitClosed(TOLD_WITHIN_MS + 2000);
    mark('native websocket');
    expect(wsClose).toEqual({ code: 4514, reason: 'SY_ERR_NODE_LOST' });
    expect(viaG2.frames.at(-1)).toMatchObject({ type: 'close', code: 4514, reason: 'SY_ERR_NODE_LOST' });
    // the held poll: its answer is the close
    expect((await heldPoll).body).toEqual([{ type: 'close', code: 4514, reason: 'SY_ERR_NODE_LOST' }]);
    // the SSE stream: the close as its last event
    await until(() => (sse.text().includes('"code":4514') ? true : undefined), TOLD_WITHIN_MS + 2000);
    mark('native sse');
    expect(sse.text()).toContain('{"type":"close","code":4514,"reason":"SY_ERR_NODE_LOST"}');
    sse.abort();
    // SignalR: Close with its error, allowReconnect (a new connection), then the socket closes
    await until(() => sr.closed() ?? undefined, TOLD_WITHIN_MS + 2000);
    mark('signalr websocket');
    const close = sr.got
      .flatMap((m) =>
        m
          .split(RS)
          .filter(Boolean)
          .map((r) => JSON.parse(r)),
      )
      .find((m) => m.type === 7);
    expect(close).toMatchObject({ type: 7, allowReconnect: true });
    expect(close.error).toContain('SY_ERR_NODE_LOST');
    // SockJS: the receiver gets the close frame
    expect((await sjPoll).body).toBe('c[4514,"SY_ERR_NODE_LOST"]\n');
    // Engine.IO: the tunneled poll is answered as for an unknown session (the client reconnects)
    expect((await eioPoll).status).toBe(400);
    // SignalR long-polling: the tunneled poll gets 404, a connection gone
    expect(await srPoll).toBe(404);

    for (const [what, at] of told) expect(at - killedAt, `${what} told after ${at - killedAt} ms`).toBeLessThan(TOLD_WITHIN_MS);
    console.log(`node SIGKILL: relayed clients told after ${[...told].map(([w, at]) => `${w} ${at - killedAt} ms`).join(', ')}`);

    // the worker ran the app's close for every session of the dead node, with SY_ERR_NODE_LOST
    const closes = await until(() => {
      const lines = cluster.appLog().filter((l) => l.includes(' @close '));
      const bySid = new Map(lines.map((l) => [l.split(' ')[0]!, JSON.parse(l.slice(l.indexOf('[')))]));
      return g1Sids.every((s) => bySid.has(s)) ? bySid : undefined;
    }, TOLD_WITHIN_MS + 2000);
    for (const s of g1Sids) expect(closes.get(s)).toEqual([4514, 'SY_ERR_NODE_LOST']);

    // after: a resume of a dead node's session through the survivor is refused at once (4404), a POST too
    const t0 = Date.now();
    const again = await WsClient.open(`${g2.ws}/rt/ws?sid=${wsSid}&token=${enc(wsToken)}&last=0`);
    expect(await again.waitClosed()).toEqual({ code: 4404, reason: 'SY_ERR_UNKNOWN_SESSION' });
    const post = await http(`${g2.url}/rt/send?${pollQ}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
    expect(post.status).toBe(404);
    expect(Date.now() - t0).toBeLessThan(1000);

    // the survivor holds nothing for the dead node's clients
    await vi.waitFor(async () => expect((await http(`${g2.url}/healthz`)).body.relay.open).toBe(0), { timeout: 5000, interval: 50 });
    // and serves on
    const fresh = await WsClient.open(`${g2.ws}/rt/ws`);
    expect((await fresh.request('echo', 'still here')).args).toEqual(['still here']);
    fresh.sock.close();
  }, 60_000);
});

describe('a gateway node stopped past its member timeout (SIGSTOP), then resumed', () => {
  it('the worker ends its sessions meanwhile; on waking the node ends them too (4514), and its clients start anew there', async () => {
    const c = await TestCluster.start({ gateways: 1, workers: 1, gatewayArgs: ['--heartbeat-ms', '200', '--member-timeout-ms', String(NODE_TIMEOUT_MS)] });
    try {
      const g = c.gateways[0]!;
      const clients = await Promise.all(Array.from({ length: 3 }, () => WsClient.open(`${g.ws}/rt/ws`)));
      const sids = clients.map((x) => x.open.sid as string);
      g.proc.kill('SIGSTOP');
      // the worker takes the node for dead and closes its sessions
      const closed = await until(() => {
        const lines = c.appLog().filter((l) => l.includes(' @close '));
        return sids.every((s) => lines.some((l) => l.startsWith(s + ' '))) ? lines : undefined;
      }, 10_000);
      for (const s of sids) expect(closed.find((l) => l.startsWith(s + ' '))).toContain('[4514,"SY_ERR_NODE_LOST"]');
      g.proc.kill('SIGCONT');
      // the node, awake, agrees: its clients get the close and reconnect to new sessions
      for (const x of clients) expect(await x.waitClosed(5000)).toEqual({ code: 4514, reason: 'SY_ERR_NODE_LOST' });
      const again = await WsClient.open(`${g.ws}/rt/ws`);
      expect((await again.request('echo', 'awake')).args).toEqual(['awake']);
      again.sock.close();
    } finally {
      await c.stop();
    }
  }, 60_000);
});
