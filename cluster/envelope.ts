/**
 * Envelopes: the messages on the session bus. Short keys because they cross the network as
 * msgpack in a cluster.
 *
 * `n` numbers one session's client → worker envelopes (1 = the open). Workers drop an `n` they
 * have seen; gateways keep envelopes until a worker acknowledges them and resend them otherwise
 * (at least once). A worker acknowledges by sending any output with `n` (the event that caused
 * it), or an explicit `ack`.
 *
 * The other way, in a cluster, a worker numbers its outputs for a session (`o`, from 1) and keeps
 * them until the gateway says it has them (`lo`, on any later envelope); a gateway drops an `o`
 * it has seen and asks for a gap to be resent. So a message lost with a dying NATS server is sent
 * again instead of being lost.
 */
import type { OpenInfo, SessionMeta, TransportName, WireEntry } from './types.ts';

/** gateway → worker, on `sy.in.<partition>` */
export type InboundEnvelope =
  /** `moved`: a re-open on a new owner after a move; `n` is then the last acknowledged n */
  /**
   * `claim`: the sid is one the client chose (SockJS): when the worker has it from another node, or
   * it ended a moment ago, the worker says so (`taken`, `gone`) instead of opening a second one
   */
  (
    | { t: 'open'; sid: string; node: string; n: number; transport: TransportName; meta: SessionMeta; moved?: boolean; claim?: boolean }
    /**
     * `raw`: the JSON text of `args` as the client sent it (see ClientFrame). In one process both
     * come; over a network bus only `raw` when there is one (the worker parses it: cheaper than
     * msgpack-encoding the args on the gateway and decoding them on the worker)
     */
    | { t: 'event'; sid: string; node: string; n: number; event: string; args?: unknown[]; ack?: string | number; raw?: string }
    /** the client's answer to the app's `session.request` number `ack`; not numbered (`n` = 0): at most once */
    | { t: 'answer'; sid: string; node: string; n: 0; ack: string | number; args?: unknown[]; error?: string }
    | { t: 'close'; sid: string; node: string; n: number; code: number; reason: string }
    /** the session now lives on gateway `node` (after a hand-over) */
    | { t: 'rehome'; sid: string; node: string; n: number }
    /** the session's client now talks over `transport` (an upgrade, a resume over another transport, SignalR's transport after negotiate) */
    | { t: 'transport'; sid: string; node: string; n: number; transport: TransportName }
    /** send outputs from `o` = `from` on again (the gateway saw a gap); not numbered (`n` = 0) */
    | { t: 'resend'; sid: string; node: string; n: 0; from: number }
  ) & { /** highest output `o` the gateway has received (cluster) */ lo?: number };

/** worker output for one session: `n` acknowledges client envelopes up to n; `o` numbers outputs (cluster) */
export type OutputEnvelope = (
  | { t: 'accept'; sid: string }
  /**
   * `raw`: the JSON text of `args`, when they are the ones of the event being handled, unchanged;
   * over a network bus it then comes alone (no `args`). `ack`: a request (`session.request`) the
   * client answers with that id.
   */
  | { t: 'emit'; sid: string; event: string; args?: unknown[]; raw?: string; ack?: number }
  | { t: 'reply'; sid: string; ack: string | number; args?: unknown[]; raw?: string; error?: string }
  | { t: 'join'; sid: string; room: string }
  | { t: 'leave'; sid: string; room: string }
  | { t: 'disconnect'; sid: string; code: number; reason: string }
) & { n?: number; o?: number };

/** worker → gateway node, on `sy.node.<nodeId>` */
export type NodeEnvelope =
  | OutputEnvelope
  | { t: 'ack'; sid: string; n: number }
  /** a worker got an event for a session it does not know (it owns the partition now): re-open it */
  | { t: 'who'; sid: string }
  /** sent to the old node when the worker switched a session to its new node (see rehome) */
  | { t: 'rehomed'; sid: string }
  /** a claimed sid (see `open`) is the claiming node's: sent before the app's `open` runs */
  | { t: 'claimed'; sid: string }
  /** a claimed sid (see `open`) is node `node`'s session: the claiming node sends its client there */
  | { t: 'taken'; sid: string; node: string }
  /** a claimed sid ended a moment ago (with this close): it stays ended */
  | { t: 'gone'; sid: string; code: number; reason: string };

/** worker → every node with members, on `sy.room.<room>` */
export type RoomEnvelope = { t: 'broadcast'; room: string; event: string; args: unknown[]; except?: string[]; id?: string };

/**
 * membership, on `sy.ctl`. Workers: `hb` (`owned`: the partitions the worker owns when it says
 * so) and `bye`. Gateway nodes (node-liveness.ts): `node` (`boot`: new for each life of the
 * process; `timeoutMs`: silent this long, take the node for dead) and `node-bye`.
 */
export type ControlEnvelope =
  | { t: 'hb'; worker: string; owned?: number }
  | { t: 'bye'; worker: string }
  | { t: 'node'; node: string; boot: string; timeoutMs: number }
  | { t: 'node-bye'; node: string; boot: string };

