import { afterAll, describe, expect, it } from 'vitest';
import { engine } from '../gateway/uws.ts';
import { closeAll, http, startNode } from './helpers.ts';

afterAll(closeAll);

describe('uWebSockets.js engine', () => {
  it('runs on the native binary on this machine, not the ws-based fallback', () => {
    expect(engine).toBe('native');
  });

  it('reports the engine in /healthz', async () => {
    const node = await startNode();
    const r = await http(`${node.url}/healthz`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', engine: 'native', node: node.gateway.nodeId, sessions: 0 });
  });
});
