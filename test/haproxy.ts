/**
 * HAProxy (Debian's) in front of a test cluster's gateways: round-robin, no stickiness, the
 * config docs/deploy.md shows. Used by the tests that go through a load balancer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import type { TestCluster } from './cluster-harness.ts';
import { freePort } from './nats-server.ts';
import { http } from './helpers.ts';

/** Starts HAProxy for `cluster` and waits until it answers. @returns the process and its host:port */
export async function startHaproxy(cluster: TestCluster): Promise<{ proc: ChildProcess; lb: string; log: () => string }> {
  if (spawnSync('sh', ['-c', 'command -v haproxy'], { stdio: 'ignore' }).status !== 0) {
    throw new Error("haproxy is not installed: npm test's pretest installs it (apt-get install -y haproxy)");
  }
  let haproxy: ChildProcess;
  let lb: string;
  // a free port is bound by HAProxy a moment later; another test file may take it in between
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    haproxy = spawnHaproxy(cluster, port);
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
  let log = '';
  haproxy.stderr?.on('data', (d) => (log += d));
  return { proc: haproxy, lb, log: () => log };
}

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

function spawnHaproxy(cluster: TestCluster, port: number): ChildProcess {
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
  timeout check 500ms
  timeout tunnel 1h
  option redispatch
  retries 2
frontend switchyard
  bind 127.0.0.1:${port}
  default_backend gateways
backend gateways
  balance roundrobin
  # HTTP/1.1: uWebSockets.js does not answer HTTP/1.0 requests (HAProxy's default for checks)
  option httpchk
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
  http-check expect status 200
${cluster.gateways.map((g) => `  server ${g.id} 127.0.0.1:${g.port} check inter 200 fall 3 rise 1`).join('\n')}
`,
  );
  return spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
}
