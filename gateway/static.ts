/** The demo page and the browser client (every module of client/), read once at start-up. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Gateway } from './gateway.ts';
import { Exchange } from '../transports/http.ts';

const root = (p: string) => fileURLToPath(new URL(`../client/${p}`, import.meta.url));
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

export function mountStatic(gw: Gateway): void {
  const files: Array<[string, string, string]> = [
    ['/', 'text/html; charset=utf-8', read('demo.html')],
    // the public entry at its historical URL; relative, so it also works behind a path prefix
    ['/client.js', JS, "export * from './client/switchyard.js';\n"],
    ...modules().map((f): [string, string, string] => [`/client/${f}`, JS, read(f)]),
  ];
  for (const [route, type, body] of files) {
    gw.app.get(route, (res) => new Exchange(res, '').reply(200, type, body));
  }
}
