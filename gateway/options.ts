import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DEFAULT_PARTITIONS } from '../cluster/partition.ts';
import { resolveDialects, type DialectConfigs, type DialectOptions } from '../transports/dialects/index.ts';
import { checkInt, stripUndefined } from '../transports/seam/options.ts';
import { JwtVerifier, type JwtConfig } from './jwt.ts';

/**
 * Options of one gateway node. Every field is optional; the default is in its doc. Each dialect's
 * own options are under its key (DialectConfigs: declared by the dialects, transports/dialects/).
 */
export interface GatewayOptions extends DialectConfigs {
  /** TCP port; 0 picks a free one @default 8080 */
  port?: number;
  /** @default '0.0.0.0' */
  host?: string;
  /** this node's id, used in tokens and bus subjects @default random */
  nodeId?: string;
  /** HMAC secret for session tokens; every node of a cluster needs the same one @default random (single node only) */
  secret?: string;
  /**
   * Secrets that still verify tokens and resume keys but sign nothing: rotate a cluster's secret
   * without cutting its sessions (see docs/operations.md) @default []
   */
  previousSecrets?: string[];
  /**
   * a native client gets a new session token on every connect (each \`open\`); the ones before it
   * are accepted this long after the client first uses the new one (requests already under way),
   * then refused with SY_ERR_BAD_TOKEN @default 10000
   */
  tokenGraceMs?: number;
  /** heartbeat interval announced in `open` and used for pings @default 25000 */
  pingMs?: number;
  /** how long a long-poll is held when there is nothing to send @default 25000 */
  pollTimeoutMs?: number;
  /** how long a session outlives its last connection @default 60000 */
  resumeWindowMs?: number;
  /** frames kept per session for resume; a session with this many unsent frames is a slow consumer @default 1024 */
  outboxMaxFrames?: number;
  /**
   * bytes of entries kept per session (approximate, from their args); a session that needs more
   * for entries it has not been sent is a slow consumer @default 1048576
   */
  outboxMaxBytes?: number;
  /** largest client frame (WebSocket message) or POST body @default 65536 */
  maxPayloadBytes?: number;
  /**
   * sessions with a connection this node admits (past it: SY_ERR_TOO_MANY_SESSIONS, and `/readyz`
   * answers 503); sessions waiting for their client hold no connection and count against
   * `detachedMaxBytes` instead;
   * 0 = no limit @default the process's open-file limit less a tenth (at least 64) for listeners,
   * HTTP requests, the bus and files: 18,000 at `ulimit -n` 20,000, 921 at 1,024; 0 where the
   * limit cannot be read
   */
  maxSessions?: number;
  /**
   * new sessions (and Socket.IO carriers) per second from one client address, sustained: a token
   * bucket refilled at this rate; past it SY_ERR_RATE_LIMITED (503 with Retry-After, WebSocket
   * 1013). The address is the socket's, or with `trustProxy` the forwarded one: behind a load
   * balancer without `trustProxy` every client has the balancer's address, so raise this or set
   * `trustProxy`. 0 = no limit @default 100
   */
  ipOpenRate?: number;
  /** new sessions one address may open at once before `ipOpenRate` applies (the bucket's size) @default 500 */
  ipOpenBurst?: number;
  /**
   * bytes of a request that opens a session which the session keeps (query string, User-Agent,
   * Authorization); a larger one is refused with SY_ERR_REQUEST_TOO_LARGE @default 8192
   */
  maxRequestBytes?: number;
  /**
   * memory the sessions waiting for their clients (detached) may hold together, counting each
   * one's outbox bytes plus DETACHED_OVERHEAD; past it the longest-waiting end early with
   * SY_ERR_SESSION_EVICTED, unread frames freed. 0 = no limit @default 268435456 (256 MiB)
   */
  detachedMaxBytes?: number;
  /** rooms one session may be in; the join past it ends the session with SY_ERR_TOO_MANY_ROOMS; 0 = no limit @default 1000 */
  maxRoomsPerSession?: number;
  /** serve `GET /metrics` (Prometheus text format; restrict it at your proxy if it must not be public) @default true */
  metrics?: boolean;
  /**
   * serve `GET /metrics` (and `/healthz`, `/readyz`) on this port of `metricsHost` instead of the
   * clients' port, which then answers 404 for it (0: any free port; null: the clients' port)
   * @default null
   */
  metricsPort?: number | null;
  /** the address the metrics port listens on @default the gateway's `host` */
  metricsHost?: string;
  /**
   * built-in JWT verification of new sessions' credentials (see JwtConfig and
   * docs/operations.md); false: none, the app sees the credentials as given @default false
   */
  jwt?: JwtConfig | false;
  /** allowed `Origin` values; empty = any @default [] */
  allowedOrigins?: string[];
  /** take the client address from X-Forwarded-For / Forwarded (only behind a proxy you run) @default false */
  trustProxy?: boolean;
  /** WebSocket send buffer above which the node stops writing to that socket until it drains @default 262144 */
  wsHighWaterBytes?: number;
  /** how long a new session waits for a worker to accept it @default 10000 */
  workerTimeoutMs?: number;
  /** partitions sids are hashed into; the same on every node and worker @default 1024 */
  partitionCount?: number;
  /** serve the demo page at / and the client at /client.js @default true */
  serveDemo?: boolean;
  /**
   * which native uWebSockets.js build to run on: 'auto' tries the installed ones in order
   * (README, "Runtimes"), a package name (`uWebSockets.js`, `uws-pack`,
   * `@btc-vision/uwebsockets.js`) only that one. There is no JS fallback.
   * @default process.env.SWITCHYARD_ENGINE || 'auto'
   */
  engine?: string;
  /**
   * keep client → worker envelopes until a worker acknowledges them, and resend them (to the
   * partition's next owner) when none does within `ackTimeoutMs` @default false (true in a cluster)
   */
  atLeastOnce?: boolean;
  /** @default 1500 */
  ackTimeoutMs?: number;
  /** how long a node waits for the node holding a session to answer a relayed request @default 3000 */
  relayTimeoutMs?: number;
  /**
   * cluster: how often this node announces itself to the others (and workers) on the bus
   * @default 1000
   */
  heartbeatMs?: number;
  /**
   * cluster: silent this long, a node is taken for dead (this node says so in its heartbeats; the
   * others take each node's own figure). Its sessions end on the workers and its relayed clients
   * are told, with SY_ERR_NODE_LOST @default 3000
   */
  memberTimeoutMs?: number;
}

