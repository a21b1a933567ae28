/**
 * The demo page, the browser client (every module of client/), and the browser bundles of the
 * third-party clients the demo page can use (from node_modules), read once at start-up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from './uws.ts';
import type { ResolvedOptions } from './options.ts';

/** What serving the page and the clients needs of its node (the Gateway) */
export interface StaticHost {
  readonly app: TemplatedApp;
  readonly options: ResolvedOptions;
}
import { Exchange, wantsClose } from '../transports/wires/http.ts';
import { pageNeeds, vendorFiles } from '../transports/dialects/index.ts';

/** the package's folder: above gateway/ from the sources, above dist/gateway/ compiled */
const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = basename(dirname(here)) === 'dist' ? join(here, '..', '..') : join(here, '..');
const root = (p: string) => join(pkgRoot, 'client', p);
const JS = 'text/javascript; charset=utf-8';

function read(file: string): string {
  try {
    return readFileSync(root(file), 'utf8');
  } catch {
    return `missing client/${file}`;
  }
}

function modules(): string[] {
  try {
    return readdirSync(root(''), { withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.js'))
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * The third-party clients' browser bundles, as their packages ship them (no build step, no network
 * at run time), as the dialects list them (transports/dialects/index.ts)
 */
const VENDOR: Record<string, string> = vendorFiles();

/** a file of an installed package, also one its `exports` do not list (found on Node's module paths) */
function vendor(file: string): string | null {
  for (const dir of createRequire(import.meta.url).resolve.paths(file) ?? []) {
    try {
      return readFileSync(join(dir, file), 'utf8');
    } catch {}
  }
  return null;
}

/** The demo page, told where this node serves each dialect (its `switchyard-paths` meta tag) */
function demoPage(gw: StaticHost): string {
  const { endpoints, scripts } = pageNeeds(gw.options);
  const attr = JSON.stringify(endpoints).replace(/&/g, '&amp;').replace(/'/g, '&#39;').replace(/</g, '&lt;');
  let page = read('demo.html').replace(/<meta name="switchyard-paths" content='[^']*'>/, `<meta name="switchyard-paths" content='${attr}'>`);
  // a dialect's script served where the dialect is now (or left out when it is off)
  for (const { src, now } of scripts) {
    const tag = new RegExp(`<script src="${src.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"([^>]*)></script>`);
    page = page.replace(tag, (_m, rest: string) => (now === null ? '' : `<script src="${now}"${rest}></script>`));
  }
  return page;
}

export function mountStatic(gw: StaticHost): void {
  const files: Array<[string, string, string]> = [
    ['/', 'text/html; charset=utf-8', demoPage(gw)],
    // the public entry at its historical URL; relative, so it also works behind a path prefix
    ['/client.js', JS, "export * from './client/switchyard.js';\n"],
    ...modules().map((f): [string, string, string] => [`/client/${f}`, JS, read(f)]),
  ];
  for (const [route, type, body] of files) {
    gw.app.get(route, (res, req) => new Exchange(res, '', wantsClose(req)).reply(200, type, body));
  }
  for (const [name, file] of Object.entries(VENDOR)) {
    const body = vendor(file);
    const [status, text] = body === null ? [404, `// ${file} is not installed: run npm ci\n`] : [200, body];
    gw.app.get(`/vendor/${name}`, (res, req) => new Exchange(res, '', wantsClose(req)).reply(status, JS, text));
  }
}
