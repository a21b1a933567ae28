/**
 * Switchyard benchmark harness: `npm run bench [-- options]`.
 *
 * For each server (bare uWebSockets.js echo, the Switchyard gateway, the gateway's Socket.IO
 * dialect, plain Socket.IO) it measures
 *   1. throughput with many messages in flight per connection,
 *   2. round-trip latency with one message in flight per connection,
 *   3. resident memory per idle WebSocket session,
 * prints a table with ratios against bare uWS and the targets, and writes
 * bench/results/latest.json. Servers run pinned to CPU 0 and the native load generator
 * (bench/loadgen.c) to CPU 1, one measurement at a time. See bench/README.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { collectGarbage, inspectorUrls, type HeapNumbers } from './lib/inspector.ts';
import { BENCH_DIR, ensureLoadgen, holdIdle, runEcho, type LoadgenResult } from './lib/loadgen.ts';
import { installCleanup, killAllChildren, perCpuTicks, treeCpuTicks, treeRssBytes } from './lib/processes.ts';
import { placementReport, printPlacement } from './placement.ts';
import { SERVER_IDS, SERVER_LABELS, serverSpecs, startServer, type RunningServer, type ServerId, type ServerSpec } from './lib/servers.ts';

const ROOT = join(BENCH_DIR, '..');

// ------------------------------------------------------------------ options

interface Options {
  only: ServerId[];
  conns: number;
  inflight: number;
  latConns: number;
  payload: number;
  duration: number;
  warmup: number;
  idle: number;
  idleWarm: number;
  settle: number;
  repeat: number;
  pin: boolean;
  nice: boolean;
  quick: boolean;
}

const HELP = `usage: npm run bench -- [options]      (each option also as env BENCH_<NAME>, e.g. BENCH_QUICK=1)
  --quick            short run: 1 s windows, 1000 idle sessions
  --only=LIST        comma-separated subset of: ${SERVER_IDS.join(',')}
  --conns=N          connections for the throughput test (50)
  --inflight=K       messages in flight per connection for the throughput test (16)
  --lat-conns=N      connections for the latency test, 1 in flight each (1: an unloaded
                     round trip; --lat-conns=50 shows latency near saturation instead)
  --payload=B        payload string length in bytes (32)
  --duration=S       measured seconds per test (5; quick 1)
  --warmup=S         unmeasured seconds before each test (1; quick 0.5)
  --idle=N           idle sessions for the memory test (5000; quick 1000)
  --repeat=N         run throughput and latency N times, keep the median run (1)
  --no-pin           do not pin servers/generator to CPUs with taskset
  --no-nice          do not raise their priority (nice -10, when allowed)
  BENCH_GATEWAY_CMD  command that starts the gateway, {port} = its port
                     (default: node bin/switchyard.mjs start --port {port})`;

function parseOptions(argv: string[]): Options {
  const raw = new Map<string, string>();
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BENCH_') && k !== 'BENCH_GATEWAY_CMD' && v !== undefined) raw.set(k.slice(6).toLowerCase().replaceAll('_', '-'), v);
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
  const flag = (name: string) => ['1', 'true', 'yes'].includes(raw.get(name) ?? '');
  const num = (name: string, def: number) => {
    const v = raw.get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const quick = flag('quick');
  const only = (raw.get('only') ?? SERVER_IDS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of only) if (!SERVER_IDS.includes(id as ServerId)) throw new Error(`--only: unknown server "${id}" (${SERVER_IDS.join(', ')})`);
  const known = new Set(['quick', 'only', 'conns', 'inflight', 'lat-conns', 'payload', 'duration', 'warmup', 'idle', 'repeat', 'no-pin', 'no-nice']);
  for (const k of raw.keys()) if (!known.has(k)) throw new Error(`unknown option --${k}\n${HELP}`);
  const conns = Math.max(1, Math.round(num('conns', 50)));
  return {
    only: SERVER_IDS.filter((id) => only.includes(id)),
    conns,
    inflight: Math.max(1, Math.round(num('inflight', 16))),
    latConns: Math.max(1, Math.round(num('lat-conns', 1))),
    payload: Math.round(num('payload', 32)),
    duration: num('duration', quick ? 1 : 5),
    warmup: num('warmup', quick ? 0.5 : 1),
    idle: Math.max(1, Math.round(num('idle', quick ? 1000 : 5000))),
    idleWarm: quick ? 200 : 500,
    settle: quick ? 0.75 : 1.5,
    repeat: Math.max(1, Math.round(num('repeat', 1))),
    pin: !flag('no-pin'),
    nice: !flag('no-nice'),
    quick,
  };
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

interface CpuSnapshot {
  at: bigint;
  server: number;
  cpus: { busy: number; total: number }[];
}

function cpuSnapshot(serverPid: number): CpuSnapshot {
  return { at: process.hrtime.bigint(), server: treeCpuTicks(serverPid), cpus: perCpuTicks() };
}

/** Server CPU % over the window, and how busy each of the two pinned CPUs was. */
function cpuWindow(a: CpuSnapshot, b: CpuSnapshot) {
  const wall = Number(b.at - a.at) / 1e9;
  const busy = (i: number) => {
    const x = a.cpus[i], y = b.cpus[i];
    if (!x || !y || y.total === x.total) return undefined;
    return round((100 * (y.busy - x.busy)) / (y.total - x.total));
  };
  return { server_cpu_pct: round((100 * (b.server - a.server)) / CLK_TCK / wall), cpu0_busy_pct: busy(0), cpu1_busy_pct: busy(1) };
}

