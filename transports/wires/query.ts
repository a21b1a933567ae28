/** Query parameters every transport reads the same way */

/** the protocol's own parameters, not passed to the app */
const RESERVED = new Set(['sid', 'token', 'last', 'format', 'auth', 'transport']);
const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** The app's part of a connect URL's query (one shared empty object when there is none) */
export function connectQuery(q: URLSearchParams): Record<string, string> {
  let out: Record<string, string> | null = null;
  for (const [k, v] of q) {
    if (RESERVED.has(k)) continue;
    (out ??= {})[k] = v;
  }
  return out ?? EMPTY;
}

/** `last` / Last-Event-ID: a non-negative integer, 0 when absent or invalid */
export function parseLast(v: string | null | undefined): number {
  if (!v) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
