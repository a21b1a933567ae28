/**
 * What a benchmark run found, as numbers (summaries of the raw repetitions and the targets), as
 * markdown (the table printed at the end, the README section), as a hand-written SVG chart and as
 * docs/capacity.md. Pure functions of the run record, so a saved bench/results/*.json can be
 * rendered again.
 */
import * as loadgen from './loadgen.ts';
import { CONFIGS, configById, type ConfigId } from './servers.ts';

export interface Sample {
  rep: number;
  /** the cell's key figure: msgs/s (echo), opens/s (open), deliveries/s (fan-out), steady B/session (memory) */
  value: number;
  p50_us?: number;
  p99_us?: number;
  p999_us?: number;
  gen_cpu_pct?: number;
  server_cpu_pct?: number;
  window_s?: number;
  window_ends_at_done?: boolean;
  cpu0_busy_pct?: number;
  cpu1_busy_pct?: number;
  /** CPU seconds per process kind over the window (gateway, worker, nats-server, other) */
  cpu_s_by_kind?: Record<string, number>;
  /** CPU µs per message / open / delivery, per process kind */
  cpu_us_per_unit?: Record<string, number>;
  generator?: { bad_payload?: number; hist?: [number, number][]; status?: string };
  // memory cells
  after_opens_bytes?: number;
  steady_bytes?: number;
  heap_after_opens_bytes?: number;
  heap_steady_bytes?: number;
  sessions?: number;
  sessions_asked?: number;
  failed?: number;
  connect_s?: number;
  rss_base?: number;
  dropped_while_idle?: number;
}

export interface Summary {
  n: number;
  value: number;
  min: number;
  max: number;
  /** (max - min) / median of the key figure */
  spread: number;
  noisy: boolean;
  gen_bound: boolean;
  gen_cpu_pct?: number;
  server_cpu_pct?: number;
  p50_us?: number;
  p99_us?: number;
  p999_us?: number;
  /** latency percentiles from the repetitions' histograms merged (else the median repetition's) */
  latency_from?: 'merged histograms' | 'median of repetitions';
  p99_spread?: number;
  p99_noisy?: boolean;
  cpu_us_per_unit?: Record<string, number>;
  after_opens_bytes?: number;
  steady_bytes?: number;
  heap_after_opens_bytes?: number;
  heap_steady_bytes?: number;
  sessions?: number;
  bad_payload: number;
  /** repetitions during which other work took CPU 0 (> 15 points beyond the server) or CPU 1 (> 25 beyond the generator) */
  disturbed: number;
}

export interface Cell {
  key: string;
  kind: 'echo' | 'open' | 'fanout' | 'memory';
  config: ConfigId;
  inflight?: number;
  samples: Sample[];
  errors: string[];
  summary?: Summary;
}

export interface Run {
  date: string;
  duration_s: number;
  commit?: string;
  dirty: boolean;
  machine: { hostname: string; cpus: number; cpu_model: string; kernel: string; memory_gb: number; fd_limit?: number };
  node: string;
  uws?: string;
  versions: Record<string, string | undefined>;
  engines: Record<string, string | undefined>;
  pinned: boolean;
  niced: boolean;
  load_average_at_start: number;
  options: {
    noise: number;
    conns: number;
    payload: number;
    duration: number;
    warmup: number;
    idle: number;
    steady: number;
    members: number;
    repeat: number;
    quick: boolean;
    idleWarm?: number;
  };
  cells: Cell[];
  errors: string[];
}