interface EchoMeasurement {
  conns: number;
  inflight: number;
  msgs_per_s: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  gen_cpu_pct: number;
  /** With --repeat: the key number (msgs/s or p99) of every run; the fields are the median run's. */
  repeats?: number[];
  server_cpu_pct?: number;
  cpu0_busy_pct?: number;
  cpu1_busy_pct?: number;
  generator: LoadgenResult;
}

async function measureEcho(server: RunningServer, opts: Options, pin: string[], conns: number, inflight: number): Promise<EchoMeasurement> {
  let start: CpuSnapshot | undefined;
  const result = await runEcho(
    {
      port: server.port,
      proto: server.spec.proto,
      path: server.spec.path,
      conns,
      inflight,
      payload: opts.payload,
      duration: opts.duration,
      warmup: opts.warmup,
      pin,
    },
    () => (start = cpuSnapshot(server.proc.pid)),
  );
  const cpu = start ? cpuWindow(start, cpuSnapshot(server.proc.pid)) : {};
  if (!result.msgs) {
    throw new Error(
      `no echoes received (status ${result.status}, ready ${result.ready}/${result.conns}, other frames ${result.other_frames}) — ` +
        'does the server answer an "echo" event with an "echo" event?',
    );
  }
  return {
    conns,
    inflight,
    msgs_per_s: Math.round(result.msgs_per_s ?? 0),
    p50_us: result.lat_us?.p50 ?? 0,
    p99_us: result.lat_us?.p99 ?? 0,
    p999_us: result.lat_us?.p999 ?? 0,
    gen_cpu_pct: result.cpu_pct,
    ...cpu,
    generator: result,
  };
}

/**
 * Runs a measurement `times` times and keeps the run with the median `key`, so one disturbed run
 * on a shared machine does not decide the result; all keys are kept for the record.
 */
async function repeated(times: number, run: () => Promise<EchoMeasurement>, key: (m: EchoMeasurement) => number): Promise<EchoMeasurement> {
  const runs: EchoMeasurement[] = [];
  for (let i = 0; i < times; i++) {
    runs.push(await run());
    if (times > 1) process.stdout.write(`   (run ${i + 1}/${times}: ${fmtInt(key(runs.at(-1)!))})\n`);
  }
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return times > 1 ? { ...median, repeats: runs.map(key) } : median;
}

interface MemoryMeasurement {
  sessions: number;
  warm_sessions: number;
  connect_s: number;
  gc: 'forced' | 'unavailable';
  rss_base: number;
  rss_samples: number[];
  bytes_per_session: number;
  heap_bytes_per_session?: number;
  external_bytes_per_session?: number;
  dropped_while_idle: number;
}

/**
 * Marginal memory per idle session on a fresh server process: hold a small warm-up batch (so
 * one-time costs such as code compiled on the first connection land in the baseline), take the
 * baseline, open `opts.idle` more sessions, and divide the growth by their number.
 */
