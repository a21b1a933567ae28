/**
 * Native protocol v1 frames (docs/protocol.md): parsing what clients send, encoding what the
 * server sends, as JSON text or msgpack. Wire format only: nothing here knows about sessions.
 */
import { Packr, Unpackr } from 'msgpackr';

export type Format = 'json' | 'msgpack';
/** An encoded server frame, ready for a wire: JSON text or msgpack bytes */
export type Frame = string | Uint8Array;

export type ClientFrame =
  /** `raw`: the JSON text of `args`, when the fast path parsed it (lets an unchanged echo skip re-serializing) */
  | { type: 'event'; event: string; args: unknown[]; ack?: string | number; raw?: string }
  | { type: 'pong' }
  | { type: 'close' };

// plain maps both ways: records/structures would make frames unreadable to other msgpack libraries
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const decoder = new TextDecoder('utf-8', { fatal: true });
/** for WebSocket text messages, whose UTF-8 uWS has already validated */
const looseDecoder = new TextDecoder('utf-8');
const EVENT_PREFIX = '{"type":"event","event":"';

export const MAX_EVENT_NAME = 256;

/** Decodes one client frame; null when it is not a valid v1 client frame */
export function decodeClientFrame(data: ArrayBuffer | Uint8Array, binary: boolean): ClientFrame | null {
  let v: unknown;
  try {
    if (binary) v = unpackr.unpack(data instanceof Uint8Array ? data : new Uint8Array(data));
    else {
      const text = looseDecoder.decode(data);
      const fast = fastEvent(text);
      if (fast !== null) return fast;
      v = JSON.parse(text);
    }
  } catch {
    return null;
  }
  return validateClientFrame(v);
}

/**
 * The common frame `{"type":"event","event":"<name>","args":[…]}`, exactly so, parsed without
 * JSON-parsing the wrapper: only `args` goes through JSON.parse (about half the cost on small
 * frames). Anything else (other key order, an `ack`, escapes in the name) returns null and
 * takes the general path. Safe: when prefix, name and suffix match and the middle parses as an
 * array, the whole text is exactly that object.
 */
function fastEvent(text: string): ClientFrame | null {
  const end = text.length;
  if (!text.startsWith(EVENT_PREFIX) || text.charCodeAt(end - 1) !== 125 /* } */ || text.charCodeAt(end - 2) !== 93 /* ] */) return null;
  const q = text.indexOf('"', EVENT_PREFIX.length);
  if (q < 0 || q - EVENT_PREFIX.length > MAX_EVENT_NAME || q === EVENT_PREFIX.length) return null;
  const event = text.slice(EVENT_PREFIX.length, q);
  if (event.includes('\\') || !text.startsWith(',"args":[', q + 1)) return null;
  const raw = text.slice(q + 9, end - 1);
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch {
    return null; // e.g. `[1],"ack":2` — the general path decides
  }
  if (!Array.isArray(args)) return null;
  return { type: 'event', event, args, raw };
}

/** Decodes an upstream body (a JSON or msgpack array of frames); null when any frame is invalid */
export function decodeClientBatch(data: Uint8Array, binary: boolean): ClientFrame[] | null {
  let v: unknown;
  try {
    v = binary ? unpackr.unpack(data) : JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  for (const f of v) if (validateClientFrame(f) === null) return null;
  return v as ClientFrame[];
}

export function validateClientFrame(v: unknown): ClientFrame | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const f = v as Record<string, unknown>;
  switch (f.type) {
    case 'event': {
      const { event, ack } = f;
      if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_NAME) return null;
      if (f.args === undefined) f.args = [];
      else if (!Array.isArray(f.args)) return null;
      if (ack !== undefined && typeof ack !== 'number' && typeof ack !== 'string') return null;
      return f as ClientFrame;
    }
    case 'pong':
    case 'close':
      return f as ClientFrame;
    default:
      return null;
  }
}

/**
 * The part of an event frame after its `seq`: `,"event":…,"args":…}`. Built once per emit or
 * broadcast and shared by every recipient, whose frames differ only in `seq`.
 */
/** `raw`, when given, is the JSON text of `args` (and `args` may then be left out) */
export function eventTail(event: string, args: unknown[] | undefined, raw?: string): string {
  return ',"event":' + eventJson(event) + ',"args":' + (raw ?? JSON.stringify(args)) + '}';
}

/** Event names repeat: their JSON form is cached */
const eventNames = new Map<string, string>();
function eventJson(event: string): string {
  let j = eventNames.get(event);
  if (j === undefined) {
    if (eventNames.size >= 4096) eventNames.clear();
    eventNames.set(event, (j = JSON.stringify(event)));
  }
  return j;
}

export function encodeEvent(format: Format, seq: number, event: string, args: unknown[] | undefined, tail: string | null, raw?: string): Frame {
  if (format === 'json') return '{"type":"event","seq":' + seq + (tail ?? eventTail(event, args, raw));
  return packr.pack({ type: 'event', seq, event, args: args ?? (JSON.parse(raw!) as unknown[]) });
}

export function encodeReply(format: Format, seq: number, ack: string | number, args: unknown[] | undefined, error: string | undefined): Frame {
  const f = error === undefined ? { type: 'reply', seq, ack, args: args ?? [] } : { type: 'reply', seq, ack, error };
  return format === 'json' ? JSON.stringify(f) : packr.pack(f);
}

export function encode(format: Format, frame: object): Frame {
  return format === 'json' ? JSON.stringify(frame) : packr.pack(frame);
}

export const PING_JSON = '{"type":"ping"}';
export const PING_MSGPACK: Uint8Array = packr.pack({ type: 'ping' });

export function encodeClose(format: Format, code: number, reason: string): Frame {
  return encode(format, { type: 'close', code, reason });
}

/** Encodes many already-encoded frames as one body: a JSON array, or a msgpack array */
export function encodeBatch(format: Format, frames: Frame[]): Frame {
  if (format === 'json') return '[' + (frames as string[]).join(',') + ']';
  const parts = frames as Uint8Array[];
  let len = 0;
  for (const p of parts) len += p.length;
  const head = arrayHeader(parts.length);
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let o = head.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** msgpack array header: the items that follow are already encoded */
function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >> 8, n & 0xff);
  return Uint8Array.of(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

export function parseFormat(v: string | undefined): Format | null {
  if (v === undefined || v === '' || v === 'json') return 'json';
  if (v === 'msgpack') return 'msgpack';
  return null;
}
