/**
 * Real nats-server processes for tests and benchmarks: single servers and clusters with routes,
 * all on free ports. A missing nats-server fails loudly (npm test's pretest installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface NatsServer {
  url: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  proc: ChildProcess;
  /** SIGKILL it */
  kill(): void;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function requireBinary(): void {
  if (spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('nats-server is not installed: run `npm test` (its pretest installs it) or `apt-get install -y nats-server`');
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string, gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (gaveUp()) throw new Error(`${what} failed to start`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function varz(monitorPort: number, path: string): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${monitorPort}/${path}`);
  return r.json();
}

/** Starts one server; with `routes`, as part of a cluster */
async function startOne(opts: { clusterPort?: number; routes?: number[]; name: string }): Promise<NatsServer> {
  requireBinary();
  const port = await freePort();
  const monitorPort = await freePort();
  const clusterPort = opts.clusterPort ?? 0;
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '--server_name', opts.name];
  if (clusterPort) {
    args.push('--cluster', `nats://127.0.0.1:${clusterPort}`, '--cluster_name', 'switchyard-test');
    const routes = (opts.routes ?? []).filter((p) => p !== clusterPort);
    if (routes.length) args.push('--routes', routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
  }
  const proc = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}`);
        return (await varz(monitorPort, 'varz')).port === port;
      },
      10_000,
      `nats-server on ${port}`,
      () => proc.exitCode !== null,
    );
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${log}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    clusterPort,
    monitorPort,
    proc,
    kill: () => proc.kill('SIGKILL'),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * Free ports are picked here and bound by nats-server a moment later; another test file running in
 * parallel can take one in between ("address already in use"). Such a start is retried on new ports.
 */
async function retrying<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (attempt >= 5 || !/address already in use/.test((e as Error).message)) throw e;
    }
  }
}

export async function startNatsServer(): Promise<NatsServer> {
  return retrying(() => startOne({ name: `sy-${process.pid}-${Math.random().toString(36).slice(2, 6)}` }));
}

/** Starts `n` servers routed to each other, and waits until every route is up */
export async function startNatsCluster(n: number): Promise<NatsServer[]> {
  return retrying(() => startCluster(n));
}

async function startCluster(n: number): Promise<NatsServer[]> {
  const clusterPorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const tag = Math.random().toString(36).slice(2, 6);
  const started = await Promise.allSettled(clusterPorts.map((cp, i) => startOne({ clusterPort: cp, routes: clusterPorts, name: `sy-${tag}-${i}` })));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    // stop the ones that did start, so a retry begins clean
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop() : null)));
    throw (failed as PromiseRejectedResult).reason;
  }
  const servers = started.map((r) => (r as PromiseFulfilledResult<NatsServer>).value);
  await waitFor(
    async () => {
      for (const s of servers) if ((await varz(s.monitorPort, 'routez')).num_routes < n - 1) return false;
      return true;
    },
    15_000,
    'NATS routes',
  );
  return servers;
}
