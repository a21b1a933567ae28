/**
 * Outbox entries: what the application said to one session, before any dialect encodes it.
 * A session's outbox holds these, numbered per session (`seq`); each connection encodes them
 * with its own codec (dialect × format) when it writes them. One broadcast is one `Entry` shared
 * by every local recipient, and a codec encodes it once (see `cached`), not once per member.
 */

/** nesting deeper than this in args is refused (client frames) or not sent (app output) */
export const MAX_DEPTH = 32;

export type EntryKind = 'event' | 'reply';

export class Entry {
  /** the first codec's encoding of a shared entry (codec id, value); more in `more` */
  private c0 = -1;
  private v0: unknown = undefined;
  private more: Map<number, unknown> | null = null;

  private constructor(
    /** `event`: the app emitted `event` (with `ack`: a server request the client answers); `reply`: the answer to the client's `ack` */
    readonly kind: EntryKind,
    readonly event: string,
    private _args: unknown[] | undefined,
    /** the JSON text of `args`, when known (a client's text passed through unchanged, or made once by a JSON codec) */
    public raw: string | undefined,
    readonly ack: string | number | undefined,
    readonly error: string | undefined,
    /** approximate bytes, for the outbox's byte budget */
    readonly size: number,
    /** args hold binary (Uint8Array) values: JSON codecs cannot reuse `raw`-style text for them */
    readonly binary: boolean,
    /** held by several sessions (a broadcast): codecs cache their encoding on it */
    readonly shared: boolean,
  ) {}

  /** An event for the client; `ack` makes it a request the client answers. Null when the args cannot be encoded (see measure). */
  static event(event: string, args: unknown[] | undefined, raw?: string, ack?: string | number, shared = false): Entry | null {
    const m = raw !== undefined ? raw.length : measure(args ?? []);
    if (m < 0) return null;
    return new Entry('event', event, args, raw, ack, undefined, m + event.length + 24, raw === undefined && lastBinary, shared);
  }

  /** The answer to the client's request `ack`: args, or an error */
  static reply(ack: string | number, args: unknown[] | undefined, error: string | undefined, raw?: string): Entry | null {
    if (error !== undefined) return new Entry('reply', '', undefined, undefined, ack, error, error.length + 32, false, false);
    const m = raw !== undefined ? raw.length : measure(args ?? []);
    if (m < 0) return null;
    return new Entry('reply', '', args ?? (raw === undefined ? [] : undefined), raw, ack, undefined, m + 32, raw === undefined && lastBinary, false);
  }

  /** Rebuilds an entry that crossed the bus (relay, hand-over) */
  static from(w: WireEntry): Entry {
    const e = w.k === 'reply' ? Entry.reply(w.ack!, w.args, w.error, w.raw) : Entry.event(w.event!, w.args, w.raw, w.ack);
    // it was measured on the node that made it: what crosses the bus is encodable
    return e ?? new Entry('reply', '', undefined, undefined, w.ack ?? 0, 'unencodable', 32, false, false);
  }

  get args(): unknown[] {
    return (this._args ??= this.raw === undefined ? [] : (JSON.parse(this.raw) as unknown[]));
  }

  /** the JSON text of the args (made once); only for entries without binary values */
  json(): string {
    return (this.raw ??= JSON.stringify(this._args ?? []));
  }

  /** What crosses the bus: a plain object (msgpack keeps binary args binary) */
  toWire(): WireEntry {
    const w: WireEntry = { k: this.kind };
    if (this.kind === 'event') w.event = this.event;
    if (this.ack !== undefined) w.ack = this.ack;
    if (this.error !== undefined) w.error = this.error;
    else if (this._args === undefined && this.raw !== undefined) w.raw = this.raw;
    else w.args = this._args ?? [];
    return w;
  }

  /** A codec's encoding of this entry, if it made one before (shared entries only) */
  cached(codec: number): unknown {
    if (this.c0 === codec) return this.v0;
    return this.more?.get(codec);
  }

  cache(codec: number, v: unknown): void {
    if (!this.shared) return;
    if (this.c0 === -1 || this.c0 === codec) {
      this.c0 = codec;
      this.v0 = v;
    } else (this.more ??= new Map()).set(codec, v);
  }
}

/** An entry as it crosses the bus */
export interface WireEntry {
  k: EntryKind;
  event?: string;
  args?: unknown[];
  raw?: string;
  ack?: string | number;
  error?: string;
}

let lastBinary = false;

/**
 * Approximate encoded size of a value in bytes, or -1 when it cannot be encoded safely: nested
 * deeper than MAX_DEPTH (or circular), or holding a BigInt. Sets `lastBinary` when it holds bytes.
 */
export function measure(v: unknown): number {
  lastBinary = false;
  return size(v, 0);
}

function size(v: unknown, depth: number): number {
  switch (typeof v) {
    case 'string':
      return v.length + 2;
    case 'number':
    case 'boolean':
      return 8;
    case 'bigint':
      return -1;
    case 'object': {
      if (v === null) return 4;
      if (depth >= MAX_DEPTH) return -1;
      if (v instanceof Uint8Array) {
        lastBinary = true;
        return v.byteLength + 4;
      }
      let n = 2;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const m = size(v[i], depth + 1);
          if (m < 0) return -1;
          n += m + 1;
        }
        return n;
      }
      for (const k in v) {
        const m = size((v as Record<string, unknown>)[k], depth + 1);
        if (m < 0) return -1;
        n += k.length + m + 4;
      }
      return n;
    }
    default:
      return 0; // undefined, functions, symbols: JSON leaves them out
  }
}

/** Whether client-sent args are acceptable: nesting at most MAX_DEPTH, no BigInt (msgpack 64-bit integers past 2^53) */
export function acceptable(args: unknown[]): boolean {
  return size(args, 0) >= 0;
}

let codecIds = 0;
/** A new codec's id (indexes the encodings cached on shared entries) */
export function newCodecId(): number {
  return codecIds++;
}
