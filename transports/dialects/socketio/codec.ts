/**
 * Socket.IO v5 packets: `<type>[<attachments>-][<nsp>,][<ack id>][<json>]` (the default parser)
 * or one msgpack map per packet (`socket.io-msgpack-parser`, chosen by configuration: client and
 * server must use the same). A packet travels as one or more Engine.IO messages: text, or for the
 * default parser's binary packets the text followed by one binary message per attachment.
 * @see https://github.com/socketio/socket.io-protocol
 */
import { packr, unpackPlain } from '../../../lib/msgpack.ts';
import { acceptable, MAX_DEPTH } from '../../seam/entry.ts';
import type { ClientFrame } from '../../seam/port.ts';

export const CONNECT = 0;
export const DISCONNECT = 1;
export const EVENT = 2;
export const ACK = 3;
export const CONNECT_ERROR = 4;
export const BINARY_EVENT = 5;
export const BINARY_ACK = 6;

/** A decoded client packet */
export interface SocketIoPacket {
  type: number;
  nsp: string;
  id?: number;
  data?: unknown;
  /** EVENT (default parser, no binary): the JSON text of the args, as the client sent them */
  raw?: string;
}

/** attachments of one binary packet, at most (as the reference parser) */
const MAX_ATTACHMENTS = 10;

/** event names a client may not emit (the reference parser refuses them) */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

/** The client broke the protocol: the carrier is closed (as the reference server does) */
export class SocketIoProtocolError extends Error {}

/** Turns a client's Engine.IO messages into packets (stateful: binary packets span messages) */
export interface SocketIoDecoder {
  /** no binary packet is waiting for attachments (a text message may be decoded by `fastEvent`) */
  readonly idle: boolean;
  /** @returns a whole packet, or null while a binary packet waits for attachments; throws SocketIoProtocolError */
  add(msg: string | Uint8Array): SocketIoPacket | null;
}

export interface SocketIoParser {
  readonly name: 'default' | 'msgpack';
  /** the Engine.IO messages of a packet whose data may hold bytes */
  encode(type: number, nsp: string, id: number | undefined, data: unknown): Array<string | Uint8Array>;
  decoder(): SocketIoDecoder;
}

// ---- the default parser ------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return Object.prototype.toString.call(v) === '[object Object]';
}

function validPayload(type: number, data: unknown): boolean {
  switch (type) {
    case CONNECT:
      return isObject(data);
    case DISCONNECT:
      return data === undefined;
    case CONNECT_ERROR:
      return typeof data === 'string' || isObject(data);
    case EVENT:
    case BINARY_EVENT:
      return Array.isArray(data) && (typeof data[0] === 'number' || (typeof data[0] === 'string' && !RESERVED.has(data[0])));
    default:
      return Array.isArray(data);
  }
}

/** a packet's data within the nesting limit (an event's args count from the same level as a native frame's) */
function nestedOk(data: unknown): boolean {
  return acceptable(Array.isArray(data) ? data : [data]);
}

/** `<nsp>,` as it prefixes a packet's text ('' for the main namespace) */
export function nspPrefix(nsp: string): string {
  return nsp === '/' ? '' : nsp + ',';
}

/** Parses one packet's text (without its attachments); throws SocketIoProtocolError */
export function decodeText(str: string): SocketIoPacket & { attachments: number } {
  const type = str.charCodeAt(0) - 48;
  if (!(type >= CONNECT && type <= BINARY_ACK)) throw new SocketIoProtocolError('unknown packet type');
  let i = 1;
  let attachments = 0;
  if (type === BINARY_EVENT || type === BINARY_ACK) {
    const dash = str.indexOf('-', 1);
    const n = dash < 0 ? '' : str.slice(1, dash);
    if (n === '' || !/^\d+$/.test(n)) throw new SocketIoProtocolError('illegal attachments');
    attachments = Number(n);
    if (attachments > MAX_ATTACHMENTS) throw new SocketIoProtocolError('too many attachments');
    i = dash + 1;
  }
  let nsp = '/';
  if (str.charCodeAt(i) === 47 /* / */) {
    const comma = str.indexOf(',', i);
    nsp = comma < 0 ? str.slice(i) : str.slice(i, comma);
    i = comma < 0 ? str.length : comma + 1;
  }
  let id: number | undefined;
  const start = i;
  while (i < str.length) {
    const c = str.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i > start) {
    id = Number(str.slice(start, i));
    if (!Number.isSafeInteger(id)) throw new SocketIoProtocolError('invalid ack id');
  }
  const p: SocketIoPacket & { attachments: number } = { type, nsp, attachments };
  if (id !== undefined) p.id = id;
  if (i < str.length) {
    const text = str.slice(i);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new SocketIoProtocolError('invalid payload');
    }
    if (!validPayload(type, data)) throw new SocketIoProtocolError('invalid payload');
    if (!nestedOk(data)) throw new SocketIoProtocolError('payload nested too deep');
    p.data = data;
    if (type === EVENT) p.raw = argsText(text);
  } else if (type === EVENT || type === BINARY_EVENT) {
    throw new SocketIoProtocolError('an event without a payload');
  }
  return p;
}

