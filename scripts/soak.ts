/**
 * `npm run soak [-- options]`: the long soak of test/soak-kit.ts, on one node (`switchyard start`)
 * and on the cluster shape (nats-server, a worker, two gateways: bench/cluster-shape.ts), each in
 * its own processes. Prints each run's figures as JSON; exits 1 when anything was lost.
 *   --seconds=N (300)  --sessions=N (2000)  --room-size=N (10)  --every-ms=N (200)
 *   --drop-every-ms=N (50)  --shape=one|cluster|both (both)
 * The gateways run with --ip-open-rate 0: every client comes from 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { soak, type SoakResult } from '../test/soak-kit.ts';
import { freePort } from '../test/nats-server.ts';
import { processTree } from '../bench/lib/processes.ts';

const root = join(import.meta.dirname, '..');
const arg = (name: string, def: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? def : Number(a.split('=')[1]);
};
const shapeArg = process.argv.find((x) => x.startsWith('--shape='))?.split('=')[1] ?? 'both';
const opts = {
  seconds: arg('seconds', 300),
  sessions: arg('sessions', 2000),
  roomSize: arg('room-size', 10),
  everyMs: arg('every-ms', 200),
  dropEveryMs: arg('drop-every-ms', 50),
};

async function healthy(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function run(shape: 'one' | 'cluster'): Promise<SoakResult> {
  let child: ChildProcess;
  let urls: string[];
  if (shape === 'one') {
    const port = await freePort();
    child = spawn(process.execPath, [join(root, 'bin', 'switchyard.mjs'), 'start', '--port', String(port), '--host', '127.0.0.1', '--ip-open-rate', '0'], {
      stdio: 'inherit',
    });
    urls = [`http://127.0.0.1:${port}`];
  } else {
    const [p1, p2] = [await freePort(), await freePort()];
    child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'cluster-shape.ts'), String(p1), String(p2)], { stdio: 'inherit' });
    urls = [`http://127.0.0.1:${p1}`, `http://127.0.0.1:${p2}`];
  }
  try {
    for (const u of urls) await healthy(u);
    // the gateways' (and in the cluster the worker's and nats-server's) processes
    const pids = shape === 'one' ? [child.pid!] : processTree(child.pid!);
    return await soak({ ...opts, urls, pids, log: (l) => console.log(`[${shape}] ${l}`) });
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

let failed = false;
for (const shape of shapeArg === 'both' ? (['one', 'cluster'] as const) : [shapeArg as 'one' | 'cluster']) {
  const r = await run(shape);
  console.log(`[${shape}] ${JSON.stringify(r)}`);
  console.log(
    `[${shape}] ${r.sessions} sessions, ${r.seconds} s: ${r.requests} requests (${r.unanswered} unanswered, ${r.wrongAnswers} wrong), ${r.says} room messages → ${r.deliveries} of ${r.expectedDeliveries} deliveries (missing ${r.missing}, duplicates ${r.duplicates}, out of order ${r.outOfOrder}), ${r.drops} drops, ${r.lostSessions} sessions lost; RSS ${Math.round(r.rssStartBytes / 1e6)} → ${Math.round(r.rssEndBytes / 1e6)} MB`,
  );
  if (r.missing || r.duplicates || r.outOfOrder || r.lostSessions || r.wrongAnswers) failed = true;
}
process.exit(failed ? 1 : 0);
