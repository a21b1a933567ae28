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
export const errors = {
  SY_ERR_MALFORMED_FRAME: { ws: 1007, http: 400, message: 'malformed frame' },
  SY_ERR_PAYLOAD_TOO_LARGE: { ws: 1009, http: 413, message: 'payload larger than maxPayloadBytes' },
  SY_ERR_UNKNOWN_SESSION: {
    ws: 4404,
    http: 404,
    message: 'unknown or expired session',
    eio: { http: 400, code: 1, message: 'Session ID unknown' },
    signalr: { http: 404, message: 'No Connection with that ID' },
    sockjs: { http: 404 },
  },
  SY_ERR_BAD_TOKEN: { ws: 4401, http: 401, message: 'session token is invalid' },
  SY_ERR_POLL_CONFLICT: {
    ws: 0,
    http: 409,
    message: 'another poll for this session is already open',
    eio: { http: 400, code: 3, message: 'Bad request' },
    sockjs: { close: [2010, 'Another connection still open'] },
  },
  SY_ERR_SLOW_CONSUMER: { ws: 4508, http: 0, message: 'outbox full: the client did not read fast enough' },
  SY_ERR_REJECTED: { ws: 4403, http: 403, message: 'the application refused the session', sio: { connectError: "the application's message" } },
  SY_ERR_BAD_ORIGIN: { ws: 4403, http: 403, message: 'origin not allowed', eio: { http: 403, code: 4, message: 'Forbidden' } },
  SY_ERR_BAD_REQUEST: { ws: 4400, http: 400, message: 'bad request', eio: { http: 400, code: 3, message: 'Bad request' }, signalr: { http: 400 } },
  SY_ERR_NOT_FOUND: { ws: 0, http: 404, message: 'no such route' },
  SY_ERR_TOO_MANY_SESSIONS: { ws: 1013, http: 503, message: 'the node is at its session limit' },
  SY_ERR_SHUTTING_DOWN: { ws: 1012, http: 503, message: 'the node is shutting down; reconnect', signalr: { close: 'allowReconnect: true' } },
  SY_ERR_SESSION_TIMEOUT: { ws: 4510, http: 0, message: 'no connection within the resume window', sockjs: { close: [3000, 'Go away!'] } },
  SY_ERR_WORKER_TIMEOUT: { ws: 4503, http: 503, message: 'no worker answered' },
  SY_ERR_OUTPUT_LOST: { ws: 4512, http: 0, message: 'worker output was lost and could not be had again' },
  SY_ERR_BACKLOG_FULL: { ws: 4513, http: 0, message: 'too many events waiting for a worker' },
  SY_ERR_INTERNAL: { ws: 1011, http: 500, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

/** What one error becomes on each wire (`ws: 0` / `http: 0`: that wire never carries it) */
export interface ErrorSpec {
  ws: number;
  http: number;
  message: string;
  /** Engine.IO (Socket.IO clients' transport): an HTTP error answer, body `{"code","message"}` */
  eio?: { http: number; code: number; message: string };
  /** Socket.IO: the namespace's CONNECT_ERROR message */
  sio?: { connectError: string };
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
    eio: e.eio ? `${e.eio.http} {"code":${e.eio.code},"message":"${e.eio.message}"}` : '—',
    sio: e.sio ? `CONNECT_ERROR (${e.sio.connectError})` : '—',
    signalr: sr ? [sr.http !== undefined ? `${sr.http}${sr.message ? ' ' + sr.message : ''}` : '', sr.close ? `Close (${sr.close})` : ''].filter(Boolean).join(', ') : '—',
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
