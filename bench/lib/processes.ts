/**
 * Child processes for the benchmark harness, and what /proc says about them.
 *
 * Every child is started in its own process group so that stopping it also stops whatever it
 * started (the tsx/esbuild helper, gateway workers). All children are tracked, and the harness
 * kills every group still alive on exit, on SIGINT/SIGTERM and on a crash, so a failed run never
 * leaves a server holding a CPU the next run needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const live = new Set<ManagedProcess>();

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep stdin as a pipe the caller can close (the idle load generator waits on it). */
  stdin?: boolean;
  /** Stderr lines worth surfacing to the user as they arrive. */
  echoStderr?: boolean;
}

interface LineWaiter {
  pred: (line: string) => boolean;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;
  private waiters: LineWaiter[] = [];
  private lineListeners: ((line: string) => void)[] = [];

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: StartOptions = {},
  ) {
    this.child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true, // own process group: see killGroup()
    });
    if (this.child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
    this.pid = this.child.pid;
    live.add(this);

    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.stdoutLines.push(line);
      for (const l of this.lineListeners) l(line);
      for (const w of [...this.waiters]) {
        if (w.pred(line)) {
          clearTimeout(w.timer);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderrLines.push(line);
      if (this.stderrLines.length > 2000) this.stderrLines.splice(0, 1000);
      if (opts.echoStderr) process.stderr.write(`  [${name}] ${line}\n`);
    });

    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : null);
        live.delete(this);
        // Let readline deliver the last lines before anyone waiting learns of the exit.
        setImmediate(() => {
          for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(new Error(`${this.name} exited (${signal ?? code}) before the expected output\n${this.tail()}`));
          }
          resolve(this.exitCode ?? null);
        });
      });
      this.child.on('error', (err) => {
        live.delete(this);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(err);
        }
        resolve(null);
      });
    });
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  onLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  /** Resolves with the first stdout line (already seen or future) matching `pred`. */
  waitForLine(pred: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const seen = this.stdoutLines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${this.name}: no expected output after ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const waiter: LineWaiter = { pred, resolve, reject, timer };
      this.waiters.push(waiter);
    });
  }

  /** The last lines of stderr, for error messages. */
  tail(lines = 15): string {
    return this.stderrLines
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join('\n');
  }

  /** SIGTERM the whole group, then SIGKILL whatever is left after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    killGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // The leader is gone; make sure nothing it started outlives it.
    killGroup(this.pid, 'SIGKILL');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Synchronous, so it also works from the 'exit' handler. */
export function killAllChildren(): void {
  for (const p of live) killGroup(p.pid, 'SIGKILL');
  live.clear();
}

let cleanupInstalled = false;
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllChildren);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping all servers and generators\n`);
      killAllChildren();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    killAllChildren();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
    killAllChildren();
    process.exit(1);
  });
}

// ------------------------------------------------------------------ /proc

function readStat(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name sits in parentheses and may itself contain spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state) of proc(5): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** `root` and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(pid);
    else children.set(st.ppid, [pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Resident set size of one process in bytes (VmRSS), 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function treeRssBytes(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + rssBytes(pid), 0);
}

/** CPU time (user + system, in clock ticks) used so far by `root` and its live descendants. */
export function treeCpuTicks(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0);
}

/** Busy and total ticks per CPU from /proc/stat, to see whether anything else ran meanwhile. */
export function perCpuTicks(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal ...; idle + iowait are the not-busy part.
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out[Number(m[1])] = { busy: total - idle, total };
  }
  return out;
}

/** The command line of a process, arguments joined by spaces ('' if it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/**
 * CPU ticks (user + system) per kind of process in `root`'s tree, from each process's own
 * /proc/<pid>/stat; `kind` names a process from its command line (undefined: not counted).
 * Counters are per pid, so a caller diffs two snapshots pid by pid (a process that started or
 * ended between them counts only for the part both saw).
 */
export function treeCpuByPid(root: number, kind: (cmd: string) => string | undefined): Map<number, { kind: string; ticks: number }> {
  const out = new Map<number, { kind: string; ticks: number }>();
  for (const pid of processTree(root)) {
    const k = kind(cmdline(pid));
    const st = k === undefined ? undefined : readStat(pid);
    if (k !== undefined && st) out.set(pid, { kind: k, ticks: st.ticks });
  }
  return out;
}

/** Per-kind tick growth between two treeCpuByPid snapshots. */
export function cpuByKindDelta(a: Map<number, { kind: string; ticks: number }>, b: Map<number, { kind: string; ticks: number }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, y] of b) {
    const x = a.get(pid);
    if (!x) continue;
    out[y.kind] = (out[y.kind] ?? 0) + (y.ticks - x.ticks);
  }
  return out;
}
