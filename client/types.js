// @ts-check
/**
 * Types shared by the client's modules: JSDoc only, nothing here runs (the modules import it in
 * comments, so browsers never load it). The public types are in switchyard.d.ts.
 */

/** @typedef {'websocket' | 'sse' | 'polling'} TransportName */
/** @typedef {'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'} ClientState */
/**
 * @typedef {object} Codec
 * @property {(value: unknown) => Uint8Array} encode
 * @property {(bytes: Uint8Array) => unknown} decode
 */
/**
 * @typedef {object} ClientOptions
 * @property {TransportName[]} [transports]  order to try; default ['websocket','sse','polling']
 * @property {boolean} [reconnect]           default true
 * @property {number} [minDelayMs]           backoff base, default 250
 * @property {number} [maxDelayMs]           backoff cap, default 10000
 * @property {number} [maxAttempts]          reconnect attempts before giving up, default Infinity
 * @property {number} [connectTimeoutMs]     per transport attempt, default 5000 (doubled, up to 4x, after rounds that timed out)
 * @property {number} [ackTimeoutMs]         request() timeout, default 10000
 * @property {number} [pollTimeoutMs]        the server's long-poll hold time, default 25000
 * @property {number} [maxQueue]             outbound frames held while disconnected/busy, default 1000
 * @property {number} [maxBatch]             frames per POST /rt/send, default 100
 * @property {number} [maxBatchBytes]        JSON characters per POST /rt/send (soft), default 32768
 * @property {Record<string, unknown> | (() => Record<string, unknown>)} [query]  extra query parameters
 * @property {string} [path]                 route prefix, default '/rt'
 * @property {boolean | string} [rememberTransport]  remember a fallback for the next client, default true; a string names the storage key
 * @property {number} [rememberForMs]        how long a fallback is remembered after the better transports failed, default 4 h
 * @property {'json' | 'msgpack'} [format]   default 'json'; 'msgpack' needs `msgpack`
 * @property {Codec} [msgpack]               e.g. { encode: pack, decode: unpack } from msgpackr
 * @property {any} [WebSocket]               WebSocket implementation (default: globalThis.WebSocket)
 * @property {any} [EventSource]             EventSource implementation (default: globalThis.EventSource)
 * @property {any} [fetch]                   fetch implementation (default: globalThis.fetch)
 */
/**
 * @typedef {object} OpenInfo
 * @property {string} sid
 * @property {boolean} recovered  true only when a previous session resumed without loss
 * @property {boolean} first      first open since open()/connect()
 * @property {TransportName} transport
 * @property {number | undefined} last  newest seq the server has sent (from the open frame)
 */
/** @typedef {{ code: number, reason: string }} CloseInfo */
/** @typedef {{ attempt: number, delayMs: number, code?: number, reason?: string }} ReconnectingInfo */
/** Why a connection ended or failed. @typedef {{ code?: number, status?: number, reason?: string, error?: unknown, sessionGone?: boolean }} DownInfo */
/**
 * A frame, either way (the client's `event` and `reply` frames carry `cseq`, numbered per session;
 * see session.js `_number`). @typedef {Record<string, any>} Frame
 */
/**
 * Answers a server request (an `event` frame with `ack`): the last argument its listeners get.
 * Sends `{"type":"reply","ack":K,"args":[...args],"cseq":N}`; only the first answer counts.
 * Returns false if nothing was queued (answered already, session replaced, client closed, queue full).
 * @typedef {(...args: unknown[]) => boolean} Reply
 */
/** @typedef {(input: string, init?: any) => Promise<any>} FetchFunction */

export {};
