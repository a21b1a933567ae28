#!/usr/bin/env node
// Runs a TypeScript file of this project (used by npm scripts): node bin/run-ts.mjs file.ts [args]
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

register();
const file = process.argv[2];
process.argv.splice(1, 1); // the script sees: node file.ts args…
await import(pathToFileURL(resolve(file)).href);
