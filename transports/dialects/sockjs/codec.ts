/**
 * The SockJS dialect's codecs: a SockJS message carries a native frame's JSON text (as a JSON
 * string, escaped as SockJS escapes); the control frames are `o`, `h` and `c[code,"reason"]`.
 * Over a WebSocket each message is its own `a[…]` frame; the raw WebSocket carries the native
 * frames themselves. The framers of the HTTP transports (dialect.ts) batch these frames.
 */
import type { Codec, Frame } from '../../seam/port.ts';
import { newCodecId, type Entry } from '../../seam/entry.ts';
import { errors, type ErrorCode, type ErrorSpec } from '../../seam/errors.ts';
import { nativeCodecs } from '../native/codec.ts';

/**
 * JSON text as SockJS sends it: the characters some JavaScript engines, browsers or proxies mangle
 * escaped (sockjs-protocol 0.3.3's `escapable_by_server` above U+00FF: zero-width and direction
 * marks, line and paragraph separators, invisible operators, specials; JSON.stringify already
 * escapes the controls), and `<` too, so that no frame can end an htmlfile page's script element
 */
export function escaped(json: string): string {
  return json.replace(/[<\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** A SockJS message: a native frame's JSON text, as a JSON string (the `a[…]` array's element) */
/** Counts of messages built from outbox entries (a broadcast's is built once: see MessageCodec.encode) */
export const encodeStats = { messages: 0 };

/** a native event frame's start, up to its seq; and the same as the start of a JSON string's content */
const EVENT_HEAD = '{"type":"event","seq":';
const EVENT_HEAD_JSON = JSON.stringify(EVENT_HEAD).slice(0, -1);
/** the slot of a shared entry's message tail (the same for every SockJS transport) */
const MESSAGE_TAIL = newCodecId();

export class MessageCodec implements Codec {
  readonly id = newCodecId();
  readonly binary = false;
  encode(seq: number, e: Entry): Frame {
    if (!e.shared || e.kind !== 'event') {
      encodeStats.messages++;
      return escaped(JSON.stringify(nativeCodecs.json.encode(seq, e) as string));
    }
    // a broadcast: every member's message is the same but for its seq. The part after the seq is
    // made once (escaping is character by character, so the halves escape as the whole would)
    let tail = e.cached(MESSAGE_TAIL) as string | undefined;
    if (tail === undefined) {
      encodeStats.messages++;
      const frame = nativeCodecs.json.encode(0, e) as string;
      tail = escaped(JSON.stringify(frame.slice(EVENT_HEAD.length + 1))).slice(1);
      e.cache(MESSAGE_TAIL, tail);
    }
    return EVENT_HEAD_JSON + seq + tail;
  }
  /** nothing: the wire sends `o` itself as it makes the session (OPEN), not when the worker accepted it */
  open(): Frame {
    return '';
  }
  ping(): Frame {
    return 'h';
  }
  close(code: number, reason: string): Frame {
    return 'c' + escaped(JSON.stringify(sockJsClose(code, reason)));
  }
}

/**
 * The close a SockJS client gets: a gateway error (its code and name, as the core ends a session
 * with them) becomes the errors table's SockJS close when it has one (a timed-out session:
 * `3000 "Go away!"`); any other close (the app's own code and reason) goes as it is
 */
export function sockJsClose(code: number, reason: string): [number, string] {
  const e = Object.hasOwn(errors, reason) ? (errors[reason as ErrorCode] as ErrorSpec) : undefined;
  if (e !== undefined && e.ws === code && e.sockjs?.close !== undefined) return [e.sockjs.close[0], e.sockjs.close[1]];
  return [code, reason];
}

/** Over a WebSocket: each message its own `a[…]` frame */
export class SocketCodec extends MessageCodec {
  override encode(seq: number, e: Entry): Frame {
    return 'a[' + (super.encode(seq, e) as string) + ']';
  }
}

/** The raw WebSocket: a message is the native frame's text itself; no open, no heartbeat frames */
export class RawCodec extends MessageCodec {
  override encode(seq: number, e: Entry): Frame {
    return nativeCodecs.json.encode(seq, e);
  }
  override open(): Frame {
    return '';
  }
  override ping(): Frame {
    return '';
  }
  override close(): Frame {
    return '';
  }
}

/**
 * SockJS's open frame, sent by the wire as it makes a session, before the worker accepted it (it
 * carries no session data; sockjs-client gives a transport up after about 600 ms without it). A
 * session the app refuses then says `o`, then its close, which SockJS allows
 */
export const OPEN = 'o';

export const messages = new MessageCodec();
export const rawCodec = new RawCodec();
export const socketCodec = new SocketCodec();

/** a message (a JSON string) rather than a control frame (`o`, `h`, `c[…]`) */
export function isMessage(f: Frame): boolean {
  return typeof f === 'string' && f.charCodeAt(0) === 34; /* " */
}