/** Median; of an even count, the mean of the two middle values. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const defined = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
const medianOf = (xs: (number | undefined)[]) => {
  const d = defined(xs);
  return d.length ? median(d) : undefined;
};
const spreadOf = (xs: number[]) => (xs.length < 2 ? 0 : (Math.max(...xs) - Math.min(...xs)) / (median(xs) || 1));

interface Hist {
  add(h: Hist): void;
  getValueAtPercentile(p: number): number;
}
function mergedPercentiles(samples: Sample[]): { p50: number; p99: number; p999: number } | undefined {
  const lg = loadgen as unknown as { histogramFrom?: (pairs: [number, number][]) => Hist; addPairs?: (h: Hist, pairs: [number, number][]) => void };
  const from = lg.histogramFrom;
  const hists = samples.map((s) => s.generator?.hist).filter((h): h is [number, number][] => Array.isArray(h) && h.length > 0);
  if (!from || !hists.length || hists.length !== samples.length) return undefined;
  const h = from(hists[0]!);
  for (const other of hists.slice(1)) {
    if (lg.addPairs) lg.addPairs(h, other);
    else h.add(from(other));
  }
  return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9) };
}

export function summarize(run: Run): void {
  for (const cell of run.cells) {
    const ss = cell.samples;
    if (!ss.length) {
      cell.summary = undefined;
      continue;
    }
    const values = ss.map((s) => s.value);
    const p99s = defined(ss.map((s) => s.p99_us));
    const merged = cell.kind === 'memory' ? undefined : mergedPercentiles(ss);
    const gen = medianOf(ss.map((s) => s.gen_cpu_pct));
    const kinds = new Set(ss.flatMap((s) => Object.keys(s.cpu_us_per_unit ?? {})));
    const perUnit: Record<string, number> = {};
    for (const k of kinds) perUnit[k] = Math.round(100 * median(defined(ss.map((s) => s.cpu_us_per_unit?.[k])))) / 100;
    const spread = spreadOf(values);
    const p99Spread = p99s.length === ss.length ? spreadOf(p99s) : undefined;
    cell.summary = {
      n: ss.length,
      value: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      spread,
      noisy: spread > run.options.noise,
      gen_bound: gen !== undefined && gen >= 90,
      gen_cpu_pct: gen,
      server_cpu_pct: medianOf(ss.map((s) => s.server_cpu_pct)),
      p50_us: merged?.p50 ?? medianOf(ss.map((s) => s.p50_us)),
      p99_us: merged?.p99 ?? medianOf(p99s),
      p999_us: merged?.p999 ?? medianOf(ss.map((s) => s.p999_us)),
      latency_from: cell.kind === 'memory' ? undefined : merged ? 'merged histograms' : 'median of repetitions',
      p99_spread: p99Spread,
      p99_noisy: p99Spread !== undefined ? p99Spread > run.options.noise : undefined,
      cpu_us_per_unit: kinds.size ? perUnit : undefined,
      after_opens_bytes: medianOf(ss.map((s) => s.after_opens_bytes)),
      steady_bytes: medianOf(ss.map((s) => s.steady_bytes)),
      heap_after_opens_bytes: medianOf(ss.map((s) => s.heap_after_opens_bytes)),
      heap_steady_bytes: medianOf(ss.map((s) => s.heap_steady_bytes)),
      sessions: medianOf(ss.map((s) => s.sessions)),
      bad_payload: ss.reduce((a, s) => a + (s.generator?.bad_payload ?? 0), 0),
      disturbed: ss.filter(
        (s) =>
          (s.cpu0_busy_pct !== undefined && s.server_cpu_pct !== undefined && s.cpu0_busy_pct - s.server_cpu_pct > 15) ||
          (s.cpu1_busy_pct !== undefined && s.gen_cpu_pct !== undefined && s.cpu1_busy_pct - s.gen_cpu_pct > 25),
      ).length,
    };
  }
}

const cellOf = (run: Run, kind: Cell['kind'], id: ConfigId, inflight?: number) =>
  run.cells.find((c) => c.kind === kind && c.config === id && (inflight === undefined || c.inflight === inflight));

// ------------------------------------------------------------------ targets

export interface Target {
  metric: string;
  value?: number;
  display: string;
  goal: string;
  /** PASS / MISS, or why there is no verdict */
  verdict: 'PASS' | 'MISS' | 'noisy: no verdict' | 'generator-bound: no verdict' | 'n/a';
  /** set when a row it uses has one repetition: its noise is not known */
  note?: string;
}

