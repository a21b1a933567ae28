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

  it('the compiled code (lib, cluster, transports, gateway, demo, index.ts) imports no test, bench or script code, and no TypeScript loader', () => {
    const shipped = ['lib', 'cluster', 'transports', 'gateway', 'demo'].flatMap((f) => importsOf(f));
    expect(shipped.filter((i) => ['test', 'bench', 'scripts', 'examples'].includes(i.to))).toEqual([]);
    const index = readFileSync(join(ROOT, 'index.ts'), 'utf8');
    expect([...index.matchAll(/from\s*['"]\.\/([a-z]+)\//g)].map((m) => m[1]).filter((f) => !['gateway', 'cluster'].includes(f!))).toEqual([]);
    // tsx only in the command's loader of a TypeScript app (gateway/cli.ts), nowhere else
    for (const f of ['lib', 'cluster', 'transports', 'gateway', 'demo']) {
      for (const name of readdirSync(join(ROOT, f), { recursive: true }) as string[]) {
        if (!name.endsWith('.ts') || name === 'cli.ts') continue;
        expect(readFileSync(join(ROOT, f, name), 'utf8'), `${f}/${name}`).not.toMatch(/from ['"]tsx|import\(['"]tsx/);
      }
    }
  });

  it('the check sees a forbidden import (it would catch one)', () => {
    const probe = importsOf('gateway');
    expect(probe.some((i) => i.to === 'transports')).toBe(true);
  });
});
