/**
 * The `switchyard` command.
 *   switchyard start   [--port 8080] [--app <module>]      gateway + embedded bus + worker, one process
 *   switchyard gateway --nats <urls> [--port 8080]         a gateway node of a cluster
 *   switchyard worker  --nats <urls> [--app <module>]      a worker of a cluster
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startEmbedded } from './embedded.ts';
import { startClusterGateway, startClusterWorker } from './cluster-node.ts';
import type { App } from '../cluster/app.ts';

const USAGE = `usage:
  switchyard start   [--port 8080] [--host 0.0.0.0] [--app <module>]
  switchyard gateway --nats <url,url…> [--port 8080] [--host 0.0.0.0] [--node-id ID]
  switchyard worker  --nats <url,url…> [--app <module>] [--worker-id ID]

  start    one process: gateway, in-process session bus, and a worker running the app
  gateway  a gateway node on a NATS bus (run several behind any load balancer)
  worker   a worker on a NATS bus; sessions are spread over the live workers
           (default app: the demo; --app takes a module whose default export is an App)

options:
  --port N        TCP port (0 = any free port; PORT in the environment also works)
  --host H        address to listen on
  --app M         application module
  --nats URLS     NATS servers, comma-separated (the client fails over between them)
  --ping-ms N, --resume-window-ms N, --max-payload-bytes N, --outbox-max-frames N,
  --outbox-max-bytes N, --max-sessions N (default: the open-file limit less a tenth; 0 = none),
  --ip-open-rate N, --ip-open-burst N (new sessions per second per client address, and at once;
                  default 100 and 500; 0 = no limit; behind a load balancer use --trust-proxy),
  --max-rooms-per-session N (default 1000; 0 = no limit), --max-request-bytes N (default 8192:
                  query + User-Agent + Authorization of a request that opens a session),
  --detached-max-bytes N (default 268435456: what sessions waiting for their clients may hold),
  --poll-timeout-ms N, --heartbeat-ms N, --member-timeout-ms N, --epsilon X,
  --request-timeout-ms N (worker, start: how long session.request waits for the client),
  --trust-proxy   take client addresses from X-Forwarded-For / Forwarded (behind your own proxy)
  --ack-timeout-ms N, --relay-timeout-ms N, --drain-window-ms N (gateway: SIGTERM spreads
  reconnects over this window and hands sessions to the nodes clients come back to; default 5000)
  --socketio-path P (default /socket.io/), --socketio-namespaces /,/chat (default /),
  --socketio-parser default|msgpack, --socketio-ping-timeout-ms N, --socketio-connect-timeout-ms N,
  --socketio-no-recovery (no pid, no offsets), --no-socketio (Socket.IO clients are not served)
  --sockjs-jsessionid (SockJS: set a JSESSIONID cookie, cookie_needed: true; for cookie-sticky balancers)
  --sockjs-lookup-ms N (SockJS: how long to wait for another node to claim a session id; default 100)

environment:
  SWITCHYARD_SECRET   token secret; every gateway of a cluster needs the same one. A comma-separated
                      list rotates it: the first signs, every one verifies (docs/operations.md)`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      app: { type: 'string' },
      'ping-ms': { type: 'string' },
      'token-grace-ms': { type: 'string' },
      'resume-window-ms': { type: 'string' },
      'max-payload-bytes': { type: 'string' },
      'outbox-max-frames': { type: 'string' },
      'outbox-max-bytes': { type: 'string' },
      'max-sessions': { type: 'string' },
      'ip-open-rate': { type: 'string' },
      'ip-open-burst': { type: 'string' },
      'max-rooms-per-session': { type: 'string' },
      'max-request-bytes': { type: 'string' },
      'detached-max-bytes': { type: 'string' },
      nats: { type: 'string' },
      'node-id': { type: 'string' },
      'worker-id': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'member-timeout-ms': { type: 'string' },
      'request-timeout-ms': { type: 'string' },
      epsilon: { type: 'string' },
      'ack-timeout-ms': { type: 'string' },
      'relay-timeout-ms': { type: 'string' },
      'poll-timeout-ms': { type: 'string' },
      'drain-window-ms': { type: 'string' },
      'trust-proxy': { type: 'boolean' },
      'socketio-path': { type: 'string' },
      'socketio-namespaces': { type: 'string' },
      'socketio-parser': { type: 'string' },
      'socketio-ping-timeout-ms': { type: 'string' },
      'socketio-connect-timeout-ms': { type: 'string' },
      'no-socketio': { type: 'boolean' },
      'socketio-no-recovery': { type: 'boolean' },
      'sockjs-jsessionid': { type: 'boolean' },
      'sockjs-lookup-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return;
  }
  if (command !== 'start' && command !== 'gateway' && command !== 'worker') throw new UsageError(`unknown command ${command}`);
  const gatewayOptions = {
    port: int(values.port ?? process.env.PORT, 'port') ?? 8080,
    host: values.host,
    nodeId: values['node-id'],
    pingMs: int(values['ping-ms'], 'ping-ms'),
    tokenGraceMs: int(values['token-grace-ms'], 'token-grace-ms'),
    resumeWindowMs: int(values['resume-window-ms'], 'resume-window-ms'),
    maxPayloadBytes: int(values['max-payload-bytes'], 'max-payload-bytes'),
    outboxMaxFrames: int(values['outbox-max-frames'], 'outbox-max-frames'),
    outboxMaxBytes: int(values['outbox-max-bytes'], 'outbox-max-bytes'),
    maxSessions: int(values['max-sessions'], 'max-sessions'),
    ipOpenRate: int(values['ip-open-rate'], 'ip-open-rate'),
    ipOpenBurst: int(values['ip-open-burst'], 'ip-open-burst'),
    maxRoomsPerSession: int(values['max-rooms-per-session'], 'max-rooms-per-session'),
    maxRequestBytes: int(values['max-request-bytes'], 'max-request-bytes'),
    detachedMaxBytes: int(values['detached-max-bytes'], 'detached-max-bytes'),
    ackTimeoutMs: int(values['ack-timeout-ms'], 'ack-timeout-ms'),
    relayTimeoutMs: int(values['relay-timeout-ms'], 'relay-timeout-ms'),
    pollTimeoutMs: int(values['poll-timeout-ms'], 'poll-timeout-ms'),
    ...secretsFromEnv(process.env.SWITCHYARD_SECRET),
    trustProxy: values['trust-proxy'],
    socketio: values['no-socketio']
      ? (false as const)
      : {
          path: values['socketio-path'],
          namespaces: values['socketio-namespaces']?.split(',').map((n) => n.trim()),
          parser: values['socketio-parser'] as 'default' | 'msgpack' | undefined,
          pingTimeoutMs: int(values['socketio-ping-timeout-ms'], 'socketio-ping-timeout-ms'),
          connectTimeoutMs: int(values['socketio-connect-timeout-ms'], 'socketio-connect-timeout-ms'),
          recovery: values['socketio-no-recovery'] ? false : undefined,
        },
    sockjs: { jsessionid: values['sockjs-jsessionid'] || undefined, lookupMs: int(values['sockjs-lookup-ms'], 'sockjs-lookup-ms') },
  };
  let close: () => Promise<void>;
  let terminate: (() => Promise<void>) | null = null;
  if (command === 'worker') {
    const nats = natsUrls(values.nats);
    const workerId = values['worker-id'] ?? `w-${randomBytes(4).toString('hex')}`;
    const w = await startClusterWorker({
      nats,
      app: await loadApp(values.app),
      workerId,
      heartbeatMs: int(values['heartbeat-ms'], 'heartbeat-ms'),
      timeoutMs: int(values['member-timeout-ms'], 'member-timeout-ms'),
      epsilon: values.epsilon === undefined ? undefined : Number(values.epsilon),
      requestTimeoutMs: int(values['request-timeout-ms'], 'request-timeout-ms'),
    });
    console.log(`switchyard: worker ${workerId} on NATS ${w.bus.server} (app: ${values.app ?? 'demo'})`);
    close = w.close;
  } else {
    let node: { port: number; gateway: import('./gateway.ts').Gateway; close(): Promise<void> };
    let busName: string;
    if (command === 'gateway') {
      if (!gatewayOptions.secret) console.warn('switchyard: SWITCHYARD_SECRET is not set: tokens from this node will not be accepted by other gateway nodes');
      const cg = await startClusterGateway({ ...gatewayOptions, nats: natsUrls(values.nats) });
      node = cg;
      busName = 'nats';
      const windowMs = int(values['drain-window-ms'], 'drain-window-ms') ?? 5000;
      terminate = async () => {
        console.log(`switchyard: draining over ${windowMs} ms`);
        const r = await cg.drain(windowMs);
        console.log(`switchyard: drained: ${r.handedOver} sessions handed over, ${r.closed} closed`);
      };
    } else {
      node = await startEmbedded({ ...gatewayOptions, app: await loadApp(values.app), requestTimeoutMs: int(values['request-timeout-ms'], 'request-timeout-ms') });
      busName = 'memory';
    }
    const g = node.gateway;
    const loud = g.engine === 'native' ? 'native uWebSockets.js binary' : 'FALLBACK ws-based shim (slow!): the native uWebSockets.js binary did not load';
    console.log(`switchyard: node ${g.nodeId} listening on http://${g.options.host}:${node.port} (engine: ${loud}; bus: ${busName}${command === 'start' ? `; app: ${values.app ?? 'demo'}` : ''})`);
    close = () => node.close();
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`switchyard: ${sig}, closing`);
    const how = sig === 'SIGTERM' && terminate !== null ? terminate : close;
    how().then(() => process.exit(0), (err) => {
      console.error(err);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** SWITCHYARD_SECRET: one secret, or a comma-separated list: the first signs, all verify (rotation) */
export function secretsFromEnv(v: string | undefined): { secret?: string; previousSecrets?: string[] } {
  if (v === undefined || v === '') return {};
  const [secret, ...previousSecrets] = v.split(',').map((s) => s.trim()).filter(Boolean);
  return { secret, previousSecrets };
}

function natsUrls(v: string | undefined): string[] {
  if (!v) throw new UsageError('--nats <url,url…> is required');
  return v.split(',').map((u) => u.trim()).filter(Boolean);
}

async function loadApp(spec: string | undefined): Promise<App> {
  if (spec === undefined) return (await import('../demo/app.ts')).default;
  const mod = (await import(pathToFileURL(resolve(spec)).href)) as { default?: App };
  if (mod.default === undefined) throw new UsageError(`${spec} has no default export (an App)`);
  return mod.default;
}

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${v}`);
  return n;
}

export class UsageError extends Error {}
