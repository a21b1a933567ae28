/**
 * The one file that loads uWebSockets.js. uWS ships as prebuilt binaries, one per platform ×
 * Node ABI, and no single npm package covers every Node LTS on every glibc. Switchyard depends on
 * three, exact-pinned, and picks per runtime:
 *
 * | order | package (as installed)                                   | uWS    | Node ABIs (versions)        | glibc ≥ |
 * |-------|----------------------------------------------------------|--------|-----------------------------|---------|
 * | 1     | `uWebSockets.js` = `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0` | 20.30 | 93, 108, 115 (16, 18, 20) | 2.27 |
 * | 2     | `uws-pack@20.0.8`                                        | 20.x   | 108, 115, 120, 127 (18–22)  | 2.27    |
 * | 3     | `@btc-vision/uwebsockets.js@20.57.0`                     | 20.57  | 115, 127, 137, 141 (20–25)  | 2.38    |
 *
 * The first that has a binary for this platform, architecture and ABI, whose glibc need the system
 * meets, and that loads, is the engine. The binary is loaded directly (not through the package's
 * own entry point): the first package's entry falls back, silently, to a `ws`-based shim whose
 * upgrade handler throws `not implemented` at the first WebSocket client, and the second is ESM
 * only. There is no JS fallback: with no native build the gateway refuses to start, saying which
 * Node and glibc would do (`EngineError`).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as UWS from 'uWebSockets.js';

export type Uws = typeof UWS;

/** A prebuilt uWebSockets.js package Switchyard can run on */
export interface EngineCandidate {
  /** the name it is installed under (package.json's dependency key) */
  name: string;
  /** the package and version it really is */
  spec: string;
  /** the uWebSockets.js release its binaries are built from */
  uws: string;
  /** Node module ABIs (`process.versions.modules`) it has linux/darwin/win32 binaries for */
  abis: readonly number[];
  /** the oldest glibc its Linux binaries load on */
  glibc: string;
  /** its binary for a platform, arch and ABI, relative to the package's folder */
  binary(platform: string, arch: string, abi: number): string;
  /** tested by this project's suite (on this machine: Debian 12, glibc 2.36) */
  tested: boolean;
}

/** The candidates, in the order they are tried */
export const CANDIDATES: readonly EngineCandidate[] = [
  {
    name: 'uWebSockets.js',
    spec: '@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0',
    uws: '20.30.0',
    abis: [93, 108, 115],
    glibc: '2.27',
    binary: (p, a, abi) => `binaries/uws_${p}_${a}_${abi}.node`,
    tested: true,
  },
  {
    name: 'uws-pack',
    spec: 'uws-pack@20.0.8',
    uws: '20.x',
    abis: [108, 115, 120, 127],
    glibc: '2.27',
    binary: (p, a, abi) => `dist/bin/uws_${p}_${a}_${abi}.node`,
    tested: true,
  },
  {
    name: '@btc-vision/uwebsockets.js',
    spec: '@btc-vision/uwebsockets.js@20.57.0',
    uws: '20.57.0',
    abis: [115, 127, 137, 141],
    glibc: '2.38',
    binary: (p, a, abi) => `uws_${p}_${a}_${abi}.node`,
    tested: false,
  },
];

/** Node major versions by module ABI (for messages) */
const NODE_OF_ABI: Record<number, string> = { 93: '16', 108: '18', 115: '20', 120: '21', 127: '22', 131: '23', 137: '24', 141: '25' };
/** platforms and architectures the prebuilt packages cover */
const PLATFORMS = new Set(['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64']);

export interface Runtime {
  platform: string;
  arch: string;
  /** `process.versions.modules` */
  abi: number;
  /** the C library's version on Linux; null for musl (or unknown), undefined off Linux */
  glibc?: string | null;
}

/** What `chooseEngine` decided: the candidates to try, in order, or why none can work */
export type EngineChoice = { ok: true; candidates: EngineCandidate[] } | { ok: false; reason: string };

