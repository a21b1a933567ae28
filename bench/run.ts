/**
 * Switchyard benchmark harness: `npm run bench [-- options]`.
 *
 * Every transport and dialect of the gateway against its reference server, in one interleaved run:
 * for each repetition, each server in turn is started fresh, all its cells run (echo at 1, 16 and
 * 64 in flight, open rate, fan-out), and it is stopped; then each idle-memory cell runs on a fresh
 * process. Repetitions go round-robin over the servers (A B C A B C …), so drift on a shared
 * machine lands in the spread of every row, not in the ratios. Servers run pinned to CPU 0, the
 * native load generator (bench/loadgen.c) to CPU 1.
 *
 * Writes bench/results/<ISO time>.json and latest.json (every raw repetition), bench/results/latest.md,
 * the chart bench/results/latest.svg, and with --write-readme (automatic for a full run) the
 * README's performance section, docs/bench.svg and docs/capacity.md. See bench/README.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as loadgen from './lib/loadgen.ts';
import { installCleanup, killAllChildren, perCpuTicks, processTree, rssBytes, treeCpuByPid, treeCpuTicks, cpuByKindDelta } from './lib/processes.ts';
import { CONFIGS, SERVER_IDS, SERVER_LABELS, fetchJson, serverSpecs, startServer, type Config, type ConfigId, type RunningServer } from './lib/servers.ts';
import { placementReport, printPlacement } from './placement.ts';
import { capacityMarkdown, markdownReport, readmeSection, summarize, svgChart, targets, type Cell, type Run, type Sample } from './lib/report.ts';
import { loadEngine } from '../gateway/uws.ts';

const { BENCH_DIR, ensureLoadgen, holdIdle } = loadgen;
const ROOT = join(BENCH_DIR, '..');

// ------------------------------------------------------------------ the generator's API

/** The generator's result with the fields of its current API (older builds leave them out). */
export type GenResult = Omit<loadgen.LoadgenResult, 'acks' | 'bad_payload' | 'hist'> & {
  acks?: boolean;
  bad_payload?: number;
  hist?: [number, number][];
  opens?: number;
  opens_per_s?: number;
  broadcasts?: number;
  deliveries?: number;
  deliveries_per_s?: number;
};
type Hook = () => void;
interface GenApi {
  runEcho(o: object, onMeasure?: Hook, onDone?: Hook): Promise<GenResult>;
  runOpen?(o: object, onMeasure?: Hook, onDone?: Hook): Promise<GenResult>;
  runFanout?(o: object, onMeasure?: Hook, onDone?: Hook): Promise<GenResult>;
}
const gen = loadgen as unknown as GenApi;

// ------------------------------------------------------------------ options

export interface Options {
  only: ConfigId[];
  conns: number;
  inflights: number[];
  payload: number;
  duration: number;
  warmup: number;
  openDuration: number;
  serverWarmup: number;
  idle: number;
  idleWarm: number;
  steady: number;
  members: number;
  repeat: number;
  memRepeat: number;
  noise: number;
  pin: boolean;
  nice: boolean;
  quick: boolean;
  writeReadme: boolean;
}

const HELP = `usage: npm run bench -- [options]      (each option also as env BENCH_<NAME>, e.g. BENCH_QUICK=1)
  --quick            short run (< 2 min): 1 repetition, 2 s windows, echo at 16 in flight for every
                     row plus 1 and 64 for bare uWS and the gateway, open rate and fan-out for bare uWS
                     and the gateway's native WebSocket, memory (10,000 idle sessions) for the
                     gateway's native WebSocket only; fan-out over two gateways (row cluster-2gw)
  --only=LIST        comma-separated rows (${CONFIGS.map((c) => c.id).join(',')})
                     or server names (${SERVER_IDS.join(',')})
  --repeat=N         repetitions, round-robin over the servers (3; quick 1)
  --mem-repeat=N     repetitions of the idle-memory cells (1)
  --noise=PCT        a row whose repetitions spread (max-min)/median more than this is noisy (15)
  --conns=N          connections for echo (100)
  --inflight=LIST    messages in flight per connection (1,16,64)
  --payload=B        payload string length in bytes (32)
  --duration=S       measured seconds per echo cell (3; quick 2)
  --warmup=S         unmeasured seconds before each (1; quick 0.5)
  --idle=N           idle sessions for the memory cells (10000)
  --steady=S         seconds idle before the steady-state memory sample (8)
  --members=N        room members for fan-out (1000)
  --write-readme     write the README performance section, docs/bench.svg and docs/capacity.md
                     (automatic for a full run of every row)
  --no-pin           do not pin servers/generator to CPUs with taskset
  --no-nice          do not raise their priority (nice -10, when allowed)
  BENCH_GATEWAY_CMD  command that starts the gateway, {port} = its port
                     (default: node bin/switchyard.mjs start --port {port})`;

