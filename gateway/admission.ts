/**
 * Admission: whether a node takes a new session or a request (draining, the origin allow-list,
 * the session limit, what a session would keep of its request, the per-address rate of new
 * sessions), and the open-file guard that stops listening near the descriptor limit. What it
 * needs of its node is `AdmissionHost`.
 */
import { readdirSync } from 'node:fs';
import type { ErrorCode } from '../transports/seam/errors.ts';
import { warnOnce } from '../lib/log.ts';
import { openFileLimit, type ResolvedOptions } from './options.ts';
import { RateLimiter } from './rate-limit.ts';
import { Stats } from './metrics.ts';

export interface AdmissionHost {
  readonly options: ResolvedOptions;
  readonly isDraining: boolean;
  readonly stats: Stats;
  /** sessions counted against maxSessions (those whose client went away are not: they hold no descriptor) */
  countedSessions(): number;
  /** the node listens for connections now */
  readonly listening: boolean;
  stopListening(): void;
  /** listens again; `done(false)`: the port could not be had */
  listenAgain(done: (ok: boolean) => void): void;
}

/** how often the open files are counted (an O(open files) read of /proc/self/fd) */
export const FD_CHECK_MS = 500;

/**
 * Stop listening at `high` open files (the limit less 5%, at least 16), listen again at `low`
 * (another 5% lower): a band, so that the node does not flap at the edge
 */
export function fdMarks(limit: number): { limit: number; high: number; low: number; open: number; paused: boolean } {
  const band = Math.max(16, Math.ceil(limit / 20));
  return { limit, high: limit - band, low: limit - 2 * band, open: 0, paused: false };
}

export class Admission {
  /** the open-file limit and the marks between which the node stops and resumes listening (see checkDescriptors) */
  readonly fd = fdMarks(openFileLimit());
  /** new sessions per client address (ipOpenRate, ipOpenBurst) */
  private readonly openRate: RateLimiter;
  private prunedAt = 0;

  constructor(private readonly host: AdmissionHost) {
    this.openRate = new RateLimiter(host.options.ipOpenRate, host.options.ipOpenBurst);
  }

  /**
   * The error for a new session (`isNew`) or a request from `origin`, or null (Port.admit); a
   * refusal is counted and logged once per cause
   */
  admit(origin: string, isNew: boolean, ip = '', requestBytes = 0): ErrorCode | null {
    const refused = this.refusal(origin, isNew, ip, requestBytes);
    if (refused !== null) {
      Stats.bump(this.host.stats.refused, refused);
      warnOnce(`admission refused: ${refused}`, undefined, { ip });
    }
    return refused;
  }

  private refusal(origin: string, isNew: boolean, ip: string, requestBytes: number): ErrorCode | null {
    const o = this.host.options;
    // a draining node still serves its sessions' requests (answering with Connection: close)
    if (this.host.isDraining && isNew) return 'SY_ERR_SHUTTING_DOWN';
    const allowed = o.allowedOrigins;
    if (allowed.length > 0 && origin !== '' && !allowed.includes(origin)) return 'SY_ERR_BAD_ORIGIN';
    if (isNew && this.atSessionLimit()) return 'SY_ERR_TOO_MANY_SESSIONS';
    // what the session would keep of its request (query, user agent, authorization), held for its whole life
    if (isNew && requestBytes > o.maxRequestBytes) return 'SY_ERR_REQUEST_TOO_LARGE';
    if (isNew && ip !== '' && !this.openRate.take(ip, Date.now())) return 'SY_ERR_RATE_LIMITED';
    return null;
  }

  /** the Access-Control-Allow-Origin value for `origin` ('' = none) */
  corsOrigin(origin: string): string {
    if (origin === '') return '';
    const allowed = this.host.options.allowedOrigins;
    return allowed.length === 0 || allowed.includes(origin) ? origin : '';
  }

  /**
   * The node holds `maxSessions` sessions, from the moment each exists (a negotiate, a first
   * long-poll, any connect) for as long as its client is there, between two polls too. Sessions
   * whose client went away (parked) hold no descriptor: they count against `detachedMaxBytes`
   * instead, and their client's next connection is admitted only if there is room.
   */
  atSessionLimit(): boolean {
    const max = this.host.options.maxSessions;
    return max > 0 && this.host.countedSessions() >= max;
  }

  /** Why the node should get no new clients now ('draining', 'saturated'), or null */
  unready(): 'draining' | 'saturated' | null {
    if (this.host.isDraining) return 'draining';
    if (this.fd.paused) return 'saturated';
    return this.atSessionLimit() ? 'saturated' : null;
  }

  /**
   * Near the open-file limit the node stops listening: new connections wait in (or are refused by)
   * the kernel at once instead of the node spinning on failing accepts (EMFILE) while its clients
   * and `/healthz` hang; `/readyz` says `saturated` meanwhile. It listens again once enough
   * descriptors are free.
   */
  checkDescriptors(): void {
    const g = this.fd;
    let open: number;
    try {
      open = readdirSync('/proc/self/fd').length;
    } catch (err) {
      // no descriptor left even to read the directory with: at the limit
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EMFILE' && code !== 'ENFILE') return; // not Linux, or no /proc: nothing to measure by
      open = g.limit;
    }
    g.open = open;
    const host = this.host;
    if (!g.paused && open >= g.high && host.listening) {
      g.paused = true;
      host.stopListening();
      warnOnce(`open files at ${open} of ${g.limit}: not accepting connections until ${g.low} or fewer are open`);
    } else if (g.paused && open <= g.low && !host.isDraining) {
      g.paused = false;
      // the port could not be had again (an ephemeral port, `--port 0`, can be held by
      // connections in TIME_WAIT for a minute): try at the next check
      host.listenAgain((ok) => {
        if (!ok) g.paused = true;
      });
    }
  }

  /** Forgets full rate buckets now and then (the sweep calls it) */
  prune(now: number): void {
    if (now - this.prunedAt < 5000) return;
    this.prunedAt = now;
    this.openRate.prune(now);
  }
}
