/**
 * Every error the gateway can answer with, in one table. Each code knows what it becomes on each
 * wire: the WebSocket close code (also the `code` of a native `close` frame on SSE and
 * long-polling), the HTTP status, and for each dialect its own consequence (Engine.IO HTTP error,
 * Socket.IO CONNECT_ERROR, SignalR status or Close, SockJS status or close frame), filled by
 * the dialects that can meet the error. docs/errors.md documents each row; a test checks that.
 *
 * Close-code ranges (as in docs/errors.md): 1000-1015 standard WebSocket codes; 4000-4099 for
 * the application's own `session.disconnect(code)`; 4400-4499 terminal protocol errors (the
 * client must not reconnect as is); 4500-4599 temporary conditions (reconnect with backoff).
 */
/** What a Socket.IO client gets when the gateway ends its session (the app's disconnect is a DISCONNECT instead) */
const TRANSPORT_CLOSES = 'the transport closes; the client reconnects to a new session, recovered false';

export const errors = {
  SY_ERR_MALFORMED_FRAME: {
    ws: 1007,
    http: 400,
    message: 'malformed frame',
    eio: { note: 'the Engine.IO connection closes (WebSocket close 1005; a POST is still answered ok, a held poll gets 1)' },
    sio: { note: 'the transport closes; the namespace sessions wait for the client to come back and recover' },
    signalr: { close: 'its error, allowReconnect: false' },
    sockjs: { http: 500, close: [1007, 'SY_ERR_MALFORMED_FRAME'] },
  },
  SY_ERR_PAYLOAD_TOO_LARGE: {
    ws: 1009,
    http: 413,
    message: 'payload larger than maxPayloadBytes',
    eio: { http: 413, note: 'empty body, the session lives on; a WebSocket message over maxPayload closes the connection with 1009' },
    signalr: { http: 413, close: 'over WebSockets: its error, allowReconnect: false' },
    sockjs: { http: 413 },
  },
  SY_ERR_UNKNOWN_SESSION: {
    ws: 4404,
    http: 404,
    message: 'unknown or expired session',
    eio: { http: 400, code: 1, message: 'Session ID unknown' },
    sio: { note: 'a CONNECT with a pid no node holds: a new session, recovered false' },
    signalr: { http: 404, message: 'No Connection with that ID' },
    sockjs: { http: 404 },
  },
  SY_ERR_BAD_TOKEN: { ws: 4401, http: 401, message: 'session token is invalid', sio: { note: 'a forged pid: a new session, recovered false' } },
  SY_ERR_POLL_CONFLICT: {
    ws: 0,
    http: 409,
    message: 'another poll for this session is already open',
    eio: { http: 400, note: 'empty body; the session ends and the held poll gets 1' },
    signalr: { message: 'no error: the older poll is answered 204, the newer one held' },
    sockjs: { close: [2010, 'Another connection still open'] },
  },
  SY_ERR_SLOW_CONSUMER: {
    ws: 4508,
    http: 0,
    message: 'outbox full: the client did not read fast enough',
    sio: { note: TRANSPORT_CLOSES },
    signalr: { close: 'allowReconnect: true' },
  },
  SY_ERR_REJECTED: {
    ws: 4403,
    http: 403,
    message: 'the application refused the session',
    sio: { connectError: "the application's message" },
    signalr: { http: 401, message: "at negotiate, with the application's message; with skipNegotiation, the handshake's error" },
  },
  SY_ERR_AUTH_FAILED: {
    ws: 4403,
    http: 0,
    message: 'the access token (JWT) was refused',
    sio: { connectError: '"SY_ERR_AUTH_FAILED: " and why' },
    signalr: { http: 401, message: 'at negotiate, "SY_ERR_AUTH_FAILED: " and why; with skipNegotiation, the handshake\'s error' },
    sockjs: { close: [4403, 'SY_ERR_AUTH_FAILED: why'] },
  },
  SY_ERR_BAD_ORIGIN: {
    ws: 4403,
    http: 403,
    message: 'origin not allowed',
    eio: { http: 403, code: 4, message: 'Forbidden' },
    signalr: { http: 403, message: 'at negotiate' },
    sockjs: { http: 403 },
  },
  SY_ERR_BAD_REQUEST: { ws: 4400, http: 400, message: 'bad request', eio: { http: 400, code: 3, message: 'Bad request' }, signalr: { http: 400 } },
  SY_ERR_NOT_FOUND: { ws: 0, http: 404, message: 'no such route' },
  SY_ERR_TOO_MANY_SESSIONS: {
    ws: 1013,
    http: 503,
    message: 'the node is at its session limit',
    eio: { http: 503, note: 'the handshake is refused (native JSON body)' },
    sio: { note: 'a CONNECT past the limit closes the transport: the client retries, with backoff' },
    signalr: { http: 503, message: 'at negotiate' },
    sockjs: { http: 503 },
  },
  SY_ERR_REQUEST_TOO_LARGE: {
    ws: 4431,
    http: 431,
    message: 'the request that would open a session is larger than maxRequestBytes',
    eio: { http: 431, note: 'the handshake is refused (native JSON body)' },
    sio: { note: 'CONNECT_ERROR (this message) for a CONNECT whose auth payload makes it too large; the connection stays' },
    signalr: { http: 431, message: 'at negotiate' },
    sockjs: { http: 431 },
  },
  SY_ERR_RATE_LIMITED: {
    ws: 1013,
    http: 503,
    message: 'too many new sessions from this address; retry later',
    eio: { http: 503, note: 'the handshake is refused (native JSON body)' },
    signalr: { http: 503, message: 'at negotiate' },
    sockjs: { http: 503 },
  },
  SY_ERR_SHUTTING_DOWN: {
    ws: 1012,
    http: 503,
    message: 'the node is shutting down; reconnect',
    eio: { http: 503, note: 'a handshake is refused (native JSON body)' },
    sio: {
      note: 'the transport closes, never DISCONNECT: the client reconnects (elsewhere); after a drain it recovers, after a shutdown without one it gets a new session',
    },
    signalr: { close: 'allowReconnect: true; a stateful-reconnect client: its socket closes and it resumes, elsewhere after a drain' },
  },
  SY_ERR_SESSION_EVICTED: {
    ws: 4511,
    http: 0,
    message: 'the node needed the memory detached sessions held: this one ended before its resume window',
    sio: { note: 'the client comes back to a new session, recovered false' },
    signalr: { close: 'a stateful resume: Sequence, then this Close' },
  },
  SY_ERR_SESSION_TIMEOUT: {
    ws: 4510,
    http: 0,
    message: 'no connection within the resume window',
    sio: { note: 'the client comes back to a new session, recovered false' },
    signalr: { http: 404, message: 'No Connection with that ID (negotiated, never connected)', close: 'a stateful resume too late: Sequence, then this Close' },
    sockjs: { close: [3000, 'Go away!'] },
  },
  SY_ERR_WORKER_TIMEOUT: {
    ws: 4503,
    http: 503,
    message: 'no worker answered',
    sio: { connectError: 'SY_ERR_WORKER_TIMEOUT' },
    signalr: { http: 503, message: 'at negotiate' },
  },
  SY_ERR_TOO_MANY_ROOMS: {
    ws: 4429,
    http: 0,
    message: 'the session joined more rooms than maxRoomsPerSession',
    sio: { note: TRANSPORT_CLOSES },
    signalr: { close: 'its error, allowReconnect: false' },
  },
  SY_ERR_TOO_MANY_PENDING: {
    ws: 4430,
    http: 0,
    message: 'the connection made the node hold more for it than its bounds allow (pending invocations, refused streams, long ids)',
    signalr: { close: 'its error, allowReconnect: false' },
  },
  SY_ERR_OUTPUT_LOST: {
    ws: 4512,
    http: 0,
    message: 'worker output was lost and could not be had again',
    sio: { note: TRANSPORT_CLOSES },
    signalr: { close: 'allowReconnect: true' },
  },
  SY_ERR_BACKLOG_FULL: {
    ws: 4513,
    http: 0,
    message: 'too many events waiting for a worker',
    sio: { note: TRANSPORT_CLOSES },
    signalr: { close: 'allowReconnect: true' },
  },
  SY_ERR_NODE_LOST: {
    ws: 4514,
    http: 0,
    message: 'the gateway node that held the session died: reconnect (to a new session)',
    sio: { note: TRANSPORT_CLOSES },
    signalr: { close: 'allowReconnect: true' },
    sockjs: { close: [4514, 'SY_ERR_NODE_LOST'] },
  },
  SY_ERR_INTERNAL: { ws: 1011, http: 500, message: 'internal error', sio: { note: TRANSPORT_CLOSES }, signalr: { close: 'allowReconnect: true' } },
} as const satisfies Record<string, ErrorSpec>;

