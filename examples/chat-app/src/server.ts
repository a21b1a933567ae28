/**
 * Switchyard inside your own process: the gateway, the in-process bus and a worker running the
 * app, started and stopped from code (a test harness does the same with `port: 0`).
 */
import { createServer } from 'switchyard';
import app from './app.js';

const server = await createServer({ app, port: Number(process.env.PORT ?? 8080), host: process.env.HOST ?? '127.0.0.1' });
console.log(JSON.stringify({ listening: server.port, node: server.nodeId, engine: server.engine }));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0));
  });
}
