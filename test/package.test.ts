/**
 * The package as users get it: `npm pack`, installed into an empty folder together with the
 * example app (examples/chat-app, its own package importing only the public API), type-checked
 * against the packed declarations, run with `npx switchyard start` and embedded with
 * `createServer`. Real npm, real processes, the registry (or npm's cache) for the dependencies.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { listening, WsClient } from './helpers.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-pack-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** one `say` from a native WebSocket client: the app's reply and its broadcast come back */
async function chat(port: number): Promise<void> {
  const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
  const r = await c.request('say', 'hello');
  expect(r.args).toEqual([1]);
  await c.next((f) => f.type === 'event' && f.event === 'said');
  expect(c.frames.find((f) => f.event === 'said')!.args).toEqual([c.open.sid, 'hello']);
  expect((await c.request('echo', 'a', 2)).args).toEqual(['a', 2]);
  c.sock.close();
}

describe('the packed package', () => {
  let tarball = '';
  const app = join(dir, 'app');

  it('npm pack ships the compiled code, its types, the command and the client; no sources, tests or benchmarks', async () => {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root });
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(dir, info.filename);
    const files = info.files.map((f) => f.path);
    for (const f of [
      'package.json',
      'README.md',
      'bin/switchyard.mjs',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/gateway/cli.js',
      'dist/demo/app.js',
      'client/switchyard.js',
      'client/switchyard.d.ts',
      'docs/embedding.md',
    ])
      expect(files, f).toContain(f);
    expect(files.filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^(test|bench|scripts|examples|gateway|transports|cluster|lib)\//.test(f))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; bin: Record<string, string> };
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(pkg.bin).toEqual({ switchyard: 'bin/switchyard.mjs' });
  });

  it('installs into an empty folder with the example app, whose TypeScript checks against the packed types', async () => {
    cpSync(join(root, 'examples', 'chat-app'), app, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) });
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app, timeout: 150_000 });
    expect(existsSync(join(app, 'node_modules', 'switchyard', 'dist', 'index.js'))).toBe(true);
    // the app's own compiler, its own tsconfig: what a user's `npm run build` does
    await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app });
    expect(existsSync(join(app, 'dist', 'app.js'))).toBe(true);
    // the second entry: the native client, for Node or a bundler
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const c = await import('switchyard/client'); console.log(typeof c.connect)"],
      { cwd: app },
    );
    expect(stdout.trim()).toBe('function');
  }, 180_000);

  it('`npx switchyard start --app dist/app.js` serves the app, with no TypeScript loader installed at all', async () => {
    // tsx is a dependency only for apps written in TypeScript: without it the command still runs
    rmSync(join(app, 'node_modules', 'tsx'), { recursive: true, force: true });
    // its own process group: npx runs the command under npm, and SIGTERM goes to the whole group
    const child = spawn('npx', ['switchyard', 'start', '--port', '0', '--host', '127.0.0.1', '--app', 'dist/app.js'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.push(child);
    const { port, out } = await listening(child, 30_000);
    expect(out()).toMatch(/engine: native uWebSockets\.js .* from .*; bus: memory; app: dist\/app\.js/);
    await chat(port);
    process.kill(-child.pid!, 'SIGTERM');
    await vi.waitFor(() => expect(child.exitCode ?? child.signalCode).not.toBeNull(), { timeout: 10_000 });
    expect(out()).toContain('switchyard: SIGTERM, closing');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  }, 60_000);

  it('a TypeScript app and no tsx: a Node that strips types (22.18+) runs it; Node 20 refuses in one line naming the remedies', async () => {
    const child = spawn('npx', ['switchyard', 'start', '--port', '0', '--host', '127.0.0.1', '--app', 'src/app.ts'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.push(child);
    if ((process.features as { typescript?: string }).typescript) {
      const { port } = await listening(child, 30_000);
      await chat(port);
      process.kill(-child.pid!, 'SIGTERM');
      await vi.waitFor(() => expect(child.exitCode ?? child.signalCode).not.toBeNull(), { timeout: 10_000 });
    } else {
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      await vi.waitFor(() => expect(child.exitCode).not.toBeNull(), { timeout: 20_000 });
      expect(child.exitCode).toBe(2);
      // (npm may add lines of its own about the exit code; ours is one line)
      expect(err.split('\n').filter((l) => l.startsWith('switchyard:'))).toEqual([
        'switchyard: src/app.ts is TypeScript: compile it to JavaScript, install tsx (npm i tsx), or run Node 22.18 or later (which strips types) (see --help)',
      ]);
    }
  }, 60_000);

  it('the example embeds it: createServer in its own process', async () => {
    const child = spawn(process.execPath, ['dist/server.js'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: '0' } });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const line = await vi.waitFor(
      () => {
        const m = /^\{"listening".*\}$/m.exec(out);
        if (!m) throw new Error(out);
        return JSON.parse(m[0]) as { listening: number; node: string; engine: string };
      },
      { timeout: 20_000, interval: 50 },
    );
    expect(line.engine).toMatch(/^(@trufflesuite\/uws-js-unofficial|uws-pack)@/);
    await chat(line.listening);
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(child.exitCode).toBe(0), { timeout: 10_000 });
  }, 60_000);
});
