/**
 * The command line's configuration: one table of every option, read from flags, from
 * `SWITCHYARD_…` environment variables and from an optional JSON config file (`--config`), in
 * that order of precedence. Each option knows its flag, variable, config-file key, default and
 * expected form; `switchyard --help` is printed from this table, and a wrong value is refused at
 * start naming the option, the value and the form expected.
 */
import { readFileSync } from 'node:fs';
import type { GatewayOptions } from './options.ts';
import { dialectFlags } from '../transports/dialects/index.ts';
import type { OptionKind } from '../transports/seam/options.ts';

type Command = 'start' | 'gateway' | 'worker';
const ALL: Command[] = ['start', 'gateway', 'worker'];
const GATEWAYS: Command[] = ['start', 'gateway'];

/** How an option's value is read */
type Kind = OptionKind;

export interface OptionSpec {
  /** the flag, without `--` (the config file's key is its camelCase, the variable SWITCHYARD_ + its upper snake case) */
  flag: string;
  kind: Kind;
  /** where the value goes: a GatewayOptions path (`pingMs`, `jwt.audience`, a dialect's `<key>.<field>`), or `cli.<name>` for the command's own */
  to: string;
  /** for a `flag` kind: the value it sets (e.g. `false` for a dialect's `--no-…`) @default true */
  sets?: unknown;
  /** what the help says the default is */
  def: string;
  help: string;
  commands: Command[];
  /** another variable read too (PORT) */
  alsoEnv?: string;
  /** a secret: only from the environment or the config file, never a flag (flags show in `ps`) */
  secret?: boolean;
}

const ms = (min = 10): Kind => ({ t: 'int', min });

