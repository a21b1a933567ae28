/**
 * nginx (Debian's) in front of a test cluster's gateways: round-robin, no stickiness, the
 * configuration docs/deploy.md shows (WebSocket upgrade, no buffering for SSE and long-polling).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import type { TestCluster } from './cluster-harness.ts';
import { freePort } from './nats-server.ts';
import { http } from './helpers.ts';

const NGINX = ['nginx', '/usr/sbin/nginx'];

/** Starts nginx for `cluster` and waits until it answers. @returns the process and its host:port */
export async function startNginx(cluster: TestCluster): Promise<{ proc: ChildProcess; lb: string; log: () => string }> {
  const bin = NGINX.find((b) => spawnSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' }).status === 0);
  if (bin === undefined) throw new Error("nginx is not installed: npm test's pretest installs it (apt-get install -y nginx)");
  const dir = join(cluster.logDir, 'nginx');
  mkdirSync(dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), config(cluster, dir, port));
    const proc = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    const lb = `127.0.0.1:${port}`;
    const up = await vi.waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return false;
        expect((await http(`http://${lb}/healthz`)).status).toBe(200);
        return true;
      },
      { timeout: 10_000, interval: 100 },
    );
    if (up) return { proc, lb, log: () => err + readLog(join(dir, 'error.log')) };
    // the free port was taken before nginx bound it: another one
    if (attempt === 5) throw new Error(`nginx did not start: ${err}`);
  }
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** docs/deploy.md's configuration, with the test's ports and a private prefix for nginx's files */
function config(cluster: TestCluster, dir: string, port: number): string {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return `${root ? 'user root;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream switchyard { ${cluster.gateways.map((g) => `server 127.0.0.1:${g.port};`).join(' ')} }   # round-robin
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://switchyard;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`;
}