/** What one error becomes on each wire (`ws: 0` / `http: 0`: that wire never carries it) */
export interface ErrorSpec {
  ws: number;
  http: number;
  message: string;
  /** Engine.IO (Socket.IO clients' transport): an HTTP error answer (body `{"code","message"}` when it has a code), or what happens */
  eio?: { http?: number; code?: number; message?: string; note?: string };
  /** Socket.IO: the namespace's CONNECT_ERROR message, or what happens */
  sio?: { connectError?: string; note?: string };
  /** SignalR: an HTTP status (with its text), or what a Close message says */
  signalr?: { http?: number; message?: string; close?: string };
  /** SockJS: an HTTP status, or a close frame `c[code,"reason"]` */
  sockjs?: { http?: number; close?: readonly [number, string] };
}

/** The dialect cells of an error's row in docs/errors.md, as a test checks them ('—': none) */
export function dialectCells(e: ErrorSpec): { eio: string; sio: string; signalr: string; sockjs: string } {
  const sr = e.signalr;
  const sj = e.sockjs;
  return {
    eio: e.eio
      ? [e.eio.http, e.eio.code !== undefined ? `{"code":${e.eio.code},"message":"${e.eio.message}"}` : '', e.eio.note].filter(Boolean).join(' ')
      : '—',
    sio: e.sio ? [e.sio.connectError !== undefined ? `CONNECT_ERROR (${e.sio.connectError})` : '', e.sio.note].filter(Boolean).join(' ') : '—',
    signalr: sr
      ? [sr.http !== undefined ? `${sr.http}${sr.message ? ' ' + sr.message : ''}` : (sr.message ?? ''), sr.close ? `Close (${sr.close})` : '']
          .filter(Boolean)
          .join(', ')
      : '—',
    sockjs: sj ? [sj.http !== undefined ? String(sj.http) : '', sj.close ? `c[${sj.close[0]},"${sj.close[1]}"]` : ''].filter(Boolean).join(', ') : '—',
  };
}

export type ErrorCode = keyof typeof errors;

/** `ws: 0` / `http: 0` above: that wire never carries this error. */

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? errors[code].message, options);
    this.name = 'SwitchyardError';
    this.code = code;
  }
  get wsCode(): number {
    return errors[this.code].ws;
  }
  get httpStatus(): number {
    return errors[this.code].http;
  }
}

/** JSON body of an HTTP error answer */
export function errorBody(code: ErrorCode, message?: string): string {
  return JSON.stringify({ error: code, message: message ?? errors[code].message });
}
