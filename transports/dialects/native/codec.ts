/**
 * The native dialect (docs/protocol.md): decoding what clients send, encoding outbox entries and
 * control frames, as JSON text or msgpack. Wire format only: nothing here knows about sessions.
 */
import { packr, unpackPlain } from '../../../lib/msgpack.ts';
import { acceptable, MAX_DEPTH, newCodecId, type Entry } from '../../seam/entry.ts';
import type { ClientFrame, Codec, Frame, OpenInfo } from '../../seam/port.ts';
import { MAX_EVENT_NAME, validateClientFrame } from '../../seam/client-frame.ts';

export { MAX_EVENT_NAME, validateClientFrame };

/** `meta.dialect` of the native protocol's sessions */
export const NATIVE_DIALECT = 'native';

export type Format = 'json' | 'msgpack';

/**
 * msgpack frames: plain values only (unpackPlain: no extensions, 64-bit integers only where exact),
 * as deep as a frame's map around args nested MAX_DEPTH deep; a batch is one array more
 */
const FRAME_DEPTH = MAX_DEPTH + 1;
const BATCH_DEPTH = MAX_DEPTH + 2;
const decoder = new TextDecoder('utf-8', { fatal: true });
/** for WebSocket text messages, whose UTF-8 uWS has already validated */
const looseDecoder = new TextDecoder('utf-8');
const EVENT_PREFIX = '{"type":"event","event":"';
const CSEQ = ',"cseq":';