export function targets(run: Run): Target[] {
  const out: Target[] = [];
  const x = (v: number) => `${v.toFixed(3)}×`;
  const judge = (
    metric: string,
    cells: (Cell | undefined)[],
    value: number | undefined,
    display: (v: number) => string,
    goal: string,
    ok: (v: number) => boolean,
    p99 = false,
  ) => {
    let verdict: Target['verdict'];
    if (value === undefined || !Number.isFinite(value) || cells.some((c) => !c?.summary)) verdict = 'n/a';
    else if (cells.some((c) => c!.summary!.noisy || (p99 && c!.summary!.p99_noisy))) verdict = 'noisy: no verdict';
    else if (cells.some((c) => c!.summary!.gen_bound)) verdict = 'generator-bound: no verdict';
    else verdict = ok(value) ? 'PASS' : 'MISS';
    const note = (verdict === 'PASS' || verdict === 'MISS') && cells.some((c) => c!.summary!.n < 2) ? 'one repetition: noise not known' : undefined;
    out.push({ metric, value, display: value === undefined || !Number.isFinite(value) ? 'n/a' : display(value), goal, verdict, note });
  };
  const ratio = (a?: Cell, b?: Cell, f: (s: Summary) => number | undefined = (s) => s.value) => {
    const va = a?.summary && f(a.summary),
      vb = b?.summary && f(b.summary);
    return va !== undefined && vb ? va / vb : undefined;
  };
  const echo = (id: ConfigId, k: number) => cellOf(run, 'echo', id, k);
  for (const [id, name] of [
    ['gw', 'native WS echo @16, acks, vs bare uWS'],
    ['gw-noack', 'native WS echo @16, no acks, vs bare uWS'],
  ] as const) {
    const a = echo(id, 16),
      b = echo('bare', 16);
    judge(name, [a, b], ratio(a, b), x, '≥ 0.5×', (v) => v >= 0.5);
  }
  {
    const a = echo('gw', 64),
      b = echo('bare', 64);
    judge('native WS echo @64, acks, vs bare uWS', [a, b], ratio(a, b), x, '≥ 0.4×', (v) => v >= 0.4);
  }
  {
    const a = echo('gw', 1),
      b = echo('bare', 1);
    judge(
      `p99 @1 in flight (${run.options.conns} conns) vs bare uWS`,
      [a, b],
      ratio(a, b, (s) => s.p99_us),
      x,
      '≤ 1.5×',
      (v) => v <= 1.5,
      true,
    );
  }
  {
    const a = echo('gw', 16);
    const v = a?.summary?.p99_us !== undefined && a.summary.p50_us ? a.summary.p99_us / a.summary.p50_us : undefined;
    judge(
      'p99 / p50 @16, native WS, acks',
      [a],
      v,
      (n) => n.toFixed(2),
      '≤ 2',
      (n) => n <= 2,
      true,
    );
  }
  {
    const m = cellOf(run, 'memory', 'gw');
    const limit = 1.2 * 1024;
    const both = m?.summary ? Math.max(m.summary.after_opens_bytes ?? Infinity, m.summary.steady_bytes ?? Infinity) : undefined;
    const disp = () => `${fmtInt(m!.summary!.after_opens_bytes ?? NaN)} B / ${fmtInt(m!.summary!.steady_bytes ?? NaN)} B`;
    judge(
      `idle memory per native WS session (after opens / steady, ${fmtInt(m?.summary?.sessions ?? run.options.idle)} sessions)`,
      [m],
      both,
      disp,
      '≤ 1,229 B (1.2 KB) both',
      (v) => v <= limit,
    );
  }
  {
    const a = cellOf(run, 'open', 'gw'),
      b = cellOf(run, 'open', 'bare');
    judge('session open rate vs bare uWS handshakes', [a, b], ratio(a, b), x, '≥ 0.8×', (v) => v >= 0.8);
  }
  {
    const a = cellOf(run, 'fanout', 'gw'),
      b = cellOf(run, 'fanout', 'bare');
    judge(`fan-out to ${run.options.members} members, deliveries/s vs bare uWS pub/sub`, [a, b], ratio(a, b), x, '≥ 0.5×', (v) => v >= 0.5);
  }
  for (const [id, ref, name] of [
    ['gw-sio-ack', 'socketio-ack', 'Socket.IO dialect vs socket.io @16, acks'],
    ['gw-sio', 'socketio', 'Socket.IO dialect vs socket.io @16, no acks'],
    ['gw-sockjs', 'sockjs', 'SockJS dialect vs sockjs @16'],
  ] as const) {
    const a = echo(id, 16),
      b = echo(ref, 16);
    judge(name, [a, b], ratio(a, b), x, '≥ 4×', (v) => v >= 4);
  }
  {
    const a = echo('cluster', 16),
      b = echo('bare', 16);
    judge('cluster echo @16 vs bare uWS', [a, b], ratio(a, b), x, '≥ 0.2×', (v) => v >= 0.2);
  }
  return out;
}

// ------------------------------------------------------------------ markdown

const fmtInt = (n: number) => (Number.isFinite(n) ? (Math.round(n) || 0).toLocaleString('en-US') : 'n/a');
const us = (n?: number) => (n === undefined ? '' : n >= 100 ? fmtInt(n) : n.toFixed(1));
const pct = (n?: number) => (n === undefined ? '' : `${Math.round(n)}%`);
const ratioStr = (a?: number, b?: number) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '');

