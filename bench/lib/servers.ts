/**
 * The servers under test and how to start each one and tell that it is ready.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ManagedProcess } from './processes.ts';
import type { LoadProto } from './loadgen.ts';

export type ServerId = 'bare' | 'gateway' | 'cluster' | 'gateway-sio' | 'socketio' | 'gateway-signalr-json' | 'gateway-signalr-msgpack';
export const SERVER_IDS: ServerId[] = ['bare', 'gateway', 'cluster', 'gateway-sio', 'socketio', 'gateway-signalr-json', 'gateway-signalr-msgpack'];

export const SERVER_LABELS: Record<ServerId, string> = {
  bare: 'bare uWS',
  gateway: 'Switchyard gateway',
  cluster: 'Switchyard cluster',
  'gateway-sio': 'Switchyard Socket.IO',
  socketio: 'Socket.IO 4',
  'gateway-signalr-json': 'Switchyard SignalR JSON',
  'gateway-signalr-msgpack': 'Switchyard SignalR MsgPack',
};

export interface ServerSpec {
  id: ServerId;
  proto: LoadProto;
  /** WebSocket path for the load generator (its default for the protocol when unset). */
  path?: string;
  /** argv, with `{port}` standing for the port; undefined when the server cannot run here. */
  command?: string[];
  /** Why it cannot run, when `command` is undefined. */
  unavailable?: string;
}

export interface RunningServer {
  spec: ServerSpec;
  proc: ManagedProcess;
  port: number;
  /** "native" / "fallback" for uWS-based servers, as the server reports it. */
  engine?: string;
}

/** Splits a command line on whitespace; quotes are not needed for the commands we run. */
function words(s: string): string[] {
  return s.trim().split(/\s+/).filter(Boolean);
}

export function serverSpecs(root: string): Record<ServerId, ServerSpec> {
  const tsNode = [process.execPath, '--import', 'tsx'];
  const gatewayOverride = process.env.BENCH_GATEWAY_CMD;
  const gatewayBin = join(root, 'bin', 'switchyard.mjs');
  let gateway: ServerSpec;
  if (gatewayOverride) {
    gateway = { id: 'gateway', proto: 'native', path: '/rt/ws', command: words(gatewayOverride) };
  } else if (existsSync(gatewayBin)) {
    gateway = { id: 'gateway', proto: 'native', path: '/rt/ws', command: [process.execPath, gatewayBin, 'start', '--port', '{port}'] };
  } else {
    gateway = { id: 'gateway', proto: 'native', unavailable: `${gatewayBin} does not exist yet` };
  }
  return {
    bare: { id: 'bare', proto: 'native', path: '/rt/ws', command: [...tsNode, join(root, 'bench', 'bare-uws.ts'), '{port}'] },
    gateway,
    // nats-server + worker process + gateway process: the echo crosses the bus twice
    cluster: { id: 'cluster', proto: 'native', path: '/rt/ws', command: [...tsNode, join(root, 'bench', 'cluster-shape.ts'), '{port}'] },
    // the same gateway, spoken to as a Socket.IO server (Engine.IO v4 over WebSocket)
    'gateway-sio': { ...gateway, id: 'gateway-sio', proto: 'socketio', path: undefined },
    socketio: { id: 'socketio', proto: 'socketio', command: [...tsNode, join(root, 'bench', 'socketio-server.ts'), '{port}'] },
    // the same gateway, spoken to as a SignalR hub over WebSockets (skipNegotiation), invoke('echo')
    'gateway-signalr-json': { ...gateway, id: 'gateway-signalr-json', proto: 'signalr-json', path: '/hubs/demo' },
    'gateway-signalr-msgpack': { ...gateway, id: 'gateway-signalr-msgpack', proto: 'signalr-msgpack', path: '/hubs/demo' },
  };
}

/** A port that was free a moment ago (the kernel picks it; we release it for the server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/**
 * Starts a server pinned with `pin`, waits until it serves, and learns its engine.
 * Bare uWS and Socket.IO print a JSON line when listening; the gateway is polled on /healthz.
 */
export async function startServer(
  spec: ServerSpec,
  opts: { root: string; pin: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunningServer> {
  if (!spec.command) throw new Error(spec.unavailable ?? `${spec.id}: no command`);
  const port = await freePort();
  const argv = [...opts.pin, ...spec.command.map((a) => a.replaceAll('{port}', String(port)))];
  const proc = new ManagedProcess(spec.id, argv[0]!, argv.slice(1), { cwd: opts.root, env: opts.env });
  const timeoutMs = opts.timeoutMs ?? 60000;
  try {
    if (spec.id === 'gateway' || spec.id === 'cluster' || spec.id.startsWith('gateway-')) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!proc.alive) throw new Error(`gateway exited (${proc.exitCode}) during start-up\n${proc.tail()}`);
        try {
          const health = (await fetchJson(`http://127.0.0.1:${port}/healthz`, 1000)) as { engine?: string };
          return { spec, proc, port, engine: health.engine ?? 'unknown (no "engine" in /healthz)' };
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`gateway: /healthz not answering after ${timeoutMs} ms: ${(err as Error).message}\n${proc.tail()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const line = await proc.waitForLine((l) => l.startsWith('{"listening"'), timeoutMs);
    const info = JSON.parse(line) as { listening: number; engine?: string };
    if (info.listening !== port) throw new Error(`${spec.id} listens on ${info.listening}, expected ${port}`);
    return { spec, proc, port, engine: info.engine };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
