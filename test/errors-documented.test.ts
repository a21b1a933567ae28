import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dialectCells, errors } from '../transports/seam/errors.ts';

const root = join(import.meta.dirname, '..');
const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(join(root, p)).isDirectory()) return sources(p);
    return /\.(ts|js|mjs)$/.test(f) ? [p] : [];
  });
}

describe('error codes', () => {
  const used = new Set<string>();
  for (const dir of ['gateway', 'transports', 'cluster', 'client']) {
    for (const f of sources(dir)) for (const m of readFileSync(join(root, f), 'utf8').matchAll(/SY_ERR_[A-Z_]+/g)) used.add(m[0]);
  }

  it('every code used in the source is in the table', () => {
    expect([...used].filter((c) => !(c in errors))).toEqual([]);
  });

  it.each(Object.entries(errors))("%s is documented in docs/errors.md with its WebSocket code, HTTP status and each dialect's consequence", (code, e) => {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    expect(row, `no row for ${code}`).toBeDefined();
    const cells = row!.split(' | ').map((c) => c.trim());
    expect(cells[1]).toBe(e.ws === 0 ? '—' : String(e.ws));
    expect(cells[2]).toBe(e.http === 0 ? '—' : String(e.http));
    const d = dialectCells(e);
    expect(cells.slice(3, 7)).toEqual([d.eio, d.sio, d.signalr, d.sockjs]);
  });
});
