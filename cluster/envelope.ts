/**
 * Envelopes: the messages on the session bus. Short keys because they cross the network as
 * msgpack in a cluster.
 *
 * `n` numbers one session's client → worker envelopes (1 = the open). Workers drop an `n` they
 * have seen; gateways keep envelopes until a worker acknowledges them and resend them otherwise
 * (at least once). A worker acknowledges by sending any output with `n` (the event that caused
 * it), or an explicit `ack`.
 */
import type { SessionMeta, TransportName } from './types.ts';

/** gateway → worker, on `sy.in.<partition>` */
export type InboundEnvelope =
  /** `moved`: a re-open on a new owner after a move; `n` is then the last acknowledged n */
  | { t: 'open'; sid: string; node: string; n: number; transport: TransportName; meta: SessionMeta; moved?: boolean }
  | { t: 'event'; sid: string; node: string; n: number; event: string; args: unknown[]; ack?: string | number }
  | { t: 'close'; sid: string; node: string; n: number; code: number; reason: string }
  /** the session now lives on gateway `node` (after a hand-over) */
  | { t: 'rehome'; sid: string; node: string; n: number };

/** worker → gateway node, on `sy.node.<nodeId>`; `n` acknowledges client envelopes up to n */
export type NodeEnvelope =
  | { t: 'accept'; sid: string; n?: number }
  | { t: 'emit'; sid: string; event: string; args: unknown[]; n?: number }
  | { t: 'reply'; sid: string; ack: string | number; args?: unknown[]; error?: string; n?: number }
  | { t: 'join'; sid: string; room: string; n?: number }
  | { t: 'leave'; sid: string; room: string; n?: number }
  | { t: 'disconnect'; sid: string; code: number; reason: string; n?: number }
  | { t: 'ack'; sid: string; n: number }
  /** a worker got an event for a session it does not know (it owns the partition now): re-open it */
  | { t: 'who'; sid: string }
  /** sent to the old node when the worker switched a session to its new node (see rehome) */
  | { t: 'rehomed'; sid: string };

/** worker → every node with members, on `sy.room.<room>` */
export type RoomEnvelope = { t: 'broadcast'; room: string; event: string; args: unknown[]; except?: string[] };

/** membership, on `sy.ctl` */
export type ControlEnvelope = { t: 'hb'; worker: string } | { t: 'bye'; worker: string };

/** gateway ↔ gateway, on `sy.node.<nodeId>`: a connection on one node for a session held by another */
export type RelayEnvelope =
  /** B → A: a client of A's session `sid` connected to B (conn `cid`); `poll`: one long-poll */
  | { t: 'r-attach'; sid: string; token: string; last: number; from: string; cid: number; transport: TransportName; poll?: boolean }
  /** A → B: frames for connection `cid` (`open` first on attach); `end`: then close it with code/reason; `done`: the poll is answered */
  | { t: 'r-out'; cid: number; frames: Array<string | Uint8Array>; end?: { code: number; reason: string }; done?: boolean; error?: string }
  /** B → A: client frames from connection `cid` (already validated) */
  | { t: 'r-in'; sid: string; cid: number; frames: unknown[] }
  /** B → A: connection `cid` went away */
  | { t: 'r-detach'; sid: string; cid: number }
  /** B → A: upstream POST; A answers r-done */
  | { t: 'r-send'; sid: string; token: string; from: string; cid: number; frames: unknown[] }
  | { t: 'r-done'; cid: number; error?: string }
  /** A (draining) → B: the whole session, instead of relaying it */
  | { t: 'r-handover'; cid: number; state: SessionState }
  /** anything for a session that moved, forwarded by its old node */
  | { t: 'fwd'; e: NodeEnvelope };

/** A session's state, as handed from a draining node to another */
export interface SessionState {
  sid: string;
  format: 'json' | 'msgpack';
  meta: SessionMeta;
  transport: TransportName;
  first: number;
  frames: Array<string | Uint8Array>;
  inSeq: number;
  acked: number;
  unacked: InboundEnvelope[];
  rooms: string[];
}

export type Envelope = InboundEnvelope | NodeEnvelope | RoomEnvelope | ControlEnvelope | RelayEnvelope;
