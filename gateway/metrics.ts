/**
 * `GET /metrics` in Prometheus's text format (prom-client). The hot paths only bump plain numbers
 * on the node (`Stats`, and the session counts and outbox bytes it keeps as they change); the
 * registry reads them when scraped, walking no session: a scrape costs the same with 20,000
 * sessions as with one. One registry per node (several nodes may share a process, as in the tests),
 * made at the node's first scrape.
 */
import type { Registry } from 'prom-client';
import { traffic } from '../transports/seam/traffic.ts';

/** a worker not heard from for this long is left out of switchyard_worker_partitions */
const WORKER_STALE_MS = 10_000;

/** What a node counts as it goes (read at scrape) */
export class Stats {
  /** sessions opened, by "<transport> <dialect>" */
  readonly opened = new Map<string, number>();
  /** sessions ended, by close code (the reason's SY_ERR_ code where there is one) */
  readonly closed = new Map<string, number>();
  /** new connections refused at admission, by code */
  readonly refused = new Map<string, number>();
  /** client events and replies handed to the application */
  messagesIn = 0;
  /** entries queued for clients (events, replies; a broadcast counts once per local member) */
  messagesOut = 0;
  /** what each worker last said it owns (its heartbeats), and when */
  readonly workers = new Map<string, { owned: number; at: number }>();
  /** bus round trips measured since the last scrape (seconds; at most 1,000 kept) */
  readonly rtts: number[] = [];

  busRtt(seconds: number): void {
    if (this.rtts.length < 1000) this.rtts.push(seconds);
  }

  static bump(m: Map<string, number>, key: string): void {
    m.set(key, (m.get(key) ?? 0) + 1);
  }
}

/** What the registry reads of a node: counts the node keeps as it goes (a scrape walks no session) */
export interface MetricsSource {
  readonly stats: Stats;
  /** live sessions by `<transport> <dialect> <attached>` */
  readonly sessionCounts: ReadonlyMap<string, number>;
  /** bytes held in the live sessions' outboxes */
  readonly outboxBytes: number;
  readonly roomCount: number;
}

/** The node's registry; prom-client is loaded here, at the first scrape, not at start-up */
export async function metricsRegistry(src: MetricsSource): Promise<Registry> {
  const { Counter, Gauge, Histogram, Registry } = await import('prom-client');
  const registry = new Registry();
  const s = src.stats;
  /** sets a labelled metric from a map whose keys are its label values joined by spaces */
  const fromMap = (m: ReadonlyMap<string, number>, names: string[], set: (labels: Record<string, string>, v: number) => void) => {
    for (const [k, v] of m) {
      const values = k.split(' ');
      set(Object.fromEntries(names.map((name, i) => [name, values[i] ?? ''])), v);
    }
  };
  new Gauge({
    name: 'switchyard_sessions',
    help: 'Live sessions on this node, by transport and dialect, and whether a connection is attached',
    labelNames: ['transport', 'dialect', 'attached'],
    registers: [registry],
    collect() {
      this.reset();
      fromMap(src.sessionCounts, ['transport', 'dialect', 'attached'], (l, v) => this.set(l, v));
    },
  });
  new Gauge({
    name: 'switchyard_outbox_bytes',
    help: "Bytes held in the sessions' outboxes (approximate, from the entries' args)",
    registers: [registry],
    collect() {
      this.set(src.outboxBytes);
    },
  });
  new Gauge({
    name: 'switchyard_rooms',
    help: 'Rooms with at least one member on this node',
    registers: [registry],
    collect() {
      this.set(src.roomCount);
    },
  });
  new Counter({
    name: 'switchyard_sessions_opened_total',
    help: 'Sessions opened, by transport and dialect',
    labelNames: ['transport', 'dialect'],
    registers: [registry],
    collect() {
      this.reset();
      fromMap(s.opened, ['transport', 'dialect'], (l, v) => this.inc(l, v));
    },
  });
  new Counter({
    name: 'switchyard_sessions_closed_total',
    help: 'Sessions ended, by code (SY_ERR_… for the errors in docs/errors.md, else the close code: 1000 a client or the app)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      fromMap(s.closed, ['code'], (l, v) => this.inc(l, v));
    },
  });
  new Counter({
    name: 'switchyard_admission_refusals_total',
    help: 'New connections or sessions refused at admission, by code (SY_ERR_TOO_MANY_SESSIONS, SY_ERR_RATE_LIMITED, …)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      fromMap(s.refused, ['code'], (l, v) => this.inc(l, v));
    },
  });
  new Counter({
    name: 'switchyard_messages_in_total',
    help: 'Client events and replies handed to the application',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(s.messagesIn);
    },
  });
  new Counter({
    name: 'switchyard_messages_out_total',
    help: 'Events and replies queued for clients (a broadcast counts once per member on this node)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(s.messagesOut);
    },
  });
  new Counter({
    name: 'switchyard_bytes_in_total',
    help: 'Bytes received from clients by this process: WebSocket messages and HTTP request bodies, every dialect (text counted in UTF-16 units: bytes for ASCII)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(traffic.in);
    },
  });
  new Counter({
    name: 'switchyard_bytes_out_total',
    help: 'Bytes sent to clients by this process: WebSocket messages and HTTP response bodies, every dialect (text counted in UTF-16 units: bytes for ASCII)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(traffic.out);
    },
  });
  const rtt = new Histogram({
    name: 'switchyard_bus_rtt_seconds',
    help: 'Round trip of a message from this node to itself over the session bus (NATS in a cluster), measured every 5 s',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
    collect() {
      for (const v of s.rtts.splice(0)) rtt.observe(v);
    },
  });
  new Gauge({
    name: 'switchyard_worker_partitions',
    help: 'Partitions each live worker owns, as its heartbeats say (a cluster; workers heard from in the last 10 s)',
    labelNames: ['worker'],
    registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const [w, { owned, at }] of s.workers) {
        if (now - at > WORKER_STALE_MS) s.workers.delete(w);
        else this.set({ worker: w }, owned);
      }
    },
  });
  return registry;
}
