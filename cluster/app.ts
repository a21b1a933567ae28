/**
 * The worker API: the only thing application authors write. An app never sees which wire a
 * client uses; a Socket.IO emit, a SignalR invoke and a native event all arrive as `event`.
 */
import type { SessionMeta, TransportName } from './types.ts';

export interface AppSession {
  readonly sid: string;
  /**
   * the transport the client talks over now: the one it opened with, until an upgrade (Socket.IO),
   * a resume over another transport, or SignalR's transport after its negotiate changes it; events
   * after the change see the new one (informational; the app should not depend on it)
   */
  readonly transport: TransportName;
  readonly meta: SessionMeta;
  /**
   * true when this worker re-opened a session that began elsewhere (its partition moved after a
   * worker joined, left or died): `open` runs again, with whatever per-session state is lost
   */
  readonly moved: boolean;
  /** free per-session storage for the app; lives as long as the session on this worker */
  data: Record<string, unknown>;
  emit(event: string, ...args: unknown[]): void;
  /**
   * Asks the client: emits `event` with an id the client answers (Socket.IO `emitWithAck`,
   * SignalR client results, a native event frame with `ack`). Resolves with the client's answer
   * (its args); rejects with the client's error, after the worker's `requestTimeoutMs` (default
   * 10 s), or when the session ends. Answers are delivered at most once: one lost on the way
   * (a worker died) makes the request time out.
   */
  request(event: string, ...args: unknown[]): Promise<unknown[]>;
  join(room: string): void;
  leave(room: string): void;
  /** end the session; `code` 4000-4099 is the app's range (see docs/errors.md) */
  disconnect(code?: number, reason?: string): void;
}

/** Answers a client event that asked for an acknowledgement. Call it at most once. */
export type Reply = (...args: unknown[]) => void;

export interface BroadcastOptions {
  /** sids that must not get this broadcast */
  except?: string[];
}

export interface AppContext {
  broadcast(room: string, event: string, args: unknown[], options?: BroadcastOptions): void;
}

export interface AppHandlers {
  /**
   * A session began. Throw (or return a rejected promise) to refuse it: the client gets
   * SY_ERR_REJECTED with the error's message as the reason. Events that arrive while an async
   * `open` runs wait for it, in order.
   */
  open?(session: AppSession): void | Promise<void>;
  /**
   * The client emitted an event. `reply` is present when the client asked for an ack; if the
   * handler throws (or its promise rejects) the client gets a reply with `error` instead.
   * Events of one session are delivered one at a time, in order: an async handler holds the
   * next event of its session until it settles.
   */
  event(session: AppSession, event: string, args: unknown[], reply: Reply | undefined): void | Promise<void>;
  /** The session ended (client close, expiry after the resume window, disconnect, rejection never reaches here). */
  close?(session: AppSession, reason: { code: number; reason: string }): void;
}

/** An app is its handlers, or a factory that gets the context (for `broadcast`). */
export type App = AppHandlers | ((ctx: AppContext) => AppHandlers);
