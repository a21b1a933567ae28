/**
 * The log: JSON lines on stdout (pino), one object per line with `level`, `time`, `msg` and the
 * fields of the event (`sid` on every line about a session). The level comes from
 * `--log-level` / SWITCHYARD_LOG_LEVEL (default `info`). Failures a client can cause over and
 * over are logged one line per cause, not per occurrence (`warnOnce`). Session tokens and
 * credentials are never logged.
 */
import { pino, stdSerializers } from 'pino';

export const log = pino({
  base: { pid: process.pid },
  level: process.env.SWITCHYARD_LOG_LEVEL ?? 'info',
  // an Error's message and stack, never the objects the error may hold
  serializers: { err: stdSerializers.err },
});

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
