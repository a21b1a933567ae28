/**
 * The public API (index.ts, the package's `exports`): what it exports, and its types, checked at
 * compile time by `tsc --noEmit` (expectTypeOf) and at run time. A change here is a change for
 * every app author: this test makes it a deliberate one.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as api from '../index.ts';
import {
  createGateway,
  createServer,
  createWorker,
  defineApp,
  EngineError,
  type App,
  type AppContext,
  type AppHandlers,
  type AppSession,
  type BroadcastOptions,
  type ClusterGatewayNode,
  type GatewayOptions,
  type Reply,
  type Server,
  type SessionMeta,
  type TransportName,
  type WorkerNode,
} from '../index.ts';
import { WsClient } from './helpers.ts';
import { startNatsServer } from './nats-server.ts';

describe('public API', () => {
  it('exports exactly these values', () => {
    expect(Object.keys(api).sort()).toEqual(['EngineError', 'createGateway', 'createServer', 'createWorker', 'defineApp']);
  });

  it('defineApp types the handlers where they are written, and returns what it is given', () => {
    const handlers = defineApp({
      open(session) {
        expectTypeOf(session).toEqualTypeOf<AppSession>();
      },
      event(session, event, args, reply) {
        expectTypeOf(session).toEqualTypeOf<AppSession>();
        expectTypeOf(event).toEqualTypeOf<string>();
        expectTypeOf(args).toEqualTypeOf<unknown[]>();
        expectTypeOf(reply).toEqualTypeOf<Reply | undefined>();
      },
      close(session, reason) {
        expectTypeOf(reason).toEqualTypeOf<{ code: number; reason: string }>();
      },
    });
    expectTypeOf(handlers).toEqualTypeOf<AppHandlers>();
    const factory = defineApp((ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<AppContext>();
      return { event() {} };
    });
    expectTypeOf(factory).toEqualTypeOf<(ctx: AppContext) => AppHandlers>();
    expectTypeOf(factory).toMatchTypeOf<App>();
    const same = { event() {} };
    expect(defineApp(same)).toBe(same);
  });

  it('the app API: session, context, rooms, request, meta', () => {
    expectTypeOf<AppSession['sid']>().toEqualTypeOf<string>();
    expectTypeOf<AppSession['transport']>().toEqualTypeOf<TransportName>();
    expectTypeOf<TransportName>().toEqualTypeOf<'websocket' | 'sse' | 'polling'>();
    expectTypeOf<AppSession['meta']>().toEqualTypeOf<SessionMeta>();
    expectTypeOf<AppSession['data']>().toEqualTypeOf<Record<string, unknown>>();
    expectTypeOf<AppSession['emit']>().toEqualTypeOf<(event: string, ...args: unknown[]) => void>();
    expectTypeOf<AppSession['request']>().toEqualTypeOf<(event: string, ...args: unknown[]) => Promise<unknown[]>>();
    expectTypeOf<AppSession['join']>().toEqualTypeOf<(room: string) => void>();
    expectTypeOf<AppSession['leave']>().toEqualTypeOf<(room: string) => void>();
    expectTypeOf<AppSession['disconnect']>().toEqualTypeOf<(code?: number, reason?: string) => void>();
    expectTypeOf<AppContext['broadcast']>().toEqualTypeOf<(room: string, event: string, args: unknown[], options?: BroadcastOptions) => void>();
    expectTypeOf<SessionMeta['auth']>().toEqualTypeOf<string | Record<string, unknown>>();
    expectTypeOf<SessionMeta['query']>().toEqualTypeOf<Record<string, string>>();
    expectTypeOf<SessionMeta['ip']>().toEqualTypeOf<string>();
  });

  it('the starters: their options and what they return', () => {
    expectTypeOf(createServer).parameter(0).toMatchTypeOf<GatewayOptions & { app: App }>();
    expectTypeOf(createServer).returns.resolves.toEqualTypeOf<Server>();
    expectTypeOf(createGateway).parameter(0).toMatchTypeOf<GatewayOptions & { nats: string[] }>();
    expectTypeOf(createGateway).returns.resolves.toEqualTypeOf<ClusterGatewayNode>();
    expectTypeOf(createWorker).parameter(0).toMatchTypeOf<{ nats: string[]; app: App }>();
    expectTypeOf(createWorker).returns.resolves.toEqualTypeOf<WorkerNode>();
    expectTypeOf<Server['port']>().toEqualTypeOf<number>();
    expectTypeOf<Server['close']>().toEqualTypeOf<() => Promise<void>>();
    expectTypeOf<ClusterGatewayNode['drain']>().toEqualTypeOf<(windowMs?: number) => Promise<{ handedOver: number; closed: number }>>();
    // @ts-expect-error: an app is required
    void (() => createServer({ port: 0 }));
    // @ts-expect-error: a cluster gateway needs NATS
    void (() => createGateway({ port: 0 }));
    // @ts-expect-error: options are typed (pingMs is a number)
    void (() => createServer({ app: { event() {} }, pingMs: '5' }));
  });

  it('createServer runs an app defined with defineApp; close stops it', async () => {
    const server = await createServer({
      port: 0,
      host: '127.0.0.1',
      app: defineApp({
        event(session, event, args, reply) {
          reply?.(event, session.transport, ...args);
        },
      }),
    });
    expect(server.engine).toMatch(/@/);
    expect(server.health()).toMatchObject({ status: 'ok', engine: 'native', node: server.nodeId });
    const c = await WsClient.open(`ws://127.0.0.1:${server.port}/rt/ws`);
    expect((await c.request('ping', 1)).args).toEqual(['ping', 'websocket', 1]);
    await server.close();
    await c.next(() => c.closed !== null);
    expect(c.closed!.code).toBe(1012);
  });

  it('createGateway and createWorker make a cluster on a real nats-server: two gateways, one worker, a room across them; drain hands a session over', async () => {
    const nats = await startNatsServer();
    const secret = 'a-cluster-secret-of-some-length';
    const app = defineApp((ctx) => ({
      event(session, event, args, reply) {
        if (event === 'join') session.join(String(args[0]));
        if (event === 'say') ctx.broadcast(String(args[0]), 'said', [args[1]]);
        reply?.(event);
      },
    }));
    const worker = await createWorker({ nats: [nats.url], app, workerId: 'api-w1' });
    const g1 = await createGateway({ nats: [nats.url], port: 0, host: '127.0.0.1', secret, nodeId: 'api-g1' });
    const g2 = await createGateway({ nats: [nats.url], port: 0, host: '127.0.0.1', secret, nodeId: 'api-g2' });
    try {
      expect(worker.workerId).toBe('api-w1');
      expect([g1.nodeId, g2.nodeId]).toEqual(['api-g1', 'api-g2']);
      const a = await WsClient.open(`ws://127.0.0.1:${g1.port}/rt/ws`);
      const b = await WsClient.open(`ws://127.0.0.1:${g2.port}/rt/ws`);
      await a.request('join', 'r');
      await b.request('join', 'r');
      await a.request('say', 'r', 'across');
      await b.next((f) => f.type === 'event' && f.event === 'said');
      expect(b.frames.find((f) => f.event === 'said')!.args).toEqual(['across']);
      const r = await g1.drain(100);
      expect(r.handedOver + r.closed).toBe(1);
    } finally {
      await g2.close();
      await worker.close();
      await nats.stop();
    }
  }, 30_000);

  it('wrong options are refused before anything starts', async () => {
    await expect(createServer({ app: { event() {} }, pingMs: 5 })).rejects.toThrow(/pingMs/);
    await expect(createGateway({ nats: [] })).rejects.toThrow(/nats/);
    await expect(createWorker({ nats: ['nats://127.0.0.1:1'], app: { event() {} }, workerId: 'has.dot' })).rejects.toThrow(/workerId/);
    await expect(createServer({ app: { event() {} }, engine: 'fallback' })).rejects.toBeInstanceOf(EngineError);
  });
});
