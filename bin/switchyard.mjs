#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main, UsageError } = await import('../gateway/cli.ts');
try {
  await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`switchyard: ${err.message} (see --help)`);
    process.exit(2);
  }
  throw err;
}
