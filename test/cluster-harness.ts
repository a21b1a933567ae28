/**
 * A real cluster for tests: nats-server processes, gateway and worker processes started with the
 * `switchyard` CLI on free ports. Everything is killed by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsCluster, startNatsServer, type NatsServer } from './nats-server.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchyard.mjs');
const APP = join(import.meta.dirname, 'apps', 'logging-app.ts');
export const SECRET = 'test-secret-0123456789abcdef';

export interface Proc {
  id: string;
  proc: ChildProcess;
  log: () => string;
  port: number;
  url: string;
  ws: string;
  exited: Promise<number | null>;
}

/** quick timings so failures are detected in about a second */
export const FAST = { heartbeatMs: 200, memberTimeoutMs: 1000, ackTimeoutMs: 500 };

export class TestCluster {
  readonly nats: NatsServer[] = [];
  readonly gateways: Proc[] = [];
  readonly workers: Proc[] = [];
  readonly logDir = mkdtempSync(join(tmpdir(), 'sy-app-log-'));

  static async start(o: { natsServers?: number; gateways?: number; workers?: number; gatewayArgs?: string[] } = {}): Promise<TestCluster> {
    const c = new TestCluster();
    if ((o.natsServers ?? 1) === 1) c.nats.push(await startNatsServer());
    else c.nats.push(...(await startNatsCluster(o.natsServers!)));
    await Promise.all(Array.from({ length: o.workers ?? 1 }, (_, i) => c.addWorker(`w${i + 1}`)));
    await Promise.all(Array.from({ length: o.gateways ?? 1 }, (_, i) => c.addGateway(`g${i + 1}`, o.gatewayArgs)));
    // started in parallel: put them in id order (g1, g2, …)
    c.gateways.sort((x, y) => x.id.localeCompare(y.id));
    c.workers.sort((x, y) => x.id.localeCompare(y.id));
    return c;
  }

  get natsUrls(): string {
    return this.nats.map((s) => s.url).join(',');
  }

  private spawn(args: string[], id: string, ready: RegExp, secret = SECRET): Promise<Proc> {
    const proc = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHYARD_SECRET: secret, SY_TEST_LOG_DIR: this.logDir },
    });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`${id} did not start:\n${out}`)), 20_000);
      const check = () => {
        const m = ready.exec(out);
        if (!m) return;
        clearTimeout(deadline);
        proc.stdout!.off('data', check);
        const port = m[1] ? Number(m[1]) : 0;
        resolve({ id, proc, log: () => out, port, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, exited });
      };
      proc.stdout!.on('data', check);
      proc.once('exit', (code) => reject(new Error(`${id} exited with ${code}:\n${out}`)));
    });
  }

  /** `secret`: its SWITCHYARD_SECRET (default the cluster's) */
  async addGateway(id: string, extra: string[] = [], secret?: string): Promise<Proc> {
    const p = await this.spawn(
      [
        'gateway',
        '--nats',
        this.natsUrls,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--node-id',
        id,
        '--ack-timeout-ms',
        String(FAST.ackTimeoutMs),
        '--relay-timeout-ms',
        '2000',
        ...extra,
      ],
      id,
      /listening on http:\/\/127\.0\.0\.1:(\d+)/,
      secret,
    );
    this.gateways.push(p);
    return p;
  }

  async addWorker(id: string): Promise<Proc> {
    const p = await this.spawn(
      [
        'worker',
        '--nats',
        this.natsUrls,
        '--worker-id',
        id,
        '--app',
        APP,
        '--heartbeat-ms',
        String(FAST.heartbeatMs),
        '--member-timeout-ms',
        String(FAST.memberTimeoutMs),
      ],
      id,
      /worker \S+ on NATS/,
    );
    this.workers.push(p);
    return p;
  }

  /** every event the app handled, across all worker processes (also the killed ones) */
  appLog(): string[] {
    return [...this.appLogByPid().values()].flat();
  }

  /** the same, per worker process id */
  appLogByPid(): Map<number, string[]> {
    return new Map(readdirSync(this.logDir).map((f) => [Number(f.split('.')[0]), readFileSync(join(this.logDir, f), 'utf8').split('\n').filter(Boolean)]));
  }

  async stop(): Promise<void> {
    const procs = [...this.gateways, ...this.workers];
    for (const p of procs) p.proc.kill('SIGKILL');
    // gone before the next test starts (and before their app log directory is removed)
    await Promise.all(procs.map((p) => p.exited));
    await Promise.all(this.nats.map((s) => s.stop()));
    rmSync(this.logDir, { recursive: true, force: true });
  }
}
