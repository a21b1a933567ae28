import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { http, keepAliveHttp, listening, portBelowEphemeral, WsClient } from './helpers.ts';
import { readFileSync } from 'node:fs';
import { resolveOptions } from '../gateway/options.ts';

const bin = join(import.meta.dirname, '..', 'bin', 'switchyard.mjs');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function run(args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out };
}

describe('switchyard CLI', () => {
  it('start --port 0 serves the demo page, the client and /healthz, and says which engine it runs', async () => {
    const { child, out } = run(['start', '--port', '0', '--host', '127.0.0.1']);
    const port = await vi.waitFor(
      () => {
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+) \(engine: native uWebSockets\.js binary/.exec(out());
        if (!m) throw new Error(out());
        return Number(m[1]);
      },
      { timeout: 15000, interval: 50 },
    );
    const h = await http(`http://127.0.0.1:${port}/healthz`);
    expect(h.body).toMatchObject({ status: 'ok', engine: 'native' });
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/client.js');
    const js = await fetch(`http://127.0.0.1:${port}/client.js`);
    expect(await js.text()).toContain('export');
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(child.exitCode).toBe(0), { timeout: 10000 });
  });

  it('npm start: SIGTERM to npm reaches the node, which closes and exits (no orphan left serving)', async () => {
    // npm runs the script through `sh -c`; without `exec` the shell dies and the node keeps serving
    // its own process group: whatever is left of it (an orphaned node) is killed after the test
    const child = spawn('npm', ['start', '--silent', '--', '--port', '0', '--host', '127.0.0.1'], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onTestFinished(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    });
    const { port, out } = await listening(child, 20_000);
    expect((await http(`http://127.0.0.1:${port}/healthz`)).body).toMatchObject({ status: 'ok' });
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(child.exitCode ?? child.signalCode).not.toBeNull(), { timeout: 10000 });
    expect(out()).toContain('switchyard: SIGTERM, closing');
    // the node itself is gone: nothing answers on its port
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('refuses an unknown command with exit code 2', async () => {
    const { child, out } = run(['frobnicate']);
    await vi.waitFor(() => expect(child.exitCode).toBe(2), { timeout: 15000 });
    expect(out()).toContain('unknown command frobnicate');
  });
});

describe('options', () => {
  it('fills defaults and rejects bad values with a TypeError naming the option', () => {
    const o = resolveOptions({ port: 0 });
    expect(o).toMatchObject({ port: 0, pingMs: 25000, pollTimeoutMs: 25000, resumeWindowMs: 60000, outboxMaxFrames: 1024, maxPayloadBytes: 65536 });
    expect(() => resolveOptions({ pingMs: 5 })).toThrow(/pingMs/);
    expect(() => resolveOptions({ port: 70000 })).toThrow(TypeError);
    expect(() => resolveOptions({ outboxMaxFrames: 1.5 })).toThrow(/outboxMaxFrames/);
    expect(() => resolveOptions({ nodeId: 'has.dot' })).toThrow(/nodeId/);
    expect(() => resolveOptions({ secret: 'short' })).toThrow(/secret/);
  });
});

describe('at the open-file limit', () => {
  it('a node run with ulimit -n 256 flooded with idle connections stops accepting (refused at once, no accept spin, /readyz saturated) and serves again once they go', async () => {
    // a fixed port below the ephemeral range, as deployments use: an ephemeral one (--port 0) can
    // be held by the flood's connections in TIME_WAIT when the node wants to listen on it again
    const fixed = await portBelowEphemeral();
    const child = spawn('sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${bin}" start --port ${fixed} --host 127.0.0.1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const { port, out } = await listening(child);
    const { connect } = await import('node:net');
    // a keep-alive HTTP connection made before the flood, to ask /readyz on
    const { ask, close } = await keepAliveHttp(port);
    expect(await ask('/readyz')).toMatch(/^HTTP\/1\.1 200/);
    // the flood: idle TCP connections, more than the node has descriptors for
    const flood: import('node:net').Socket[] = [];
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => refused++);
      flood.push(s);
    }
    await vi.waitFor(async () => expect(await ask('/readyz')).toContain('"reason":"saturated"'), { timeout: 5000, interval: 200 });
    expect(out()).toMatch(/open files at \d+ of 256: not accepting connections/);
    // not spinning on accept: under a third of a core over a second and a half
    const cpu = () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    const t0 = cpu();
    await new Promise((r) => setTimeout(r, 1500));
    expect((cpu() - t0) / 100 / 1.5).toBeLessThan(0.33);
    // a new client is refused at once (not left hanging)
    const started = Date.now();
    const late = connect(port, '127.0.0.1');
    const outcome = await new Promise<string>((r) => (late.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')), late.once('connect', () => r('connected'))));
    expect(outcome).toBe('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await ask('/healthz'))).toMatch(/^HTTP\/1\.1 200/);
    // the flood goes: it listens again and opens sessions
    for (const s of flood) s.destroy();
    await vi.waitFor(async () => expect(await ask('/readyz')).toMatch(/^HTTP\/1\.1 200/), { timeout: 5000, interval: 200 }).catch(async (e) => {
      throw new Error(`${e}\n${await ask('/healthz')}\n${out()}`);
    });
    const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
    expect((await c.request('echo', 'back')).args).toEqual(['back']);
    c.sock.close();
    close();
    expect(refused).toBeGreaterThan(0);
  });
});