function parseOptions(argv: string[]): Options {
  const raw = new Map<string, string>();
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BENCH_') && k !== 'BENCH_GATEWAY_CMD' && k !== 'BENCH_CLUSTER_NODE_FLAGS' && v !== undefined)
      raw.set(k.slice(6).toLowerCase().replaceAll('_', '-'), v);
  }
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      console.log(HELP);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg}\n${HELP}`);
    raw.set(m[1]!, m[2] ?? 'true');
  }
  const known = new Set([
    'quick',
    'only',
    'repeat',
    'mem-repeat',
    'noise',
    'conns',
    'inflight',
    'payload',
    'duration',
    'warmup',
    'idle',
    'steady',
    'members',
    'write-readme',
    'no-pin',
    'no-nice',
  ]);
  for (const k of raw.keys()) if (!known.has(k)) throw new Error(`unknown option --${k}\n${HELP}`);
  const flag = (name: string) => ['1', 'true', 'yes'].includes(raw.get(name) ?? '');
  const num = (name: string, def: number) => {
    const v = raw.get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const quick = flag('quick');
  const only = new Set<ConfigId>();
  for (const name of (raw.get('only') ?? CONFIGS.map((c) => c.id).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const byServer = CONFIGS.filter((c) => c.server === name);
    if (byServer.length && !CONFIGS.some((c) => c.id === name)) for (const c of byServer) only.add(c.id);
    else if (CONFIGS.some((c) => c.id === name)) only.add(name as ConfigId);
    else throw new Error(`--only: unknown row or server "${name}"`);
  }
  const inflights = (raw.get('inflight') ?? '1,16,64')
    .split(',')
    .map((s) => Math.max(1, Math.round(Number(s))))
    .filter(Number.isFinite);
  return {
    only: CONFIGS.map((c) => c.id).filter((id) => only.has(id)),
    conns: Math.max(1, Math.round(num('conns', 100))),
    inflights,
    payload: Math.round(num('payload', 32)),
    duration: num('duration', quick ? 2 : 3),
    warmup: num('warmup', quick ? 0.5 : 1),
    openDuration: quick ? 1.5 : 2,
    serverWarmup: quick ? 1 : 2,
    idle: Math.max(1, Math.round(num('idle', 10000))),
    idleWarm: 500,
    steady: num('steady', 8),
    members: Math.max(2, Math.round(num('members', 1000))),
    repeat: Math.max(1, Math.round(num('repeat', quick ? 1 : 3))),
    memRepeat: Math.max(0, Math.round(num('mem-repeat', 1))),
    noise: num('noise', 15) / 100,
    pin: !flag('no-pin'),
    nice: !flag('no-nice'),
    quick,
    writeReadme: flag('write-readme'),
  };
}

/** The cells of one row, in the order they run on the row's server. */
function cellsFor(c: Config, o: Options): Cell[] {
  const cells: Cell[] = [];
  if (c.fanoutOnly) return [{ key: `fanout:${c.id}`, kind: 'fanout', config: c.id, samples: [], errors: [] }];
  // quick: 16 in flight everywhere; 1 and 64 only where a target needs them
  const inflights = o.quick ? o.inflights.filter((k) => k === 16 || ['bare', 'gw'].includes(c.id)) : o.inflights;
  for (const k of inflights) cells.push({ key: `echo:${c.id}:${k}`, kind: 'echo', config: c.id, inflight: k, samples: [], errors: [] });
  if (c.perTransport && (!o.quick || ['bare', 'gw'].includes(c.id))) cells.push({ key: `open:${c.id}`, kind: 'open', config: c.id, samples: [], errors: [] });
  if (c.id === 'bare' || c.id === 'gw') cells.push({ key: `fanout:${c.id}`, kind: 'fanout', config: c.id, samples: [], errors: [] });
  return cells;
}

function memoryCellFor(c: Config, o: Options): Cell | undefined {
  if (!c.perTransport || o.memRepeat === 0) return undefined;
  // quick: the gateway's native WebSocket only (its target is absolute; bare uWS reads ~170 B)
  if (o.quick && c.id !== 'gw') return undefined;
  return { key: `memory:${c.id}`, kind: 'memory', config: c.id, samples: [], errors: [] };
}

// ------------------------------------------------------------------ measurements

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const fmtInt = (n: number) => (Math.round(n) || 0).toLocaleString('en-US');

/** names a process of the cluster shape (or any server tree) from its command line */
function processKind(cmd: string): string | undefined {
  if (/nats-server/.test(cmd)) return 'nats-server';
  if (/switchyard\.mjs (worker)\b/.test(cmd)) return 'worker';
  if (/switchyard\.mjs (gateway|start)\b/.test(cmd)) return 'gateway';
  if (/esbuild/.test(cmd)) return undefined;
  return 'other';
}

interface CpuSnapshot {
  at: bigint;
  server: number;
  byPid: ReturnType<typeof treeCpuByPid>;
  cpus: { busy: number; total: number }[];
}

function cpuSnapshot(serverPid: number): CpuSnapshot {
  return { at: process.hrtime.bigint(), server: treeCpuTicks(serverPid), byPid: treeCpuByPid(serverPid, processKind), cpus: perCpuTicks() };
}

/** Server CPU over the window (total and per process kind), and how busy each pinned CPU was. */
function cpuWindow(a: CpuSnapshot, b: CpuSnapshot) {
  const wall = Number(b.at - a.at) / 1e9;
  const busy = (i: number) => {
    const x = a.cpus[i],
      y = b.cpus[i];
    if (!x || !y || y.total === x.total) return undefined;
    return round((100 * (y.busy - x.busy)) / (y.total - x.total));
  };
  const byKind = cpuByKindDelta(a.byPid, b.byPid);
  const cpu_s_by_kind: Record<string, number> = {};
  for (const [k, t] of Object.entries(byKind)) cpu_s_by_kind[k] = t / CLK_TCK;
  return {
    window_s: round(wall, 3),
    server_cpu_pct: round((100 * (b.server - a.server)) / CLK_TCK / wall),
    cpu_s_by_kind,
    cpu0_busy_pct: busy(0),
    cpu1_busy_pct: busy(1),
  };
}

/**
 * Runs one generator job, sampling the server's CPU exactly between the generator's onMeasure
 * (the window opens) and onDone (it closes, before the generator tears its connections down).
 */
async function sampled(server: RunningServer, job: (onMeasure: Hook, onDone: Hook) => Promise<GenResult>) {
  let start: CpuSnapshot | undefined;
  let end: CpuSnapshot | undefined;
  const result = await job(
    () => (start = cpuSnapshot(server.proc.pid)),
    () => (end ??= cpuSnapshot(server.proc.pid)),
  );
  // a generator without onDone: the window ends when it exits (teardown included; noted)
  const doneHook = end !== undefined;
  end ??= cpuSnapshot(server.proc.pid);
  return { result, cpu: start ? { ...cpuWindow(start, end), window_ends_at_done: doneHook } : undefined };
}

function echoSample(rep: number, result: GenResult, cpu: ReturnType<typeof cpuWindow> | undefined, perUnit: number | undefined): Sample {
  const s: Sample = {
    rep,
    value: result.msgs_per_s ?? 0,
    p50_us: result.lat_us?.p50,
    p99_us: result.lat_us?.p99,
    p999_us: result.lat_us?.p999,
    gen_cpu_pct: result.cpu_pct,
    ...cpu,
    generator: result,
  };
  if (cpu && perUnit) {
    s.cpu_us_per_unit = {};
    for (const [k, sec] of Object.entries(cpu.cpu_s_by_kind)) s.cpu_us_per_unit[k] = round((sec * 1e6) / perUnit, 2);
  }
  return s;
}

async function runEchoCell(server: RunningServer, c: Config, cell: Cell, o: Options, genPin: string[], rep: number): Promise<Sample> {
  const { result, cpu } = await sampled(server, (m, d) =>
    gen.runEcho(
      {
        port: server.port,
        proto: c.proto,
        path: c.path,
        acks: c.acks,
        conns: o.conns,
        inflight: cell.inflight!,
        payload: o.payload,
        duration: o.duration,
        warmup: o.warmup,
        pin: genPin,
      },
      m,
      d,
    ),
  );
  if (!result.msgs) {
    throw new Error(
      `no echoes received (status ${result.status}, ready ${result.ready}/${result.conns}, other frames ${result.other_frames}, bad payload ${result.bad_payload ?? '?'})`,
    );
  }
  return echoSample(rep, result, cpu, result.msgs);
}

async function runOpenCell(server: RunningServer, c: Config, o: Options, genPin: string[], rep: number): Promise<Sample> {
  if (!gen.runOpen) throw new Error('the load generator has no open-rate mode yet (runOpen)');
  const { result, cpu } = await sampled(server, (m, d) =>
    gen.runOpen!({ port: server.port, proto: c.proto, path: c.path, conns: 50, duration: o.openDuration, warmup: 0.5, pin: genPin }, m, d),
  );
  if (!result.opens) throw new Error(`no sessions opened (status ${result.status}, failed ${result.failed})`);
  const s = echoSample(rep, result, cpu, result.opens);
  s.value = result.opens_per_s ?? 0;
  return s;
}

async function runFanoutCell(server: RunningServer, c: Config, o: Options, genPin: string[], rep: number): Promise<Sample> {
  if (!gen.runFanout) throw new Error('the load generator has no fan-out mode yet (runFanout)');
  const { result, cpu } = await sampled(server, (m, d) =>
    gen.runFanout!(
      {
        port: server.port,
        ports: server.ports,
        proto: c.proto,
        path: c.path,
        conns: o.members,
        inflight: 4,
        payload: o.payload,
        duration: o.duration,
        warmup: o.warmup,
        pin: genPin,
      },
      m,
      d,
    ),
  );
  if (!result.deliveries) throw new Error(`no deliveries (status ${result.status}, ready ${result.ready}/${result.conns})`);
  const s = echoSample(rep, result, cpu, result.deliveries);
  s.value = result.deliveries_per_s ?? 0;
  return s;
}

/** memory from the process itself: RSS of its tree from /proc, V8 heap from /healthz when it reports one */
async function memoryNow(server: RunningServer): Promise<{ rss: number; heap?: number }> {
  const rss = processTree(server.proc.pid).reduce((sum, pid) => sum + rssBytes(pid), 0);
  let heap: number | undefined;
  if (server.spec.health) {
    try {
      const h = (await fetchJson(`http://127.0.0.1:${server.port}/healthz`, 2000)) as { memory?: { heapUsed?: number } };
      heap = h.memory?.heapUsed;
    } catch {
      // no heap figure
    }
  }
  return { rss, heap };
}

