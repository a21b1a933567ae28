/**
 * The uWS HTTP edge: copying what we need out of a request (uWS's `req` is only valid during
 * the handler's synchronous part), reading bodies, answering — always corked, never after the
 * client aborted — and upgrading to a WebSocket. Wires use these helpers instead of touching
 * uWS's request and response directly.
 */
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import { errorBody, errors, type ErrorCode } from '../seam/errors.ts';
import type { HttpAnswer } from '../seam/port.ts';
import { sizeOf, traffic } from '../seam/traffic.ts';

const STATUS: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  431: '431 Request Header Fields Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** What we keep of a request, copied during the handler */
export interface RequestInfo {
  method: string;
  url: string;
  query: URLSearchParams;
  ip: string;
  origin: string;
  userAgent: string;
  authorization: string;
  contentType: string;
  lastEventId: string;
  /** the X-Switchyard-Token header (the native dialect's session token, kept out of URLs) */
  token: string;
  /** a CORS preflight's Access-Control-Request-Headers */
  requestHeaders: string;
  /** what a session made from this request would keep of it (see requestBytes) */
  bytes: number;
  /** the request said `Connection: close` (the answer must say it too: `wantsClose`) */
  close: boolean;
}

/**
 * The request said `Connection: close`. uWS then closes the socket after the answer but does not
 * say so in it (it writes the header only when the server alone asks for the close), and a client
 * that pools connections (Node's keep-alive agent, node-fetch) reuses the dead socket: every answer
 * to such a request says `Connection: close` itself (Exchange).
 */
export function wantsClose(req: HttpRequest): boolean {
  const c = req.getHeader('connection');
  return c !== '' && /(^|,)\s*close\s*(,|$)/i.test(c);
}

/**
 * The bytes of a request that a session opened by it keeps (its query, user agent and
 * authorization): what Port.admit bounds by `maxRequestBytes`
 */
export function requestBytes(req: HttpRequest): number {
  return (req.getQuery()?.length ?? 0) + req.getHeader('user-agent').length + req.getHeader('authorization').length;
}

export function readRequest(res: HttpResponse, req: HttpRequest, trustProxy: boolean): RequestInfo {
  return {
    bytes: requestBytes(req),
    close: wantsClose(req),
    method: req.getMethod(),
    url: req.getUrl(),
    query: new URLSearchParams(req.getQuery() ?? ''),
    ip: clientIp(res, req, trustProxy),
    origin: req.getHeader('origin'),
    userAgent: req.getHeader('user-agent'),
    authorization: req.getHeader('authorization'),
    contentType: req.getHeader('content-type'),
    lastEventId: req.getHeader('last-event-id'),
    token: req.getHeader('x-switchyard-token'),
    requestHeaders: req.getHeader('access-control-request-headers'),
  };
}

/** The client's address: the socket's, or, behind a trusted proxy, the first hop it names */
export function clientIp(res: HttpResponse, req: HttpRequest, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.getHeader('x-forwarded-for');
    if (xff) return xff.split(',')[0]!.trim();
    const fwd = /for="?\[?([^\]";,]+)/i.exec(req.getHeader('forwarded'));
    if (fwd) return fwd[1]!;
  }
  return intern(Buffer.from(res.getRemoteAddressAsText()).toString());
}

/** Addresses repeat (NAT, proxies, one host with many tabs): sessions share one string each */
const addresses = new Map<string, string>();
function intern(ip: string): string {
  const known = addresses.get(ip);
  if (known !== undefined) return known;
  if (addresses.size >= 10_000) addresses.clear();
  addresses.set(ip, ip);
  return ip;
}

export type { HttpAnswer } from '../seam/port.ts';

/**
 * One HTTP exchange. `aborted` turns true when the client goes away; after that nothing may
 * touch `res` (uWS would crash), which every method here respects.
 */
const RETRY_AFTER: Record<string, string> = Object.freeze({ 'Retry-After': '1' }) as Record<string, string>;

/** The headers of a temporary refusal (503: the node's limits, a shutdown): when to try again */
export function retryHeaders(status: number): Record<string, string> | undefined {
  return status === 503 ? RETRY_AFTER : undefined;
}

