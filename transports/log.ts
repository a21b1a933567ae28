/**
 * Logging of failures that a client can cause over and over: one line per cause, not per frame.
 * The first occurrence is logged with its error; later ones only at 10, 100, 1000… occurrences.
 */
const counts = new Map<string, number>();

export function warnOnce(cause: string, err?: unknown): void {
  const n = (counts.get(cause) ?? 0) + 1;
  if (counts.size >= 1000 && n === 1) counts.clear();
  counts.set(cause, n);
  if (n === 1) console.error(`[switchyard] ${cause}:`, err ?? '');
  else if (Number.isInteger(Math.log10(n))) console.error(`[switchyard] ${cause}: ${n} times so far`);
}
