/** Types shared by every layer: the normalized session model. */

export type TransportName = 'websocket' | 'sse' | 'polling';

/** An outbox entry as it crosses the bus (a relay, a hand-over): an event or a reply, dialect-neutral */
export interface WireEntry {
  k: 'event' | 'reply';
  event?: string;
  args?: unknown[];
  raw?: string;
  ack?: string | number;
  error?: string;
}

/** What a codec needs to say that a session is open (native: the `open` frame); it crosses the bus in a relay */
export interface OpenInfo {
  sid: string;
  /** signed key naming the node that holds the session (resume, relay) */
  token: string;
  pingMs: number;
  /** newest seq sent so far */
  last: number;
  /** present on a resume: whether every entry after the client's `last` follows */
  recovered?: boolean;
}

/** What the gateway learned about a client when its session opened. Copied once, never live. */
export interface SessionMeta {
  ip: string;
  origin: string;
  userAgent: string;
  /** the connect URL's query, less the protocol's own parameters (sid, token, last, format) */
  query: Record<string, string>;
  /**
   * credentials, unverified: the app decides. Native clients: the `auth` query parameter or the
   * `Authorization` header (a string); dialects with an auth payload (Socket.IO) give an object.
   */
  auth: string | Record<string, unknown>;
  /** the wire protocol the client speaks (`native`, `socket.io`, …): for logs; the app never needs it */
  dialect: string;
  /** Socket.IO: the namespace this session is (`/`, `/admin`, …); each namespace a client connects is its own session */
  namespace?: string;
  /** SignalR: the hub (`/hubs/<hub>`) */
  hub?: string;
}