/** what a node id may be (it is part of bus subjects and of session tokens) */
export const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export type ResolvedOptions = Required<Omit<GatewayOptions, keyof DialectConfigs>> & DialectOptions;

/** See GatewayOptions.maxSessions */
export function defaultMaxSessions(fds = openFileLimit()): number {
  return fds > 0 ? Math.max(1, fds - Math.max(64, Math.ceil(fds / 10))) : 0;
}

/** The soft limit on open files (`ulimit -n`), from /proc (Linux); 0 when unknown or unlimited */
export function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

export function resolveOptions(o: GatewayOptions = {}): ResolvedOptions {
  // the node's own options first; the dialects' are resolved from them at the end
  const r: Omit<ResolvedOptions, keyof DialectOptions> = {
    port: 8080,
    host: '0.0.0.0',
    nodeId: randomBytes(6).toString('base64url'),
    secret: randomBytes(32).toString('base64url'),
    previousSecrets: [],
    tokenGraceMs: 10_000,
    pingMs: 25_000,
    pollTimeoutMs: 25_000,
    resumeWindowMs: 60_000,
    outboxMaxFrames: 1024,
    outboxMaxBytes: 1024 * 1024,
    maxPayloadBytes: 64 * 1024,
    maxSessions: defaultMaxSessions(),
    ipOpenRate: 100,
    ipOpenBurst: 500,
    maxRoomsPerSession: 1000,
    maxRequestBytes: 8192,
    detachedMaxBytes: 256 * 1024 * 1024,
    metrics: true,
    metricsPort: null,
    metricsHost: '',
    jwt: false,
    allowedOrigins: [],
    trustProxy: false,
    wsHighWaterBytes: 256 * 1024,
    workerTimeoutMs: 10_000,
    partitionCount: DEFAULT_PARTITIONS,
    serveDemo: true,
    engine: process.env.SWITCHYARD_ENGINE || 'auto',
    atLeastOnce: false,
    ackTimeoutMs: 1500,
    relayTimeoutMs: 3000,
    heartbeatMs: 1000,
    memberTimeoutMs: 3000,
    ...(stripUndefined(o) as Omit<GatewayOptions, keyof DialectConfigs>),
  };
  const ints: Array<[keyof typeof r, number]> = [
    ['port', 0],
    ['tokenGraceMs', 0],
    ['pingMs', 100],
    ['pollTimeoutMs', 100],
    ['resumeWindowMs', 100],
    ['outboxMaxFrames', 1],
    ['outboxMaxBytes', 1024],
    ['maxPayloadBytes', 64],
    ['maxSessions', 0],
    ['ipOpenRate', 0],
    ['ipOpenBurst', 1],
    ['maxRoomsPerSession', 0],
    ['maxRequestBytes', 256],
    ['detachedMaxBytes', 0],
    ['wsHighWaterBytes', 1024],
    ['workerTimeoutMs', 10],
    ['partitionCount', 1],
    ['ackTimeoutMs', 10],
    ['relayTimeoutMs', 10],
    ['heartbeatMs', 10],
    ['memberTimeoutMs', 20],
  ];
  for (const [k, min] of ints) checkInt(k, r[k], min);
  if (r.memberTimeoutMs <= r.heartbeatMs)
    throw new TypeError(`option memberTimeoutMs (${r.memberTimeoutMs}) must be greater than heartbeatMs (${r.heartbeatMs})`);
  if (r.metricsHost === '') r.metricsHost = r.host;
  if (r.metricsPort !== null && !(Number.isInteger(r.metricsPort) && r.metricsPort >= 0 && r.metricsPort <= 65535))
    throw new TypeError(`option metricsPort must be a port (0-65535) or null, got ${String(r.metricsPort)}`);
  if (r.port > 65535) throw new TypeError(`option port must be <= 65535, got ${r.port}`);
  if (!NODE_ID.test(r.nodeId)) throw new TypeError(`option nodeId must match [A-Za-z0-9_-]{1,64}, got ${r.nodeId}`);
  if (r.secret.length < 16) throw new TypeError('option secret must be at least 16 characters');
  if (!Array.isArray(r.previousSecrets) || r.previousSecrets.some((p) => typeof p !== 'string' || p.length < 16))
    throw new TypeError('option previousSecrets must be a list of secrets of at least 16 characters');
  if (r.jwt !== false) new JwtVerifier(r.jwt); // throws on a wrong configuration, before anything listens
  return { ...r, ...resolveDialects(o, r) };
}
