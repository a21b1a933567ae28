/** The layers hold: which folder may import which (docs/architecture.md, "Layers"). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** every relative import (static, dynamic, type-only) of the source files in `folder`, as "file → target folder" */
function importsOf(folder: string): Array<{ file: string; to: string }> {
  const out: Array<{ file: string; to: string }> = [];
  for (const name of readdirSync(join(ROOT, folder), { recursive: true }) as string[]) {
    if (!/\.(ts|js|mjs)$/.test(name) || name.endsWith('.d.ts')) continue;
    const text = readFileSync(join(ROOT, folder, name), 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = join(folder, name, '..', m[1]!);
      out.push({ file: join(folder, name), to: target.split('/')[0]! });
    }
  }
  return out;
}

const RULES: Record<string, string[]> = {
  lib: ['lib'],
  cluster: ['cluster', 'lib'],
  transports: ['transports', 'cluster', 'lib'],
  client: ['client'],
};

describe('layers', () => {
  for (const [folder, allowed] of Object.entries(RULES)) {
    it(`${folder}/ imports only ${allowed.join(', ')}`, () => {
      expect(importsOf(folder).filter((i) => !allowed.includes(i.to))).toEqual([]);
    });
  }

  it('the check sees a forbidden import (it would catch one)', () => {
    const probe = importsOf('gateway');
    expect(probe.some((i) => i.to === 'transports')).toBe(true);
  });
});
