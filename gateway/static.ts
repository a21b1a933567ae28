/** The demo page and the browser client, read once at start-up. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Gateway } from './gateway.ts';
import { Exchange } from './http.ts';

const root = (p: string) => fileURLToPath(new URL(`../client/${p}`, import.meta.url));

export function mountStatic(gw: Gateway): void {
  const files: Array<[string, string, string]> = [
    ['/', 'demo.html', 'text/html; charset=utf-8'],
    ['/client.js', 'switchyard.js', 'text/javascript; charset=utf-8'],
  ];
  for (const [route, file, type] of files) {
    let body: string;
    try {
      body = readFileSync(root(file), 'utf8');
    } catch {
      body = `missing client/${file}`;
    }
    gw.app.get(route, (res) => new Exchange(res, '').reply(200, type, body));
  }
}