/**
 * gateway ↔ gateway, on `sy.node.<nodeId>`: a client connected to node B for a session held by
 * node A. B keeps a *shadow* session for the connection; A keeps the session and a remote
 * connection standing for B's. `cid` names the connection on B.
 */
export type RelayEnvelope =
  /**
   * B → A: attach connection `cid` (`poll`: one long-poll) resuming after `last`; B encodes for its
   * client, A never needs its dialect. `ns`: the namespace the client connects (Socket.IO): a
   * session of another namespace is not attached (unknown)
   */
  | { t: 'r-attach'; sid: string; token: string; last: number; from: string; cid: number; transport: TransportName; poll: boolean; ns?: string }
  /**
   * A → B, for connection `cid`, all dialect-neutral (B encodes for its own client): the session
   * is open; entries from seq `first`; `end`: the session ended (B's codec makes the close);
   * `done`: the poll is answered, or the connection is replaced; `restart`: A drains; `gone`: A
   * has no session of that sid (the token named A, but the session moved, or A restarted): B asks
   * the cluster's directory where it is. An r-out with nothing else says "attached".
   */
  | {
      t: 'r-out';
      cid: number;
      /** (with "attached") how far the holder had written the session to its client's connections */
      written?: number;
      open?: OpenInfo;
      first?: number;
      entries?: WireEntry[];
      end?: { code: number; reason: string };
      done?: boolean;
      restart?: boolean;
      error?: string;
      gone?: boolean;
    }
  /** B → A: client frames from connection `cid` (validated by B) */
  | { t: 'r-in'; sid: string; from: string; cid: number; frames: unknown[] }
  /** B → A: the client of connection `cid` acknowledged the session's entries up to `seq` (a dialect with its own acks) */
  | { t: 'r-ack'; sid: string; from: string; cid: number; seq: number }
  /** B → A: connection `cid` goes over another transport now (its carrier upgraded on B): the holder's worker hears of it */
  | { t: 'r-transport'; sid: string; from: string; cid: number; transport: TransportName }
  /** B → A: connection `cid` went away; with `code`: the session must end (the client broke the protocol) */
  | { t: 'r-detach'; sid: string; from: string; cid: number; code?: number; reason?: string }
  /** B → A: an upstream POST; A answers r-done (`gone`: as in r-out) */
  | { t: 'r-send'; sid: string; token: string; from: string; cid: number; frames: unknown[] }
  | { t: 'r-done'; cid: number; error?: string; gone?: boolean }
  /**
   * A (draining) → B: B will take the session of connection `cid`: subscribe to its rooms now
   * (buffering what comes) and say r-ready once the subscriptions are in force
   */
  | { t: 'r-prepare'; cid: number; rooms: string[] }
  | { t: 'r-ready'; sid: string; from: string; cid: number }
  /** A (draining) → B: instead of relaying connection `cid`, take the whole session */
  | { t: 'r-handover'; cid: number; state: SessionState }
  /** A → B: worker output or a broadcast for a session A handed to B, that reached A after the hand-over */
  | { t: 'r-fwd'; sid: string; e: NodeEnvelope | RoomEnvelope }
  /** A → B: A stopped forwarding broadcasts for session `sid` */
  | { t: 'r-bye'; sid: string }
  /** a node to itself: the bus's round trip (`at`: performance.now() when sent) */
  | { t: 'r-probe'; at: number }
  /**
   * any node → every node, on `sy.dir`: who holds session `sid` (or one of `alt`: the sids a
   * client's own key has under each secret, while the secret rotates)? Only the holder answers
   * r-here, with the sid it holds
   */
  | { t: 'r-who'; sid: string; alt?: string[]; from: string; qid: number }
  | { t: 'r-here'; qid: number; node: string; sid?: string };

/** node → node, on `sy.node.<nodeId>`: a dialect's tunneled request or answer on its channel `ch` (see Port.tunnel, gateway/tunnel.ts) */
export type LinkEnvelope = { t: 'x'; ch: string; from: string; m: unknown };

/** A session's state, as handed from a draining node to another */
export interface SessionState {
  sid: string;
  /** with the client's dialect in `meta.dialect` */
  meta: SessionMeta;
  transport: TransportName;
  /** the outbox: entries from seq `first` on */
  first: number;
  entries: WireEntry[];
  inSeq: number;
  /** client sequence numbers handled (dedupe): every one up to `clientSeq`, and those in `clientAhead` */
  clientSeq: number;
  clientAhead?: number[];
  acked: number;
  unacked: InboundEnvelope[];
  rooms: string[];
  /** the session was accepted by a worker (else it is still waiting for one) */
  open: boolean;
  /** highest worker output `o` applied */
  lastOut: number;
  /** broadcasts delivered into `frames` since B was asked to subscribe (B drops them from its buffer) */
  delivered: string[];
  /** the native dialect's token generations (TokenGens.toWire) */
  tokens?: [number, number, number, number];
}

export type Envelope = InboundEnvelope | NodeEnvelope | RoomEnvelope | ControlEnvelope | RelayEnvelope | LinkEnvelope;
