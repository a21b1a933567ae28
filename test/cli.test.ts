import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { http } from './helpers.ts';
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
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const port = await vi.waitFor(
      () => {
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (!m) throw new Error(out);
        return Number(m[1]);
      },
      { timeout: 20000, interval: 50 },
    );
    expect((await http(`http://127.0.0.1:${port}/healthz`)).body).toMatchObject({ status: 'ok' });
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(child.exitCode ?? child.signalCode).not.toBeNull(), { timeout: 10000 });
    expect(out).toContain('switchyard: SIGTERM, closing');
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
