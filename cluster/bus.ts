/**
 * The session bus: how gateway nodes and workers talk. Subjects are dot-separated strings
 * (NATS style); payloads are envelopes (see envelope.ts). Two implementations: `MemoryBus`
 * (one process, the default) and, for a cluster, a NATS-backed one.
 *
 * Guarantees every implementation gives:
 * - Messages one publisher sends are delivered to each subscriber in the order they were
 *   published (per publisher, across subjects too for MemoryBus).
 * - Delivery is at most once; at-least-once for client → worker events is built above the bus
 *   (sequence numbers and retry), not promised by it.
 * - A handler is never called after its subscription was unsubscribed.
 * - A handler that throws does not stop delivery to other subscribers.
 * - Envelopes are treated as immutable once published: `MemoryBus` hands the same object to
 *   every subscriber, a network bus hands each one its own decoded copy.
 */
export interface Bus {
  publish(subject: string, envelope: Envelope): void;
  subscribe(subject: string, handler: BusHandler): Subscription;
  /** Flushes pending publishes (a no-op in memory) */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export type BusHandler = (envelope: Envelope, subject: string) => void;

export interface Subscription {
  unsubscribe(): void;
}

import type { Envelope } from './envelope.ts';
export type { Envelope };

/** Subject names, in one place. */
export const subjects = {
  /** gateway → the worker that owns a partition */
  partition: (p: number) => `sy.in.${p}`,
  /** anything → one gateway node (worker output for its sessions) */
  node: (nodeId: string) => `sy.node.${nodeId}`,
  /** room broadcasts; a node subscribes only while it has local members */
  room: (room: string) => `sy.room.${room}`,
  /** membership heartbeats */
  control: 'sy.ctl',
  /** "which node holds session X?", subscribed by every gateway node; only the holder answers */
  directory: 'sy.dir',
} as const;
