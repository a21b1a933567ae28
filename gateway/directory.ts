/**
 * Which node holds a session, asked of the whole cluster. For dialects whose session key carries
 * no node hint (SockJS's client-chosen session ids): before a node creates a session for an
 * unknown key it asks here, or two nodes would each create one and the session would fork.
 *
 * A query goes to `sy.dir`, which every node subscribes to; only the node holding the session
 * answers (`r-here` to the asker). No answer within `relayTimeoutMs` means nobody holds it. The
 * lookup order of a wire is: the local table, then a signed node hint inside the key where the
 * dialect lets the server choose the key, then this query.
 */
import { subjects, type Subscription } from '../cluster/bus.ts';
import type { RelayEnvelope } from '../cluster/envelope.ts';
import type { ResolvedOptions } from './options.ts';
import type { Relay } from './relay.ts';
import type { Session } from './session.ts';
import type { Bus } from '../cluster/bus.ts';

/** What the directory needs of its node (the Gateway) */
export interface DirectoryHost {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly bus: Bus;
  readonly clustered: boolean;
  readonly sessions: Map<string, Session>;
  readonly relay: Pick<Relay, 'post'>;
}

type Here = Extract<RelayEnvelope, { t: 'r-here' }>;

export class Directory {
  private sub: Subscription | null = null;
  private nextQid = 1;
  private readonly pending = new Map<number, { done: (node: string | null, sid: string) => void; sid: string; timer: NodeJS.Timeout }>();

  constructor(private readonly gw: DirectoryHost) {}

  listen(): void {
    if (!this.gw.clustered) return; // one node: the local table is the whole directory
    this.sub = this.gw.bus.subscribe(subjects.directory, (e) => {
      const q = e as Extract<RelayEnvelope, { t: 'r-who' }>;
      if (q.t !== 'r-who' || q.from === this.gw.nodeId) return;
      const sid = [q.sid, ...(q.alt ?? [])].find((x) => this.gw.sessions.has(x));
      if (sid !== undefined) this.gw.relay.post(q.from, { t: 'r-here', qid: q.qid, node: this.gw.nodeId, sid });
    });
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.done(null, p.sid);
    }
    this.pending.clear();
  }

  /**
   * The node holding session `sids[0]` (or one of the others: the sids one client key has under
   * each secret): this one, another one, or null when none answers within `waitMs` (default
   * relayTimeoutMs). `done` gets the sid found (the first when none is)
   */
  locate(sids: readonly string[], done: (node: string | null, sid: string) => void, waitMs = this.gw.options.relayTimeoutMs): void {
    const here = sids.find((x) => this.gw.sessions.has(x));
    if (here !== undefined) return done(this.gw.nodeId, here);
    const sid = sids[0]!;
    if (this.sub === null) return done(null, sid);
    const qid = this.nextQid++;
    const timer = setTimeout(() => {
      this.pending.delete(qid);
      done(null, sid);
    }, waitMs);
    timer.unref();
    this.pending.set(qid, { done, sid, timer });
    this.gw.bus.publish(
      subjects.directory,
      sids.length > 1 ? { t: 'r-who', sid, alt: sids.slice(1), from: this.gw.nodeId, qid } : { t: 'r-who', sid, from: this.gw.nodeId, qid },
    );
  }

  onHere(e: Here): void {
    const p = this.pending.get(e.qid);
    if (p === undefined) return;
    this.pending.delete(e.qid);
    clearTimeout(p.timer);
    p.done(e.node, e.sid ?? p.sid);
  }
}
