/**
 * Cluster processes: a gateway node or a worker on a NATS session bus. What
 * `switchyard gateway --nats …` and `switchyard worker --nats …` run.
 */
import { randomBytes } from 'node:crypto';
import { Gateway } from './gateway.ts';
import { NODE_ID } from './options.ts';
import type { GatewayOptions } from './options.ts';
import { NatsBus } from '../cluster/nats-bus.ts';
import { Worker } from '../cluster/worker.ts';
import type { App } from '../cluster/app.ts';

export interface ClusterGateway {
  gateway: Gateway;
  bus: NatsBus;
  port: number;
  close(): Promise<void>;
  /** SIGTERM: hand the sessions to other nodes as their clients reconnect, then close */
  drain(windowMs?: number): Promise<{ handedOver: number; closed: number }>;
}

export async function startClusterGateway(o: GatewayOptions & { nats: string[] }): Promise<ClusterGateway> {
  const { nats, ...options } = o;
  const bus = await NatsBus.connect({ servers: nats, name: `switchyard-gateway-${options.nodeId ?? ''}` });
  const gateway = new Gateway({ atLeastOnce: true, ...options }, { bus });
  const port = await gateway.listen();
  return {
    gateway,
    bus,
    port,
    async close() {
      await gateway.close();
      await bus.close();
    },
    async drain(windowMs) {
      const r = await gateway.drain(windowMs);
      await bus.close();
      return r;
    },
  };
}

export interface ClusterWorker {
  worker: Worker;
  workerId: string;
  bus: NatsBus;
  close(): Promise<void>;
}

export async function startClusterWorker(o: {
  nats: string[];
  app: App;
  /** [A-Za-z0-9_-]{1,64} @default random */
  workerId?: string;
  partitionCount?: number;
  heartbeatMs?: number;
  timeoutMs?: number;
  epsilon?: number;
  requestTimeoutMs?: number;
}): Promise<ClusterWorker> {
  const workerId = o.workerId ?? `w-${randomBytes(4).toString('hex')}`;
  if (!NODE_ID.test(workerId)) throw new TypeError(`option workerId must match [A-Za-z0-9_-]{1,64}, got ${workerId}`);
  const bus = await NatsBus.connect({ servers: o.nats, name: `switchyard-worker-${workerId}` });
  const worker = new Worker({
    bus,
    app: o.app,
    partitionCount: o.partitionCount,
    requestTimeoutMs: o.requestTimeoutMs,
    cluster: { workerId, heartbeatMs: o.heartbeatMs, timeoutMs: o.timeoutMs, epsilon: o.epsilon },
  });
  await bus.flush();
  await worker.ready;
  return {
    worker,
    workerId,
    bus,
    async close() {
      worker.stop();
      await bus.close();
    },
  };
}
