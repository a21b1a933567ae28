/**
 * The `switchyard` command.
 *   switchyard start   [--port 8080] [--app <module>]      gateway + embedded bus + worker, one process
 *   switchyard gateway --nats <urls> [--port 8080]         a gateway node of a cluster
 *   switchyard worker  --nats <urls> [--app <module>]      a worker of a cluster
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { App } from '../cluster/app.ts';
import { ConfigError, OPTIONS, readConfig, usage } from './config.ts';
import { resolveOptions } from './options.ts';
import { exit, log, setLogLevel } from '../lib/log.ts';

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...Object.fromEntries(OPTIONS.map((o) => [o.flag, { type: o.kind.t === 'flag' ? ('boolean' as const) : ('string' as const) }])),
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    console.log(usage());
    return;
  }
  if (command !== 'start' && command !== 'gateway' && command !== 'worker') throw new UsageError(`unknown command ${command}`);
  const { gateway: gatewayOptions, cli } = readConfig(command, values, process.env);
  if (cli.logLevel !== undefined) setLogLevel(cli.logLevel);
  if (gatewayOptions.port === undefined) gatewayOptions.port = 8080;
  // the options' own checks (GatewayOptions: what the API refuses too) name the option and the value
  if (command !== 'worker') {
    try {
      resolveOptions(gatewayOptions);
    } catch (err) {
      throw err instanceof TypeError ? new ConfigError(err.message) : err;
    }
  }
  let close: () => Promise<void>;
  let terminate: (() => Promise<void>) | null = null;
  if (command === 'worker') {
    const nats = natsUrls(cli.nats);
    const { startClusterWorker } = await import('./cluster-node.ts');
    const w = await startClusterWorker({
      nats,
      app: await loadApp(cli.app),
      workerId: cli.workerId,
      heartbeatMs: gatewayOptions.heartbeatMs,
      timeoutMs: gatewayOptions.memberTimeoutMs,
      epsilon: cli.epsilon,
      requestTimeoutMs: cli.requestTimeoutMs,
      partitionCount: gatewayOptions.partitionCount,
    });
    log.info({ workerId: w.workerId }, `switchyard: worker ${w.workerId} on NATS ${w.bus.server} (app: ${cli.app ?? 'demo'})`);
    close = w.close;
  } else {
    let node: { port: number; gateway: import('./gateway.ts').Gateway; close(): Promise<void> };
    let busName: string;
    if (command === 'gateway') {
      if (!gatewayOptions.secret) log.warn('switchyard: SWITCHYARD_SECRET is not set: tokens from this node will not be accepted by other gateway nodes');
      const { startClusterGateway } = await import('./cluster-node.ts');
      const cg = await startClusterGateway({ ...gatewayOptions, nats: natsUrls(cli.nats) });
      node = cg;
      busName = 'nats';
      const windowMs = cli.drainWindowMs ?? 5000;
      terminate = async () => {
        log.info(`switchyard: draining over ${windowMs} ms`);
        const r = await cg.drain(windowMs);
        log.info({ handedOver: r.handedOver, closed: r.closed }, `switchyard: drained: ${r.handedOver} sessions handed over, ${r.closed} closed`);
      };
    } else {
      const { startEmbedded } = await import('./embedded.ts');
      node = await startEmbedded({ ...gatewayOptions, app: await loadApp(cli.app), requestTimeoutMs: cli.requestTimeoutMs });
      busName = 'memory';
    }
    const g = node.gateway;
    const e = g.engine;
    log.info(
      { node: g.nodeId, port: node.port, engine: e.spec },
      `switchyard: node ${g.nodeId} listening on http://${g.options.host}:${node.port} (engine: native uWebSockets.js ${e.version} from ${e.spec}; bus: ${busName}${command === 'start' ? `; app: ${cli.app ?? 'demo'}` : ''})`,
    );
    close = () => node.close();
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`switchyard: ${sig}, closing`);
    const how = sig === 'SIGTERM' && terminate !== null ? terminate : close;
    // the log is written asynchronously: flushed before the process goes
    how().then(
      () => exit(0),
      (err) => {
        log.error({ err }, 'switchyard: close failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function natsUrls(v: string[] | undefined): string[] {
  if (!v || v.length === 0) throw new UsageError('--nats <url,url…> is required');
  return v;
}

async function loadApp(spec: string | undefined): Promise<App> {
  if (spec === undefined) return (await import('../demo/app.ts')).default;
  // a TypeScript app is compiled through tsx, loaded for it only (the gateway itself is JavaScript);
  // without tsx, a Node that strips types (22.18 and later) runs it as it is
  if (/\.[cm]?ts$/.test(spec)) {
    try {
      ((await import('tsx/esm/api')) as { register(): unknown }).register();
    } catch {
      if (!(process.features as { typescript?: string }).typescript)
        throw new UsageError(`${spec} is TypeScript: compile it to JavaScript, install tsx (npm i tsx), or run Node 22.18 or later (which strips types)`);
    }
  }
  const mod = (await import(pathToFileURL(resolve(spec)).href)) as { default?: App };
  if (mod.default === undefined) throw new UsageError(`${spec} has no default export (an App)`);
  return mod.default;
}

/** a wrong command line: said in one line, exit code 2 */
export const UsageError = ConfigError;
