import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { CANDIDATES, chooseEngine, currentRuntime, EngineError, loadEngine, type Runtime } from '../gateway/uws.ts';
import { closeAll, http, startNode } from './helpers.ts';

afterAll(closeAll);

const linux = (abi: number, glibc: string | null): Runtime => ({ platform: 'linux', arch: 'x64', abi, glibc });
const names = (rt: Runtime, only?: string) => {
  const c = chooseEngine(rt, only);
  return c.ok ? c.candidates.map((x) => x.name) : c.reason;
};

describe('engine choice (no loading): Node ABI × glibc → the builds tried, in order', () => {
  it('Node 20 (ABI 115) on Debian 12 (glibc 2.36): the trufflesuite build, then uws-pack; not the glibc 2.38 build', () => {
    expect(names(linux(115, '2.36'))).toEqual(['uWebSockets.js', 'uws-pack']);
  });

  it('Node 20 on glibc 2.38 (Debian 13, Ubuntu 24.04): all three, the tested ones first', () => {
    expect(names(linux(115, '2.38'))).toEqual(['uWebSockets.js', 'uws-pack', '@btc-vision/uwebsockets.js']);
  });

  it('Node 22 (ABI 127): uws-pack on glibc 2.27–2.37, then the 20.57 build from glibc 2.38', () => {
    expect(names(linux(127, '2.36'))).toEqual(['uws-pack']);
    expect(names(linux(127, '2.27'))).toEqual(['uws-pack']);
    expect(names(linux(127, '2.39'))).toEqual(['uws-pack', '@btc-vision/uwebsockets.js']);
  });

  it('Node 24 and 25 (ABI 137, 141) on Debian 12: none, and the reason names the glibc and the remedy', () => {
    for (const abi of [137, 141]) {
      const c = chooseEngine(linux(abi, '2.36'));
      expect(c.ok).toBe(false);
      if (c.ok) continue;
      expect(c.reason).toContain(`Node ${abi === 137 ? 24 : 25} on linux-x64 (glibc 2.36)`);
      expect(c.reason).toContain('@btc-vision/uwebsockets.js@20.57.0 needs glibc 2.38');
      expect(c.reason).toContain('run Node 20 or 22');
      expect(c.reason).not.toContain('\n');
    }
  });

  it('Node 18 and 21 (ABI 108, 120), outside the tested set: the builds that have them', () => {
    expect(names(linux(108, '2.31'))).toEqual(['uWebSockets.js', 'uws-pack']);
    expect(names(linux(120, '2.36'))).toEqual(['uws-pack']);
  });

  it('Node 24 and 25 on glibc 2.38 or later: the 20.57 build', () => {
    expect(names(linux(137, '2.38'))).toEqual(['@btc-vision/uwebsockets.js']);
    expect(names(linux(141, '2.41'))).toEqual(['@btc-vision/uwebsockets.js']);
  });

  it('compares glibc versions numerically (2.4 < 2.27 < 2.100)', () => {
    expect(names(linux(115, '2.4'))).toMatch(/needs glibc 2.27/);
    expect(names(linux(137, '2.100'))).toEqual(['@btc-vision/uwebsockets.js']);
  });

  it('a Node with no build at all (Node 23, ABI 131; an unknown future ABI) says which Nodes to run', () => {
    expect(names(linux(131, '2.36'))).toMatch(/^no native uWebSockets.js build for Node 23 on linux-x64 \(glibc 2.36\): use Node 20 or 22/);
    expect(names(linux(150, '2.40'))).toMatch(/Node with module ABI 150/);
  });

  it('musl (Alpine) and unsupported platforms are refused with what to use instead', () => {
    expect(names(linux(115, null))).toMatch(/musl.*glibc-based image/);
    expect(names({ platform: 'freebsd', arch: 'x64', abi: 115 })).toMatch(/run on Linux \(glibc\) or macOS/);
    expect(names({ platform: 'linux', arch: 'ia32', abi: 115, glibc: '2.36' })).toMatch(/linux-ia32/);
  });

  it('macOS needs no glibc', () => {
    expect(names({ platform: 'darwin', arch: 'arm64', abi: 127 })).toEqual(['uws-pack', '@btc-vision/uwebsockets.js']);
  });

  it('`engine` pins one package; an unknown name is refused listing the known ones', () => {
    expect(names(linux(115, '2.36'), 'uws-pack')).toEqual(['uws-pack']);
    expect(names(linux(115, '2.36'), 'auto')).toEqual(['uWebSockets.js', 'uws-pack']);
    expect(names(linux(127, '2.36'), 'uWebSockets.js')).toMatch(
      /@trufflesuite\/uws-js-unofficial@20.30.0-unofficial.0 has none; engine 'auto' would load uws-pack$/,
    );
    expect(names(linux(115, '2.36'), '@btc-vision/uwebsockets.js')).toMatch(
      /needs glibc 2.38 \(Debian 13, Ubuntu 24.04\); engine 'auto' would load uWebSockets.js$/,
    );
    expect(names(linux(137, '2.36'), 'uws-pack')).toMatch(/uws-pack@20.0.8 has none; use Node 20 or 22/);
    expect(names(linux(115, '2.36'), 'fallback')).toMatch(/unknown engine "fallback" \(one of: auto, uWebSockets.js, uws-pack, @btc-vision\/uwebsockets.js\)/);
  });

  it('every candidate is an exact-pinned dependency of the package', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default as {
      dependencies: Record<string, string>;
      optionalDependencies: Record<string, string>;
    };
    const deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
    for (const c of CANDIDATES) {
      const [, real, version] = /^(.+)@([^@]+)$/.exec(c.spec)!;
      const want = c.name === real ? version : `npm:${real}@${version}`;
      expect(deps[c.name], c.name).toBe(want);
    }
  });
});

describe('uWebSockets.js engine on this runtime', () => {
  const expected = Number(process.versions.modules) === 127 ? 'uws-pack' : 'uWebSockets.js';

  it(`loads the native build the choice names first (${expected} on Node ${process.versions.node})`, () => {
    const rt = currentRuntime();
    expect(rt.glibc).toMatch(/^2\.\d+$/);
    const e = loadEngine('auto');
    expect(e.kind).toBe('native');
    expect(e.name).toBe(expected);
    expect(e.skipped).toEqual([]);
    expect(String(e.uws.App)).toContain('[native code]');
  });

  it('a pinned package with no build for this Node is an EngineError of one line', () => {
    const other = expected === 'uws-pack' ? 'uWebSockets.js' : '@btc-vision/uwebsockets.js';
    let err: unknown;
    try {
      loadEngine(other);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as Error).message).toMatch(/^no native uWebSockets.js build for Node \d+ on linux-x64 \(glibc 2\.\d+\): /);
    expect((err as Error).message).not.toContain('\n');
  });

  it('reports the engine and its package in /healthz', async () => {
    const node = await startNode();
    const r = await http(`${node.url}/healthz`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: 'ok',
      engine: 'native',
      enginePackage: CANDIDATES.find((c) => c.name === expected)!.spec,
      node: node.gateway.nodeId,
      sessions: 0,
    });
  });

  it('`switchyard start` with an engine that cannot load refuses in one line naming the remedy, exit code 2', () => {
    const pin = expected === 'uws-pack' ? 'uWebSockets.js' : '@btc-vision/uwebsockets.js';
    const r = spawnSync(process.execPath, ['bin/switchyard.mjs', 'start', '--port', '0', '--engine', pin], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^switchyard: no native uWebSockets.js build for Node \d+ on linux-x64 \(glibc 2\.\d+\): .*engine 'auto' would load /);
  });
});
