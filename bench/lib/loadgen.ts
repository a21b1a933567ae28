/**
 * Building and driving the native load generator (bench/loadgen.c).
 */
import { execFileSync } from 'node:child_process';
import * as hdr from 'hdr-histogram-js';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './processes.ts';

/** the protocols the load generator speaks */
export type LoadProto = 'native' | 'native-sse' | 'native-poll' | 'sockjs' | 'socketio' | 'signalr-json' | 'signalr-msgpack';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(BENCH_DIR, 'loadgen.c');
const BINARY = join(BENCH_DIR, '.build', 'loadgen');

/** Compiles the generator when the binary is missing or older than its source. */
export function ensureLoadgen(): string {
  const stale = !existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SOURCE).mtimeMs;
  if (stale) {
    mkdirSync(dirname(BINARY), { recursive: true });
    const cc = process.env.CC ?? 'cc';
    process.stderr.write(`bench: compiling ${SOURCE} with ${cc} -O2\n`);
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE, '-lm'], { stdio: 'inherit' });
  }
  return BINARY;
}

export interface LatencyUs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** sparse latency histogram: [µs, count] pairs, ascending */
export type HistPairs = [valueUs: number, count: number][];

/** The generator's final JSON line (see print_result in loadgen.c). */
export interface LoadgenResult {
  status: string;
  mode: 'echo' | 'idle' | 'open' | 'fanout';
  proto: LoadProto;
  conns: number;
  ready: number;
  failed: number;
  closed: number;
  inflight: number;
  payload: number;
  /** echo: each message asked for an ack and the reply was its echo */
  acks: boolean;
  connect_s: number;
  /** the measured window (echo, open, fanout) */
  duration_s?: number;
  msgs?: number;
  msgs_per_s?: number;
  /** echo: round trip; open: connect → first server frame; fanout: send → last member's receipt */
  lat_us?: LatencyUs;
  /** the same latencies, for histogramFrom() (echo, open, fanout) */
  hist: HistPairs;
  /** answers whose payload (or ack id) was not the message's: kept out of msgs and latency */
  bad_payload: number;
  /** open mode */
  opens?: number;
  opens_per_s?: number;
  /** fanout mode: room members, completed broadcasts, deliveries in the window */
  members?: number;
  broadcasts?: number;
  deliveries?: number;
  deliveries_per_s?: number;
  held_s?: number;
  cpu_pct: number;
  pings: number;
  other_frames: number;
  unmatched: number;
  protocol_errors: number;
}

export interface LoadgenOptions {
  port: number;
  /** several servers: connection i talks to ports[i % n] (fan-out over two gateways); overrides `port` */
  ports?: number[];
  proto: LoadProto;
  path?: string;
  conns: number;
  /** echo: ask for an ack on each message (native: `ack` in the frame, answered by a `reply`;
   *  Socket.IO: `42<id>[…]` answered by `43<id>[…]`) */
  acks?: boolean;
  /** `taskset` prefix, empty when not pinning. */
  pin: string[];
}

/** An HDR histogram (3 significant digits, µs) from the generator's sparse pairs. Record more
 *  repetitions into the same one with `addPairs`. */
export function histogramFrom(pairs: HistPairs): hdr.Histogram {
  const h = hdr.build({ bitBucketSize: 64, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  addPairs(h, pairs);
  return h;
}

export function addPairs(h: hdr.Histogram, pairs: HistPairs): void {
  for (const [v, n] of pairs) h.recordValueWithCount(Math.max(0, Math.round(v)), n);
}

/** p50/p90/p99/p99.9/max/mean in µs from an HDR histogram */
export function latencyFrom(h: hdr.Histogram): LatencyUs {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean * 10) / 10,
  };
}

function baseArgs(o: LoadgenOptions): string[] {
  const args = ['--port', String(o.port), '--proto', o.proto, '--conns', String(o.conns)];
  if (o.ports?.length) args.push('--ports', o.ports.join(','));
  if (o.path) args.push('--path', o.path);
  if (o.acks) args.push('--acks');
  return args;
}

function spawnLoadgen(name: string, o: LoadgenOptions, extra: string[], stdin: boolean): ManagedProcess {
  const bin = ensureLoadgen();
  const argv = [...o.pin, bin, ...baseArgs(o), ...extra];
  return new ManagedProcess(name, argv[0]!, argv.slice(1), { stdin, echoStderr: true });
}

function parseFinal(p: ManagedProcess): LoadgenResult {
  for (let i = p.stdoutLines.length - 1; i >= 0; i--) {
    const line = p.stdoutLines[i]!;
    if (line.startsWith('{"status"')) {
      const r = JSON.parse(line) as LoadgenResult;
      r.hist ??= [];
      // the percentiles from an HDR histogram of the window (the generator's own are the same
      // data, read from its log-linear buckets)
      if (r.mode !== 'idle') r.lat_us = latencyFrom(histogramFrom(r.hist));
      return r;
    }
  }
  throw new Error(`${p.name}: no result line (exit ${p.exitCode})\n${p.tail()}`);
}

