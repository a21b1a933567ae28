#!/usr/bin/env node
// The `switchyard` command: runs the compiled JavaScript in dist/ (built by `npm ci`'s prepare
// script, shipped in the package), with no TypeScript loader in the process.
let cli;
try {
  cli = await import('../dist/gateway/cli.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('/dist/gateway/cli.js')) {
    console.error('switchyard: not built: run `npm run build` (npm ci runs it) to compile dist/');
    process.exit(2);
  }
  throw err;
}
try {
  await cli.main(process.argv.slice(2));
} catch (err) {
  if (err instanceof cli.UsageError || err?.name === 'EngineError') {
    console.error(`switchyard: ${err.message}${err instanceof cli.UsageError ? ' (see --help)' : ''}`);
    process.exit(2);
  }
  throw err;
}
