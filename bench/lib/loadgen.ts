/**
 * Building and driving the native load generator (bench/loadgen.c).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './processes.ts';

/** the protocols the load generator speaks */
export type LoadProto = 'native' | 'socketio' | 'signalr-json' | 'signalr-msgpack';

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

/** The generator's final JSON line (see print_result in loadgen.c). */
export interface LoadgenResult {
  status: string;
  mode: 'echo' | 'idle';
  proto: LoadProto;
  conns: number;
  ready: number;
  failed: number;
  closed: number;
  inflight: number;
  payload: number;
  connect_s: number;
  duration_s?: number;
  msgs?: number;
  msgs_per_s?: number;
  lat_us?: LatencyUs;
  held_s?: number;
  cpu_pct: number;
  pings: number;
  other_frames: number;
  unmatched: number;
  protocol_errors: number;
}

export interface LoadgenOptions {
  port: number;
  proto: LoadProto;
  path?: string;
  conns: number;
  /** `taskset` prefix, empty when not pinning. */
  pin: string[];
}

function baseArgs(o: LoadgenOptions): string[] {
  const args = ['--port', String(o.port), '--proto', o.proto, '--conns', String(o.conns)];
  if (o.path) args.push('--path', o.path);
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
    if (line.startsWith('{"status"')) return JSON.parse(line) as LoadgenResult;
  }
  throw new Error(`${p.name}: no result line (exit ${p.exitCode})\n${p.tail()}`);
}

/**
 * Echo run. `onMeasure` fires when the measured window opens so the caller can sample the
 * server's CPU over the same window; the returned promise resolves when the window closes.
 */
export async function runEcho(
  o: LoadgenOptions & { inflight: number; payload: number; duration: number; warmup: number },
  onMeasure?: () => void,
): Promise<LoadgenResult> {
  const p = spawnLoadgen('loadgen', o, [
    '--mode', 'echo',
    '--inflight', String(o.inflight),
    '--payload', String(o.payload),
    '--duration', String(o.duration),
    '--warmup', String(o.warmup),
    '--connect-timeout', '30',
  ], false);
  if (onMeasure) p.onLine((line) => line.startsWith('{"phase":"measure"') && onMeasure());
  const guard = setTimeout(() => void p.stop(), (o.duration + o.warmup + 30 + 15) * 1000);
  await p.exited;
  clearTimeout(guard);
  return parseFinal(p);
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