export class Exchange implements HttpAnswer {
  aborted = false;
  done = false;
  /** called once if the client aborts before we answered */
  onAbort: (() => void) | null = null;
  /** close the connection after the answer (a draining node sends keep-alive clients elsewhere) */
  closeAfter = false;

  /** `closeRequested`: the request said `Connection: close` (`wantsClose`): every answer says it too */
  constructor(
    readonly res: HttpResponse,
    readonly cors: string,
    readonly closeRequested = false,
  ) {
    res.onAborted(() => {
      this.aborted = true;
      const f = this.onAbort;
      this.onAbort = null;
      f?.();
    });
  }

  get open(): boolean {
    return !this.aborted && !this.done;
  }

  /** Sends a whole answer */
  reply(status: number, contentType: string | null, body: string | Uint8Array = '', extra?: Record<string, string>, closeConnection = false): void {
    if (!this.open) return;
    this.done = true;
    this.onAbort = null;
    this.res.cork(() => {
      this.res.writeStatus(STATUS[status] ?? String(status));
      if (contentType) this.res.writeHeader('Content-Type', contentType);
      this.writeCommonHeaders(extra?.['Cache-Control'] !== undefined);
      if (extra) for (const k in extra) this.res.writeHeader(k, extra[k]!);
      traffic.out += sizeOf(body);
      // (uWS writes the header itself when only we ask for the close)
      this.res.end(body, closeConnection || this.closeAfter || this.closeRequested);
    });
  }

  /** Answers with an error's HTTP status and JSON body; `closeConnection` when the request body is unread */
  error(code: ErrorCode, message?: string, closeConnection = false): void {
    const status = errors[code].http || 400;
    this.reply(status, 'application/json', errorBody(code, message), retryHeaders(status), closeConnection);
  }

  /** Starts a streamed answer (SSE): status and headers now, body by `write` */
  begin(status: number, headers: Record<string, string>, first: string): void {
    if (!this.open) return;
    this.res.cork(() => {
      this.res.writeStatus(STATUS[status] ?? String(status));
      this.writeCommonHeaders();
      for (const k in headers) this.res.writeHeader(k, headers[k]!);
      traffic.out += first.length;
      this.res.write(first);
    });
  }

  /** @returns false when the chunk was buffered because the socket is full (wait for `onWritable`) */
  write(chunk: string): boolean {
    if (!this.open) return true;
    let ok = true;
    traffic.out += chunk.length;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    return ok;
  }

  onWritable(f: () => void): void {
    if (!this.open) return;
    this.res.onWritable(() => {
      if (this.open) f();
      return true;
    });
  }

  /** Ends a streamed answer (the terminating chunk; the connection may be kept alive) */
  end(last = ''): void {
    if (!this.open) return;
    this.done = true;
    this.onAbort = null;
    // no closeConnection here: on a chunked response uWS would write the header into the body
    traffic.out += last.length;
    this.res.cork(() => this.res.end(last));
  }

  /** `cached`: the answer says its own Cache-Control (a cacheable page) */
  protected writeCommonHeaders(cached = false): void {
    if (this.closeRequested) this.res.writeHeader('Connection', 'close');
    if (!cached) this.res.writeHeader('Cache-Control', 'no-store');
    if (this.cors) {
      this.res.writeHeader('Access-Control-Allow-Origin', this.cors);
      this.res.writeHeader('Access-Control-Allow-Credentials', 'true');
      this.res.writeHeader('Vary', 'Origin');
    }
  }
}

/**
 * Reads a request body of at most `limit` bytes. Calls `done(body)` once, or `done(null)` when
 * the body is too large (the caller answers 413). An abort is seen through `Exchange.onAbort`.
 */
export function readBody(ex: Exchange, limit: number, done: (body: Uint8Array | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  ex.res.onData((ab, isLast) => {
    if (over) return;
    size += ab.byteLength;
    traffic.in += ab.byteLength;
    if (size > limit) {
      over = true;
      done(null);
      return;
    }
    // copy: uWS reuses the chunk's memory after this callback returns
    chunks.push(Buffer.from(ab.slice(0)));
    if (isLast) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  });
}

/** Upgrades a request to a WebSocket carrying `data` (the headers are copied here: `req` dies with the handler) */
export function upgrade<T>(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, data: T): void {
  res.upgrade<T>(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
}