function flags(s: Summary | undefined, p99 = false): string {
  if (!s) return '';
  const f: string[] = [];
  if (s.noisy) f.push(`noisy (${Math.round(s.spread * 100)}%)`);
  if (p99 && s.p99_noisy) f.push(`p99 noisy (${Math.round((s.p99_spread ?? 0) * 100)}%)`);
  if (s.gen_bound) f.push('generator-bound');
  if (s.bad_payload) f.push(`${s.bad_payload} bad payloads`);
  if (s.disturbed) f.push(`other work on the pinned CPUs in ${s.disturbed}/${s.n}`);
  return f.join(', ');
}

function failedNote(c: Cell | undefined): string {
  return c && !c.summary && c.errors.length ? `failed: ${c.errors[0]!.replace(/\|/g, '/')}` : '';
}

export function runHeader(run: Run): string {
  const e = Object.entries(run.engines)
    .map(([k, v]) => `${k}: ${v ?? '?'}`)
    .join(', ');
  const noisy = run.cells.filter((c) => c.summary?.noisy).length;
  const maxSpread = Math.max(0, ...run.cells.filter((c) => c.kind !== 'memory' && c.summary && c.summary.n > 1).map((c) => c.summary!.spread));
  return [
    `Run of ${run.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.floor(run.duration_s / 60)} min ${run.duration_s % 60} s, commit ${run.commit ?? '?'}${run.dirty ? ' (with uncommitted changes)' : ''}; ` +
      `${run.machine.cpus} × ${run.machine.cpu_model}, Linux ${run.machine.kernel}, Node ${run.node}, uWebSockets.js ${run.uws ?? '?'}; ` +
      `${run.pinned ? 'servers pinned to CPU 0, generator to CPU 1' : 'not pinned'}${run.niced ? ', nice -10' : ''}; load average at start ${run.load_average_at_start.toFixed(2)}.`,
    `Engines: ${e}.`,
    `${run.options.repeat} repetition(s), round-robin over the servers; medians (of an even count, the mean of the two middle values); latency from the repetitions' histograms merged. ` +
      `Noise: the widest spread (max−min)/median of a repeated row was ${Math.round(maxSpread * 100)}%; ${noisy} row(s) above the ${Math.round(run.options.noise * 100)}% bound are marked noisy and give no verdict.`,
  ].join('\n');
}

