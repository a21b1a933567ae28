/**
 * A client frame as every dialect hands it to the port (`ClientFrame`), checked: what a decoder
 * produced from a plain value (native JSON/msgpack, SockJS messages), and what the relay receives
 * from another node. Dialect-neutral: the native codec, SockJS and the relay all use it.
 */
import { acceptable } from './entry.ts';
import type { ClientFrame } from './port.ts';

/** the longest event name (and string ack id) a client may send */
export const MAX_EVENT_NAME = 256;

/** A plain value as a client frame, or null (nesting over MAX_DEPTH and BigInts are refused) */
export function validateClientFrame(v: unknown, relayed = false): ClientFrame | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const f = v as Record<string, unknown>;
  if (f.cseq !== undefined && !(Number.isSafeInteger(f.cseq) && (f.cseq as number) > 0)) return null;
  switch (f.type) {
    case 'event': {
      const { event, ack } = f;
      if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_NAME) return null;
      if (f.args === undefined) f.args = [];
      else if (!Array.isArray(f.args) || !acceptable(f.args)) return null;
      if (ack !== undefined && !isAckId(ack)) return null;
      return f as ClientFrame;
    }
    case 'reply': {
      if (!isAckId(f.ack)) return null;
      if (f.error !== undefined) return typeof f.error === 'string' && f.args === undefined ? (f as ClientFrame) : null;
      if (f.args === undefined) f.args = [];
      else if (!Array.isArray(f.args) || !acceptable(f.args)) return null;
      return f as ClientFrame;
    }
    case 'refused':
      // a wire's own refusal, relayed from another node: never from a client
      return relayed && isAckId(f.ack) && typeof f.error === 'string' ? (f as ClientFrame) : null;
    case 'ack':
      // seqs start at 1; 0 acknowledges nothing (harmless)
      return Number.isSafeInteger(f.last) && (f.last as number) >= 0 && f.cseq === undefined ? (f as ClientFrame) : null;
    case 'pong':
    case 'close':
      return f as ClientFrame;
    default:
      return null;
  }
}

function isAckId(v: unknown): v is string | number {
  return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length <= MAX_EVENT_NAME);
}
