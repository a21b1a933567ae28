/**
 * The `switchyard` command.
 *   switchyard start [--port 8080] [--host 0.0.0.0] [--app <module>]   gateway + embedded bus + worker
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbedded } from './embedded.ts';
import type { App } from '../cluster/app.ts';

const USAGE = `usage: switchyard start [--port 8080] [--host 0.0.0.0] [--app <module>]

  start   one process: gateway, in-process session bus, and a worker running the app
          (default app: the demo; --app takes a module whose default export is an App)

options:
  --port N        TCP port (0 = any free port; PORT in the environment also works)
  --host H        address to listen on
  --app M         application module
  --ping-ms N, --resume-window-ms N, --max-payload-bytes N, --outbox-max-frames N`;

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      app: { type: 'string' },
      'ping-ms': { type: 'string' },
      'resume-window-ms': { type: 'string' },
      'max-payload-bytes': { type: 'string' },
      'outbox-max-frames': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return;
  }
  if (command !== 'start') throw new UsageError(`unknown command ${command}`);
  const app = await loadApp(values.app);
  const node = await startEmbedded({
    app,
    port: int(values.port ?? process.env.PORT, 'port') ?? 8080,
    host: values.host,
    pingMs: int(values['ping-ms'], 'ping-ms'),
    resumeWindowMs: int(values['resume-window-ms'], 'resume-window-ms'),
    maxPayloadBytes: int(values['max-payload-bytes'], 'max-payload-bytes'),
    outboxMaxFrames: int(values['outbox-max-frames'], 'outbox-max-frames'),
    secret: process.env.SWITCHYARD_SECRET,
  });
  const g = node.gateway;
  const loud = g.engine === 'native' ? 'native uWebSockets.js binary' : 'FALLBACK ws-based shim (slow!): the native uWebSockets.js binary did not load';
  console.log(`switchyard: node ${g.nodeId} listening on http://${g.options.host}:${node.port} (engine: ${loud}; bus: memory; app: ${values.app ?? 'demo'})`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`switchyard: ${sig}, closing`);
    node.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
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
