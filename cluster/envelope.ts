/**
 * Envelopes: the messages on the session bus. Short keys because they cross the network as
 * msgpack in a cluster. `n` is the per-session sequence number of client → worker messages
 * (used to drop duplicates after a retry).
 */
import type { SessionMeta, TransportName } from './types.ts';

/** gateway → worker, on `sy.in.<partition>` */
export type InboundEnvelope =
  | { t: 'open'; sid: string; node: string; n: number; transport: TransportName; meta: SessionMeta }
  | { t: 'event'; sid: string; node: string; n: number; event: string; args: unknown[]; ack?: string | number }
  | { t: 'close'; sid: string; node: string; n: number; code: number; reason: string };

/** worker → gateway node, on `sy.node.<nodeId>` */
export type NodeEnvelope =
  | { t: 'accept'; sid: string }
  | { t: 'emit'; sid: string; event: string; args: unknown[] }
  | { t: 'reply'; sid: string; ack: string | number; args?: unknown[]; error?: string }
  | { t: 'join'; sid: string; room: string }
  | { t: 'leave'; sid: string; room: string }
  | { t: 'disconnect'; sid: string; code: number; reason: string };

/** worker → every node with members, on `sy.room.<room>` */
export type RoomEnvelope = { t: 'broadcast'; room: string; event: string; args: unknown[]; except?: string[] };

export type Envelope = InboundEnvelope | NodeEnvelope | RoomEnvelope;
