/** The layers hold: which folder may import which (docs/architecture.md, "Layers"). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** every relative import (static, dynamic, type-only) of the source files in `folder`, as "file → target folder" */
function importsOf(folder: string): Array<{ file: string; to: string }> {
  return [...fileGraph([folder])].flatMap(([file, deps]) => [...deps].map((d) => ({ file, to: d.split('/')[0]! })));
}

/** every relative import (static, dynamic, type-only, re-export) between the files of `folders` (and `extra` files) */
function fileGraph(folders: string[], extra: string[] = []): Map<string, Set<string>> {
  const files = [
    ...folders.flatMap((f) =>
      (readdirSync(join(ROOT, f), { recursive: true }) as string[]).filter((n) => /\.(ts|js|mjs)$/.test(n) && !n.endsWith('.d.ts')).map((n) => join(f, n)),
    ),
    ...extra,
  ];
  const g = new Map<string, Set<string>>();
  for (const file of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) deps.add(join(file, '..', m[1]!));
    g.set(file, deps);
  }
  return g;
}

/** the import cycles of a graph: its strongly connected components of more than one file, and files importing themselves */
function cyclesOf(g: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || g.get(v)!.has(v)) out.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
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
    // (of transports/, the dialects' registry only: their option types)
    expect(
      [...index.matchAll(/from\s*['"]\.\/([a-z/.-]+)['"]/g)]
        .map((m) => m[1]!)
        .filter((f) => !/^(gateway|cluster)\//.test(f) && f !== 'transports/dialects/index.ts'),
    ).toEqual([]);
    // tsx only in the command's loader of a TypeScript app (gateway/cli.ts), nowhere else
    for (const f of ['lib', 'cluster', 'transports', 'gateway', 'demo']) {
      for (const name of readdirSync(join(ROOT, f), { recursive: true }) as string[]) {
        if (!name.endsWith('.ts') || name === 'cli.ts') continue;
        expect(readFileSync(join(ROOT, f, name), 'utf8'), `${f}/${name}`).not.toMatch(/from ['"]tsx|import\(['"]tsx/);
      }
    }
  });

  it('no import cycles between the files of the server code (type-only imports count too)', () => {
    // (the client's JSDoc `@import`s of ClientSession in conn*.js make a comment-only cycle with
    // session.js: its JavaScript imports have none)
    expect(cyclesOf(fileGraph(['lib', 'cluster', 'transports', 'gateway', 'demo'], ['index.ts']))).toEqual([]);
  });

  it('the cycle check finds a cycle (it would catch one)', () => {
    const g = new Map([
      ['a.ts', new Set(['b.ts'])],
      ['b.ts', new Set(['c.ts'])],
      ['c.ts', new Set(['a.ts', 'd.ts'])],
      ['d.ts', new Set(['d.ts'])],
      ['e.ts', new Set(['a.ts'])],
    ]);
    expect(cyclesOf(g)).toEqual([['d.ts'], ['a.ts', 'b.ts', 'c.ts']]);
    // and the real graph has edges to find them on
    expect([...fileGraph(['gateway']).get('gateway/gateway.ts')!]).toContain('gateway/relay.ts');
  });

  it('gateway/ reaches the dialects through their registry (transports/dialects/index.ts) only: it imports nothing inside a dialect folder', () => {
    const graph = fileGraph(['gateway']);
    const named = [...graph].flatMap(([file, deps]) =>
      [...deps].filter((d) => d.startsWith('transports/dialects/') && d !== 'transports/dialects/index.ts').map((d) => `${file} → ${d}`),
    );
    expect(named).toEqual([]);
    expect([...graph.get('gateway/gateway.ts')!]).toContain('transports/dialects/index.ts');
  });

  it('inside transports/: the seam imports no wire or dialect, a wire no dialect, a dialect no other dialect (SockJS carries native frames: it uses the native codec)', () => {
    const graph = fileGraph(['transports']);
    const part = (f: string) => {
      const p = f.split('/');
      return p[1] === 'dialects' && p.length > 3 ? `dialects/${p[2]}` : p[1]!.replace(/\.ts$/, '');
    };
    const ALLOWED: Record<string, (to: string) => boolean> = {
      seam: (to) => to === 'seam',
      wires: (to) => to === 'seam' || to === 'wires',
      'dialects/sockjs': (to) => ['seam', 'wires', 'dialects/sockjs', 'dialects/native'].includes(to),
    };
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      const from = part(file);
      for (const d of deps) {
        if (!d.startsWith('transports/')) continue;
        const to = part(d);
        // (the registry, transports/dialects/index.ts, mounts every dialect)
        const ok = ALLOWED[from]?.(to) ?? (from.startsWith('dialects/') ? to === 'seam' || to === 'wires' || to === from : from === 'dialects');
        if (!ok) bad.push(`${file} → ${d}`);
      }
    }
    expect(bad).toEqual([]);
    // every file sits in one of the layers, and every dialect has its codec.ts and dialect.ts
    expect([...graph.keys()].filter((f) => !/^transports\/(seam|wires|dialects)\//.test(f))).toEqual([]);
    for (const d of ['native', 'socketio', 'signalr', 'sockjs']) {
      expect(graph.has(`transports/dialects/${d}/codec.ts`), d).toBe(true);
      expect(graph.has(`transports/dialects/${d}/dialect.ts`), d).toBe(true);
    }
  });

  it('the dialect folders hold no cross-node code: of cluster/ they import only the types that cross the bus; forwarding is the gateway’s (Port.tunnel)', () => {
    const graph = fileGraph(['transports/dialects']);
    const bad = [...graph].flatMap(([file, deps]) =>
      [...deps].filter((d) => d.startsWith('cluster/') && d !== 'cluster/types.ts').map((d) => `${file} → ${d}`),
    );
    expect(bad).toEqual([]);
    for (const file of graph.keys()) expect(readFileSync(join(ROOT, file), 'utf8'), file).not.toMatch(/\bbus\.publish|subjects\.|\.link\(/);
  });

  it('no code in gateway/ names a dialect (comments may explain one): options, flags, the demo page and routes come from the registry', () => {
    const named: string[] = [];
    for (const name of readdirSync(join(ROOT, 'gateway')).filter((n) => n.endsWith('.ts'))) {
      const code = readFileSync(join(ROOT, 'gateway', name), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/(^|[^:'"\\])\/\/.*$/gm, '$1');
      for (const m of code.matchAll(/.*(socket\.?io|signal\s?r|sock\s?js|engine\.?io).*/gi)) named.push(`gateway/${name}: ${m[0].trim()}`);
    }
    expect(named).toEqual([]);
  });

  it('the check sees a forbidden import (it would catch one)', () => {
    const probe = importsOf('gateway');
    expect(probe.some((i) => i.to === 'transports')).toBe(true);
  });
});
