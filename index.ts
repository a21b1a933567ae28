/**
 * Switchyard's public API: what `import … from 'switchyard'` gives. Everything else in the
 * package is internal and may change in any release.
 *
 * - `defineApp(…)`: an application, typed (the handlers, or a factory that gets the context).
 * - `createServer(…)`: one process, everything in it: a gateway node, the in-process bus and a
 *   worker running the app (what `switchyard start` runs).
 * - `createGateway(…)` / `createWorker(…)`: a gateway node and a worker of a cluster on NATS
 *   (what `switchyard gateway` and `switchyard worker` run).
 *
 * docs/embedding.md shows each, and an app written as its own package.
 */
import { startEmbedded } from './gateway/embedded.ts';
import type { Gateway } from './gateway/gateway.ts';
import type { GatewayOptions } from './gateway/options.ts';
import type { App, AppContext, AppHandlers } from './cluster/app.ts';

export type { App, AppContext, AppHandlers, AppSession, BroadcastOptions, Reply } from './cluster/app.ts';
export type { SessionMeta, TransportName } from './cluster/types.ts';
export type { GatewayOptions } from './gateway/options.ts';
export type { DialectConfigs, SignalRConfig, SocketIoConfig, SockJsConfig } from './transports/dialects/index.ts';
export type { JwtConfig } from './gateway/jwt.ts';
export { EngineError } from './gateway/uws.ts';

/**
 * An application: its handlers, or a factory that gets the context (for `broadcast`) and returns
 * them. The identity function: it only gives the handlers their types where they are written.
 *
 * @example
 * export default defineApp((ctx) => ({
 *   event(session, event, args, reply) {
 *     if (event === 'say') ctx.broadcast('lobby', 'said', args);
 *     reply?.('ok');
 *   },
 * }));
 */
export function defineApp(app: AppHandlers): AppHandlers;
export function defineApp(factory: (ctx: AppContext) => AppHandlers): (ctx: AppContext) => AppHandlers;
export function defineApp(app: App): App {
  return app;
}

/** A running gateway node (of `createServer` or `createGateway`) */
export interface GatewayNode {
  /** the port it listens on (the one given, or the free one picked for port 0) */
  readonly port: number;
  /** this node's id (in tokens and bus subjects) */
  readonly nodeId: string;
  /** the native uWebSockets.js build it runs on, e.g. `uws-pack@20.0.8` */
  readonly engine: string;
  /** what `GET /healthz` answers: status, sessions, rooms, memory… */
  health(): Record<string, unknown>;
  /** Stops listening and ends every session (clients are told to reconnect elsewhere). */
  close(): Promise<void>;
}

/** One process: a gateway node running `app` on its own (`createServer`) */
export interface Server extends GatewayNode {}

/** A gateway node of a cluster (`createGateway`) */
export interface ClusterGatewayNode extends GatewayNode {
  /**
   * Leaves the cluster gently (what SIGTERM does): stops taking new clients, spreads its clients'
   * reconnects over `windowMs` and hands each session to the node its client comes back to.
   */
  drain(windowMs?: number): Promise<{ handedOver: number; closed: number }>;
}

/** A worker of a cluster (`createWorker`) */
export interface WorkerNode {
  readonly workerId: string;
  /** Leaves the cluster: the other workers take its partitions. */
  close(): Promise<void>;
}

export interface ServerOptions extends GatewayOptions {
  /** the application (`defineApp`) */
  app: App;
  /** how long `session.request` waits for the client @default 10000 */
  requestTimeoutMs?: number;
}

export interface ClusterGatewayOptions extends GatewayOptions {
  /** NATS server URLs; the client fails over between them */
  nats: string[];
}

export interface WorkerOptions {
  /** NATS server URLs; the client fails over between them */
  nats: string[];
  /** the application (`defineApp`) */
  app: App;
  /** this worker's id, [A-Za-z0-9_-]{1,64} @default random */
  workerId?: string;
  /** partitions sids hash into; the same on every node and worker @default 1024 */
  partitionCount?: number;
  /** how often the worker says it is alive @default 1000 */
  heartbeatMs?: number;
  /** silence after which the others count a worker dead @default 3000 */
  memberTimeoutMs?: number;
  /** how long `session.request` waits for the client @default 10000 */
  requestTimeoutMs?: number;
}

function checkNats(nats: unknown): void {
  if (!Array.isArray(nats) || nats.length === 0) throw new TypeError('option nats must list at least one NATS URL');
}

function node(g: Gateway, port: number, close: () => Promise<void>): GatewayNode {
  return { port, nodeId: g.nodeId, engine: g.engine.spec, health: () => g.health(), close };
}

/**
 * Starts a gateway node with the in-process bus and a worker running `options.app`, and waits
 * until it listens. Options are `switchyard start`'s, in camelCase (`GatewayOptions`).
 * @throws TypeError for a wrong option; EngineError when no native uWebSockets.js loads
 */
export async function createServer(options: ServerOptions): Promise<Server> {
  const e = await startEmbedded(options);
  return node(e.gateway, e.port, () => e.close());
}

/** Starts a gateway node of a cluster on NATS and waits until it listens. */
export async function createGateway(options: ClusterGatewayOptions): Promise<ClusterGatewayNode> {
  checkNats(options.nats);
  const { startClusterGateway } = await import('./gateway/cluster-node.ts');
  const cg = await startClusterGateway(options);
  return { ...node(cg.gateway, cg.port, () => cg.close()), drain: (windowMs) => cg.drain(windowMs) };
}

/** Starts a worker of a cluster on NATS running `options.app`, and waits until it serves its partitions. */
export async function createWorker(options: WorkerOptions): Promise<WorkerNode> {
  checkNats(options.nats);
  const { startClusterWorker } = await import('./gateway/cluster-node.ts');
  const w = await startClusterWorker({
    nats: options.nats,
    app: options.app,
    workerId: options.workerId,
    partitionCount: options.partitionCount,
    heartbeatMs: options.heartbeatMs,
    timeoutMs: options.memberTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
  });
  return { workerId: w.workerId, close: () => w.close() };
}
