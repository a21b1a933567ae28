/**
 * The SignalR hub protocols: the handshake, and hub messages in JSON (records ending with `\x1e`)
 * or MessagePack (VarInt-length-prefixed arrays).
 * @see https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md
 */
import { MsgpackRefusedError, packr, unpackPlain } from '../../../lib/msgpack.ts';
import { acceptable, MAX_DEPTH, newCodecId, type Entry } from '../../seam/entry.ts';

export const INVOCATION = 1;
export const STREAM_ITEM = 2;
export const COMPLETION = 3;
export const STREAM_INVOCATION = 4;
export const CANCEL_INVOCATION = 5;
export const PING = 6;
export const CLOSE = 7;
export const ACK = 8;
export const SEQUENCE = 9;

/** A hub message, in the JSON protocol's shape (the MessagePack protocol maps to the same) */
export interface HubMessage {
  type: number;
  invocationId?: string;
  target?: string;
  arguments?: unknown[];
  streamIds?: string[];
  /** a Completion's result (present, even undefined-valued, only for a non-void one: see `hasResult`) */
  result?: unknown;
  hasResult?: boolean;
  error?: string;
  allowReconnect?: boolean;
  sequenceId?: number;
  /** (server messages) the arguments or result hold bytes */
  binary?: boolean;
}

/** The client broke the protocol: the connection is closed */
export class HubProtocolError extends Error {}

export const RS = '\x1e';

export interface HubProtocol {
  /** indexes its encodings cached on shared entries (see encodeEntry) */
  readonly id: number;
  readonly name: 'json' | 'messagepack';
  /** messages travel as binary (WebSocket binary frames, binary bodies) */
  readonly binary: boolean;
  /** the highest protocol version we speak (clients sending it or lower are accepted) */
  readonly version: number;
  encode(m: HubMessage): string | Uint8Array;
  /** every whole message in `data` (a transport message or a body may hold several); throws HubProtocolError */
  decode(data: string | Uint8Array): HubMessage[];
}

// ---- JSON ------------------------------------------------------------------------------------------

/**
 * bytes in args travel as base64 in JSON (as SignalR's JSON protocol serializes byte arrays). The
 * holder's own value: a Buffer's toJSON has already run on `v`
 */
function bytesAsBase64(this: Record<string, unknown>, k: string, v: unknown): unknown {
  const own = this[k];
  return own instanceof Uint8Array ? Buffer.from(own.buffer, own.byteOffset, own.byteLength).toString('base64') : v;
}

const json: HubProtocol = {
  id: newCodecId(),
  name: 'json',
  binary: false,
  version: 2,
  encode(m) {
    const out: Record<string, unknown> = { type: m.type };
    switch (m.type) {
      case INVOCATION:
        if (m.invocationId !== undefined) out.invocationId = m.invocationId;
        out.target = m.target;
        out.arguments = m.arguments ?? [];
        break;
      case COMPLETION:
        out.invocationId = m.invocationId;
        if (m.error !== undefined) out.error = m.error;
        else if (m.hasResult) out.result = m.result ?? null;
        break;
      case CLOSE:
        if (m.error !== undefined) out.error = m.error;
        if (m.allowReconnect) out.allowReconnect = true;
        break;
      case ACK:
      case SEQUENCE:
        out.sequenceId = m.sequenceId;
        break;
    }
    // the replacer only when there are bytes: it makes stringify much slower
    return (m.binary ? JSON.stringify(out, bytesAsBase64) : JSON.stringify(out)) + RS;
  },
  decode(data) {
    const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString();
    if (!text.endsWith(RS)) throw new HubProtocolError('a JSON hub message must end with 0x1e');
    const body = text.slice(0, -1);
    // one record, the common case: no split
    const records = body.indexOf(RS) < 0 ? [body] : body.split(RS);
    const out: HubMessage[] = [];
    for (const record of records) {
      let m: unknown;
      try {
        m = JSON.parse(record);
      } catch {
        throw new HubProtocolError('a JSON hub message is not JSON');
      }
      out.push(checked(m));
    }
    return out;
  },
};

// ---- MessagePack -----------------------------------------------------------------------------------

/**
 * A message is an array around arguments nested at most MAX_DEPTH deep. Plain values only
 * (unpackPlain): no extensions (a timestamp too is refused), and a 64-bit integer past 2^53 is
 * refused rather than rounded.
 */