/**
 * Idle memory per session on a fresh server: hold a warm-up batch (one-time costs such as code
 * compiled on the first connection land in the baseline), sample, open `o.idle` more sessions
 * (each has had its first server frame), sample at once ("after opens"), sit idle `o.steady`
 * seconds, sample again ("steady"). No GC is forced: the young generation a burst of opens leaves
 * behind is part of what a server holds.
 */
async function runMemoryCell(c: Config, o: Options, serverPin: string[], genPin: string[], rep: number): Promise<{ sample: Sample; engine?: string }> {
  const server = await startServer(serverSpecs(ROOT)[c.server], { root: ROOT, pin: serverPin });
  const holds: Awaited<ReturnType<typeof holdIdle>>[] = [];
  const target = { port: server.port, proto: c.proto as loadgen.LoadProto, path: c.path, pin: genPin };
  // SSE and long-polling sessions take two sockets each in the generator (the stream and the
  // POSTs): half as many fit under the same per-process fd limit
  const asked = c.proto === 'native-sse' || c.proto === 'native-poll' ? Math.floor(o.idle / 2) : o.idle;
  try {
    const warm = await holdIdle({ ...target, conns: o.idleWarm });
    holds.push(warm);
    // the baseline at the same kind of steady state as the last sample: idle as long
    await sleep(o.steady);
    const base = await memoryNow(server);
    const hold = await holdIdle({ ...target, conns: asked }, 90);
    holds.push(hold);
    const after = await memoryNow(server);
    await sleep(o.steady);
    const steady = await memoryNow(server);
    let dropped = 0;
    for (const h of holds.splice(0)) dropped += (await h.release()).closed;
    const n = hold.opened;
    if (!n) throw new Error(`no idle session opened (failed ${hold.failed})`);
    const per = (x?: number, y?: number) => (x === undefined || y === undefined ? undefined : Math.round((x - y) / n));
    return {
      engine: server.engine,
      sample: {
        rep,
        value: per(steady.rss, base.rss)!,
        after_opens_bytes: per(after.rss, base.rss),
        steady_bytes: per(steady.rss, base.rss),
        heap_after_opens_bytes: per(after.heap, base.heap),
        heap_steady_bytes: per(steady.heap, base.heap),
        sessions: n,
        sessions_asked: asked,
        failed: hold.failed,
        connect_s: hold.connectS,
        rss_base: base.rss,
        dropped_while_idle: dropped,
      },
    };
  } finally {
    for (const h of holds) await h.release().catch(() => undefined);
    await server.proc.stop();
  }
}