/**
 * The JSON text of an event's args from the text of `["name",a,b]`: `[a,b]`, when the name has
 * no escapes (else undefined: the args get serialized again if needed)
 */
function argsText(text: string): string | undefined {
  if (text.charCodeAt(1) !== 34 /* " */) return undefined;
  const close = text.indexOf('"', 2);
  if (close < 0 || text.lastIndexOf('\\', close) > 1) return undefined;
  const next = text.charCodeAt(close + 1);
  if (next === 93 /* ] */) return '[]';
  if (next !== 44 /* , */) return undefined;
  return '[' + text.slice(close + 2);
}

/**
 * The common case, fast: an EVENT for the main namespace, `2[<ack id>]["name",…args]` with a name
 * without escapes, decoded straight into the neutral frame (the args are parsed from their own
 * text, which is kept as `raw`). Null for anything else (or anything invalid): the
 * general decoder then takes the message and says what is wrong with it.
 */
export function fastEvent(str: string): Extract<ClientFrame, { type: 'event' }> | null {
  let i = 1;
  while (i < str.length) {
    const c = str.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i > 16 || str.charCodeAt(i) !== 91 /* [ */ || str.charCodeAt(i + 1) !== 34 /* " */) return null;
  const close = str.indexOf('"', i + 2);
  if (close < 0) return null;
  const event = str.slice(i + 2, close);
  if (event.indexOf('\\') >= 0 || RESERVED.has(event)) return null;
  const next = str.charCodeAt(close + 1);
  let raw: string;
  if (next === 93 /* ] */ && close + 2 === str.length) raw = '[]';
  else if (next === 44 /* , */) raw = '[' + str.slice(close + 2);
  else return null;
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!Array.isArray(args) || !acceptable(args)) return null;
  // the frame itself (one object less per event than a packet and then a frame)
  return i > 1 ? { type: 'event', event, args, ack: Number(str.slice(1, i)), raw } : { type: 'event', event, args, raw };
}

class TextDecoder implements SocketIoDecoder {
  private pending: (SocketIoPacket & { attachments: number }) | null = null;
  private buffers: Uint8Array[] | null = null;

  get idle(): boolean {
    return this.pending === null;
  }

  add(msg: string | Uint8Array): SocketIoPacket | null {
    if (typeof msg === 'string') {
      if (this.pending !== null) throw new SocketIoProtocolError('got plaintext data when reconstructing a packet');
      const p = decodeText(msg);
      if (p.type !== BINARY_EVENT && p.type !== BINARY_ACK) return p;
      if (p.data === undefined) throw new SocketIoProtocolError('invalid payload');
      if (p.attachments === 0) return finish(p, []);
      this.pending = p;
      return null;
    }
    const p = this.pending;
    if (p === null) throw new SocketIoProtocolError('got binary data when not reconstructing a packet');
    const buffers = (this.buffers ??= []);
    buffers.push(msg);
    if (buffers.length < p.attachments) return null;
    this.pending = null;
    this.buffers = null;
    return finish(p, buffers);
  }
}

/** A binary packet with its attachments put back in place of the placeholders */
function finish(p: SocketIoPacket & { attachments: number }, buffers: Uint8Array[]): SocketIoPacket {
  const data = reconstruct(p.data, buffers, 0, { used: 0 });
  if (!nestedOk(data)) throw new SocketIoProtocolError('payload nested too deep');
  const out: SocketIoPacket = { type: p.type === BINARY_EVENT ? EVENT : ACK, nsp: p.nsp, data };
  if (p.id !== undefined) out.id = p.id;
  return out;
}