/** Runs one timed generator (echo, open, fanout) to its end, with the window marks. */
async function runTimed(name: string, o: LoadgenOptions, extra: string[], limitS: number, onMeasure?: () => void, onDone?: () => void): Promise<LoadgenResult> {
  const p = spawnLoadgen(name, o, [...extra, '--connect-timeout', '30'], false);
  p.onLine((line) => {
    if (line.startsWith('{"phase":"measure"')) onMeasure?.();
    else if (line.startsWith('{"phase":"done"')) onDone?.();
  });
  const guard = setTimeout(() => void p.stop(), (limitS + 30 + 15) * 1000);
  await p.exited;
  clearTimeout(guard);
  return parseFinal(p);
}

/**
 * Echo run. `onMeasure` fires when the measured window opens and `onDone` the moment it closes
 * (before the generator tears its connections down), so the caller can sample the server's CPU
 * over exactly the window; the returned promise resolves when the generator has exited.
 */
export async function runEcho(
  o: LoadgenOptions & { inflight: number; payload: number; duration: number; warmup: number },
  onMeasure?: () => void,
  onDone?: () => void,
): Promise<LoadgenResult> {
  return runTimed(
    'loadgen',
    o,
    ['--mode', 'echo', '--inflight', String(o.inflight), '--payload', String(o.payload), '--duration', String(o.duration), '--warmup', String(o.warmup)],
    o.duration + o.warmup,
    onMeasure,
    onDone,
  );
}

/**
 * Open-rate run: `conns` slots, each repeatedly connecting, waiting for the first server frame of
 * the protocol (native `open`, Socket.IO's `40` answer, SockJS `o`, SignalR's handshake answer)
 * and dropping the connection. Result: `opens`, `opens_per_s`, `hist` of connect → first frame.
 */
export async function runOpen(o: LoadgenOptions & { duration: number; warmup: number }, onMeasure?: () => void, onDone?: () => void): Promise<LoadgenResult> {
  return runTimed(
    'loadgen-open',
    o,
    ['--mode', 'open', '--duration', String(o.duration), '--warmup', String(o.warmup)],
    o.duration + o.warmup,
    onMeasure,
    onDone,
  );
}

/**
 * Fan-out run: `conns` native connections join room `bench`; connection 0 broadcasts `say`
 * keeping `inflight` broadcasts outstanding. Result: `broadcasts`, `deliveries`,
 * `deliveries_per_s`, `hist` of send → the last member's receipt. The window is `duration`
 * seconds (default 5) or `broadcasts` completed broadcasts, whichever comes first.
 */
export async function runFanout(
  o: LoadgenOptions & { broadcasts?: number; inflight: number; payload: number; duration?: number; warmup?: number },
  onMeasure?: () => void,
  onDone?: () => void,
): Promise<LoadgenResult> {
  const duration = o.duration ?? (o.broadcasts ? 600 : 5);
  const warmup = o.warmup ?? 1;
  const extra = [
    '--mode',
    'fanout',
    '--inflight',
    String(o.inflight),
    '--payload',
    String(o.payload),
    '--duration',
    String(duration),
    '--warmup',
    String(warmup),
  ];
  if (o.broadcasts) extra.push('--broadcasts', String(o.broadcasts));
  return runTimed('loadgen-fanout', o, extra, duration + warmup, onMeasure, onDone);
}

export interface IdleHold {
  opened: number;
  failed: number;
  connectS: number;
  /** Closes the generator's stdin; it closes its connections and reports. */
  release(): Promise<LoadgenResult>;
}

/** Opens `conns` connections, waits for the first frame on each, and holds them. */
export async function holdIdle(o: LoadgenOptions, connectTimeoutS = 60): Promise<IdleHold> {
  const p = spawnLoadgen('loadgen-idle', o, ['--mode', 'idle', '--connect-timeout', String(connectTimeoutS)], true);
  try {
    const line = await p.waitForLine((l) => l.startsWith('{"ready"'), (connectTimeoutS + 10) * 1000);
    const ready = JSON.parse(line) as { opened: number; failed: number; connect_s: number };
    return {
      opened: ready.opened,
      failed: ready.failed,
      connectS: ready.connect_s,
      async release() {
        p.child.stdin?.end();
        const guard = setTimeout(() => void p.stop(), 15000);
        await p.exited;
        clearTimeout(guard);
        return parseFinal(p);
      },
    };
  } catch (err) {
    await p.stop();
    throw err;
  }
}
