/** The SockJS dialect's options: what a node is given, how it resolves, its flags (see docs/sockjs.md) */
import { checkInt, type DialectFlag } from '../../seam/options.ts';

/**
 * The SockJS dialect's options, as given (GatewayOptions.sockjs). `jsessionid`: set a JSESSIONID
 * cookie on session requests and answer `cookie_needed: true`, for balancers that stick by that
 * cookie (see docs/sockjs.md) @default false. `lookupMs`: how long a node waits for another to
 * say it holds a client's session id before it claims the id itself (the sid's worker then has
 * the last word) @default 100
 */
export interface SockJsConfig {
  /** @default '/sockjs' */
  prefix?: string;
  jsessionid?: boolean;
  lookupMs?: number;
}

/** The SockJS dialect's options, resolved */
export interface SockJsOptions {
  /** @default '/sockjs' */
  prefix: string;
  /**
   * Set a `JSESSIONID` cookie on every session request (the client's own value, else `dummy`) and
   * answer `cookie_needed: true` in `/info`, for balancers that stick by that cookie (the reference
   * server's `jsessionid` option). Switchyard itself needs no stickiness. @default false
   */
  jsessionid: boolean;
  /** how long a node waits for another to say it holds a session id before claiming it (the sid's worker has the last word) @default 100 */
  lookupMs: number;
}

export function resolveSockJs(c: SockJsConfig): SockJsOptions {
  const prefix = c.prefix ?? '/sockjs';
  if (!/^\/[A-Za-z0-9_/-]*[A-Za-z0-9_-]$/.test(prefix)) throw new TypeError(`option sockjs.prefix must be a path without a trailing slash, got ${prefix}`);
  const jsessionid = c.jsessionid ?? false;
  if (typeof jsessionid !== 'boolean') throw new TypeError(`option sockjs.jsessionid must be a boolean, got ${String(jsessionid)}`);
  const lookupMs = c.lookupMs ?? 100;
  checkInt('sockjs.lookupMs', lookupMs, 0);
  return { prefix, jsessionid, lookupMs };
}

export const sockJsFlags: DialectFlag[] = [
  { flag: 'no-sockjs', kind: { t: 'flag' }, sets: false, to: '', def: 'served', help: 'SockJS clients are not served' },
  {
    flag: 'sockjs-prefix',
    kind: { t: 'string', pattern: /^\/[A-Za-z0-9_/-]*[A-Za-z0-9_-]$/, form: 'a path without a trailing slash' },
    to: 'prefix',
    def: '/sockjs',
    help: 'SockJS prefix',
  },
  {
    flag: 'sockjs-jsessionid',
    kind: { t: 'flag' },
    to: 'jsessionid',
    def: 'off',
    help: 'set a JSESSIONID cookie, cookie_needed: true (cookie-sticky balancers)',
  },
  {
    flag: 'sockjs-lookup-ms',
    kind: { t: 'int', min: 0 },
    to: 'lookupMs',
    def: '100',
    help: 'how long to wait for another node to claim a session id',
    clusterOnly: true,
  },
];