export function markdownReport(run: Run): string {
  const o = run.options;
  const L: string[] = [];
  L.push(runHeader(run), '');
  L.push(`#### Targets`, '', '| metric | measured | target | verdict |', '|---|---:|---|---|');
  for (const t of targets(run)) L.push(`| ${t.metric} | ${t.display} | ${t.goal} | ${t.verdict}${t.note ? ` (${t.note})` : ''} |`);

  L.push('', `#### Echo (${o.conns} connections, ${o.payload}-byte payload, ${o.duration} s windows after ${o.warmup} s warm-up)`, '');
  L.push('| row | in flight | msgs/s | spread | p50 µs | p99 µs | p99.9 µs | server CPU | gen CPU | × bare uWS | × ref (ref) | notes |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const inflights = [...new Set(run.cells.filter((c) => c.kind === 'echo').map((c) => c.inflight!))].sort((a, b) => a - b);
  for (const k of inflights) {
    for (const cfg of CONFIGS) {
      const c = cellOf(run, 'echo', cfg.id, k);
      if (!c) continue;
      const s = c.summary;
      const bare = cellOf(run, 'echo', 'bare', k)?.summary;
      const ref = cfg.ref ? cellOf(run, 'echo', cfg.ref, k)?.summary : undefined;
      L.push(
        `| ${cfg.label} | ${k} | ${s ? fmtInt(s.value) : '—'} | ${s && s.n > 1 ? `${Math.round(s.spread * 100)}%` : ''} | ${us(s?.p50_us)} | ${us(s?.p99_us)} | ${us(s?.p999_us)} | ${pct(s?.server_cpu_pct)} | ${pct(s?.gen_cpu_pct)} | ` +
          `${cfg.id === 'bare' ? '' : ratioStr(s?.value, bare?.value)} | ${cfg.ref && ref ? `${ratioStr(s?.value, ref.value)} (${configById(cfg.ref).label})` : ''} | ${flags(s, k === 1) || failedNote(c)} |`,
      );
    }
  }

  const opens = CONFIGS.map((cfg) => [cfg, cellOf(run, 'open', cfg.id)] as const).filter(([, c]) => c);
  if (opens.length) {
    L.push('', '#### Session open rate (connect → first server frame, 50 connections opening at once)', '');
    L.push('| row | opens/s | spread | server CPU | gen CPU | × bare uWS | × ref | notes |', '|---|---:|---:|---:|---:|---:|---:|---|');
    const bare = cellOf(run, 'open', 'bare')?.summary;
    for (const [cfg, c] of opens) {
      const s = c!.summary;
      const ref = cfg.ref ? cellOf(run, 'open', cfg.ref)?.summary : undefined;
      L.push(
        `| ${cfg.label} | ${s ? fmtInt(s.value) : '—'} | ${s && s.n > 1 ? `${Math.round(s.spread * 100)}%` : ''} | ${pct(s?.server_cpu_pct)} | ${pct(s?.gen_cpu_pct)} | ${cfg.id === 'bare' ? '' : ratioStr(s?.value, bare?.value)} | ${ref ? ratioStr(s?.value, ref.value) : ''} | ${flags(s) || failedNote(c)} |`,
      );
    }
  }

  const mems = CONFIGS.map((cfg) => [cfg, cellOf(run, 'memory', cfg.id)] as const).filter(([, c]) => c);
  if (mems.length) {
    L.push(
      '',
      `#### Idle memory per session (RSS growth of the server's processes from /proc over a baseline taken after ${o.steady} s idle with ${run.options.idleWarm ?? 500} warm-up sessions; no forced GC; ${fmtInt(o.idle)} sessions; steady = after ${o.steady} s idle)`,
      '',
    );
    const heapCol = mems.some(([, c]) => c!.summary?.heap_steady_bytes !== undefined);
    L.push(
      `| row | sessions | B/session after opens | B/session steady |${heapCol ? ' V8 heap B/session (steady) |' : ''} notes |`,
      `|---|---:|---:|---:|${heapCol ? '---:|' : ''}---|`,
    );
    for (const [cfg, c] of mems) {
      const s = c!.summary;
      const failed = c!.samples.reduce((a, x) => a + (x.failed ?? 0), 0);
      const dropped = c!.samples.reduce((a, x) => a + (x.dropped_while_idle ?? 0), 0);
      const asked = c!.samples[0]?.sessions_asked ?? o.idle;
      const short = s?.sessions !== undefined && s.sessions < asked;
      const notes = [
        short || failed
          ? `only ${fmtInt(s?.sessions ?? 0)} of ${fmtInt(asked)} open when the generator said ready${failed ? ` (${fmtInt(failed)} failed)` : ''}: figure unreliable`
          : '',
        dropped ? `${fmtInt(dropped)} dropped while idle` : '',
        failedNote(c),
      ]
        .filter(Boolean)
        .join('; ');
      L.push(
        `| ${cfg.label} | ${s ? fmtInt(s.sessions ?? 0) : '—'} | ${s ? fmtInt(s.after_opens_bytes ?? NaN) : ''} | ${s ? fmtInt(s.steady_bytes ?? NaN) : ''} |${heapCol ? ` ${s?.heap_steady_bytes !== undefined ? fmtInt(s.heap_steady_bytes) : ''} |` : ''} ${notes} |`,
      );
    }
  }

  const fans = (['bare', 'gw', 'cluster-2gw'] as const).map((id) => [configById(id), cellOf(run, 'fanout', id)] as const).filter(([, c]) => c);
  if (fans.length) {
    L.push('', `#### Fan-out (${o.members} members in one room, connection 0 broadcasts; one node, and over two gateways)`, '');
    L.push(
      '| row | deliveries/s | spread | last-member p50 µs | p99 µs | server CPU | gen CPU | × bare uWS | notes |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    );
    const bare = cellOf(run, 'fanout', 'bare')?.summary;
    for (const [cfg, c] of fans) {
      const s = c!.summary;
      L.push(
        `| ${cfg.label} | ${s ? fmtInt(s.value) : '—'} | ${s && s.n > 1 ? `${Math.round(s.spread * 100)}%` : ''} | ${us(s?.p50_us)} | ${us(s?.p99_us)} | ${pct(s?.server_cpu_pct)} | ${pct(s?.gen_cpu_pct)} | ${cfg.id === 'bare' ? '' : ratioStr(s?.value, bare?.value)} | ${flags(s) || failedNote(c)} |`,
      );
    }
    if (fans.some(([cfg]) => cfg.id === 'cluster-2gw')) {
      L.push(
        '',
        `Two gateways: nats-server, one worker and two gateway processes, all on the servers' CPU; members alternate between the gateways ` +
          `(the sender on the first), the worker's broadcast reaches both over the bus. Its server CPU is the whole tree's (up to 100% of the one core).`,
      );
    }
  }

  const cl = run.cells.filter((c) => c.kind === 'echo' && c.config === 'cluster' && c.summary?.cpu_us_per_unit);
  if (cl.length) {
    L.push('', "#### Cluster cost per echo (CPU µs per message from each process's /proc/<pid>/stat, measured window only)", '');
    L.push('| in flight | msgs/s | gateway | worker | nats-server | total |', '|---:|---:|---:|---:|---:|---:|');
    for (const c of cl) {
      const u = c.summary!.cpu_us_per_unit!;
      const total = (u.gateway ?? 0) + (u.worker ?? 0) + (u['nats-server'] ?? 0) + (u.other ?? 0);
      L.push(`| ${c.inflight} | ${fmtInt(c.summary!.value)} | ${us(u.gateway)} | ${us(u.worker)} | ${us(u['nats-server'])} | ${us(total)} |`);
    }
  }
  const errs = [...run.errors, ...run.cells.filter((c) => c.errors.length && c.summary).map((c) => `${c.key}: ${c.errors.join('; ')}`)];
  if (errs.length) L.push('', '#### Errors', '', ...errs.map((e) => `- ${e}`));
  return L.join('\n') + '\n';
}

export function readmeSection(run: Run): string {
  return [
    '',
    `_Generated by \`npm run bench\` from the run described below (raw repetitions in \`bench/results/\`); do not edit by hand._`,
    '',
    '![throughput and p99 per server, grouped by scenario](docs/bench.svg)',
    '',
    markdownReport(run).replaceAll('#### ', '#### '),
    'How many cores and how much memory a given load needs, from this run: [docs/capacity.md](docs/capacity.md).',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------ SVG

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars: per scenario, each row's throughput (blue) and p99 (orange), each scaled to the panel's largest. */
export function svgChart(run: Run): string {
  const panels: { title: string; unit: string; rows: { label: string; value?: number; p99?: number; note: string }[] }[] = [];
  const inflights = [...new Set(run.cells.filter((c) => c.kind === 'echo').map((c) => c.inflight!))].sort((a, b) => a - b);
  const rowsFor = (kind: Cell['kind'], k?: number) =>
    CONFIGS.map((cfg) => ({ cfg, c: cellOf(run, kind, cfg.id, k) }))
      .filter(({ c }) => c)
      .map(({ cfg, c }) => ({
        label: cfg.label,
        value: c!.summary?.value,
        p99: c!.summary?.p99_us,
        note: c!.summary ? [c!.summary.noisy ? 'noisy' : '', c!.summary.gen_bound ? 'generator-bound' : ''].filter(Boolean).join(', ') : 'failed',
      }));
  for (const k of inflights) panels.push({ title: `echo, ${run.options.conns} connections × ${k} in flight`, unit: 'msgs/s', rows: rowsFor('echo', k) });
  if (run.cells.some((c) => c.kind === 'open')) panels.push({ title: 'session open rate', unit: 'opens/s', rows: rowsFor('open') });
  if (run.cells.some((c) => c.kind === 'fanout'))
    panels.push({ title: `fan-out, ${run.options.members} members`, unit: 'deliveries/s', rows: rowsFor('fanout') });

  const W = 1080,
    labelW = 210,
    barW = 420,
    rowH = 22,
    panelGap = 34;
  let y = 70;
  const parts: string[] = [];
  for (const p of panels) {
    const maxV = Math.max(1, ...p.rows.map((r) => r.value ?? 0));
    const maxP = Math.max(1, ...p.rows.map((r) => r.p99 ?? 0));
    parts.push(`<text x="10" y="${y}" class="t">${esc(p.title)}</text>`);
    y += 10;
    for (const r of p.rows) {
      const vw = r.value ? Math.max(1, (barW * r.value) / maxV) : 0;
      const pw = r.p99 ? Math.max(1, (barW * r.p99) / maxP) : 0;
      parts.push(`<text x="${labelW - 6}" y="${y + 13}" class="l">${esc(r.label)}</text>`);
      parts.push(`<rect x="${labelW}" y="${y + 2}" width="${vw.toFixed(1)}" height="11" class="v"/>`);
      if (pw) parts.push(`<rect x="${labelW}" y="${y + 14}" width="${pw.toFixed(1)}" height="5" class="p"/>`);
      const txt =
        r.value === undefined ? 'failed' : `${fmtInt(r.value)} ${p.unit}${r.p99 !== undefined ? ` · p99 ${us(r.p99)} µs` : ''}${r.note ? ` · ${r.note}` : ''}`;
      parts.push(`<text x="${labelW + barW + 8}" y="${y + 13}" class="n">${esc(txt)}</text>`);
      y += rowH;
    }
    y += panelGap;
  }
  const H = y;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif">
<style>.t{font-size:14px;font-weight:600;fill:#222}.l{font-size:12px;text-anchor:end;fill:#333}.n{font-size:11px;fill:#444}.v{fill:#3b6fd8}.p{fill:#e8883a}.h{font-size:11px;fill:#666}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="18" class="t">Switchyard bench, ${esc(run.date.slice(0, 16).replace('T', ' '))} UTC, commit ${esc(run.commit ?? '?')}, ${esc(run.machine.cpu_model)} ×${run.machine.cpus}</text>
<text x="10" y="34" class="h">blue: throughput (median of ${run.options.repeat}), scaled per panel · orange: p99 latency, scaled per panel · servers on one core, generator on the other</text>
${parts.join('\n')}
</svg>
`;
}

// ------------------------------------------------------------------ capacity model

export function capacityMarkdown(run: Run, load = { connections: 1_000_000, msgsIn: 100_000, fanout: 10, utilization: 0.7 }): string {
  const L: string[] = [];
  const cl16 = cellOf(run, 'echo', 'cluster', 16)?.summary;
  const fanGw = cellOf(run, 'fanout', 'gw')?.summary;
  const u = cl16?.cpu_us_per_unit ?? {};
  const gwEcho = u.gateway,
    wk = u.worker,
    nats = u['nats-server'];
  const perDelivery = fanGw?.cpu_us_per_unit?.gateway;
  L.push('# Capacity: cores and memory for a given load', '');
  L.push('_Generated by `npm run bench` (a full run or `--write-readme`) from a real run; do not edit by hand._', '');
  L.push(runHeader(run), '');
  L.push('## What was measured', '');
  L.push(
    `- **Cost per echo in the cluster shape** (nats-server + one worker + one gateway process, all on one core; ${run.options.conns} connections × 16 in flight, acks on): ` +
      `CPU time of each process from its own \`/proc/<pid>/stat\` over the measured window only (no start-up, warm-up or teardown), divided by the echoes in that window. ` +
      `An echo is one client event in, one app call in the worker, one reply out: it crosses the bus twice (gateway → worker → gateway).`,
  );
  L.push('', '| process | CPU µs per echo |', '|---|---:|');
  L.push(`| gateway | ${gwEcho?.toFixed(1) ?? 'n/a'} |`, `| worker | ${wk?.toFixed(1) ?? 'n/a'} |`, `| nats-server | ${nats?.toFixed(1) ?? 'n/a'} |`);
  L.push(
    '',
    `- **Cost per fan-out delivery on one gateway** (${run.options.members} members in one room, one node with the embedded bus, so the app's share is in it too): ${perDelivery?.toFixed(2) ?? 'n/a'} CPU µs per delivered message, ${fanGw ? fmtInt(fanGw.value) : 'n/a'} deliveries/s on one core. Used as the gateway's cost of each delivery beyond the first (an upper bound: it includes the broadcasts' own cost).`,
  );
  const fan2 = cellOf(run, 'fanout', 'cluster-2gw')?.summary;
  if (fan2) {
    const u2 = fan2.cpu_us_per_unit ?? {};
    const f = (k: string) => (u2[k] !== undefined ? `${u2[k]!.toFixed(2)} µs` : 'n/a');
    L.push(
      '',
      `- **Fan-out over two gateways** (the same room, its members alternating between two gateway processes, with nats-server and one worker, all on one core): ` +
        `${fmtInt(fan2.value)} deliveries/s; CPU per delivered message: gateways (both) ${f('gateway')}, worker ${f('worker')}, nats-server ${f('nats-server')}. Not used in the model below.`,
    );
  }
  const mem = CONFIGS.filter((c) => cellOf(run, 'memory', c.id)?.summary).map((c) => [c, cellOf(run, 'memory', c.id)!.summary!] as const);
  if (mem.length) {
    L.push(
      `- **Idle memory per session** (${fmtInt(run.options.idle)} sessions, RSS growth, no forced GC):`,
      '',
      '| transport / dialect | B/session after opens | B/session steady | RSS for ' + fmtInt(load.connections) + ' sessions (steady) |',
      '|---|---:|---:|---:|',
    );
    for (const [c, s] of mem)
      L.push(
        `| ${c.label}${s.sessions !== undefined && s.sessions < (cellOf(run, 'memory', c.id)!.samples[0]?.sessions_asked ?? run.options.idle) ? ` (only ${fmtInt(s.sessions)} sessions opened: unreliable)` : ''} | ${fmtInt(s.after_opens_bytes ?? NaN)} | ${fmtInt(s.steady_bytes ?? NaN)} | ${s.steady_bytes !== undefined ? `${((s.steady_bytes * load.connections) / 2 ** 30).toFixed(2)} GiB` : 'n/a'} |`,
      );
  }

  L.push('', `## The model, for ${fmtInt(load.connections)} connections, ${fmtInt(load.msgsIn)} messages/s in, fan-out ${load.fanout}`, '');
  L.push('Assumptions:', '');
  L.push(
    `- every incoming message is an app event that the worker turns into one broadcast to a room of ${load.fanout} sessions (a request/response echo is fan-out 1);`,
  );
  L.push(
    '- gateway cost = messages in × (cost per echo: the receive, the bus hop and the first delivery) + messages in × (fan-out − 1) × cost per fan-out delivery;',
  );
  L.push('- worker cost = messages in × worker cost per echo (one app call each; a broadcast is one bus publish however large the room);');
  L.push(
    '- nats-server cost = messages in × its cost per echo (two bus crossings; a broadcast crosses once to each gateway holding members, assumed no more than that);',
  );
  L.push(
    `- cores run at ${Math.round(load.utilization * 100)}% at most (headroom for bursts, heartbeats and GC); idle connections' heartbeats cost CPU too and are not in these figures;`,
  );
  L.push('- costs scale linearly with rate (measured on one loaded core of this machine; another CPU scales them by its single-core speed);');
  L.push(
    `- memory = connections × steady bytes per native WebSocket session, plus a gateway process's base RSS per process; the fd limit per process (here ${fmtInt(run.machine.fd_limit ?? NaN)}) caps connections per gateway process.`,
  );
  const cores = (us_?: number) => (us_ === undefined ? undefined : (load.msgsIn * us_) / 1e6 / load.utilization);
  const gwCost = gwEcho !== undefined && perDelivery !== undefined ? gwEcho + (load.fanout - 1) * perDelivery : undefined;
  const rows: [string, number | undefined, string][] = [
    [
      'gateway',
      cores(gwCost),
      gwCost !== undefined
        ? `${fmtInt(load.msgsIn)} × (${gwEcho!.toFixed(1)} + ${load.fanout - 1} × ${perDelivery!.toFixed(2)}) µs`
        : 'n/a (needs the cluster echo and fan-out cells)',
    ],
    ['worker', cores(wk), wk !== undefined ? `${fmtInt(load.msgsIn)} × ${wk.toFixed(1)} µs` : 'n/a'],
    ['nats-server', cores(nats), nats !== undefined ? `${fmtInt(load.msgsIn)} × ${nats.toFixed(1)} µs` : 'n/a'],
  ];
  L.push('', '| process kind | CPU per second of load | cores needed (at ' + Math.round(load.utilization * 100) + '%) |', '|---|---|---:|');
  for (const [k, c, how] of rows) L.push(`| ${k} | ${how} | ${c === undefined ? 'n/a' : `${c.toFixed(2)} → ${Math.ceil(c)}`} |`);
  const native = cellOf(run, 'memory', 'gw')?.summary;
  if (native?.steady_bytes !== undefined) {
    const perProc = run.machine.fd_limit ?? 20_000;
    const procs = Math.ceil(load.connections / perProc);
    L.push(
      '',
      `Memory: ${fmtInt(load.connections)} native WebSocket sessions × ${fmtInt(native.steady_bytes)} B (steady; ${fmtInt(native.after_opens_bytes ?? NaN)} B right after a burst of opens) = ` +
        `${((native.steady_bytes * load.connections) / 2 ** 30).toFixed(2)} GiB (${(((native.after_opens_bytes ?? native.steady_bytes) * load.connections) / 2 ** 30).toFixed(2)} GiB after a burst), ` +
        `plus the base RSS of each gateway process. At ${fmtInt(perProc)} connections per process (this machine's fd limit; raise it with \`ulimit -n\`) ` +
        `that is at least ${procs} gateway processes, so the connection count, not only the message rate, sets how many gateway processes a deployment runs.`,
    );
  }
  L.push(
    '',
    `Not in the model: fan-out across several gateways (each holding part of a room)${fan2 ? ' (measured above, but the model uses the one-node figure)' : ' (not measured in this run)'}; SSE, long-polling and the dialects cost more per message than the native WebSocket (see the echo table in the README) and would scale the gateway figure by their ratio.`,
    '',
  );
  return L.join('\n');
}
