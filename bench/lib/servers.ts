/**
 * The servers under test, the configurations (rows) each one is measured in, and how to start a
 * server and tell that it is ready.
 *
 * A server is one process tree started fresh for each repetition (bare uWS, ws, socket.io, sockjs,
 * the Switchyard gateway, the Switchyard cluster shape). A configuration is a way of speaking to
 * it: a load-generator protocol, a path and acks on or off. Several configurations share one
 * gateway process (native WebSocket, SSE + POST, long-polling, the Socket.IO, SignalR and SockJS
 * dialects), each with its own client protocol on the wire.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ManagedProcess } from './processes.ts';
import type { LoadProto } from './loadgen.ts';

/** the generator's protocols (the last three from its newer API) */
export type Proto = LoadProto | 'sockjs' | 'native-sse' | 'native-poll';

export type ServerId = 'bare' | 'ws' | 'socketio' | 'sockjs' | 'gateway' | 'cluster' | 'cluster2';
export const SERVER_IDS: ServerId[] = ['bare', 'ws', 'socketio', 'sockjs', 'gateway', 'cluster', 'cluster2'];

export const SERVER_LABELS: Record<ServerId, string> = {
  bare: 'bare uWS',
  ws: 'ws',
  socketio: 'socket.io',
  sockjs: 'sockjs',
  gateway: 'Switchyard gateway',
  cluster: 'Switchyard cluster',
  cluster2: 'Switchyard cluster, two gateways',
};

export type ConfigId =
  | 'bare'
  | 'ws'
  | 'socketio-ack'
  | 'socketio'
  | 'sockjs'
  | 'gw'
  | 'gw-noack'
  | 'gw-sse'
  | 'gw-poll'
  | 'gw-sio-ack'
  | 'gw-sio'
  | 'gw-signalr-json'
  | 'gw-signalr-msgpack'
  | 'gw-sockjs'
  | 'cluster'
  | 'cluster-2gw';

export interface Config {
  id: ConfigId;
  server: ServerId;
  label: string;
  proto: Proto;
  /** path for the load generator (its default for the protocol when unset) */
  path?: string;
  /** native acks / Socket.IO acks: the echo is the reply to the request */
  acks?: boolean;
  /** the reference server's configuration on the same wire, for the "× ref" ratio */
  ref?: ConfigId;
  /** measured for idle memory and open rate (one configuration per transport/dialect) */
  perTransport?: boolean;
  /** measured for fan-out only (no echo cells) */
  fanoutOnly?: boolean;
}

export const CONFIGS: Config[] = [
  { id: 'bare', server: 'bare', label: 'bare uWS', proto: 'native', path: '/rt/ws', perTransport: true },
  { id: 'ws', server: 'ws', label: 'ws', proto: 'native', path: '/rt/ws', perTransport: true },
  { id: 'socketio-ack', server: 'socketio', label: 'socket.io, acks', proto: 'socketio', acks: true },
  { id: 'socketio', server: 'socketio', label: 'socket.io', proto: 'socketio', acks: false, perTransport: true },
  { id: 'sockjs', server: 'sockjs', label: 'sockjs', proto: 'sockjs', path: '/sockjs', perTransport: true },
  { id: 'gw', server: 'gateway', label: 'Switchyard WS, acks', proto: 'native', path: '/rt/ws', acks: true, ref: 'ws', perTransport: true },
  { id: 'gw-noack', server: 'gateway', label: 'Switchyard WS', proto: 'native', path: '/rt/ws', acks: false, ref: 'ws' },
  { id: 'gw-sse', server: 'gateway', label: 'Switchyard SSE+POST', proto: 'native-sse', acks: true, ref: 'gw', perTransport: true },
  { id: 'gw-poll', server: 'gateway', label: 'Switchyard long-poll', proto: 'native-poll', acks: true, ref: 'gw', perTransport: true },
  { id: 'gw-sio-ack', server: 'gateway', label: 'Switchyard Socket.IO, acks', proto: 'socketio', acks: true, ref: 'socketio-ack' },
  { id: 'gw-sio', server: 'gateway', label: 'Switchyard Socket.IO', proto: 'socketio', acks: false, ref: 'socketio', perTransport: true },
  { id: 'gw-signalr-json', server: 'gateway', label: 'Switchyard SignalR JSON', proto: 'signalr-json', path: '/hubs/demo', ref: 'gw', perTransport: true },
  {
    id: 'gw-signalr-msgpack',
    server: 'gateway',
    label: 'Switchyard SignalR MsgPack',
    proto: 'signalr-msgpack',
    path: '/hubs/demo',
    ref: 'gw',
    perTransport: true,
  },
  { id: 'gw-sockjs', server: 'gateway', label: 'Switchyard SockJS', proto: 'sockjs', path: '/sockjs', ref: 'sockjs', perTransport: true },
  { id: 'cluster', server: 'cluster', label: 'Switchyard cluster, acks', proto: 'native', path: '/rt/ws', acks: true },
  { id: 'cluster-2gw', server: 'cluster2', label: 'Switchyard, two gateways', proto: 'native', path: '/rt/ws', fanoutOnly: true },
];
export const CONFIG_IDS = CONFIGS.map((c) => c.id);
export const configById = (id: ConfigId): Config => CONFIGS.find((c) => c.id === id)!;