/** Compares dotted versions: <0, 0 or >0 */
function versionCompare(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The engine choice for a runtime, without loading anything: the candidates with a binary for it,
 * in the documented order, or the one-line reason there is none and what to do instead.
 * `only` restricts the choice to one candidate (the `engine` option).
 */
export function chooseEngine(rt: Runtime, only?: string): EngineChoice {
  const pool = only === undefined || only === 'auto' ? CANDIDATES : CANDIDATES.filter((c) => c.name === only);
  if (pool.length === 0) return { ok: false, reason: `unknown engine ${JSON.stringify(only)} (one of: auto, ${CANDIDATES.map((c) => c.name).join(', ')})` };
  const node = NODE_OF_ABI[rt.abi] ?? `with module ABI ${rt.abi}`;
  const here = `Node ${node} on ${rt.platform}-${rt.arch}${rt.platform === 'linux' ? (rt.glibc ? ` (glibc ${rt.glibc})` : ' (musl or no glibc)') : ''}`;
  if (!PLATFORMS.has(`${rt.platform}-${rt.arch}`)) {
    return { ok: false, reason: `no native uWebSockets.js build for ${here}: run on Linux (glibc) or macOS on x64/arm64, or Windows on x64` };
  }
  if (rt.platform === 'linux' && !rt.glibc) {
    return {
      ok: false,
      reason: `no native uWebSockets.js build for ${here}: uWS ships glibc binaries only; use a glibc-based image (e.g. node:22-bookworm-slim, not alpine)`,
    };
  }
  const forAbi = pool.filter((c) => c.abis.includes(rt.abi));
  const fits = forAbi.filter((c) => rt.platform !== 'linux' || versionCompare(rt.glibc!, c.glibc) >= 0);
  if (fits.length > 0) return { ok: true, candidates: fits };
  // pinned to one that cannot work here while another would: say which
  const auto = pool === CANDIDATES ? null : chooseEngine(rt);
  const instead = auto?.ok ? `; engine 'auto' would load ${auto.candidates[0].name}` : '';
  if (forAbi.length > 0) {
    const need = forAbi.map((c) => `${c.spec} needs glibc ${c.glibc} (Debian 13, Ubuntu 24.04)`).join('; ');
    return { ok: false, reason: `no native uWebSockets.js build for ${here}: ${need}${instead || '; or run Node 20 or 22, which load on glibc 2.27'}` };
  }
  const which = pool === CANDIDATES ? '' : `${pool[0].spec} has none; `;
  return {
    ok: false,
    reason: `no native uWebSockets.js build for ${here}: ${which}${instead ? instead.slice(2) : 'use Node 20 or 22 (glibc ≥ 2.27), or Node 24/25 on glibc ≥ 2.38 (Debian 13, Ubuntu 24.04)'}`,
  };
}

/** The runtime this process runs on */
export function currentRuntime(): Runtime {
  let glibc: string | null | undefined;
  if (process.platform === 'linux') {
    const report = process.report as unknown as { excludeNetwork: boolean; getReport(): { header: { glibcVersionRuntime?: string } } };
    report.excludeNetwork = true;
    glibc = report.getReport().header.glibcVersionRuntime ?? null;
  }
  return { platform: process.platform, arch: process.arch, abi: Number(process.versions.modules), glibc };
}

/** No native uWebSockets.js could be loaded: the message is one line, with the remedy */
export class EngineError extends Error {
  override name = 'EngineError';
}

/** The engine a process runs on */
export interface Engine {
  uws: Uws;
  /** always 'native': there is no JS fallback */
  kind: 'native';
  /** the candidate's installed name */
  name: string;
  /** the package and version */
  spec: string;
  /** the uWebSockets.js release */
  version: string;
  /** candidates tried before it, and why each failed */
  skipped: string[];
}

const loaded = new Map<string, Engine>();

/**
 * Loads the engine (once per process and choice). `only`: 'auto' (or undefined) tries the
 * candidates in order; a candidate's name loads just that one. The `SWITCHYARD_ENGINE` variable
 * is the default of `only`.
 * @throws EngineError with the one-line reason and remedy
 */
export function loadEngine(only: string | undefined = process.env.SWITCHYARD_ENGINE || undefined): Engine {
  const key = only ?? 'auto';
  const known = loaded.get(key);
  if (known !== undefined) return known;
  const rt = currentRuntime();
  const choice = chooseEngine(rt, only);
  if (!choice.ok) throw new EngineError(choice.reason);
  const require = createRequire(import.meta.url);
  const skipped: string[] = [];
  for (const c of choice.candidates) {
    const dir = packageDir(require, c.name);
    if (dir === null) {
      skipped.push(`${c.spec}: not installed`);
      continue;
    }
    const file = join(dir, c.binary(rt.platform, rt.arch, rt.abi));
    if (!existsSync(file)) {
      skipped.push(`${c.spec}: no ${file}`);
      continue;
    }
    try {
      const uws = require(file) as Uws;
      const engine: Engine = { uws, kind: 'native', name: c.name, spec: c.spec, version: c.uws, skipped };
      loaded.set(key, engine);
      return engine;
    } catch (err) {
      skipped.push(`${c.spec}: ${String((err as Error).message).split('\n')[0]}`);
    }
  }
  throw new EngineError(
    `no native uWebSockets.js loaded for Node ${process.versions.node} on ${rt.platform}-${rt.arch}${rt.glibc ? ` (glibc ${rt.glibc})` : ''}: ` +
      `${skipped.join('; ')}; reinstall with \`npm ci\` (optional dependencies on)`,
  );
}

/** The folder a dependency is installed in, on Node's lookup paths (whatever its `exports` allow), or null */
function packageDir(require: NodeJS.Require, name: string): string | null {
  for (const base of require.resolve.paths(name) ?? []) {
    const dir = join(base, name);
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return null;
}

export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
