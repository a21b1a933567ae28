/**
 * A session as a gateway node holds it: identity, the outbox of frames for the client, and the
 * connection currently attached (if any). A session outlives its connections: a dropped
 * WebSocket, or the gap between two long-polls, only detaches it.
 */
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import type { InboundEnvelope, NodeEnvelope, RoomEnvelope } from '../cluster/envelope.ts';
import { encodeEvent, encodeReply, type Format, type Frame } from '../transports/frames.ts';
import { Outbox } from './outbox.ts';
import type { ErrorCode } from './errors.ts';

/**
 * What a transport gives the session to write through. Like centrifuge's Transport there is no
 * read side: transports push client frames into the gateway themselves.
 */
export interface Connection {
  readonly transport: TransportName;
  /** the session this connection serves (rebound when a hand-over replaces a shadow) */
  session: Session | null;
  /** The session was accepted (or resumed): send the `open` frame, then `flush` follows */
  sendOpen(s: Session, open: Frame): void;
  /** Write the session's frames after `s.sent`, advancing `s.sent`, as far as the wire takes them now */
  flush(s: Session): void;
  /** heartbeat */
  ping(s: Session): void;
  /** The session ended: send the close frame if the wire can, then close */
  end(s: Session, close: Frame, code: number, reason: string): void;
  /** Another connection took the session over (or the node drops it): close without a close frame */
  drop(): void;
  /** The node is draining: close so that the client reconnects (elsewhere) and resumes; the session lives on */
  restart(): void;
  /** This request is refused (the session lives on): an HTTP error where there is one, else a drop */
  fail(code: ErrorCode): void;
}

/** The node that holds the session (one object for all sessions, instead of a closure each) */
export interface SessionOwner {
  /** the outbox is full of frames the client has not been sent */
  overflow(s: Session): void;
  /** new frames are in the outbox: write them now, or soon (batched) */
  wake(s: Session): void;
}

export enum SessionState {
  /** waiting for a worker to accept it */
  Opening,
  Open,
  Closed,
}

export class Session {
  state = SessionState.Opening;
  readonly outbox: Outbox;
  /** highest seq written to the current connection (or acknowledged by a poll's `last`) */
  sent = 0;
  conn: Connection | null = null;
  /** client → worker envelope counter (`n`) */
  inSeq = 0;
  /** rooms this session is in, on this node; null until the first join */
  rooms: Set<string> | null = null;
  /** when the last connection went away (0 while attached) */
  detachedAt = 0;
  /** the transport the session currently uses */
  transport: TransportName;
  /** this session replaced one the client asked to resume but that was gone: `open` says recovered: false */
  lossy = false;
  /**
   * Set on a *shadow* session: the client is connected here but the session lives on node
   * `home`; this object only mirrors frames for the local connection (see relay.ts).
   */
  relay: { home: string; cid: number; deadline: number; token: string } | null = null;
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
    readonly format: Format,
    readonly meta: SessionMeta,
    /** bus subject of the partition that owns this session (shared string) */
    readonly subjectIn: string,
    transport: TransportName,
    outboxMaxFrames: number,
    private readonly owner: SessionOwner,
  ) {
    this.transport = transport;
    this.outbox = new Outbox(outboxMaxFrames);
  }

  /** Queues an event frame; `tail` is the shared JSON tail of a broadcast (see eventTail) */
  pushEvent(event: string, args: unknown[] | undefined, tail: string | null, raw?: string): void {
    if (this.state === SessionState.Closed) return;
    this.enqueue(encodeEvent(this.format, this.outbox.last + 1, event, args, tail, raw));
  }

  pushReply(ack: string | number, args: unknown[] | undefined, error: string | undefined): void {
    if (this.state === SessionState.Closed) return;
    this.enqueue(encodeReply(this.format, this.outbox.last + 1, ack, args, error));
  }

  private enqueue(frame: Frame): void {
    const box = this.outbox;
    // full, and the oldest frame was never written: dropping it would lose it
    if (box.size >= box.max && box.first > this.sent) {
      this.owner.overflow(this);
      return;
    }
    box.push(frame);
    if (this.conn !== null && this.state === SessionState.Open) this.owner.wake(this);
  }

  /**
   * The client says it has seen everything up to `last`. @returns false when frames after `last`
   * are no longer held (the client missed something for good)
   */
  rewind(last: number): boolean {
    const box = this.outbox;
    if (last > box.last) last = box.last;
    if (last < box.first - 1) {
      this.sent = box.first - 1;
      return false;
    }
    this.sent = last;
    return true;
  }
}

/** What only a cluster (delivery tracking, relays, hand-overs) needs of a session. */
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
  gapAskedAt = 0;
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
}
