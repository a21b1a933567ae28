/**
 * Types for client/switchyard.js, the public entry of the Switchyard native client (wire protocol
 * v1, docs/protocol.md). Hand-written: keep in sync with the JSDoc of the modules it re-exports
 * (client.js, session.js, emitter.js, errors.js; the options are in types.js).
 *
 * Only structural types are used (no DOM or Node types), so this compiles in browser and Node
 * projects alike.
 */

export type TransportName = 'websocket' | 'sse' | 'polling';

/**
 * - `idle`: created with `new SwitchyardClient()`, open() not called yet
 * - `connecting`: first connection attempt(s)
 * - `open`: a connection is open; emits go out at once
 * - `reconnecting`: the connection dropped (or attempts failed); waiting for backoff or retrying
 * - `closed`: close() was called, the server ended the session with a terminal code, or reconnecting gave up
 */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A msgpack codec, e.g. `{ encode: pack, decode: unpack }` from msgpackr. */
export interface Codec {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

/** Anything constructible like the WHATWG WebSocket (browser, Node 22+, or the `ws` package). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;
/** Anything constructible like the WHATWG EventSource (browser, or the `eventsource` package). */
export type EventSourceConstructor = new (url: string, init?: any) => object;
/** A fetch implementation (global fetch in browsers and Node 18+). */
export type FetchFunction = (input: string, init?: any) => Promise<any>;

export interface ClientOptions {
  /**
   * Transports to try, in order: if one can not connect the next one is tried. A round starts with
   * the one that last worked, or a remembered fallback (docs/client.md, "Fallback").
   * @default ['websocket', 'sse', 'polling']
   */
  transports?: TransportName[];
  /** Reconnect (and resume the session) after a drop. @default true */
  reconnect?: boolean;
  /** Backoff base: the nth reconnect waits random(0, min(maxDelayMs, minDelayMs * 2^(n-1))). @default 250 */
  minDelayMs?: number;
  /** Backoff cap. @default 10000 */
  maxDelayMs?: number;
  /** Reconnect attempts (without an open in between) before giving up with 'close'. @default Infinity */
  maxAttempts?: number;
  /**
   * How long one transport may take to reach `open` before the next is tried. Doubled (then 4×)
   * for the rounds after a round in which every transport failed and one ran out of time; back to
   * this after an open. Also how long a POST /rt/send may stay out after its connection ended.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /** Default timeout of request(). @default 10000 */
  ackTimeoutMs?: number;
  /** The server's long-poll hold time; a poll not answered within this + 10 s counts as a drop. @default 25000 */
  pollTimeoutMs?: number;
  /** Outbound frames held while disconnected (or while a POST is in flight). @default 1000 */
  maxQueue?: number;
  /** Frames per POST /rt/send. @default 100 */
  maxBatch?: number;
  /** Soft cap on the JSON size of one POST /rt/send body, in characters. @default 32768 */
  maxBatchBytes?: number;
  /** Extra query parameters for connect requests (passed to the app as session.meta.query); a function is called per connect. */
  query?: Record<string, unknown> | (() => Record<string, unknown>);
  /** Route prefix of the gateway. @default '/rt' */
  path?: string;
  /**
   * Remember a fallback (a transport that worked after the ones before it in `transports` failed)
   * so that the next client for this gateway starts with it: in localStorage when there is one,
   * else in memory (the page or process). `false`: never read or write it; a string: the storage
   * key. @default true (key `switchyard.transport <http(s)://host[/prefix]/rt>`)
   */
  rememberTransport?: boolean | string;
  /**
   * How long a fallback is trusted, from the time the better transports failed (working again
   * does not renew it). After that the first transport is tried again, by new clients and by this
   * client's next reconnect. @default 14400000 (4 hours)
   */
  rememberForMs?: number;
  /** Wire format for WebSocket and long-polling (SSE is always JSON). @default 'json' */
  format?: 'json' | 'msgpack';
  /** Required for format 'msgpack'. */
  msgpack?: Codec;
  /** WebSocket implementation. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** EventSource implementation. @default globalThis.EventSource */
  EventSource?: EventSourceConstructor;
  /** fetch implementation (SSE upstream and long-polling). @default globalThis.fetch */
  fetch?: FetchFunction;
}

export interface OpenInfo {
  sid: string;
  /**
   * true only when a previous session was resumed without loss. false on the first open, and when
   * the old session was gone (new sid) or frames were lost: re-join rooms / re-sync state then.
   */
  recovered: boolean;
  /** the first open since open()/connect() */
  first: boolean;
  transport: TransportName;
  /** newest seq the server had sent when it opened (undefined for a long-polling resume) */
  last: number | undefined;
}

export interface CloseInfo {
  /** 1000 after close(); the server's code for a terminal close; 1006 when reconnecting gave up */
  code: number;
  reason: string;
}

export interface ReconnectingInfo {
  /** 1 for the first attempt after a drop; reset by every open */
  attempt: number;
  /** backoff before this attempt (full jitter) */
  delayMs: number;
  code?: number;
  reason?: string;
}

/**
 * The reply callback of a server request (an event the server sent with `ack`): the LAST argument
 * the event's listeners get. Sends `{"type":"reply","ack":K,"args":[...args]}`. Only the first
 * answer counts: a call of it, or a listener's exception or rejected promise (sent as the reply's
 * `error`, the message). Returns false if nothing was queued: answered already, the session was
 * replaced meanwhile, the client is closed, or the queue is full. (A reply still queued when the
 * session is replaced is dropped.)
 */
export type Reply = (...args: unknown[]) => boolean;

/** Listeners of the client's own events. Server events with these names reach only 'event' listeners. */
export interface ClientEvents {
  open: (info: OpenInfo) => void;
  close: (info: CloseInfo) => void;
  reconnecting: (info: ReconnectingInfo) => void;
  /** the transport of an open connection changed (also on the first open) */
  transport: (name: TransportName) => void;
  /** non-fatal problems: a transport that failed, a refused POST, a malformed frame, a full queue */
  error: (err: SwitchyardError) => void;
  /** every server event, in order (a server request too; its listeners answer it, see Reply) */
  event: (event: string, args: unknown[]) => void;
}

export type ReservedEventName = keyof ClientEvents;

/**
 * Error codes of the client itself:
 * SY_CLIENT_CLOSED, SY_CLIENT_TIMEOUT, SY_CLIENT_QUEUE_FULL, SY_CLIENT_SESSION_LOST,
 * SY_CLIENT_TRANSPORT, SY_CLIENT_MALFORMED_FRAME, SY_CLIENT_RESUME_REFUSED, SY_CLIENT_HTTP;
 * SY_APP_ERROR for a reply `error` from the application; server codes (SY_ERR_*) as sent.
 */
export declare class SwitchyardError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; transport?: TransportName; reply?: Record<string, unknown>; cause?: unknown });
  readonly code: string;
  /** HTTP status, for HTTP errors */
  readonly status: number | undefined;
  readonly transport: TransportName | undefined;
  /** the reply frame, when a request() was answered with `error` */
  readonly reply: Record<string, unknown> | undefined;
}