/** Every option of the command line */
export const OPTIONS: OptionSpec[] = [
  {
    flag: 'config',
    kind: { t: 'string', form: 'a path' },
    to: 'cli.config',
    def: 'none',
    help: 'a JSON file of options (keys: the camelCase of the flags, e.g. {"maxSessions": 5000})',
    commands: ALL,
  },
  { flag: 'port', kind: { t: 'int', min: 0, max: 65535 }, to: 'port', def: '8080', help: 'TCP port (0: any free port)', commands: GATEWAYS, alsoEnv: 'PORT' },
  { flag: 'host', kind: { t: 'string', form: 'an address' }, to: 'host', def: '0.0.0.0', help: 'address to listen on', commands: GATEWAYS },
  {
    flag: 'app',
    kind: { t: 'string', form: 'a module path' },
    to: 'cli.app',
    def: 'the demo',
    help: 'application module (its default export is an App)',
    commands: ['start', 'worker'],
  },
  {
    flag: 'nats',
    kind: { t: 'list' },
    to: 'cli.nats',
    def: 'none (required)',
    help: 'NATS server URLs, comma-separated (the client fails over between them)',
    commands: ['gateway', 'worker'],
  },
  {
    flag: 'node-id',
    kind: { t: 'string', pattern: /^[A-Za-z0-9_-]{1,64}$/, form: '[A-Za-z0-9_-]{1,64}' },
    to: 'nodeId',
    def: 'random',
    help: "this gateway's id (in tokens and bus subjects)",
    commands: GATEWAYS,
  },
  {
    flag: 'worker-id',
    kind: { t: 'string', pattern: /^[A-Za-z0-9_-]{1,64}$/, form: '[A-Za-z0-9_-]{1,64}' },
    to: 'cli.workerId',
    def: 'random',
    help: "this worker's id",
    commands: ['worker'],
  },
  {
    flag: 'secret',
    kind: { t: 'list' },
    to: 'cli.secret',
    def: 'random (one node only)',
    help: 'token secret, the same on every gateway of a cluster; a comma-separated list rotates it: the first signs, all verify (docs/operations.md)',
    commands: GATEWAYS,
    secret: true,
  },
  {
    flag: 'engine',
    kind: { t: 'enum', values: ['auto', 'uWebSockets.js', 'uws-pack', '@btc-vision/uwebsockets.js'] },
    to: 'engine',
    def: 'auto',
    help: 'the native uWebSockets.js build: auto tries the installed ones in order (README, "Runtimes"); a package name, only that one',
    commands: GATEWAYS,
  },
  {
    flag: 'log-level',
    kind: { t: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    to: 'cli.logLevel',
    def: 'info',
    help: 'what the JSON log (stdout) says',
    commands: ALL,
  },
  // sessions and delivery
  { flag: 'ping-ms', kind: ms(100), to: 'pingMs', def: '25000', help: 'heartbeat interval announced to native clients', commands: GATEWAYS },
  {
    flag: 'poll-timeout-ms',
    kind: ms(100),
    to: 'pollTimeoutMs',
    def: '25000',
    help: 'how long a long-poll is held when there is nothing to send',
    commands: GATEWAYS,
  },
  { flag: 'resume-window-ms', kind: ms(100), to: 'resumeWindowMs', def: '60000', help: 'how long a session outlives its last connection', commands: GATEWAYS },
  {
    flag: 'token-grace-ms',
    kind: ms(0),
    to: 'tokenGraceMs',
    def: '10000',
    help: "how long a native session's older tokens work once the client used a newer one",
    commands: GATEWAYS,
  },
  { flag: 'outbox-max-frames', kind: { t: 'int', min: 1 }, to: 'outboxMaxFrames', def: '1024', help: 'frames kept per session for resume', commands: GATEWAYS },
  {
    flag: 'outbox-max-bytes',
    kind: { t: 'int', min: 1024 },
    to: 'outboxMaxBytes',
    def: '1048576',
    help: 'bytes kept per session for resume',
    commands: GATEWAYS,
  },
  {
    flag: 'max-payload-bytes',
    kind: { t: 'int', min: 64 },
    to: 'maxPayloadBytes',
    def: '65536',
    help: 'largest client frame or POST body',
    commands: GATEWAYS,
  },
  {
    flag: 'ws-high-water-bytes',
    kind: { t: 'int', min: 1024 },
    to: 'wsHighWaterBytes',
    def: '262144',
    help: 'WebSocket send buffer above which a socket is not written until it drains',
    commands: GATEWAYS,
  },
  {
    flag: 'worker-timeout-ms',
    kind: ms(),
    to: 'workerTimeoutMs',
    def: '10000',
    help: 'how long a new session waits for a worker (and its JWT check)',
    commands: GATEWAYS,
  },
  {
    flag: 'ack-timeout-ms',
    kind: ms(),
    to: 'ackTimeoutMs',
    def: '1500',
    help: 'cluster: resend an envelope no worker acknowledged after this',
    commands: ['gateway'],
  },
  {
    flag: 'relay-timeout-ms',
    kind: ms(),
    to: 'relayTimeoutMs',
    def: '3000',
    help: 'cluster: how long a node waits for the node holding a session',
    commands: ['gateway'],
  },
  {
    flag: 'drain-window-ms',
    kind: ms(0),
    to: 'cli.drainWindowMs',
    def: '5000',
    help: 'cluster: SIGTERM spreads reconnects over this window and hands sessions to the nodes clients come back to',
    commands: ['gateway'],
  },
  {
    flag: 'partition-count',
    kind: { t: 'int', min: 1 },
    to: 'partitionCount',
    def: '1024',
    help: 'partitions sids hash into; the same on every node and worker',
    commands: ALL,
  },
  // admission limits
  {
    flag: 'max-sessions',
    kind: { t: 'int', min: 0 },
    to: 'maxSessions',
    def: 'the open-file limit less a tenth',
    help: 'sessions with a connection this node admits (0: no limit)',
    commands: GATEWAYS,
  },
  {
    flag: 'ip-open-rate',
    kind: { t: 'int', min: 0 },
    to: 'ipOpenRate',
    def: '100',
    help: 'new sessions per second per client address (0: no limit; behind a balancer use --trust-proxy)',
    commands: GATEWAYS,
  },
  { flag: 'ip-open-burst', kind: { t: 'int', min: 1 }, to: 'ipOpenBurst', def: '500', help: 'new sessions one address may open at once', commands: GATEWAYS },
  {
    flag: 'max-rooms-per-session',
    kind: { t: 'int', min: 0 },
    to: 'maxRoomsPerSession',
    def: '1000',
    help: 'rooms one session may be in (0: no limit)',
    commands: GATEWAYS,
  },
  {
    flag: 'max-request-bytes',
    kind: { t: 'int', min: 256 },
    to: 'maxRequestBytes',
    def: '8192',
    help: 'query + User-Agent + Authorization of a request that opens a session',
    commands: GATEWAYS,
  },
  {
    flag: 'detached-max-bytes',
    kind: { t: 'int', min: 0 },
    to: 'detachedMaxBytes',
    def: '268435456',
    help: 'what sessions waiting for their clients may hold together (0: no limit)',
    commands: GATEWAYS,
  },
  {
    flag: 'trust-proxy',
    kind: { t: 'flag' },
    to: 'trustProxy',
    def: 'off',
    help: 'take client addresses from X-Forwarded-For / Forwarded (behind your own proxy only)',
    commands: GATEWAYS,
  },
  {
    flag: 'allowed-origins',
    kind: { t: 'list' },
    to: 'allowedOrigins',
    def: 'any',
    help: 'page origins that may connect, comma-separated',
    commands: GATEWAYS,
  },
  { flag: 'no-metrics', kind: { t: 'flag' }, sets: false, to: 'metrics', def: 'served', help: 'do not serve GET /metrics', commands: GATEWAYS },
  {
    flag: 'metrics-port',
    kind: { t: 'int', min: 0, max: 65535 },
    to: 'metricsPort',
    def: "the clients' port",
    help: "serve /metrics (and /healthz, /readyz) on this port instead of the clients' port (0: any free port)",
    commands: GATEWAYS,
  },
  { flag: 'metrics-host', kind: { t: 'string' }, to: 'metricsHost', def: 'the --host', help: 'the address the metrics port listens on', commands: GATEWAYS },
  { flag: 'no-demo', kind: { t: 'flag' }, sets: false, to: 'serveDemo', def: 'served', help: 'do not serve the demo page and /client.js', commands: GATEWAYS },
  // JWT
  {
    flag: 'jwt-secret',
    kind: { t: 'string', form: 'at least 32 bytes' },
    to: 'jwt.secret',
    def: 'none',
    help: 'verify HS256 JWTs with this secret',
    commands: GATEWAYS,
    secret: true,
  },
  {
    flag: 'jwt-public-key-file',
    kind: { t: 'string', form: 'a path' },
    to: 'jwt.publicKeyFile',
    def: 'none',
    help: 'verify RS256 / ES256 JWTs with this PEM public key',
    commands: GATEWAYS,
  },
  {
    flag: 'jwt-jwks-url',
    kind: { t: 'string', form: 'a URL' },
    to: 'jwt.jwksUrl',
    def: 'none',
    help: 'verify RS256 / ES256 JWTs with the keys at this JWKS URL',
    commands: GATEWAYS,
  },
  { flag: 'jwt-audience', kind: { t: 'string', form: 'a string' }, to: 'jwt.audience', def: 'any', help: 'the aud a JWT must name', commands: GATEWAYS },
  { flag: 'jwt-issuer', kind: { t: 'string', form: 'a string' }, to: 'jwt.issuer', def: 'any', help: 'the iss a JWT must name', commands: GATEWAYS },
  {
    flag: 'jwt-clock-tolerance-sec',
    kind: { t: 'int', min: 0 },
    to: 'jwt.clockToleranceSec',
    def: '5',
    help: 'clock skew allowed for exp and nbf',
    commands: GATEWAYS,
  },
  // the dialects' own, as each declares them (transports/dialects/*/options.ts)
  ...dialectFlags().map(
    (f): OptionSpec => ({
      flag: f.flag,
      kind: f.kind,
      to: f.path,
      ...(f.sets !== undefined ? { sets: f.sets } : {}),
      def: f.def,
      help: f.help,
      commands: f.clusterOnly === true ? ['gateway'] : GATEWAYS,
    }),
  ),
  // workers
  {
    flag: 'request-timeout-ms',
    kind: ms(),
    to: 'cli.requestTimeoutMs',
    def: '10000',
    help: 'how long session.request waits for the client',
    commands: ['start', 'worker'],
  },
  {
    flag: 'heartbeat-ms',
    kind: ms(),
    to: 'heartbeatMs',
    def: '1000',
    help: "cluster: a member's heartbeat interval (gateway nodes and workers)",
    commands: ['gateway', 'worker'],
  },
  {
    flag: 'member-timeout-ms',
    kind: ms(),
    to: 'memberTimeoutMs',
    def: '3000',
    help: 'cluster: a member silent this long is gone (a gateway node says its own in its heartbeats)',
    commands: ['gateway', 'worker'],
  },
  {
    flag: 'epsilon',
    kind: { t: 'number', min: 0, max: 10 },
    to: 'cli.epsilon',
    def: '0.25',
    help: 'placement: how far above the mean load a worker may go',
    commands: ['worker'],
  },
];

/** `max-sessions` → `maxSessions` */
export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `max-sessions` → `SWITCHYARD_MAX_SESSIONS` */
export function envName(flag: string): string {
  return 'SWITCHYARD_' + flag.toUpperCase().replace(/-/g, '_');
}

function form(k: Kind): string {
  switch (k.t) {
    case 'int':
      return `an integer >= ${k.min}${k.max !== undefined ? ` and <= ${k.max}` : ''}`;
    case 'number':
      return `a number from ${k.min} to ${k.max}`;
    case 'string':
      return k.form ?? 'a string';
    case 'list':
      return 'a comma-separated list';
    case 'enum':
      return k.values.join(' | ');
    case 'flag':
      return 'true or false';
  }
}

const NONE = Symbol('not of the form');

/** A number given as a JSON number or as a decimal string (flags, variables); NaN otherwise */
function numberOf(raw: unknown): number {
  if (typeof raw === 'number') return raw;
  return typeof raw === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(raw) ? Number(raw) : NaN;
}

/** One option's value read from a string (flags, variables) or a JSON value (the config file), or NONE */
function parseValue(k: Kind, raw: unknown): unknown {
  switch (k.t) {
    case 'int': {
      const n = numberOf(raw);
      return Number.isInteger(n) && n >= k.min && (k.max === undefined || n <= k.max) ? n : NONE;
    }
    case 'number': {
      const n = numberOf(raw);
      return Number.isFinite(n) && n >= k.min && n <= k.max ? n : NONE;
    }
    case 'string':
      return typeof raw === 'string' && raw.length > 0 && (k.pattern === undefined || k.pattern.test(raw)) ? raw : NONE;
    case 'list': {
      const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) && raw.every((x) => typeof x === 'string') ? (raw as string[]) : null;
      const list = items?.map((x) => x.trim()).filter(Boolean) ?? [];
      return list.length > 0 ? list : NONE;
    }
    case 'enum':
      return typeof raw === 'string' && k.values.includes(raw) ? raw : NONE;
    case 'flag':
      if (typeof raw === 'boolean') return raw;
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : NONE;
  }
}

