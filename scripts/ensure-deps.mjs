#!/usr/bin/env node
// `npm test`'s pretest (and, with the argument `bench`, `npm run bench`'s prebench): makes sure the
// system programs the suite (or the benchmarks) need are installed.
// Installs the missing ones from Debian's packages when it can (root + apt-get); otherwise
// says exactly what to install and fails. Tests never skip for a missing program.
import { execFileSync, spawnSync } from 'node:child_process';

const forBench = process.argv[2] === 'bench';
const needs = forBench
  ? [
      { bin: 'nats-server', pkg: 'nats-server', why: 'the cluster rows run a real NATS server' },
      { bin: 'cc', pkg: 'gcc', why: 'the native load generator (bench/loadgen.c) is compiled on first use' },
      { bin: 'taskset', pkg: 'util-linux', why: 'servers and the generator are pinned to their own CPUs' },
    ]
  : [
      { bin: 'nats-server', pkg: 'nats-server', why: 'cluster tests run real NATS servers' },
      { bin: 'chromium', pkg: 'chromium', why: 'browser tests drive the demo page in headless Chromium' },
      { bin: 'haproxy', pkg: 'haproxy', why: 'the deployment test puts HAProxy in front of two gateways' },
      { bin: 'nginx', pkg: 'nginx', why: 'a deployment test puts nginx in front of two gateways' },
    ];

// (haproxy and nginx live in /usr/sbin, which a non-root PATH may leave out)
const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`], { stdio: 'ignore' }).status === 0;
const missing = needs.filter((n) => !has(n.bin));
if (missing.length === 0) process.exit(0);

const pkgs = missing.map((n) => n.pkg);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = !isRoot && has('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
if (has('apt-get') && (isRoot || sudo)) {
  const pre = isRoot ? [] : ['sudo', '-n'];
  const run = (args) => {
    const [cmd, ...rest] = [...pre, ...args];
    console.log(`ensure-deps: ${[cmd, ...rest].join(' ')}`);
    execFileSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  };
  try {
    run(['apt-get', 'update']);
    run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs]);
  } catch (err) {
    console.error(`ensure-deps: installing ${pkgs.join(' ')} failed: ${err.message}`);
  }
}

const still = needs.filter((n) => !has(n.bin));
if (still.length > 0) {
  console.error(`\nThe ${forBench ? 'benchmarks need' : 'test suite needs'} programs that are not installed:`);
  for (const n of still) console.error(`  ${n.bin.padEnd(12)} (${n.why})`);
  console.error(`\nInstall them, for example on Debian/Ubuntu:\n  sudo apt-get update && sudo apt-get install -y ${still.map((n) => n.pkg).join(' ')}\n`);
  process.exit(1);
}