/**
 * Puts each attachment where its placeholder is. Each `num` may be used once: socket.io-client
 * sends one attachment per occurrence of bytes, and a reused one would let a small packet stand
 * for the same buffer many times over (30,000 references to one 100 KB attachment: 3 GB to
 * re-encode). `seen.used`: a bit per attachment placed (at most MAX_ATTACHMENTS).
 */
function reconstruct(v: unknown, buffers: Uint8Array[], depth: number, seen: { used: number }): unknown {
  if (typeof v !== 'object' || v === null || depth > 32) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reconstruct(v[i], buffers, depth + 1, seen);
    return v;
  }
  const o = v as Record<string, unknown>;
  if (o._placeholder === true) {
    const num = o.num;
    if (typeof num !== 'number' || !Number.isInteger(num) || num < 0 || num >= buffers.length) throw new SocketIoProtocolError('illegal attachments');
    const bit = 1 << num;
    if ((seen.used & bit) !== 0) throw new SocketIoProtocolError('an attachment placed twice');
    seen.used |= bit;
    return buffers[num];
  }
  for (const k in o) o[k] = reconstruct(o[k], buffers, depth + 1, seen);
  return o;
}

/** Replaces bytes with placeholders, collecting them */
function deconstruct(v: unknown, buffers: Uint8Array[]): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Uint8Array) {
    buffers.push(v);
    return { _placeholder: true, num: buffers.length - 1 };
  }
  if (Array.isArray(v)) return v.map((x) => deconstruct(x, buffers));
  const out: Record<string, unknown> = {};
  for (const k in v) out[k] = deconstruct((v as Record<string, unknown>)[k], buffers);
  return out;
}

export const defaultParser: SocketIoParser = {
  name: 'default',
  encode(type, nsp, id, data) {
    const buffers: Uint8Array[] = [];
    const json = data === undefined ? '' : JSON.stringify(deconstruct(data, buffers));
    const head = buffers.length > 0 ? String(type === ACK ? BINARY_ACK : BINARY_EVENT) + buffers.length + '-' : String(type);
    const text = head + nspPrefix(nsp) + (id === undefined ? '' : String(id)) + json;
    return buffers.length > 0 ? [text, ...buffers] : [text];
  },
  decoder: () => new TextDecoder(),
};

// ---- socket.io-msgpack-parser ------------------------------------------------------------------

/**
 * A packet is a map around data nested at most MAX_DEPTH deep (see nestedOk). Plain values only
 * (unpackPlain): notepack.io's `undefined` passes, its Dates (an extension) do not.
 */
const PACKET_DEPTH = MAX_DEPTH + 1;

class MsgpackDecoder implements SocketIoDecoder {
  get idle(): boolean {
    return true;
  }
  add(msg: string | Uint8Array): SocketIoPacket | null {
    if (typeof msg === 'string') throw new SocketIoProtocolError('text message with the msgpack parser');
    let p: { type?: unknown; nsp?: unknown; id?: unknown; data?: unknown };
    try {
      p = unpackPlain(msg, PACKET_DEPTH) as typeof p;
    } catch {
      throw new SocketIoProtocolError('invalid msgpack');
    }
    if (!isObject(p)) throw new SocketIoProtocolError('invalid packet');
    const type = p.type;
    // the msgpack parser has no binary packet types: bytes travel inside the packet
    if (typeof type !== 'number' || !Number.isInteger(type) || type < CONNECT || type > CONNECT_ERROR) throw new SocketIoProtocolError('invalid packet type');
    if (typeof p.nsp !== 'string') throw new SocketIoProtocolError('invalid namespace');
    const valid = type === CONNECT ? p.data === undefined || isObject(p.data) : validPayload(type, p.data);
    if (!valid) throw new SocketIoProtocolError('invalid payload');
    if (p.id !== undefined && p.id !== null && !(typeof p.id === 'number' && Number.isSafeInteger(p.id))) throw new SocketIoProtocolError('invalid packet id');
    if (!nestedOk(p.data)) throw new SocketIoProtocolError('payload nested too deep');
    const out: SocketIoPacket = { type, nsp: p.nsp };
    if (typeof p.id === 'number') out.id = p.id;
    if (p.data !== undefined) out.data = p.data;
    return out;
  }
}

export const msgpackParser: SocketIoParser = {
  name: 'msgpack',
  encode(type, nsp, id, data) {
    const p: Record<string, unknown> = { type, nsp };
    if (data !== undefined) p.data = data;
    if (id !== undefined) p.id = id;
    return [packr.pack(p)];
  },
  decoder: () => new MsgpackDecoder(),
};