// ------------------------------------------------------------------ main

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** this process's open-file limit (children inherit it), from /proc/self/limits */
function fdLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function pkgVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function progressLine(cell: Cell, c: Config, s: Sample): string {
  const gb = s.gen_cpu_pct !== undefined && s.gen_cpu_pct >= 90 ? '  [generator-bound]' : '';
  const srv = s.server_cpu_pct !== undefined ? `  srv ${Math.round(s.server_cpu_pct)}%` : '';
  const g = s.gen_cpu_pct !== undefined ? ` gen ${Math.round(s.gen_cpu_pct)}%` : '';
  const bad = s.generator?.bad_payload ? `  BAD PAYLOAD ${s.generator.bad_payload}` : '';
  switch (cell.kind) {
    case 'echo':
      return `   ${c.label.padEnd(28)} echo @${String(cell.inflight).padEnd(3)} ${fmtInt(s.value).padStart(9)} msgs/s  p50 ${s.p50_us ?? '?'}  p99 ${s.p99_us ?? '?'}  p99.9 ${s.p999_us ?? '?'} µs${srv}${g}${bad}${gb}`;
    case 'open':
      return `   ${c.label.padEnd(28)} open rate  ${fmtInt(s.value).padStart(9)} opens/s${srv}${g}${gb}`;
    case 'fanout':
      return `   ${c.label.padEnd(28)} fan-out    ${fmtInt(s.value).padStart(9)} deliveries/s  (${o_members} members)  last-member p99 ${s.p99_us ?? '?'} µs${srv}${g}${gb}`;
    case 'memory':
      return `   ${c.label.padEnd(28)} memory     ${fmtInt(s.after_opens_bytes ?? 0)} B/session after opens, ${fmtInt(s.steady_bytes ?? 0)} B steady  (${fmtInt(s.sessions ?? 0)} sessions${s.failed ? `, ${fmtInt(s.failed)} failed to open` : ''}, opened in ${(s.connect_s ?? 0).toFixed(2)} s${s.dropped_while_idle ? `, ${s.dropped_while_idle} dropped` : ''})`;
  }
}
let o_members = 0;

