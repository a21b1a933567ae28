import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { closeAll, http, keepAliveHttp, listening, portBelowEphemeral, startNode, WsClient } from './helpers.ts';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolveOptions } from '../gateway/options.ts';

const bin = join(import.meta.dirname, '..', 'bin', 'switchyard.mjs');
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await closeAll();
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
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+) \(engine: native uWebSockets\.js \d[^)]* from (@trufflesuite\/uws-js-unofficial|uws-pack)@/.exec(
          out(),
        );
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
    const child = spawn('npm', ['start', '--silent', '--', '--port', '0', '--host', '127.0.0.1'], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
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

/**
 * `switchyard start` under `ulimit -n 256`, on a fixed port below the ephemeral range, as
 * deployments use: an ephemeral one (--port 0) can be held by a flood's connections in TIME_WAIT
 * when the node wants to listen on it again
 */
async function smallNode(): Promise<{ child: ChildProcess; port: number; out: () => string }> {
  const fixed = await portBelowEphemeral();
  const child = spawn('sh', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${bin}" start --port ${fixed} --host 127.0.0.1`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const { port, out } = await listening(child);
  return { child, port, out };
}

describe('at the open-file limit', () => {
  it('a node run with ulimit -n 256 flooded with idle connections stops accepting (refused at once, no accept spin, /readyz saturated) and serves again once they go', async () => {
    const { child, port, out } = await smallNode();
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
    const outcome = await new Promise<string>(
      (r) => (late.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')), late.once('connect', () => r('connected'))),
    );
    expect(outcome).toBe('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await ask('/healthz')).toMatch(/^HTTP\/1\.1 200/);
    // the flood goes: it listens again and opens sessions
    for (const s of flood) s.destroy();
    await vi
      .waitFor(async () => expect(await ask('/readyz')).toMatch(/^HTTP\/1\.1 200/), { timeout: 5000, interval: 200 })
      .catch(async (e) => {
        throw new Error(`${e}\n${await ask('/healthz')}\n${out()}`);
      });
    const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
    expect((await c.request('echo', 'back')).args).toEqual(['back']);
    c.sock.close();
    close();
    expect(refused).toBeGreaterThan(0);
  });
});

describe('requests the HTTP parser cannot read', () => {
  it('a NUL in a header value: uWS answers nothing and closes them itself after its idle timeout (~10 s); meanwhile they count against the open-file guard like any connection, and the node serves everyone else', async () => {
    const { port, out } = await smallNode();
    const { connect } = await import('node:net');
    const { ask, close } = await keepAliveHttp(port);
    const bad = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n';
    // more unreadable requests than the node has descriptors for, none of them ever answered
    const flood: import('node:net').Socket[] = [];
    let answered = 0;
    let closedByNode = 0;
    const started = Date.now();
    for (let i = 0; i < 300; i++) {
      const s = connect(port, '127.0.0.1', () => s.write(bad));
      s.on('data', () => answered++);
      s.on('error', () => {});
      s.on('close', () => closedByNode++);
      flood.push(s);
    }
    // they count: the guard stops accepting, /readyz says so on a connection made before
    await vi.waitFor(async () => expect(await ask('/readyz')).toContain('"reason":"saturated"'), { timeout: 5000, interval: 200 });
    expect(out()).toMatch(/open files at \d+ of 256: not accepting connections/);
    // uWS closes them itself after its idle timeout; the node then accepts again
    await vi.waitFor(async () => expect(await ask('/readyz')).toMatch(/^HTTP\/1\.1 200/), { timeout: 25_000, interval: 250 });
    await vi.waitFor(() => expect(closedByNode).toBe(300), { timeout: 25_000, interval: 250 });
    expect(answered).toBe(0);
    console.log(`unreadable requests: all 300 closed by the node after ${Date.now() - started} ms`);
    const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
    expect((await c.request('echo', 'back')).args).toEqual(['back']);
    c.sock.close();
    close();
  }, 40_000);

  it('too many header lines: uWS 20.30 (Node 20) answers nothing and closes after its idle timeout; the Node 22 build answers 431 and closes at once', async () => {
    const node = await startNode();
    const { connect } = await import('node:net');
    const request = 'GET /healthz HTTP/1.1\r\nHost: x\r\n' + Array.from({ length: 100 }, (_, i) => `X-${i}: y\r\n`).join('') + '\r\n';
    const s = connect(node.port, '127.0.0.1', () => s.write(request));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    const started = Date.now();
    if (node.gateway.engine.name === 'uws-pack') {
      await new Promise((r) => s.once('close', r));
      expect(got).toMatch(/^HTTP\/1\.1 431 /);
      expect(Date.now() - started).toBeLessThan(2000);
    } else {
      await new Promise((r) => setTimeout(r, 1000));
      expect(got).toBe('');
      expect(s.destroyed).toBe(false);
      s.destroy();
    }
    // the node serves everyone else meanwhile
    expect((await http(`${node.url}/healthz`)).status).toBe(200);
  });
});

describe('one configuration schema: flags, variables, a config file', () => {
  /** runs the CLI to its end (a refusal), with `env` added */
  async function refused(args: string[], env: Record<string, string> = {}): Promise<string> {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await vi.waitFor(() => expect(child.exitCode).toBe(2), { timeout: 15000 });
    return out;
  }

  it('--help lists every option with its form, default, variable and config-file key', async () => {
    const { OPTIONS, envName, camel } = await import('../gateway/config.ts');
    const { child, out } = run(['--help']);
    await vi.waitFor(() => expect(child.exitCode).toBe(0), { timeout: 15000 });
    for (const o of OPTIONS) {
      expect(out()).toContain(o.secret ? `(variable only) ${envName(o.flag)}` : `--${o.flag}`);
      expect(out()).toContain(`default: ${o.def}; variable: ${envName(o.flag)}`);
      expect(out()).toContain(`config file: ${camel(o.flag)}`);
    }
    // every gateway option of the API is reachable from the command line: the secrets through
    // SWITCHYARD_SECRET's list, atLeastOnce by the command (on for a gateway on NATS)
    const keys = new Set(OPTIONS.map((o) => o.to.split('.')[0]));
    for (const k of Object.keys(resolveOptions({}))) if (!['secret', 'previousSecrets', 'atLeastOnce'].includes(k)) expect(keys, k).toContain(k);
  });

  it('a wrong value is refused at start with where it came from, the value and the form expected (exit 2)', async () => {
    expect(await refused(['start', '--max-sessions', 'many'])).toContain('switchyard: --max-sessions: "many" is not an integer >= 0');
    expect(await refused(['start'], { SWITCHYARD_PING_MS: '5' })).toContain('SWITCHYARD_PING_MS: "5" is not an integer >= 100');
    expect(await refused(['start', '--socketio-parser', 'cbor'])).toContain('--socketio-parser: "cbor" is not default | msgpack');
    expect(await refused(['start', '--secret', 'on-the-command-line'])).toContain('--secret is not taken as a flag');
    const dir = mkdtempSync(join(tmpdir(), 'sy-cfg-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ maxRoomsPerSession: -1 }));
    expect(await refused(['start', '--config', join(dir, 'bad.json')])).toContain(`${join(dir, 'bad.json')}: maxRoomsPerSession: -1 is not an integer >= 0`);
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ maxSesions: 5 }));
    expect(await refused(['start', '--config', join(dir, 'typo.json')])).toContain('unknown option "maxSesions"');
    // checks of the options themselves (past the form) name the option too
    expect(await refused(['start'], { SWITCHYARD_JWT_SECRET: 'too-short' })).toContain('option jwt.secret must be at least 32 bytes');
  });

  it('a config file sets options; variables override it and flags override both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-cfg-'));
    const file = join(dir, 'switchyard.json');
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, maxSessions: 7, maxRoomsPerSession: 3, allowedOrigins: ['https://a.example'] }));
    const child = spawn(process.execPath, [bin, 'start', '--config', file, '--max-rooms-per-session', '5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHYARD_MAX_SESSIONS: '9' },
    });
    children.push(child);
    const { port } = await listening(child);
    expect((await http(`http://127.0.0.1:${port}/healthz`)).body).toMatchObject({ maxSessions: 9 });
    const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
    for (const r of ['a', 'b', 'c', 'd', 'e']) await c.request('join', r);
    c.emit('join', 'f');
    expect(await c.waitClosed()).toEqual({ code: 4429, reason: 'SY_ERR_TOO_MANY_ROOMS' });
    const other = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`, { headers: { origin: 'https://b.example' } });
    expect(other.frames[0]).toMatchObject({ type: 'close', code: 4403, reason: 'SY_ERR_BAD_ORIGIN' });
  });
});

describe('logs', () => {
  it('JSON lines; at debug a line per session open and close with its sid, never its token or credentials; client-caused errors one line per cause', async () => {
    const child = spawn(process.execPath, [bin, 'start', '--port', '0', '--host', '127.0.0.1', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const { port, out } = await listening(child);
    const c = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws?auth=s3cret-credential`);
    const { sid, token } = c.open;
    c.send({ type: 'close' });
    await c.waitClosed();
    // 30 sessions that send garbage: one line for the cause, one at its 10th time
    for (let i = 0; i < 30; i++) {
      const bad = await WsClient.open(`ws://127.0.0.1:${port}/rt/ws`);
      bad.send('{not json');
      await bad.waitClosed();
    }
    const lines = () =>
      out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, any>);
    await vi.waitFor(() => expect(lines().some((l) => l.msg === 'session closed' && l.sid === sid)).toBe(true));
    const opened = lines().find((l) => l.msg === 'session open' && l.sid === sid)!;
    expect(opened).toMatchObject({ level: 20, sid, dialect: 'native', transport: 'websocket' });
    await vi.waitFor(() =>
      expect(
        lines()
          .filter((l) => l.cause === 'session closed: SY_ERR_MALFORMED_FRAME')
          .map((l) => l.count),
      ).toEqual([1, 10]),
    );
    expect(lines().find((l) => l.cause === 'session closed: SY_ERR_MALFORMED_FRAME' && l.count === 1)).toMatchObject({ level: 40, code: 1007 });
    expect(out()).not.toContain(token);
    expect(out()).not.toContain('s3cret-credential');
  });

  it('--log-level error keeps warnings out', async () => {
    const fixed = await portBelowEphemeral();
    const { child, out } = run(['start', '--port', String(fixed), '--host', '127.0.0.1', '--log-level', 'error']);
    await vi.waitFor(async () => expect((await http(`http://127.0.0.1:${fixed}/healthz`)).status).toBe(200), { timeout: 15000, interval: 100 });
    const bad = await WsClient.open(`ws://127.0.0.1:${fixed}/rt/ws`);
    bad.send('{not json');
    await bad.waitClosed();
    const ok = await WsClient.open(`ws://127.0.0.1:${fixed}/rt/ws`);
    expect((await ok.request('echo', 1)).args).toEqual([1]);
    expect(out()).not.toContain('SY_ERR_MALFORMED_FRAME');
    expect(out()).not.toContain('listening on');
    child.kill('SIGTERM');
    await vi.waitFor(() => expect(child.exitCode).toBe(0), { timeout: 10000 });
  });
});