const MESSAGE_DEPTH = MAX_DEPTH + 1;
const NO_HEADERS = {};

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function framed(body: Uint8Array): Uint8Array {
  const prefix = varint(body.byteLength);
  // from Node's pool: no zeroing, no allocation of its own for small messages
  const out = Buffer.allocUnsafe(prefix.length + body.byteLength);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

const messagepack: HubProtocol = {
  id: newCodecId(),
  name: 'messagepack',
  binary: true,
  version: 2,
  encode(m) {
    let a: unknown[];
    switch (m.type) {
      case INVOCATION:
        a = [INVOCATION, NO_HEADERS, m.invocationId ?? null, m.target, m.arguments ?? [], []];
        break;
      case COMPLETION:
        // ResultKind: 1 error, 2 void, 3 a result
        a =
          m.error !== undefined
            ? [COMPLETION, NO_HEADERS, m.invocationId, 1, m.error]
            : m.hasResult
              ? [COMPLETION, NO_HEADERS, m.invocationId, 3, m.result ?? null]
              : [COMPLETION, NO_HEADERS, m.invocationId, 2];
        break;
      case PING:
        return PING_FRAME;
      case CLOSE:
        a = m.allowReconnect ? [CLOSE, m.error ?? null, true] : [CLOSE, m.error ?? null];
        break;
      case ACK:
      case SEQUENCE:
        a = [m.type, m.sequenceId];
        break;
      default:
        throw new Error(`no server message of type ${m.type}`);
    }
    return framed(packr.pack(a));
  },
  decode(data) {
    if (typeof data === 'string') throw new HubProtocolError('a MessagePack hub message must be binary');
    const out: HubMessage[] = [];
    let i = 0;
    while (i < data.byteLength) {
      // the length: a VarInt of at most 5 bytes
      let len = 0;
      let shift = 0;
      let b: number;
      do {
        if (i >= data.byteLength || shift > 28) throw new HubProtocolError('a bad length prefix');
        b = data[i++]!;
        len |= (b & 0x7f) << shift;
        shift += 7;
      } while ((b & 0x80) !== 0);
      if (len < 0 || i + len > data.byteLength) throw new HubProtocolError('a message shorter than its length prefix');
      let a: unknown;
      try {
        a = unpackPlain(data.subarray(i, i + len), MESSAGE_DEPTH);
      } catch (err) {
        throw new HubProtocolError(
          err instanceof MsgpackRefusedError ? `a MessagePack hub message that is not plain: ${err.message}` : 'a MessagePack hub message that does not decode',
        );
      }
      i += len;
      out.push(fromArray(a));
    }
    return out;
  },
};

/** ping: exactly 0x91 0x06, with its length prefix */
const PING_FRAME = framed(new Uint8Array([0x91, 0x06]));

/** A MessagePack message (an array) in the JSON protocol's shape */
function fromArray(a: unknown): HubMessage {
  if (!Array.isArray(a) || typeof a[0] !== 'number') throw new HubProtocolError('a MessagePack hub message must be an array starting with its type');
  const type = a[0];
  switch (type) {
    case INVOCATION:
    case STREAM_INVOCATION:
      return checked({ type, invocationId: a[2] ?? undefined, target: a[3], arguments: a[4], streamIds: a[5] ?? undefined });
    case STREAM_ITEM:
      return checked({ type, invocationId: a[2] });
    case COMPLETION: {
      const kind = a[3];
      if (kind === 1) return checked({ type, invocationId: a[2], error: a[4] });
      if (kind === 2) return checked({ type, invocationId: a[2] });
      if (kind === 3) return checked({ type, invocationId: a[2], result: a[4] });
      throw new HubProtocolError('a Completion with an unknown result kind');
    }
    case CANCEL_INVOCATION:
      return checked({ type, invocationId: a[2] });
    case PING:
      return { type };
    case CLOSE:
      return checked({ type, error: a[1] ?? undefined, allowReconnect: a[2] ?? undefined });
    case ACK:
    case SEQUENCE:
      return checked({ type, sequenceId: a[1] });
    default:
      throw new HubProtocolError(`an unknown message type ${type}`);
  }
}

/** A decoded message, checked: the fields its type needs, of the right kinds */
function checked(m: unknown): HubMessage {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new HubProtocolError('a hub message must be an object');
  const o = m as Record<string, unknown>;
  const type = o.type;
  const id = o.invocationId;
  if (id !== undefined && id !== null && typeof id !== 'string') throw new HubProtocolError('an invocation id must be a string');
  const out: HubMessage = { type: type as number };
  if (typeof id === 'string') out.invocationId = id;
  switch (type) {
    case INVOCATION:
    case STREAM_INVOCATION: {
      if (typeof o.target !== 'string' || o.target === '') throw new HubProtocolError('an invocation needs a target');
      if (!Array.isArray(o.arguments) || !acceptable(o.arguments)) throw new HubProtocolError('an invocation needs arguments (nested at most 32 deep)');
      if (o.streamIds !== undefined && o.streamIds !== null && !(Array.isArray(o.streamIds) && o.streamIds.every((s) => typeof s === 'string')))
        throw new HubProtocolError('stream ids must be strings');
      out.target = o.target;
      out.arguments = o.arguments;
      if (Array.isArray(o.streamIds) && o.streamIds.length > 0) out.streamIds = o.streamIds as string[];
      return out;
    }
    case COMPLETION:
      if (typeof id !== 'string') throw new HubProtocolError('a completion needs an invocation id');
      if (o.error !== undefined && o.error !== null) {
        if (typeof o.error !== 'string') throw new HubProtocolError('an error must be a string');
        out.error = o.error;
      } else if ('result' in o) {
        if (!acceptable([o.result])) throw new HubProtocolError('a result nested too deep');
        out.result = o.result;
        out.hasResult = true;
      }
      return out;
    case STREAM_ITEM:
    case CANCEL_INVOCATION:
      if (typeof id !== 'string') throw new HubProtocolError('an invocation id is needed');
      return out;
    case PING:
      return out;
    case CLOSE:
      if (typeof o.error === 'string') out.error = o.error;
      if (o.allowReconnect === true) out.allowReconnect = true;
      return out;
    case ACK:
    case SEQUENCE:
      if (typeof o.sequenceId !== 'number' || !Number.isSafeInteger(o.sequenceId) || o.sequenceId < 0)
        throw new HubProtocolError('a sequence id must be a non-negative integer');
      out.sequenceId = o.sequenceId;
      return out;
    default:
      throw new HubProtocolError(`an unknown message type ${String(type)}`);
  }
}

export const hubProtocols: Record<'json' | 'messagepack', HubProtocol> = { json, messagepack };

/** Counts of outbox entries encoded (a shared one, a broadcast's, is encoded once per protocol) */
export const encodeStats = { entries: 0 };

/**
 * An outbox entry as the protocol's message. A hub message carries no sequence number (stateful
 * reconnect counts messages on both sides), so one broadcast is the same bytes for every member
 * of a protocol: encoded once, and kept on the shared entry.
 */
export function encodeEntry(p: HubProtocol, e: Entry): string | Uint8Array {
  if (e.shared) {
    const had = e.cached(p.id) as string | Uint8Array | undefined;
    if (had !== undefined) return had;
  }
  encodeStats.entries++;
  const f = p.encode(toHub(e));
  if (e.shared) e.cache(p.id, f);
  return f;
}

/** An outbox entry as a hub message */
function toHub(e: Entry): HubMessage {
  if (e.kind === 'reply') {
    const error = e.error;
    if (error !== undefined) return { type: COMPLETION, invocationId: String(e.ack), error };
    const args = e.args;
    return args.length > 0
      ? { type: COMPLETION, invocationId: String(e.ack), result: args[0], hasResult: true, binary: e.binary }
      : { type: COMPLETION, invocationId: String(e.ack) };
  }
  const m: HubMessage = { type: INVOCATION, target: e.event, arguments: e.args, binary: e.binary };
  if (e.ack !== undefined) m.invocationId = String(e.ack);
  return m;
}

/**
 * The client's handshake: `{"protocol":"json"|"messagepack","version":N}\x1e` (JSON text, also for
 * MessagePack). @returns the protocol and what came after the handshake in the same data, or an
 * error message for the handshake response
 */
export function parseHandshake(data: string | Uint8Array): { protocol: HubProtocol; rest: string | Uint8Array } | { error: string } | null {
  const bytes = typeof data === 'string' ? null : data;
  const text = bytes === null ? (data as string) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const end = text.indexOf(RS);
  if (end < 0) return null;
  let h: { protocol?: unknown; version?: unknown };
  try {
    h = JSON.parse(bytes === null ? text.slice(0, end) : Buffer.from(bytes.subarray(0, end)).toString()) as typeof h;
  } catch {
    return { error: 'Handshake request is not valid JSON.' };
  }
  // own keys only: a protocol named "toString" must not find Object.prototype's (found by test/fuzz.test.ts)
  const p = typeof h.protocol === 'string' && Object.hasOwn(hubProtocols, h.protocol) ? hubProtocols[h.protocol as 'json' | 'messagepack'] : undefined;
  if (p === undefined) return { error: `The protocol '${String(h.protocol)}' is not supported.` };
  if (typeof h.version !== 'number' || !Number.isInteger(h.version) || h.version < 0 || h.version > p.version)
    return { error: `The server does not support version ${String(h.version)} of the '${p.name}' protocol.` };
  const rest = bytes === null ? text.slice(end + 1) : bytes.subarray(end + 1);
  return { protocol: p, rest };
}

/** Whether a socket's first message is a handshake (a reconnecting stateful client sends Sequence instead) */
export function isHandshake(data: string | Uint8Array): boolean {
  if (typeof data !== 'string') return false;
  const end = data.indexOf(RS);
  try {
    const h = JSON.parse(end < 0 ? data : data.slice(0, end)) as Record<string, unknown>;
    return typeof h === 'object' && h !== null && 'protocol' in h;
  } catch {
    return false;
  }
}

/** The handshake response, in the connection's format */
export function handshakeResponse(error: string | undefined, binary: boolean): string | Uint8Array {
  const text = (error === undefined ? '{}' : JSON.stringify({ error })) + RS;
  return binary ? Buffer.from(text) : text;
}