async function main(): Promise<void> {
  installCleanup();
  const opts = parseOptions(process.argv.slice(2));
  o_members = opts.members;
  ensureLoadgen();
  const t0 = Date.now();

  const cpus = os.availableParallelism();
  const haveTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  const pinning = opts.pin && haveTaskset && cpus >= 2;
  // Raised priority (needs root or CAP_SYS_NICE) so that other work on the machine takes less
  // from the measured processes. (`nice` runs the command even when it may not lower the
  // niceness, so ask what it got.)
  const niceness = opts.nice ? spawnSync('nice', ['-n', '-10', 'nice'], { encoding: 'utf8' }).stdout?.trim() : undefined;
  const boost = niceness === '-10' ? ['nice', '-n', '-10'] : [];
  const serverPin = [...boost, ...(pinning ? ['taskset', '-c', '0'] : [])];
  const genPin = [...boost, ...(pinning ? ['taskset', '-c', '1'] : [])];
  if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const load = os.loadavg()[0]!;
  const cpuModel = os.cpus()[0]?.model ?? '?';
  console.log(
    `Switchyard bench — node ${process.version}, ${cpus} CPUs (${cpuModel}), ` +
      (pinning ? 'servers on CPU 0, generator on CPU 1' : `not pinned (${!opts.pin ? '--no-pin' : !haveTaskset ? 'no taskset' : 'one CPU'})`) +
      (boost.length ? ', at nice -10' : '') +
      `, load average ${load.toFixed(2)}`,
  );
  console.log(
    `${opts.repeat} repetition(s) round-robin over the servers; echo ${opts.conns} connections × ${opts.inflights.join('/')} in flight, ` +
      `${opts.duration} s after ${opts.warmup} s warm-up; memory ${fmtInt(opts.idle)} idle sessions; noise bound ${Math.round(opts.noise * 100)}%`,
  );
  if (load > 1) console.log('warning: the machine is already busy; numbers will be noisy');

  const configs = CONFIGS.filter((c) => opts.only.includes(c.id));
  const cells = new Map<string, Cell>();
  for (const c of configs) for (const cell of cellsFor(c, opts)) cells.set(cell.key, cell);
  for (const c of configs) {
    const m = memoryCellFor(c, opts);
    if (m) cells.set(m.key, m);
  }
  const engines: Record<string, string | undefined> = {};
  const serverErrors: string[] = [];
  const specs = serverSpecs(ROOT);
  const servers = SERVER_IDS.filter((id) => configs.some((c) => c.server === id));

  for (let rep = 1; rep <= opts.repeat; rep++) {
    for (const sid of servers) {
      const rows = configs.filter((c) => c.server === sid);
      console.log(`\n== rep ${rep}/${opts.repeat}: ${SERVER_LABELS[sid]}  (${Math.round((Date.now() - t0) / 1000)} s)`);
      if (!specs[sid].command) {
        console.log(`   skipped: ${specs[sid].unavailable}`);
        continue;
      }
      let server: RunningServer;
      try {
        server = await startServer(specs[sid], { root: ROOT, pin: serverPin });
      } catch (err) {
        const msg = `${SERVER_LABELS[sid]}: start failed: ${(err as Error).message.split('\n')[0]}`;
        serverErrors.push(msg);
        console.log(`   ${msg}`);
        continue;
      }
      engines[sid] = server.engine;
      if (rep === 1) console.log(`   engine: ${server.engine ?? 'n/a'}`);
      try {
        // a fresh process's first seconds are JIT warm-up: an unrecorded echo run before the first cell
        const first = rows[0]!;
        await gen
          .runEcho({
            port: server.port,
            ports: server.ports,
            proto: first.proto,
            path: first.path,
            acks: first.acks,
            conns: opts.conns,
            inflight: 16,
            payload: opts.payload,
            duration: opts.serverWarmup,
            warmup: 0,
            pin: genPin,
          })
          .catch(() => undefined);
        for (const c of rows) {
          for (const cell of cellsFor(c, opts)) {
            const target = cells.get(cell.key)!;
            if (!server.proc.alive) {
              target.errors.push(`rep ${rep}: server died before this cell`);
              continue;
            }
            try {
              const once = () =>
                cell.kind === 'echo'
                  ? runEchoCell(server, c, cell, opts, genPin, rep)
                  : cell.kind === 'open'
                    ? runOpenCell(server, c, opts, genPin, rep)
                    : runFanoutCell(server, c, opts, genPin, rep);
              // a generator that could not start at all (no result line: e.g. its binary was being
              // rebuilt) is tried once more; a generator that ran and failed is not
              const s = await once().catch(async (err: Error) => {
                if (!/no result line/.test(err.message) || !server.proc.alive) throw err;
                console.log(`   (${err.message.split('\n')[0]}: trying once more)`);
                await sleep(2);
                return once();
              });
              target.samples.push(s);
              console.log(progressLine(cell, c, s));
            } catch (err) {
              const msg = (err as Error).message.split('\n')[0]!;
              target.errors.push(`rep ${rep}: ${msg}`);
              console.log(`   ${c.label.padEnd(28)} ${cell.kind}${cell.inflight ? ` @${cell.inflight}` : ''}: FAILED — ${msg}`);
            }
          }
        }
      } finally {
        await server.proc.stop();
      }
    }
    if (rep <= opts.memRepeat) {
      for (const c of configs) {
        const cell = cells.get(`memory:${c.id}`);
        if (!cell) continue;
        console.log(`\n== rep ${rep}: idle memory, ${c.label}  (${Math.round((Date.now() - t0) / 1000)} s)`);
        try {
          const { sample, engine } = await runMemoryCell(c, opts, serverPin, genPin, rep);
          engines[c.server] ??= engine;
          cell.samples.push(sample);
          console.log(progressLine(cell, c, sample));
        } catch (err) {
          const msg = (err as Error).message.split('\n')[0]!;
          cell.errors.push(`rep ${rep}: ${msg}`);
          console.log(`   memory: FAILED — ${msg}`);
        }
      }
    }
  }

  const durationS = Math.round((Date.now() - t0) / 1000);
  const started = new Date(t0);
  const run: Run = {
    date: started.toISOString(),
    duration_s: durationS,
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    machine: { hostname: os.hostname(), cpus, cpu_model: cpuModel, kernel: os.release(), memory_gb: round(os.totalmem() / 2 ** 30), fd_limit: fdLimit() },
    node: process.version,
    uws: loadEngine().spec,
    versions: { ws: pkgVersion('ws'), 'socket.io': pkgVersion('socket.io'), sockjs: pkgVersion('sockjs'), 'hdr-histogram-js': pkgVersion('hdr-histogram-js') },
    engines,
    pinned: pinning,
    niced: boost.length > 0,
    load_average_at_start: load,
    options: opts,
    cells: [...cells.values()],
    errors: serverErrors,
  };
  summarize(run);
  const md = markdownReport(run);
  console.log(`\n${md}`);
  const placement = placementReport();
  printPlacement(placement);

  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify({ ...run, targets: targets(run), placement }, null, 2) + '\n';
  const stamp = run.date.replaceAll(':', '-');
  writeFileSync(join(dir, `${stamp}.json`), json);
  writeFileSync(join(dir, 'latest.json'), json);
  writeFileSync(join(dir, 'latest.md'), md);
  const svg = svgChart(run);
  writeFileSync(join(dir, 'latest.svg'), svg);
  console.log(`wrote bench/results/${stamp}.json, latest.json, latest.md, latest.svg  (run took ${Math.floor(durationS / 60)} min ${durationS % 60} s)`);

  const full = !opts.quick && opts.only.length === CONFIGS.length;
  if (opts.writeReadme || full) {
    writeFileSync(join(ROOT, 'docs', 'bench.svg'), svg);
    const readmePath = join(ROOT, 'README.md');
    const readme = readFileSync(readmePath, 'utf8');
    const START = '<!-- bench:start -->',
      END = '<!-- bench:end -->';
    const i = readme.indexOf(START),
      j = readme.indexOf(END);
    if (i < 0 || j < i) console.log(`README.md has no ${START} … ${END} markers: section not written`);
    else writeFileSync(readmePath, readme.slice(0, i + START.length) + '\n' + readmeSection(run) + readme.slice(j));
    writeFileSync(join(ROOT, 'docs', 'capacity.md'), capacityMarkdown(run));
    console.log('wrote the README.md performance section, docs/bench.svg and docs/capacity.md from this run');
  }
}

main()
  .then(() => {
    killAllChildren();
    process.exit(0);
  })
  .catch((err: Error) => {
    console.error(`bench: ${err.stack ?? err.message}`);
    killAllChildren();
    process.exit(1);
  });
