// @ts-check
/** The client's options: defaults, checks, and what they resolve to (routes URL, codec, transports). */
import { Remembered } from './remember.js';
/** @import { ClientOptions, Codec, FetchFunction, TransportName } from './types.js' */

const TRANSPORTS = /** @type {const} */ (['websocket', 'sse', 'polling']);

const DEFAULTS = {
  transports: /** @type {TransportName[]} */ (['websocket', 'sse', 'polling']),
  reconnect: true,
  minDelayMs: 250,
  maxDelayMs: 10000,
  maxAttempts: Infinity,
  connectTimeoutMs: 5000,
  ackTimeoutMs: 10000,
  pollTimeoutMs: 25000,
  maxQueue: 1000,
  maxBatch: 100,
  maxBatchBytes: 32768,
  path: '/rt',
  rememberTransport: /** @type {boolean | string} */ (true),
  rememberForMs: 4 * 3600 * 1000,
  format: /** @type {'json' | 'msgpack'} */ ('json'),
};

/** @typedef {ReturnType<typeof configure>} Config */

/**
 * Resolve the client constructor's arguments; throws a TypeError for a bad URL or option.
 * @param {string | URL | ClientOptions} [url]  gateway base URL: http(s):// or ws(s)://, optionally with a path prefix and query
 * @param {ClientOptions} [options]
 */
export function configure(url, options) {
  if (url && typeof url === 'object' && !(url instanceof URL)) {
    options = url;
    url = undefined;
  }
  const o = { ...DEFAULTS, ...(options || {}) };
  const g = /** @type {any} */ (globalThis);
  const loc = g.location;
  if (url === undefined && !loc) throw new TypeError('connect(url): a gateway URL is required outside a browser');
  const base = new URL(url === undefined ? loc.origin : String(url), loc ? loc.href : undefined);
  if (base.protocol === 'ws:') base.protocol = 'http:';
  else if (base.protocol === 'wss:') base.protocol = 'https:';
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`unsupported URL scheme ${base.protocol}`);
  const prefix = '/' + String(o.path).replace(/^\/+|\/+$/g, '');

  if (o.format !== 'json' && o.format !== 'msgpack') throw new TypeError(`unknown format ${o.format}`);
  if (o.format === 'msgpack' && !(o.msgpack && typeof o.msgpack.encode === 'function' && typeof o.msgpack.decode === 'function')) {
    throw new TypeError("format 'msgpack' needs options.msgpack = { encode, decode }");
  }

  const WebSocket = o.WebSocket || g.WebSocket;
  const EventSource = o.EventSource || g.EventSource;
  /** @type {FetchFunction | undefined} */
  const fetch = o.fetch || (typeof g.fetch === 'function' ? (/** @type {string} */ input, /** @type {any} */ init) => g.fetch(input, init) : undefined);
  for (const t of o.transports) {
    if (!TRANSPORTS.includes(t)) throw new TypeError(`unknown transport ${t}; expected one of ${TRANSPORTS.join(', ')}`);
  }
  const usable = { websocket: !!WebSocket, sse: !!(EventSource && fetch), polling: !!fetch };
  const transports = o.transports.filter((t, i, a) => usable[t] && a.indexOf(t) === i);
  if (transports.length === 0) {
    throw new TypeError(`none of the transports [${o.transports.join(', ')}] is usable here: pass WebSocket / EventSource / fetch in the options`);
  }
  const http = base.origin + base.pathname.replace(/\/+$/, '') + (prefix === '/' ? '' : prefix);
  return {
    /** the options, with defaults */
    o,
    /** where the routes are: `http(s)://host[/path prefix]/rt` */
    http,
    /** the remembered fallback (null: rememberTransport false) */
    remembered:
      o.rememberTransport === false
        ? null
        : new Remembered(typeof o.rememberTransport === 'string' && o.rememberTransport ? o.rememberTransport : `switchyard.transport ${http}`),
    /** the gateway URL's query, sent on every connect @type {Record<string, string>} */
    baseQuery: Object.fromEntries(base.searchParams),
    /** msgpack codec, or null for JSON @type {Codec | null} */
    codec: o.format === 'msgpack' ? /** @type {Codec} */ (o.msgpack) : null,
    /** @type {any} */
    WebSocket,
    /** @type {any} */
    EventSource,
    fetch,
    /** transports to try, in order (requested ones that have an implementation) */
    transports,
  };
}
