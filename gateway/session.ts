/**
 * A session as a gateway node holds it: identity, the outbox of neutral entries for the client,
 * and the connection currently attached (if any). A session outlives its connections: a dropped
 * WebSocket, or the gap between two long-polls, only detaches it. Nothing here knows a dialect:
 * each connection encodes the entries with its own codec.
 */
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import type { InboundEnvelope, NodeEnvelope, RoomEnvelope } from '../cluster/envelope.ts';
import type { Entry } from '../transports/seam/entry.ts';
import type { Claim, Connection, PortSession } from '../transports/seam/port.ts';
import { Outbox, type OutboxLimits } from './outbox.ts';
import type { TokenGens } from './token.ts';

/** The node that holds the session (one object for all sessions, instead of a closure each) */
/** client frames above the contiguous `cseq` mark a session remembers (Session.firstTime) */
export const CSEQ_WINDOW = 1024;

export interface SessionOwner {
  /** counts entries queued (metrics) */
  readonly stats: { messagesOut: number };
  /** the outbox is full of entries the client has not been sent */
  overflow(s: Session): void;
  /**
   * new entries are in the outbox: write them now, or soon (batched). `batch`: a room broadcast's
   * entry, written with whatever else comes for this session in the same turn of the event loop
   */
  wake(s: Session, batch: boolean): void;
}

export enum SessionState {
  /** waiting for a worker to accept it */
  Opening,
  Open,
  Closed,
}

export class Session implements PortSession {
  state = SessionState.Opening;
  readonly outbox: Outbox;
  /** highest seq written to the current connection (or acknowledged by a poll's `last`) */
  sent = 0;
  conn: Connection | null = null;
  /** client → worker envelope counter (`n`) */
  inSeq = 0;
  /** every client frame numbered (`cseq`) up to here was handled: one at or below it is a repeat */
  clientSeq = 0;
  /**
   * client frames numbered above `clientSeq` handled already, out of order (a frame resent after a
   * drop overtaken by a newer one on another path); null when none (see `firstTime`)
   */
  clientAhead: Set<number> | null = null;
  /** rooms this session is in, on this node; null until the first join */
  rooms: Set<string> | null = null;
  /** when the last connection went away (0 while attached) */
  detachedAt = 0;
  /** the transport the session currently uses */
  transport: TransportName;
  /** this session replaced one the client asked to resume but that was gone: the open says recovered: false */
  lossy = false;
  /**
   * Set on a *shadow* session: the client is connected here but the session lives on node
   * `home`; this object only mirrors entries for the local connection (see relay.ts).
   */
  relay: { home: string; cid: number; deadline: number; token: string } | null = null;
  /** the native dialect's token generations (see TokenGens); null for dialects whose tokens do not rotate */
  tokens: TokenGens | null = null;
  /** what the node counts it as (Gateway.recount: transport, dialect, attached), or null: not counted */
  counted: string | null = null;
  /** cluster and hand-over state; allocated on first use (a single node never needs it) */
  private _ext: SessionExt | null = null;

  get ext(): SessionExt {
    return (this._ext ??= new SessionExt());
  }

  /** the cluster state if there is any, without allocating it (hot paths) */
  get extIfAny(): SessionExt | null {
    return this._ext;
  }

  constructor(
    readonly sid: string,
    readonly meta: SessionMeta,
    /** bus subject of the partition that owns this session (shared string) */
    readonly subjectIn: string,
    transport: TransportName,
    limits: OutboxLimits,
    private readonly owner: SessionOwner,
  ) {
    this.transport = transport;
    this.outbox = new Outbox(limits);
  }

  /**
   * Whether the client frame numbered `cseq` comes for the first time (and counts it handled); a
   * repeat is false. Frames may come out of order: those above the contiguous mark are remembered
   * (at most CSEQ_WINDOW; past it the oldest gap is given up: its frames count as handled).
   */
  firstTime(cseq: number): boolean {
    if (cseq <= this.clientSeq) return false;
    let ahead = this.clientAhead;
    if (cseq === this.clientSeq + 1) {
      this.clientSeq = cseq;
      if (ahead !== null) {
        while (ahead.delete(this.clientSeq + 1)) this.clientSeq++;
        if (ahead.size === 0) this.clientAhead = null;
      }
      return true;
    }
    if (ahead === null) ahead = this.clientAhead = new Set();
    else if (ahead.has(cseq)) return false;
    ahead.add(cseq);
    if (ahead.size > CSEQ_WINDOW) {
      let oldest = cseq;
      for (const n of ahead) if (n < oldest) oldest = n;
      ahead.delete(oldest);
      this.clientSeq = oldest;
      while (ahead.delete(this.clientSeq + 1)) this.clientSeq++;
    }
    return true;
  }

  /**
   * Queues an entry. Room is made by dropping the oldest entries already written; when that is
   * not enough, the client reads too slowly (or stayed away too long): the owner ends the session.
   */
  push(e: Entry, batch = false): void {
    if (this.state === SessionState.Closed) return;
    const box = this.outbox;
    while (box.size > 0 && !box.fits(e.size)) {
      // the oldest entry was never written: dropping it would lose it
      if (box.first > this.sent) {
        this.owner.overflow(this);
        return;
      }
      box.shift();
    }
    box.push(e);
    this.owner.stats.messagesOut++;
    if (this.conn !== null && this.state === SessionState.Open) this.owner.wake(this, batch);
  }

  /**
   * The client says it has seen everything up to `last`: those entries are released, and writing
   * continues after them. @returns false when entries after `last` are no longer held (the client
   * missed something for good)
   */
  rewind(last: number): boolean {
    const box = this.outbox;
    if (last > box.last) last = box.last;
    if (last < box.first - 1) {
      this.sent = box.first - 1;
      return false;
    }
    box.release(last);
    this.sent = last;
    return true;
  }
}

/** What only a cluster (delivery tracking, relays, hand-overs) or an upgrade needs of a session. */
export class SessionExt {
  /** client → worker envelopes not yet acknowledged by a worker (cluster mode only) */
  unacked: InboundEnvelope[] | null = null;
  /** highest `n` a worker acknowledged */
  acked = 0;
  /** when the oldest unacked envelope was (re)sent */
  unackedSince = 0;
  /** highest worker output `o` applied, outputs that came before their turn, and when we last asked for a gap (cluster) */
  lastOut = 0;
  early: Map<number, NodeEnvelope> | null = null;
  /**
   * Hand-over of a session in rooms, on the draining node: broadcast ids delivered since the new
   * node was asked to subscribe (it drops those from what it buffered), and where it goes
   */
  handing: { to: string; cid: number; ids: string[]; deadline: number } | null = null;
  /** (on the draining node, after the hand-over) forward broadcasts to this node for a little while */
  movedTo: string | null = null;
  /**
   * (on the new node) broadcasts held back during a hand-over: they come directly and, forwarded,
   * from the old node; released in publish order (per worker), each once. `bufferIds` dedupes.
   */
  buffer: RoomEnvelope[] | null = null;
  bufferIds: Set<string> | null = null;
  bufferUntil = 0;
  /** (on the new node) worker output that came directly, held until the old node forwarded what it got first */
  held: NodeEnvelope[] | null = null;
  heldUntil = 0;
  /** a sid the client chose, until its worker accepts it (see Port's Claim) */
  claim: Claim | null = null;
}
