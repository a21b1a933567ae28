/**
 * Outbox entries: what the application said to one session, before any dialect encodes it.
 * A session's outbox holds these, numbered per session (`seq`); each connection encodes them
 * with its own codec (dialect × format) when it writes them. One broadcast is one `Entry` shared
 * by every local recipient, and a codec encodes it once (see `cached`), not once per member.
 */
import type { WireEntry } from '../../cluster/types.ts';

/** nesting deeper than this in args is refused (client frames) or not sent (app output) */
export const MAX_DEPTH = 32;

export type EntryKind = 'event' | 'reply';

export class Entry {
  protected constructor(
    /** REPLY (else an event), RAW / ERROR (what `data` is), BINARY (args hold Uint8Array values) */
    private readonly flags: number,
    /** the event's name ('' for a reply) */
    readonly event: string,
    /**
     * The args; or their JSON text (RAW: a client's text passed through unchanged); or the error
     * message (ERROR). One field for the three: entries wait in outboxes for a replay, many of them,
     * and every field counts.
     */
    private readonly data: unknown,
    /** event: a server request the client answers with this id; reply: the client's request id */
    readonly ack: string | number | undefined,
    /** approximate bytes, for the outbox's byte budget */
    readonly size: number,
  ) {}

  /**
   * An event for the client; `ack` makes it a request the client answers. Null when the args
   * cannot be encoded (see measure). With `raw`, `args` is not kept (the text alone is smaller).
   * `shared`: one entry for every member of a room, whose codecs cache their encoding on it.
   */
  static event(event: string, args: unknown[] | undefined, raw?: string, ack?: string | number, shared = false): Entry | null {
    if (raw !== undefined)
      return shared ? new SharedEntry(RAW, event, raw, ack, raw.length + event.length + 24) : new Entry(RAW, event, raw, ack, raw.length + event.length + 24);
    const m = measure(args ?? []);
    if (m < 0) return null;
    const flags = lastBinary ? BINARY : 0;
    return shared ? new SharedEntry(flags, event, args ?? [], ack, m + event.length + 24) : new Entry(flags, event, args ?? [], ack, m + event.length + 24);
  }

  /** The answer to the client's request `ack`: args, or an error */
  static reply(ack: string | number, args: unknown[] | undefined, error: string | undefined, raw?: string): Entry | null {
    if (error !== undefined) return new Entry(REPLY | ERROR, '', error, ack, error.length + 32);
    if (raw !== undefined) return new Entry(REPLY | RAW, '', raw, ack, raw.length + 32);
    const m = measure(args ?? []);
    if (m < 0) return null;
    return new Entry(REPLY | (lastBinary ? BINARY : 0), '', args ?? [], ack, m + 32);
  }

  /** Rebuilds an entry that crossed the bus (relay, hand-over) */
  static from(w: WireEntry): Entry {
    const e = w.k === 'reply' ? Entry.reply(w.ack!, w.args, w.error, w.raw) : Entry.event(w.event!, w.args, w.raw, w.ack);
    // the node that made it measured it, so this does not happen; if it did, an empty entry in its
    // place keeps the seqs of the entries after it
    return e ?? new Entry(w.k === 'reply' ? REPLY : 0, w.event ?? '', [], w.ack, 32);
  }

  get kind(): EntryKind {
    return (this.flags & REPLY) !== 0 ? 'reply' : 'event';
  }

  /** a reply's error message */
  get error(): string | undefined {
    return (this.flags & ERROR) !== 0 ? (this.data as string) : undefined;
  }

  /** args hold binary values */
  get binary(): boolean {
    return (this.flags & BINARY) !== 0;
  }

  get shared(): boolean {
    return false;
  }

  /** the args (parsed from their text for an entry that has only that) */
  get args(): unknown[] {
    const f = this.flags;
    if ((f & RAW) !== 0) return JSON.parse(this.data as string) as unknown[];
    return (f & ERROR) !== 0 ? [] : (this.data as unknown[]);
  }

  /** The JSON text of the args (only for entries without binary values) */
  json(): string {
    return (this.flags & RAW) !== 0 ? (this.data as string) : JSON.stringify(this.args);
  }

  /** What crosses the bus: a plain object (msgpack keeps binary args binary) */
  toWire(): WireEntry {
    const w: WireEntry = { k: this.kind };
    if ((this.flags & REPLY) === 0) w.event = this.event;
    if (this.ack !== undefined) w.ack = this.ack;
    if ((this.flags & ERROR) !== 0) w.error = this.data as string;
    else if ((this.flags & RAW) !== 0) w.raw = this.data as string;
    else w.args = this.data as unknown[];
    return w;
  }

  /** A codec's encoding of this entry, if it made one before (shared entries only) */
  cached(_codec: number): unknown {
    return undefined;
  }

  /** Keeps a codec's encoding (shared entries only: an entry of one session is encoded about once) */
  cache(_codec: number, _v: unknown): void {}
}

/** One entry held by every local member of a room: codecs keep their encodings on it */
class SharedEntry extends Entry {
  /** [codec id, value] pairs */
  private enc: unknown[] | null = null;

  override get shared(): boolean {
    return true;
  }

  override json(): string {
    let j = this.cached(JSON_TEXT) as string | undefined;
    if (j === undefined) this.cache(JSON_TEXT, (j = super.json()));
    return j;
  }

  override cached(codec: number): unknown {
    const enc = this.enc;
    if (enc !== null) for (let i = 0; i < enc.length; i += 2) if (enc[i] === codec) return enc[i + 1];
    return undefined;
  }

  override cache(codec: number, v: unknown): void {
    (this.enc ??= []).push(codec, v);
  }
}

const REPLY = 1;
const RAW = 2;
const ERROR = 4;
const BINARY = 8;
/** the cache slot of a shared entry's args as JSON text (codec ids are >= 0) */
const JSON_TEXT = -1;

/** An entry as it crosses the bus (defined with the bus's types) */
export type { WireEntry } from '../../cluster/types.ts';

let lastBinary = false;

/**
 * Values a walk visits at most (every element, key and nested value counts): past it the value is
 * refused. Decoders make only trees, but an app can emit a DAG (one object referenced from many
 * places): depth alone would let its walk, and every encoding after it, take fan-out^depth steps.
 */
export const MAX_NODES = 1 << 20;
/** what the walk in progress may still visit (a walk never yields: one counter serves all) */
let budget = 0;

/**
 * Approximate encoded size of a value in bytes, or -1 when it cannot be encoded safely: nested
 * deeper than MAX_DEPTH (or circular), holding a BigInt, or more than MAX_NODES values. Sets
 * `lastBinary` when it holds bytes.
 */
export function measure(v: unknown): number {
  lastBinary = false;
  budget = MAX_NODES - 1; // v itself
  return size(v, 0);
}

/** `budget` is charged by each container for what it holds (once per array, not per element) */
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
        if ((budget -= v.length) < 0) return -1;
        for (let i = 0; i < v.length; i++) {
          const m = size(v[i], depth + 1);
          if (m < 0) return -1;
          n += m + 1;
        }
        return n;
      }
      for (const k in v) {
        if ((budget -= 2) < 0) return -1; // the key and its value
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

/** Whether client-sent args are acceptable: nesting at most MAX_DEPTH, no BigInt, at most MAX_NODES values */
export function acceptable(args: unknown[]): boolean {
  budget = MAX_NODES - 1;
  return size(args, 0) >= 0;
}

let codecIds = 0;
/** A new codec's id (indexes the encodings cached on shared entries) */
export function newCodecId(): number {
  return codecIds++;
}
