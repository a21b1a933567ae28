/**
 * The log: JSON lines on stdout, one object per line with `level`, `time`, `pid`, the fields of the
 * event (`sid` on every line about a session) and `msg`: pino's line format and level numbers
 * (trace 10 … fatal 60), so pino's tools (pino-pretty, transports) read it, without pino's start-up
 * cost. The level comes from `--log-level` / SWITCHYARD_LOG_LEVEL (default `info`). Failures a
 * client can cause over and over are logged one line per cause, not per occurrence (`warnOnce`).
 * Session tokens and credentials are never logged; an Error field becomes its type, message and
 * stack, never the objects the error may hold.
 */

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;

type Fields = Record<string, unknown>;
type Emit = { (msg: string): void; (fields: Fields, msg?: string): void };

/** An Error as a log field: its type, message and stack (and its cause's), nothing else it holds */
function errorField(e: Error, depth = 0): Fields {
  const out: Fields = { type: e.name, message: e.message, stack: e.stack };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (e.cause instanceof Error && depth < 3) out.cause = errorField(e.cause, depth + 1);
  return out;
}

function line(level: number, fields: Fields | undefined, msg: string | undefined): string {
  let s = `{"level":${level},"time":${Date.now()},"pid":${process.pid}`;
  if (fields !== undefined) {
    for (const k in fields) {
      let v = fields[k];
      if (v === undefined) continue;
      if (v instanceof Error) v = errorField(v);
      let json: string | undefined;
      try {
        json = JSON.stringify(v, (_key, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Error ? errorField(x) : x));
      } catch {
        json = '"[unserializable]"';
      }
      if (json !== undefined) s += `,${JSON.stringify(k)}:${json}`;
    }
  }
  if (msg !== undefined) s += `,"msg":${JSON.stringify(msg)}`;
  return s + '}\n';
}

class Logger {
  private threshold: number = LEVELS.info;
  private name: LogLevel = 'info';

  readonly trace = this.at(LEVELS.trace);
  readonly debug = this.at(LEVELS.debug);
  readonly info = this.at(LEVELS.info);
  readonly warn = this.at(LEVELS.warn);
  readonly error = this.at(LEVELS.error);
  readonly fatal = this.at(LEVELS.fatal);

  constructor(level: string | undefined) {
    if (level !== undefined && level in LEVELS) this.level = level;
    // a reader that went away (EPIPE) costs the log, not the node
    process.stdout.on('error', () => {});
  }

  get level(): string {
    return this.name;
  }

  set level(l: string) {
    if (!(l in LEVELS)) throw new TypeError(`unknown log level ${l}`);
    this.name = l as LogLevel;
    this.threshold = LEVELS[this.name];
  }

  isLevelEnabled(l: LogLevel): boolean {
    return LEVELS[l] >= this.threshold;
  }

  /** Calls `done` once what was logged so far has been handed to stdout */
  flush(done: () => void): void {
    process.stdout.write('', () => done());
  }

  private at(level: number): Emit {
    return ((a: Fields | string, msg?: string) => {
      if (level < this.threshold) return;
      process.stdout.write(typeof a === 'string' ? line(level, undefined, a) : line(level, a, msg));
    }) as Emit;
  }
}

export const log = new Logger(process.env.SWITCHYARD_LOG_LEVEL);

/** session lines (open, close) are `debug`: cheap to skip, checked once per event */
export function debugging(): boolean {
  return log.isLevelEnabled('debug');
}

export function setLogLevel(level: string): void {
  log.level = level;
}

/** Exits once the log has reached stdout */
export function exit(code: number): void {
  log.flush(() => process.exit(code));
}

const counts = new Map<string, number>();

/**
 * A failure a client can cause over and over: the first occurrence is logged with its fields,
 * later ones only at 10, 100, 1000… occurrences, with the count.
 */
export function warnOnce(cause: string, err?: unknown, fields?: Record<string, unknown>): void {
  const n = (counts.get(cause) ?? 0) + 1;
  if (counts.size >= 1000 && n === 1) counts.clear();
  counts.set(cause, n);
  if (n === 1) log.warn({ cause, count: 1, ...fields, err: err instanceof Error ? err : err === undefined ? undefined : String(err) }, cause);
  else if (Number.isInteger(Math.log10(n))) log.warn({ cause, count: n }, `${cause}: ${n} times so far`);
}