/** Close codes after which the client does not reconnect (see docs/errors.md). */
export declare function isTerminalCode(code: number): boolean;

/** What the testing hook `_conn` exposes. */
export interface ConnectionHandle {
  readonly name: TransportName;
  readonly opened: boolean;
  readonly dead: boolean;
  /** drop this connection abruptly, as a network failure would */
  kill(reason?: string): void;
}

export declare class SwitchyardClient {
  /**
   * @param url gateway base URL (http(s):// or ws(s)://, optionally with a path prefix and a
   *   query that is sent on connect); in a browser it may be omitted (page origin).
   */
  constructor(url?: string | URL, options?: ClientOptions);
  constructor(options?: ClientOptions);

  /** transports this client tries, in order (requested ones that have an implementation here) */
  readonly transports: TransportName[];
  /** session id; null before the first open */
  readonly sid: string | null;
  /** resume token of the session */
  readonly token: string | null;
  /** newest seq delivered to the application */
  readonly lastSeq: number;
  /** transport of the current (or most recent) connection */
  readonly transport: TransportName | null;
  /** heartbeat interval the server announced (0 before open) */
  readonly pingMs: number;
  readonly state: ClientState;
  /** state === 'open' */
  readonly connected: boolean;
  /** testing hook: the live connection (`c._conn?.kill()` simulates a network drop) */
  readonly _conn: ConnectionHandle | null;

  /**
   * Listen; returns a function that removes the listener. A server event's listener gets the
   * event's args; for a server request (sent with `ack`) it also gets a Reply as the last argument,
   * e.g. `c.on('confirm', async (text, reply) => reply(await ask(text)))`. A request with no
   * listener is answered with the error `no handler for <event>`.
   */
  on<K extends ReservedEventName>(name: K, listener: ClientEvents[K]): () => void;
  on(name: string, listener: (...args: any[]) => unknown): () => void;
  once<K extends ReservedEventName>(name: K, listener: ClientEvents[K]): () => void;
  once(name: string, listener: (...args: any[]) => unknown): () => void;
  /** Remove one listener, all listeners of `name`, or (no arguments) all listeners. */
  off(name?: string, listener?: (...args: any[]) => void): this;

  /** Resolves once open (at once if open now); rejects if the client closes first. */
  ready(): Promise<OpenInfo>;

  /**
   * Emit an event to the application (fire and forget). Queued while disconnected. Like every
   * client event/reply frame it carries `cseq` (1, 2, 3… per session), so a frame the client resends
   * after a failed POST /rt/send reaches the application once.
   * @returns false if the frame was dropped (closed, or queue full)
   */
  emit(event: string, ...args: unknown[]): boolean;
  /**
   * Emit an event and wait for the application's reply: resolves with its args; rejects with a
   * SwitchyardError on a reply error (SY_APP_ERROR), after ackTimeoutMs (SY_CLIENT_TIMEOUT), on
   * close (SY_CLIENT_CLOSED), or when the session was lost after the frame went out
   * (SY_CLIENT_SESSION_LOST).
   */
  request<T extends unknown[] = unknown[]>(event: string, ...args: unknown[]): Promise<T>;
  /** request() with its own timeout in ms (0 or Infinity: none) */
  requestWithTimeout<T extends unknown[] = unknown[]>(timeoutMs: number, event: string, ...args: unknown[]): Promise<T>;

  /** Start connecting (no-op while connecting or open). After close(), starts a new session. */
  open(): this;
  /** Drop the current connection and reconnect now, resuming the session. */
  reconnect(): this;
  /** Drop the current connection abruptly, as a network failure would (testing/diagnostics). */
  drop(reason?: string): this;
  /** End the session: flush the queue, send {"type":"close"}, stop reconnecting, emit 'close'. */
  close(): this;
}

/** new SwitchyardClient(url, options).open() */
export declare function connect(url?: string | URL, options?: ClientOptions): SwitchyardClient;
export declare function connect(options: ClientOptions): SwitchyardClient;