async function measureMemory(spec: ServerSpec, opts: Options, serverPin: string[], genPin: string[]): Promise<MemoryMeasurement> {
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() };
  const server = await startServer(spec, { root: ROOT, pin: serverPin, env });
  const holds: Awaited<ReturnType<typeof holdIdle>>[] = [];
  try {
    const gen = { port: server.port, proto: spec.proto, path: spec.path, pin: genPin };
    const warm = await holdIdle({ ...gen, conns: opts.idleWarm });
    holds.push(warm);
    await sleep(opts.settle);

    const urls = inspectorUrls(server.proc.stderrLines);
    const settled = async (): Promise<{ rss: number; heap?: HeapNumbers }> => {
      let heap: HeapNumbers | undefined;
      if (urls.length) {
        try {
          heap = await collectGarbage(urls);
        } catch (err) {
          process.stderr.write(`  (could not force GC: ${(err as Error).message})\n`);
        }
      }
      await sleep(0.2);
      return { rss: treeRssBytes(server.proc.pid), heap };
    };

    const base = await settled();
    const hold = await holdIdle({ ...gen, conns: opts.idle });
    holds.push(hold);
    if (hold.opened < opts.idle) process.stderr.write(`  only ${hold.opened} of ${opts.idle} idle sessions opened\n`);
    await sleep(opts.settle);
    const first = await settled();
    await sleep(opts.settle);
    const second = await settled();

    let dropped = 0;
    for (const h of holds.splice(0)) dropped += (await h.release()).closed;
    const n = hold.opened;
    const per = (after: number | undefined, before: number | undefined) =>
      after === undefined || before === undefined ? undefined : Math.round((after - before) / n);
    return {
      sessions: n,
      warm_sessions: warm.opened,
      connect_s: hold.connectS,
      gc: urls.length && second.heap ? 'forced' : 'unavailable',
      rss_base: base.rss,
      rss_samples: [first.rss, second.rss],
      // The later sample: by then lazily committed memory has been touched and freed pages returned.
      bytes_per_session: Math.round((second.rss - base.rss) / n),
      heap_bytes_per_session: per(second.heap?.heapUsed, base.heap?.heapUsed),
      external_bytes_per_session: per(second.heap?.external, base.heap?.external),
      dropped_while_idle: dropped,
    };
  } finally {
    for (const h of holds) await h.release().catch(() => undefined);
    await server.proc.stop();
  }
}

interface ServerResult {
  id: ServerId;
  label: string;
  engine?: string;
  skipped?: string;
  errors: string[];
  warnings: string[];
  throughput?: EchoMeasurement;
  latency?: EchoMeasurement;
  memory?: MemoryMeasurement;
}

