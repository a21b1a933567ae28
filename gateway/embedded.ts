/**
 * One process, everything in it: a gateway node, the in-process bus and a worker running the
 * app. What `switchyard start` runs, and the quickest way to embed Switchyard in a program.
 */
import { Gateway } from './gateway.ts';
import type { GatewayOptions } from './options.ts';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { Worker } from '../cluster/worker.ts';
import type { App } from '../cluster/app.ts';

export interface Embedded {
  gateway: Gateway;
  worker: Worker;
  bus: MemoryBus;
  port: number;
  close(): Promise<void>;
}

/** `requestTimeoutMs`: how long `session.request` waits for the client (the worker's option) */
export async function startEmbedded(options: GatewayOptions & { app: App; requestTimeoutMs?: number }): Promise<Embedded> {
  const { app, requestTimeoutMs, ...gatewayOptions } = options;
  const bus = new MemoryBus();
  const gateway = new Gateway(gatewayOptions, { bus });
  const worker = new Worker({ bus, app, partitionCount: gateway.options.partitionCount, requestTimeoutMs });
  const port = await gateway.listen();
  return {
    gateway,
    worker,
    bus,
    port,
    async close() {
      await gateway.close();
      worker.stop();
      await bus.close();
    },
  };
}
