/**
 * Every error the gateway can answer with, in one table. Each code knows what it becomes on each
 * wire: the WebSocket close code (also the `code` of a native `close` frame on SSE and
 * long-polling) and the HTTP status. docs/errors.md documents each row; a test checks that.
 *
 * Close-code ranges (as in docs/errors.md): 1000-1015 standard WebSocket codes; 4000-4099 for
 * the application's own `session.disconnect(code)`; 4400-4499 terminal protocol errors (the
 * client must not reconnect as is); 4500-4599 temporary conditions (reconnect with backoff).
 */
export const errors = {
  SY_ERR_MALFORMED_FRAME: { ws: 1007, http: 400, message: 'malformed frame' },
  SY_ERR_PAYLOAD_TOO_LARGE: { ws: 1009, http: 413, message: 'payload larger than maxPayloadBytes' },
  SY_ERR_UNKNOWN_SESSION: { ws: 4404, http: 404, message: 'unknown or expired session' },
  SY_ERR_BAD_TOKEN: { ws: 4401, http: 401, message: 'session token is invalid' },
  SY_ERR_POLL_CONFLICT: { ws: 0, http: 409, message: 'another poll for this session is already open' },
  SY_ERR_SLOW_CONSUMER: { ws: 4508, http: 0, message: 'outbox full: the client did not read fast enough' },
  SY_ERR_REJECTED: { ws: 4403, http: 403, message: 'the application refused the session' },
  SY_ERR_BAD_ORIGIN: { ws: 4403, http: 403, message: 'origin not allowed' },
  SY_ERR_BAD_REQUEST: { ws: 4400, http: 400, message: 'bad request' },
  SY_ERR_NOT_FOUND: { ws: 0, http: 404, message: 'no such route' },
  SY_ERR_TOO_MANY_SESSIONS: { ws: 1013, http: 503, message: 'the node is at its session limit' },
  SY_ERR_SHUTTING_DOWN: { ws: 1012, http: 503, message: 'the node is shutting down; reconnect' },
  SY_ERR_SESSION_TIMEOUT: { ws: 4510, http: 0, message: 'no connection within the resume window' },
  SY_ERR_WORKER_TIMEOUT: { ws: 4503, http: 503, message: 'no worker answered' },
  SY_ERR_INTERNAL: { ws: 1011, http: 500, message: 'internal error' },
} as const satisfies Record<string, { ws: number; http: number; message: string }>;

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