async function benchServer(spec: ServerSpec, opts: Options, serverPin: string[], genPin: string[]): Promise<ServerResult> {
  const out: ServerResult = { id: spec.id, label: SERVER_LABELS[spec.id], errors: [], warnings: [] };
  if (!spec.command) {
    out.skipped = spec.unavailable;
    console.log(`\n== ${out.label}: skipped (${spec.unavailable})`);
    return out;
  }
  console.log(`\n== ${out.label}`);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const msg = `${name}: ${(err as Error).message}`;
      out.errors.push(msg);
      console.log(`   ${name}: FAILED — ${msg.split('\n')[0]}`);
      if (msg.includes('\n')) console.log(msg.split('\n').slice(1).join('\n'));
      return undefined;
    }
  };

  const server = await step('start', () => startServer(spec, { root: ROOT, pin: serverPin }));
  if (server) {
    out.engine = server.engine;
    console.log(`   engine: ${server.engine ?? 'n/a'}   (port ${server.port}, pid ${server.proc.pid})`);
    out.throughput = await step('throughput', () =>
      repeated(opts.repeat, () => measureEcho(server, opts, genPin, opts.conns, opts.inflight), (m) => m.msgs_per_s));
    if (out.throughput) {
      const t = out.throughput;
      console.log(`   throughput  ${t.conns}×${t.inflight} in flight: ${fmtInt(t.msgs_per_s)} msgs/s   p50 ${t.p50_us} µs  p99 ${t.p99_us} µs   server CPU ${t.server_cpu_pct}%  generator CPU ${t.gen_cpu_pct}%`);
    }
    if (server.proc.alive) {
      out.latency = await step('latency', () =>
        repeated(opts.repeat, () => measureEcho(server, opts, genPin, opts.latConns, 1), (m) => m.p99_us));
      if (out.latency) {
        const l = out.latency;
        console.log(`   latency     ${l.conns}×1 in flight:  p50 ${l.p50_us} µs  p99 ${l.p99_us} µs  p99.9 ${l.p999_us} µs   (${fmtInt(l.msgs_per_s)} msgs/s, server CPU ${l.server_cpu_pct}%, generator CPU ${l.gen_cpu_pct}%)`);
      }
    }
    await server.proc.stop();
  }
  out.memory = await step('memory', () => measureMemory(spec, opts, serverPin, genPin));
  if (out.memory) {
    const m = out.memory;
    const heap = m.heap_bytes_per_session !== undefined ? `, V8 heap ${fmtInt(m.heap_bytes_per_session)} B` : '';
    console.log(`   memory      ${fmtInt(m.sessions)} idle sessions: ${fmtInt(m.bytes_per_session)} B/session RSS${heap}   (GC ${m.gc}, opened in ${m.connect_s.toFixed(2)} s)`);
  }
  for (const [name, w] of [['throughput', out.throughput], ['latency', out.latency]] as const) {
    if (!w) continue;
    // Anything else busy on the pinned CPUs makes the numbers meaningless; say so.
    if (w.cpu0_busy_pct !== undefined && w.server_cpu_pct !== undefined && w.cpu0_busy_pct - w.server_cpu_pct > 15) {
      const msg = `during ${name}, CPU 0 was ${w.cpu0_busy_pct}% busy but the server used ${w.server_cpu_pct}%: other work was competing for the server's CPU`;
      out.warnings.push(msg);
      console.log(`   warning: ${msg}`);
    }
    if (w.cpu1_busy_pct !== undefined && w.cpu1_busy_pct - w.gen_cpu_pct > 25) {
      const msg = `during ${name}, CPU 1 was ${w.cpu1_busy_pct}% busy but the generator used ${w.gen_cpu_pct}%: other work was competing for the generator's CPU`;
      out.warnings.push(msg);
      console.log(`   warning: ${msg}`);
    }
    if (w.gen_cpu_pct > 90) {
      const msg = `during ${name}, the generator used ${w.gen_cpu_pct}% of its CPU: it may be the bottleneck`;
      out.warnings.push(msg);
      console.log(`   warning: ${msg}`);
    }
    if (w.generator.status !== 'ok') {
      const msg = `during ${name}, the generator reported "${w.generator.status}" (ready ${w.generator.ready}/${w.generator.conns}, closed ${w.generator.closed})`;
      out.warnings.push(msg);
      console.log(`   warning: ${msg}`);
    }
  }
  if (out.memory) {
    const [a, b] = out.memory.rss_samples;
    const drift = Math.round(Math.abs((b ?? 0) - (a ?? 0)) / out.memory.sessions);
    if (drift > 100) {
      const msg = `RSS still moved by ${drift} B/session between the two memory samples: the memory number is uncertain`;
      out.warnings.push(msg);
      console.log(`   warning: ${msg}`);
    }
  }
  if (out.memory?.dropped_while_idle) {
    const msg = `the server closed ${out.memory.dropped_while_idle} idle sessions during the memory test`;
    out.warnings.push(msg);
    console.log(`   warning: ${msg}`);
  }
  return out;
}

// ------------------------------------------------------------------ report

const fmtInt = (n: number) => (Math.round(n) || 0).toLocaleString('en-US'); // `|| 0`: no "-0"

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

interface Target {
  name: string;
  value?: number;
  display: string;
  goal: string;
  pass?: boolean;
}

