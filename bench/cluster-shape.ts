/**
 * The cluster shape for the benchmark, as one foreground process: a nats-server, a worker process
 * and a gateway process on the given port, all on this machine (and, under the harness's
 * taskset, on the same CPU). Stopping this process stops all three. With a second port, a second
 * gateway process listens on it (nats-server, one worker, two gateways): a room whose members are
 * on both gateways gets each broadcast from the worker over the bus on both.
 *   node --import tsx bench/cluster-shape.ts <port> [<port2>]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startNatsServer } from '../test/nats-server.ts';

const port = Number(process.argv[2]);
const port2 = process.argv[3] ? Number(process.argv[3]) : undefined;
const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'switchyard.mjs');
const nats = await startNatsServer();
const children: ChildProcess[] = [];
const env = { ...process.env, SWITCHYARD_SECRET: 'bench-secret-0123456789abcdef' };
// extra node flags for both (e.g. --cpu-prof) from BENCH_CLUSTER_NODE_FLAGS
const flags = (process.env.BENCH_CLUSTER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);

function run(args: string[]): ChildProcess {
  const c = spawn(process.execPath, [...flags, bin, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
  children.push(c);
  c.once('exit', (code, sig) => {
    if (!stopping) {
      console.error(`cluster-shape: ${args[0]} exited (${code ?? sig})`);
      stop(1);
    }
  });
  return c;
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  await nats.stop();
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

run(['worker', '--nats', nats.url, '--worker-id', 'bench-w1']);
run(['gateway', '--nats', nats.url, '--port', String(port), '--host', '127.0.0.1', '--node-id', 'bench-g1', '--ip-open-rate', '0']);
if (port2) run(['gateway', '--nats', nats.url, '--port', String(port2), '--host', '127.0.0.1', '--node-id', 'bench-g2', '--ip-open-rate', '0']);
