/**
 * The deployment shape of docs/deploy.md, for real: HAProxy (Debian's) round-robin in front of
 * two gateway nodes, no stickiness, a worker and NATS behind. Clients go through HAProxy only.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect } from '../client/switchyard.js';
import { TestCluster } from './cluster-harness.ts';
import { freePort } from './nats-server.ts';
import { http, send, WsClient } from './helpers.ts';

let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;

beforeAll(async () => {
  if (spawnSync('sh', ['-c', 'command -v haproxy'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('haproxy is not installed: npm test\'s pretest installs it (apt-get install -y haproxy)');
  }
  cluster = await TestCluster.start({ gateways: 2, workers: 1 });
  // a free port is bound by HAProxy a moment later; another test file may take it in between
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    haproxy = startHaproxy(port);
    lb = `127.0.0.1:${port}`;
    // HAProxy binds its port at start-up, or exits at once when it can not
    const p = haproxy;
    const up = await vi.waitFor(
      () => {
        if (p.exitCode !== null || p.signalCode !== null) return false;
        if (listensOn(p.pid!, port)) return true;
        throw new Error(`haproxy (pid ${p.pid}) neither listens on ${port} nor exited`);
      },
      { timeout: 10_000, interval: 20 },
    );
    if (up) break;
    if (attempt === 5) throw new Error('haproxy did not start');
  }
  await vi.waitFor(async () => expect((await http(`http://${lb}/healthz`)).status).toBe(200), { timeout: 10_000, interval: 100 });
});

/** Whether process `pid` holds a socket listening on 127.0.0.1:`port` (Linux: /proc) */
function listensOn(pid: number, port: number): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // gone
  }
  const sockets = new Set<string>();
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) sockets.add(m[1]!);
    } catch {}
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // columns: sl local_address rem_address st … inode; st 0A = LISTEN
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .some((line) => {
      const c = line.trim().split(/\s+/);
      return c[1] === local && c[3] === '0A' && sockets.has(c[9]!);
    });
}

function startHaproxy(port: number): ChildProcess {
  const cfg = join(cluster.logDir, 'haproxy.cfg');
  // the config docs/deploy.md shows, with test ports
  writeFileSync(
    cfg,
    `global
  maxconn 4096
defaults
  mode http
  # SSE and long-poll answers are small and must not wait for more data to merge with
  option http-no-delay
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  timeout tunnel 1h
  option redispatch
  retries 2
frontend switchyard
  bind 127.0.0.1:${port}
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
${cluster.gateways.map((g) => `  server ${g.id} 127.0.0.1:${g.port} check inter 500 fall 3 rise 1`).join('\n')}
`,
  );
  return spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

async function relayedTotal(): Promise<number> {
  let n = 0;
  for (const g of cluster.gateways) n += (await http(`${g.url}/healthz`)).body.relay.in;
  return n;
}

describe('behind HAProxy, round-robin, no stickiness', () => {
  it('a long-polling client keeps its session while its requests land on both nodes', async () => {
    const before = await relayedTotal();
    const open = (await http(`http://${lb}/rt/poll`)).body[0];
    let token = open.token;
    let last = 0;
    const got: number[] = [];
    for (let i = 0; i < 30; i++) {
      expect((await send(`http://${lb}`, open.sid, token, [{ type: 'event', event: 'echo', args: [i] }])).status).toBe(204);
      while (got.length <= i) {
        const r = await http(`http://${lb}/rt/poll?sid=${open.sid}&token=${encodeURIComponent(token)}&last=${last}`);
        expect(r.status).toBe(200);
        for (const f of r.body) {
          if (f.type === 'open') token = f.token;
          if (!f.seq) continue;
          expect(f.seq).toBe(last + 1);
          last = f.seq;
          got.push(f.args[0]);
        }
      }
    }
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // round-robin really sent requests to the node that does not hold the session
    expect((await relayedTotal()) - before).toBeGreaterThan(10);
  });

  it('WebSocket clients on either node share a room, and a reconnect through HAProxy resumes', async () => {
    // round-robin puts consecutive connections on alternate nodes; take one on each
    const a = await WsClient.open(`ws://${lb}/rt/ws`);
    const node = (c: WsClient) => c.open.token.split('.')[0];
    let b = await WsClient.open(`ws://${lb}/rt/ws`);
    for (let i = 0; i < 5 && node(b) === node(a); i++) b = await WsClient.open(`ws://${lb}/rt/ws`);
    expect(node(a)).not.toBe(node(b));
    await a.request('join', 'lb');
    await b.request('join', 'lb');
    a.emit('say', 'lb', 'through haproxy');
    await b.next((f) => f.event === 'said' && f.args[1] === 'through haproxy');
    b.terminate();
    a.emit('say', 'lb', 'while b was away');
    await a.next((f) => f.event === 'said' && f.args[1] === 'while b was away');
    const last = b.frames.filter((f) => f.seq).at(-1)!.seq;
    const again = await WsClient.open(`ws://${lb}/rt/ws?sid=${b.open.sid}&token=${encodeURIComponent(b.open.token)}&last=${last}`);
    expect(again.open).toMatchObject({ sid: b.open.sid, recovered: true });
    await again.next((f) => f.event === 'said' && f.args[1] === 'while b was away');
  });

  it('the native client works through HAProxy over each transport', async () => {
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      const c = connect(`http://${lb}`, { transports: [transport], WebSocket, EventSource: (await import('eventsource')).EventSource });
      try {
        for (let i = 0; i < 5; i++) {
          const r = await c.request('echo', transport, i).catch((e: Error) => `${transport} #${i}: ${e.message}`);
          expect(r).toEqual([transport, i]);
        }
      } finally {
        c.close();
      }
    }
  });
});