/** Decodes one client frame; null when it is not a valid v1 client frame */
export function decodeClientFrame(data: ArrayBuffer | Uint8Array, binary: boolean): ClientFrame | null {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  let v: unknown;
  try {
    if (binary) v = unpackPlain(bytes, FRAME_DEPTH);
    else {
      const fast = fastEvent(bytes);
      if (fast !== null) return fast;
      v = JSON.parse(looseDecoder.decode(bytes));
    }
  } catch {
    return null;
  }
  return validateClientFrame(v);
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const PREFIX = utf8(EVENT_PREFIX);
/** what follows the event name: its closing quote, then the args' key and opening bracket */
const ARGS = utf8('","args":[');
const CSEQ_BYTES = utf8(CSEQ);
const ACK_BYTES = utf8(',"ack":');

/**
 * The common frame `{"type":"event","event":"<name>","args":[…]}` (optionally ending in
 * `,"ack":A` and then `,"cseq":N`, integers, as the bundled client sends them), exactly so, read
 * from its bytes: only the args are decoded and go through JSON.parse (about half the cost of
 * parsing the whole on small frames), and their text is a string of its own, not a slice keeping
 * the whole frame alive (outbox entries keep it). Anything else (other key order, a string `ack`,
 * a name with escapes, control or non-ASCII characters) returns null and takes the general path.
 * Safe: when prefix, name and suffix match and the middle parses as an array, the whole text is
 * exactly that object, as JSON.parse would read it.
 */
function fastEvent(b: Uint8Array): ClientFrame | null {
  const n = b.length;
  const p = PREFIX.length;
  if (n < p + ARGS.length + 2 || b[n - 1] !== 0x7d /* } */) return null;
  for (let i = 0; i < p; i++) if (b[i] !== PREFIX[i]) return null;
  const nameEnd = Math.min(n, p + MAX_EVENT_NAME);
  let q = p;
  for (; q < nameEnd; q++) {
    const c = b[q]!;
    if (c === 0x22 /* " */) break;
    if (c < 0x20 || c === 0x5c /* \ */ || c >= 0x80) return null;
  }
  if (q === p || b[q] !== 0x22) return null;
  for (let i = 1; i < ARGS.length; i++) if (b[q + i] !== ARGS[i]) return null;
  // the args run from their `[` to the `]` before `}`, or before `,"ack":A}`, `,"cseq":N}` or both
  let end = n - 1;
  let cseq: number | undefined;
  let ack: number | undefined;
  let d = digitsBefore(b, end);
  if (d >= 0 && keyBefore(b, d, CSEQ_BYTES)) {
    cseq = intAt(b, d, end);
    if (cseq === 0) return null;
    end = d - CSEQ_BYTES.length;
    d = digitsBefore(b, end);
  }
  if (d >= 0 && keyBefore(b, d, ACK_BYTES)) {
    ack = intAt(b, d, end);
    end = d - ACK_BYTES.length;
  }
  if (b[end - 1] !== 0x5d /* ] */) return null;
  const start = q + ARGS.length - 1;
  if (end <= start) return null;
  const raw = looseDecoder.decode(b.subarray(start, end));
  let args: unknown;
  try {
    args = JSON.parse(raw);
  } catch {
    return null; // e.g. `[1],"ack":2` — the general path decides
  }
  // nesting past MAX_DEPTH needs two characters a level: a shorter text cannot have it
  if (!Array.isArray(args) || (raw.length >= 2 * MAX_DEPTH && !acceptable(args))) return null;
  const event = eventName(b, p, q);
  if (ack === undefined) return cseq === undefined ? { type: 'event', event, args, raw } : { type: 'event', event, args, raw, cseq };
  return cseq === undefined ? { type: 'event', event, args, raw, ack } : { type: 'event', event, args, raw, ack, cseq };
}

/**
 * Where the decimal integer that ends at `end` (exclusive) starts: at most 15 digits (always a
 * safe integer), no leading zero; -1 when there is none
 */
function digitsBefore(b: Uint8Array, end: number): number {
  let d = end - 1;
  while (d >= end - 15 && d > 0 && b[d]! >= 0x30 && b[d]! <= 0x39) d--;
  const s = d + 1;
  if (s === end || (b[s] === 0x30 /* 0 */ && end - s > 1)) return -1;
  return s;
}

/** whether `key` ends right before `at` */
function keyBefore(b: Uint8Array, at: number, key: Uint8Array): boolean {
  const k = at - key.length;
  if (k < 0) return false;
  for (let i = 0; i < key.length; i++) if (b[k + i] !== key[i]) return false;
  return true;
}

function intAt(b: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + b[i]! - 0x30;
  return v;
}

/** The last event name read, and its bytes: a client sends the same few names over and over */
let lastName = '';
let lastNameBytes = new Uint8Array(0);

/** An ASCII event name from bytes `s`…`e` */
function eventName(b: Uint8Array, s: number, e: number): string {
  const len = e - s;
  if (lastNameBytes.length === len) {
    let i = 0;
    while (i < len && lastNameBytes[i] === b[s + i]) i++;
    if (i === len) return lastName;
  }
  lastNameBytes = b.slice(s, e);
  lastName = String.fromCharCode.apply(null, lastNameBytes as unknown as number[]);
  return lastName;
}

/** Decodes an upstream body (a JSON or msgpack array of frames); null when any frame is invalid */
export function decodeClientBatch(data: Uint8Array, binary: boolean): ClientFrame[] | null {
  let v: unknown;
  try {
    v = binary ? unpackPlain(data, BATCH_DEPTH) : JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  for (const f of v) if (validateClientFrame(f) === null) return null;
  return v as ClientFrame[];
}

// ---- encoding ----------------------------------------------------------------------------------

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

/** Counts of entry bodies built (shared entries are built once per codec: see Entry.cached) */
export const encodeStats = { bodies: 0 };

/** binary values reach JSON clients as base64 strings */
function bytesAsBase64(this: Record<string, unknown>, k: string, v: unknown): unknown {
  const o = this[k];
  return o instanceof Uint8Array ? Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('base64') : v;
}

function argsJson(e: Entry): string {
  return e.binary ? JSON.stringify(e.args, bytesAsBase64) : e.json();
}

/**
 * The part of an event frame after its `seq`: `,"event":…,"args":…}`. Built once per entry and
 * codec for a broadcast, whose recipients' frames differ only in `seq`.
 */
export function eventTail(event: string, args: string, ack?: string | number): string {
  return ',"event":' + eventJson(event) + ',"args":' + args + (ack === undefined ? '}' : ',"ack":' + JSON.stringify(ack) + '}');
}

class NativeJsonCodec implements Codec {
  readonly id = newCodecId();
  readonly binary = false;

  encode(seq: number, e: Entry): Frame {
    if (e.kind === 'reply') {
      const head = '{"type":"reply","seq":' + seq + ',"ack":' + JSON.stringify(e.ack);
      return e.error !== undefined ? head + ',"error":' + JSON.stringify(e.error) + '}' : head + ',"args":' + argsJson(e) + '}';
    }
    let tail = e.cached(this.id) as string | undefined;
    if (tail === undefined) {
      encodeStats.bodies++;
      tail = eventTail(e.event, argsJson(e), e.ack);
      e.cache(this.id, tail);
    }
    return '{"type":"event","seq":' + seq + tail;
  }

  open(info: OpenInfo): Frame {
    return JSON.stringify(openFrame(info));
  }

  ping(): Frame {
    return PING_JSON;
  }

  close(code: number, reason: string): Frame {
    return JSON.stringify({ type: 'close', code, reason });
  }
}

/** msgpack map headers and keys of an event frame, before the seq value */
const EVENT_HEAD = packr.pack({ type: 'event', seq: 0 }).subarray(1, -1); // "type" "event" "seq" (map header and the 0 cut off)

class NativeMsgpackCodec implements Codec {
  readonly id = newCodecId();
  readonly binary = true;

  encode(seq: number, e: Entry): Frame {
    if (e.kind === 'reply')
      return packr.pack(e.error !== undefined ? { type: 'reply', seq, ack: e.ack, error: e.error } : { type: 'reply', seq, ack: e.ack, args: e.args });
    if (!e.shared) {
      encodeStats.bodies++;
      return packr.pack(
        e.ack === undefined ? { type: 'event', seq, event: e.event, args: e.args } : { type: 'event', seq, event: e.event, args: e.args, ack: e.ack },
      );
    }
    // a broadcast: the part after `seq` is packed once, and each recipient's frame is head + seq + tail
    let tail = e.cached(this.id) as Uint8Array | undefined;
    if (tail === undefined) {
      encodeStats.bodies++;
      tail = packr.pack(e.ack === undefined ? { event: e.event, args: e.args } : { event: e.event, args: e.args, ack: e.ack }).subarray(1);
      e.cache(this.id, tail);
    }
    const n = packUint(seq);
    const out = new Uint8Array(1 + EVENT_HEAD.length + n.length + tail.length);
    out[0] = e.ack === undefined ? 0x84 : 0x85;
    out.set(EVENT_HEAD, 1);
    out.set(n, 1 + EVENT_HEAD.length);
    out.set(tail, 1 + EVENT_HEAD.length + n.length);
    return out;
  }

  open(info: OpenInfo): Frame {
    return packr.pack(openFrame(info));
  }

  ping(): Frame {
    return PING_MSGPACK;
  }

  close(code: number, reason: string): Frame {
    return packr.pack({ type: 'close', code, reason });
  }
}

function openFrame(info: OpenInfo): Record<string, unknown> {
  const f: Record<string, unknown> = { type: 'open', sid: info.sid, token: info.token, pingMs: info.pingMs, last: info.last };
  if (info.recovered !== undefined) f.recovered = info.recovered;
  return f;
}

/** msgpack encoding of a non-negative integer */
function packUint(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0xcc, n);
  if (n < 0x10000) return Uint8Array.of(0xcd, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  return packr.pack(n);
}

export const PING_JSON = '{"type":"ping"}';
export const PING_MSGPACK: Uint8Array = packr.pack({ type: 'ping' });

export const nativeCodecs: Record<Format, Codec> = { json: new NativeJsonCodec(), msgpack: new NativeMsgpackCodec() };

/** Encodes many already-encoded frames as one body: a JSON array, or a msgpack array */
export function encodeBatch(binary: boolean, frames: Frame[]): Frame {
  if (!binary) return '[' + (frames as string[]).join(',') + ']';
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
