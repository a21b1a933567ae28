/**
 * Gateway nodes' liveness, from their heartbeats on the bus (`sy.ctl`). Every gateway node of a
 * cluster announces itself (`node`) every `heartbeatMs` with the time after which the others may
 * take it for dead, and a `boot` id that is new for each life of the process. Gateways and workers
 * watch: a node is dead when it has been silent past its own stated timeout, when it said
 * `node-bye`, or when it comes back with another `boot` (it restarted: what its previous life held
 * is gone). Then `onDead(node)` fires, once per life:
 * - a worker ends the dead node's sessions (the app's `close` runs, SY_ERR_NODE_LOST);
 * - a gateway ends its connections relayed to the node (the client reconnects), and lets go of the
 *   connections the node relayed to it (their sessions wait for their clients, as after a drop).
 *
 * Only a node once heard from can die: one that never sent a heartbeat (an older version during a
 * rolling upgrade) is never judged, and the relay's own timeouts apply to it.
 *
 * A node whose own timer ran late by more than its timeout (it was stopped: SIGSTOP, a pause) was
 * taken for dead by the others meanwhile: `onStall` runs and it takes a new boot id, so that the
 * others and it agree that its previous life is over.
 */
import { randomBytes } from 'node:crypto';
import { subjects, type Bus, type Subscription } from './bus.ts';
import type { ControlEnvelope } from './envelope.ts';

export interface NodeLivenessOptions {
  bus: Bus;
  /** this participant's node id, when it is a gateway node (it then announces itself) */
  nodeId?: string;
  /** @default 1000 */
  heartbeatMs?: number;
  /** what this node tells the others: silent this long, take it for dead @default 3000 */
  timeoutMs?: number;
  /** another node died (timed out, said bye, or restarted) */
  onDead: (node: string) => void;
  /** this node itself was stopped past its timeout (see above) */
  onStall?: () => void;
}

/** how long a dead node is remembered as dead (a relay to it is refused at once meanwhile) */
const DEAD_MEMORY_MS = 10 * 60_000;

interface Seen {
  boot: string;
  at: number;
  timeoutMs: number;
}

export class NodeLiveness {
  private readonly alive = new Map<string, Seen>();
  /**
   * nodes taken for dead, when, and whether they said goodbye (a drained node hands its sessions
   * over first): until one announces itself with a new boot
   */
  private readonly dead = new Map<string, { at: number; left: boolean }>();
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private boot = newBoot();
  private lastTick = Date.now();
  private lastBeat = 0;
  readonly heartbeatMs: number;
  readonly timeoutMs: number;

  constructor(private readonly o: NodeLivenessOptions) {
    this.heartbeatMs = o.heartbeatMs ?? 1000;
    this.timeoutMs = o.timeoutMs ?? 3000;
    if (this.timeoutMs <= this.heartbeatMs) throw new TypeError('node timeoutMs must be greater than heartbeatMs');
    this.sub = o.bus.subscribe(subjects.control, (e) => this.onControl(e as ControlEnvelope));
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(this.heartbeatMs, this.timeoutMs / 4)));
    this.timer.unref();
    if (o.nodeId !== undefined) this.announce();
  }

  /** `node` was heard from and then died (a relay to it is refused at once) */
  isDead(node: string): boolean {
    return this.dead.has(node);
  }

  /** `node` said goodbye (it stopped, after handing its sessions over), rather than falling silent */
  hasLeft(node: string): boolean {
    return this.dead.get(node)?.left === true;
  }

  private announce(): void {
    this.lastBeat = Date.now();
    this.o.bus.publish(subjects.control, { t: 'node', node: this.o.nodeId!, boot: this.boot, timeoutMs: this.timeoutMs });
  }

  private onControl(e: ControlEnvelope): void {
    if (e.t !== 'node' && e.t !== 'node-bye') return;
    if (e.node === this.o.nodeId) return;
    const was = this.alive.get(e.node);
    if (e.t === 'node-bye') {
      if (was !== undefined && was.boot === e.boot) this.died(e.node, true);
      // a node that left before we heard it (we started a moment ago): what it held is elsewhere
      else if (was === undefined && !this.dead.has(e.node)) this.dead.set(e.node, { at: Date.now(), left: true });
      return;
    }
    if (was !== undefined && was.boot !== e.boot) this.died(e.node); // a new life: the old one is over
    this.dead.delete(e.node);
    this.alive.set(e.node, { boot: e.boot, at: Date.now(), timeoutMs: e.timeoutMs });
  }

  private died(node: string, left = false): void {
    this.alive.delete(node);
    this.dead.set(node, { at: Date.now(), left });
    this.o.onDead(node);
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.lastTick > this.timeoutMs) {
      // we were stopped: the others took us for dead meanwhile, and we may have missed their
      // heartbeats: they get a fresh timeout, and we start a new life
      for (const s of this.alive.values()) s.at = now;
      if (this.o.nodeId !== undefined) {
        this.boot = newBoot();
        this.o.onStall?.();
      }
    }
    this.lastTick = now;
    if (this.o.nodeId !== undefined && now - this.lastBeat >= this.heartbeatMs) this.announce();
    for (const [node, s] of this.alive) if (now - s.at > s.timeoutMs) this.died(node);
    for (const [node, { at }] of this.dead) {
      if (now - at < DEAD_MEMORY_MS) break; // insertion order = age order
      this.dead.delete(node);
    }
  }

  /** Stops; a gateway node says goodbye, so the others let go of what it held at once */
  stop(): void {
    clearInterval(this.timer);
    if (this.o.nodeId !== undefined) this.o.bus.publish(subjects.control, { t: 'node-bye', node: this.o.nodeId, boot: this.boot });
    this.sub.unsubscribe();
  }
}

function newBoot(): string {
  return randomBytes(6).toString('base64url');
}