export class ConfigError extends Error {}

/** What the command line asked for: the gateway's options and the command's own */
export interface CliConfig {
  gateway: GatewayOptions;
  cli: {
    config?: string;
    app?: string;
    nats?: string[];
    workerId?: string;
    secret?: string[];
    logLevel?: string;
    drainWindowMs?: number;
    requestTimeoutMs?: number;
    epsilon?: number;
  };
}

/**
 * Reads every option for `command`: `flags` (parsed, strings or booleans) over the environment
 * over the config file. Throws ConfigError naming the option, where it came from, the value and
 * the form expected.
 */
export function readConfig(command: Command, flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): CliConfig {
  const configPath = typeof flags.config === 'string' ? flags.config : env[envName('config')];
  const file = configPath ? readConfigFile(configPath) : {};
  const known = new Set(OPTIONS.map((o) => camel(o.flag)));
  for (const k of Object.keys(file))
    if (!known.has(k)) throw new ConfigError(`${configPath}: unknown option "${k}" (the keys are the flags in camelCase; see switchyard --help)`);
  const out: CliConfig = { gateway: {}, cli: {} };
  for (const o of OPTIONS) {
    let raw: unknown;
    let from: string;
    if (flags[o.flag] !== undefined) {
      if (o.secret)
        throw new ConfigError(`--${o.flag} is not taken as a flag (it would show in ps): set ${envName(o.flag)} or put "${camel(o.flag)}" in a config file`);
      [raw, from] = [flags[o.flag], `--${o.flag}`];
    } else if (env[envName(o.flag)] !== undefined) [raw, from] = [env[envName(o.flag)], envName(o.flag)];
    else if (o.alsoEnv !== undefined && env[o.alsoEnv] !== undefined && env[o.alsoEnv] !== '') [raw, from] = [env[o.alsoEnv], o.alsoEnv];
    else if (camel(o.flag) in file) [raw, from] = [file[camel(o.flag)], `${configPath}: ${camel(o.flag)}`];
    else continue;
    const data = parseValue(o.kind, raw);
    if (data === NONE) throw new ConfigError(`${from}: ${JSON.stringify(o.secret ? '…' : raw)} is not ${form(o.kind)}`);
    if (!o.commands.includes(command)) continue;
    const value = o.kind.t === 'flag' ? (data ? (o.sets ?? true) : undefined) : data;
    if (value !== undefined) put(out, o.to, value);
  }
  const c = out.cli.secret;
  if (c !== undefined) {
    out.gateway.secret = c[0];
    out.gateway.previousSecrets = c.slice(1);
  }
  return out;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config ${path}: ${(err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--config ${path}: not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`--config ${path}: expected a JSON object of options`);
  return v as Record<string, unknown>;
}

/** Sets `cli.x` or a GatewayOptions path; an option group turned off (a dialect's `false`) stays off */
function put(out: CliConfig, path: string, value: unknown): void {
  const [head, tail] = path.split('.', 2) as [string, string | undefined];
  if (head === 'cli') return void ((out.cli as Record<string, unknown>)[tail!] = value);
  const g = out.gateway as Record<string, unknown>;
  if (tail === undefined) {
    g[head] = value;
    return;
  }
  if (g[head] === false) return;
  ((g[head] ??= {}) as Record<string, unknown>)[tail] = value;
}

/** `switchyard --help`, from OPTIONS */
export function usage(): string {
  const lines = [
    'usage:',
    '  switchyard start   [options]   one process: gateway, in-process session bus, and a worker running the app',
    '  switchyard gateway --nats URLS [options]   a gateway node on a NATS bus (run several behind any load balancer)',
    '  switchyard worker  --nats URLS [options]   a worker on a NATS bus; sessions are spread over the live workers',
    '',
    'Every option is a flag, an environment variable or a key of the --config file (flags win, then',
    'variables, then the file). [s g w]: the commands it applies to (start, gateway, worker).',
    '',
  ];
  for (const o of OPTIONS) {
    const cmds = ['start', 'gateway', 'worker'].map((c) => (o.commands.includes(c as Command) ? c[0] : ' ')).join(' ');
    const name = o.secret ? `(variable only) ${envName(o.flag)}` : `--${o.flag}${o.kind.t === 'flag' ? '' : ' <' + form(o.kind) + '>'}`;
    lines.push(`  ${name}  [${cmds}]`);
    lines.push(`      ${o.help}`);
    lines.push(`      default: ${o.def}; variable: ${envName(o.flag)}${o.alsoEnv ? ` (or ${o.alsoEnv})` : ''}; config file: ${camel(o.flag)}`);
  }
  return lines.join('\n');
}
