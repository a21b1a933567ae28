// @ts-check
/** The client's error type, close codes, and the server's HTTP error answers. */
/** @import { Frame, TransportName } from './types.js' */

/**
 * Close codes after which the client does not reconnect (docs/errors.md; until that exists:
 * 4000-4499 and 1002/1003/1007/1008/1009). 1012/1013/4500-4999 and transport drops reconnect.
 * @param {number} code
 * @returns {boolean}
 */
export function isTerminalCode(code) {
  return (code >= 4000 && code <= 4499) || code === 1002 || code === 1003 || code === 1007 || code === 1008 || code === 1009;
}

/** Error type for everything the client rejects with or reports through the 'error' event. */
export class SwitchyardError extends Error {
  /**
   * @param {string} code  `SY_ERR_*` from the server, or `SY_CLIENT_*` from the client
   * @param {string} message
   * @param {{ status?: number, transport?: TransportName, reply?: Frame, cause?: unknown }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SwitchyardError';
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} HTTP status, for HTTP errors */
    this.status = extra.status;
    /** @type {TransportName | undefined} */
    this.transport = extra.transport;
    /** @type {Frame | undefined} the reply frame, for request() rejections */
    this.reply = extra.reply;
    if (extra.cause !== undefined) /** @type {any} */ (this).cause = extra.cause;
  }
}

/** @param {unknown} e */
export function errText(e) {
  if (e && typeof e === 'object' && 'message' in e && /** @type {any} */ (e).message) return String(/** @type {any} */ (e).message);
  return String(e);
}

/**
 * Read an HTTP error answer `{"error":"SY_ERR_…","message":"…"}`.
 * @param {any} res
 * @param {TransportName} transport
 */
export async function httpError(res, transport) {
  /** @type {any} */
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  const code = body && typeof body.error === 'string' ? body.error : 'SY_CLIENT_HTTP';
  const message = body && typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
  return new SwitchyardError(code, message, { status: res.status, transport });
}

/**
 * A 4xx other than 429 (too many requests): the server refuses the request itself (e.g. the
 * session is unknown or its token is wrong), so repeating it will not help.
 * @param {number} status
 */
export function isRefusal(status) {
  return status >= 400 && status < 500 && status !== 429;
}