export interface ServerSpec {
  id: ServerId;
  /** argv, with `{port}` standing for the port; undefined when the server cannot run here. */
  command?: string[];
  /** Why it cannot run, when `command` is undefined. */
  unavailable?: string;
  /** ready when /healthz answers (else: when it prints its {"listening":…} line) */
  health?: boolean;
}
// A command may also name `{port2}`: a second free port (a second gateway), in RunningServer.ports.

export interface RunningServer {
  spec: ServerSpec;
  proc: ManagedProcess;
  port: number;
  /** every port it listens on (`port` first; two for the two-gateway cluster) */
  ports: number[];
  /** the engine the server reports: the uWS package for uWS-based servers (gateway/uws.ts), else its package */
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
  if (gatewayOverride) gateway = { id: 'gateway', command: words(gatewayOverride), health: true };
  // one generator on 127.0.0.1 opens thousands of sessions a second: the per-address rate limit is off
  else if (existsSync(gatewayBin))
    gateway = { id: 'gateway', command: [process.execPath, gatewayBin, 'start', '--port', '{port}', '--ip-open-rate', '0'], health: true };
  else gateway = { id: 'gateway', unavailable: `${gatewayBin} does not exist yet` };
  const script = (name: string) => [...tsNode, join(root, 'bench', name), '{port}'];
  return {
    bare: { id: 'bare', command: script('bare-uws.ts') },
    ws: { id: 'ws', command: script('ws-server.ts') },
    socketio: { id: 'socketio', command: script('socketio-server.ts') },
    sockjs: { id: 'sockjs', command: script('sockjs-server.ts') },
    gateway,
    // nats-server + worker process + gateway process: the echo crosses the bus twice
    cluster: { id: 'cluster', command: script('cluster-shape.ts'), health: true },
    // the same with a second gateway process on {port2}: a room split over two gateways
    cluster2: { id: 'cluster2', command: [...script('cluster-shape.ts'), '{port2}'], health: true },
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

export async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/**
 * Starts a server pinned with `pin`, waits until it serves, and learns its engine.
 * Bare uWS, ws, socket.io and sockjs print a JSON line when listening; the gateway is polled on /healthz.
 */
export async function startServer(
  spec: ServerSpec,
  opts: { root: string; pin: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunningServer> {
  if (!spec.command) throw new Error(spec.unavailable ?? `${spec.id}: no command`);
  const port = await freePort();
  const ports = [port];
  if (spec.command.some((a) => a.includes('{port2}'))) {
    let p2 = await freePort();
    while (p2 === port) p2 = await freePort();
    ports.push(p2);
  }
  const argv = [...opts.pin, ...spec.command.map((a) => a.replaceAll('{port}', String(port)).replaceAll('{port2}', String(ports[1])))];
  const proc = new ManagedProcess(spec.id, argv[0]!, argv.slice(1), { cwd: opts.root, env: opts.env });
  const timeoutMs = opts.timeoutMs ?? 60000;
  try {
    if (spec.health) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!proc.alive) throw new Error(`${spec.id} exited (${proc.exitCode}) during start-up\n${proc.tail()}`);
        try {
          // every port answers (a second gateway too)
          const answers = await Promise.all(
            ports.map((p) => fetchJson(`http://127.0.0.1:${p}/healthz`, 1000) as Promise<{ engine?: string; enginePackage?: string }>),
          );
          return { spec, proc, port, ports, engine: answers[0]!.enginePackage ?? answers[0]!.engine ?? 'unknown (no "engine" in /healthz)' };
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`${spec.id}: /healthz not answering after ${timeoutMs} ms: ${(err as Error).message}\n${proc.tail()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const line = await proc.waitForLine((l) => l.startsWith('{"listening"'), timeoutMs);
    const info = JSON.parse(line) as { listening: number; engine?: string };
    if (info.listening !== port) throw new Error(`${spec.id} listens on ${info.listening}, expected ${port}`);
    return { spec, proc, port, ports, engine: info.engine };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