function targets(results: ServerResult[]): Target[] {
  const by = (id: ServerId) => results.find((r) => r.id === id);
  const bare = by('bare'), gw = by('gateway'), cl = by('cluster');
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
  // Three decimals so that a value just on the wrong side of a limit never prints as the limit.
  const x = (v: number) => `${v.toFixed(3)}×`;
  const tput = ratio(gw?.throughput?.msgs_per_s, bare?.throughput?.msgs_per_s);
  const p99 = ratio(gw?.latency?.p99_us, bare?.latency?.p99_us);
  const mem = gw?.memory?.bytes_per_session;
  const ctput = ratio(cl?.throughput?.msgs_per_s, bare?.throughput?.msgs_per_s);
  const srj = by('gateway-signalr-json'), srm = by('gateway-signalr-msgpack');
  const srjRatio = ratio(srj?.throughput?.msgs_per_s, gw?.throughput?.msgs_per_s);
  const srmRatio = ratio(srm?.throughput?.msgs_per_s, gw?.throughput?.msgs_per_s);
  const srMem = Math.max(srj?.memory?.bytes_per_session ?? -Infinity, srm?.memory?.bytes_per_session ?? -Infinity);
  const sio = by('gateway-sio'), ref = by('socketio');
  const sioTput = ratio(sio?.throughput?.msgs_per_s, ref?.throughput?.msgs_per_s);
  const sioMem = sio?.memory?.bytes_per_session;
  return [
    { name: 'SignalR JSON vs native gateway', value: srjRatio, display: srjRatio === undefined ? 'n/a' : x(srjRatio), goal: '≥ 0.7×', pass: srjRatio === undefined ? undefined : srjRatio >= 0.7 },
    { name: 'SignalR MsgPack vs native gateway', value: srmRatio, display: srmRatio === undefined ? 'n/a' : x(srmRatio), goal: '≥ 0.7×', pass: srmRatio === undefined ? undefined : srmRatio >= 0.7 },
    { name: 'SignalR idle memory per session', value: Number.isFinite(srMem) ? srMem : undefined, display: Number.isFinite(srMem) ? `${fmtInt(srMem)} B` : 'n/a', goal: '≤ 2,048 B', pass: Number.isFinite(srMem) ? srMem <= 2048 : undefined },
    { name: 'Socket.IO dialect vs socket.io', value: sioTput, display: sioTput === undefined ? 'n/a' : x(sioTput), goal: '≥ 4×', pass: sioTput === undefined ? undefined : sioTput >= 4 },
    { name: 'Socket.IO idle memory per session', value: sioMem, display: sioMem === undefined ? 'n/a' : `${fmtInt(sioMem)} B`, goal: '≤ 2,048 B', pass: sioMem === undefined ? undefined : sioMem <= 2048 },
    { name: 'cluster throughput vs bare', value: ctput, display: ctput === undefined ? 'n/a' : x(ctput), goal: '≥ 0.16×', pass: ctput === undefined ? undefined : ctput >= 0.16 },
    { name: 'gateway throughput vs bare', value: tput, display: tput === undefined ? 'n/a' : x(tput), goal: '≥ 0.5×', pass: tput === undefined ? undefined : tput >= 0.5 },
    { name: 'gateway p99 @1 in flight vs bare', value: p99, display: p99 === undefined ? 'n/a' : x(p99), goal: '≤ 1.5×', pass: p99 === undefined ? undefined : p99 <= 1.5 },
    { name: 'gateway idle memory per session', value: mem, display: mem === undefined ? 'n/a' : `${fmtInt(mem)} B`, goal: '≤ 1,536 B', pass: mem === undefined ? undefined : mem <= 1536 },
  ];
}

function printReport(results: ServerResult[], opts: Options): void {
  const cols = [
    ['server', 20, false],
    ['engine', 9, false],
    [`msgs/s @${opts.inflight}`, 12, true],
    ['srv CPU', 8, true],
    ['gen CPU', 8, true],
    ['p50 @1', 9, true],
    ['p99 @1', 9, true],
    ['gen CPU', 8, true],
    ['B/session', 10, true],
    ['heap B/s', 9, true],
  ] as const;
  const line = (cells: string[]) => cols.map(([, w, right], i) => pad(cells[i] ?? '', w, right)).join(' ');
  const pct = (n?: number) => (n === undefined ? '' : `${Math.round(n)}%`);
  const us = (n?: number) => (n === undefined ? '' : `${n.toFixed(1)}µs`);
  const conns = (n: number) => `${n} connection${n === 1 ? '' : 's'}`;
  console.log(`\nResults (throughput: ${conns(opts.conns)} × ${opts.inflight} in flight; latency: ${conns(opts.latConns)} × 1 in flight; ` +
    `${opts.payload}-byte payload; ${opts.duration} s after ${opts.warmup} s warm-up; memory: ${opts.idle} idle sessions)\n`);
  console.log(line(cols.map(([h]) => h)));
  console.log('-'.repeat(line(cols.map(([h]) => h)).length));
  for (const r of results) {
    if (r.skipped) {
      console.log(line([r.label, 'skipped']));
      continue;
    }
    console.log(line([
      r.label,
      r.engine ?? '',
      r.throughput ? fmtInt(r.throughput.msgs_per_s) : 'failed',
      pct(r.throughput?.server_cpu_pct),
      pct(r.throughput?.gen_cpu_pct),
      r.latency ? us(r.latency.p50_us) : 'failed',
      us(r.latency?.p99_us),
      pct(r.latency?.gen_cpu_pct),
      r.memory ? fmtInt(r.memory.bytes_per_session) : 'failed',
      r.memory?.heap_bytes_per_session !== undefined ? fmtInt(r.memory.heap_bytes_per_session) : '',
    ]));
  }

  const bare = results.find((r) => r.id === 'bare');
  const others = results.filter((r) => r.id !== 'bare' && !r.skipped);
  if ((bare?.throughput || bare?.latency || bare?.memory) && others.length) {
    console.log('\nRelative to bare uWS:');
    for (const r of others) {
      const parts: string[] = [];
      if (r.throughput && bare.throughput) parts.push(`throughput ${(r.throughput.msgs_per_s / bare.throughput.msgs_per_s).toFixed(2)}×`);
      if (r.latency && bare.latency) parts.push(`p50 ${(r.latency.p50_us / bare.latency.p50_us).toFixed(2)}×`, `p99 ${(r.latency.p99_us / bare.latency.p99_us).toFixed(2)}×`);
      if (r.memory && bare.memory && bare.memory.bytes_per_session > 0) parts.push(`memory/session ${(r.memory.bytes_per_session / bare.memory.bytes_per_session).toFixed(2)}×`);
      console.log(`  ${pad(r.label, 20)} ${parts.join('   ') || 'n/a'}`);
    }
  }

  console.log('\nTargets:');
  for (const t of targets(results)) {
    const mark = t.pass === undefined ? 'n/a ' : t.pass ? 'PASS' : 'MISS';
    console.log(`  ${mark}  ${pad(t.name, 34)} ${pad(t.display, 10, true)}   (target ${t.goal})`);
  }
  const errors = results.flatMap((r) => r.errors.map((e) => `${r.label}: ${e.split('\n')[0]}`));
  if (errors.length) {
    console.log('\nErrors:');
    for (const e of errors) console.log(`  ${e}`);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  installCleanup();
  const opts = parseOptions(process.argv.slice(2));
  ensureLoadgen();

  const cpus = os.availableParallelism();
  const haveTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  const pinning = opts.pin && haveTaskset && cpus >= 2;
  // Raised priority (needs root or CAP_SYS_NICE) so that a build or test run elsewhere on the
  // machine takes less from the measured processes; it still shows up in the warnings.
  // (`nice` runs the command even when it may not lower the niceness, so ask what it got.)
  const niceness = opts.nice ? spawnSync('nice', ['-n', '-10', 'nice'], { encoding: 'utf8' }).stdout?.trim() : undefined;
  const boost = niceness === '-10' ? ['nice', '-n', '-10'] : [];
  const serverPin = [...boost, ...(pinning ? ['taskset', '-c', '0'] : [])];
  const genPin = [...boost, ...(pinning ? ['taskset', '-c', '1'] : [])];
  if (pinning) {
    // The harness mostly sleeps, but keep even its wake-ups off the server's CPU.
    spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  }
  const load = os.loadavg()[0]!;
  console.log(`Switchyard bench — node ${process.version}, ${cpus} CPUs (${os.cpus()[0]?.model ?? '?'}), ` +
    (pinning ? 'servers on CPU 0, generator on CPU 1' : `not pinned (${!opts.pin ? '--no-pin' : !haveTaskset ? 'no taskset' : 'one CPU'})`) +
    (boost.length ? ', at nice -10' : '') + `, load average ${load.toFixed(2)}`);
  if (load > 0.7) console.log('warning: the machine is already busy; numbers will be noisy');

  const specs = serverSpecs(ROOT);
  const results: ServerResult[] = [];
  for (const id of opts.only) results.push(await benchServer(specs[id], opts, serverPin, genPin));

  printReport(results, opts);
  const placement = placementReport();
  printPlacement(placement);

  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus,
        cpu_model: os.cpus()[0]?.model,
        kernel: os.release(),
        pinned: pinning,
        niced: boost.length > 0,
        load_average_at_start: load,
        options: opts,
        results,
        placement,
        targets: targets(results),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nwrote ${file}`);
}

main()
  .then(() => {
    killAllChildren();
    process.exit(0);
  })
  .catch((err: Error) => {
    console.error(`bench: ${err.message}`);
    killAllChildren();
    process.exit(1);
  });
