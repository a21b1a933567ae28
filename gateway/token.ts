/**
 * Session tokens: `<nodeId>.<gen>.<signature>`, signature = base64url(HMAC-SHA256(secret,
 * sid "." nodeId "." gen)) cut to 22 characters (132 bits). The token proves the client was given
 * this sid and names the node that holds the session's state, so any node can route a request for
 * it. `gen` (base 36) counts the tokens a native session was given: every `open` brings a new one,
 * and the node holding the session accepts an older one only for a grace (TokenGens). Dialects
 * whose clients keep one token for a connection's life (SignalR's connection token) sign without a
 * generation: `<nodeId>.<signature>` over sid "." nodeId.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** secrets as KeyObjects (an HMAC keyed with one costs less to make: a node signs every open) */
const keys = new Map<string, KeyObject>();
function hmacKey(secret: string): KeyObject {
  let key = keys.get(secret);
  if (key === undefined) {
    if (keys.size >= 64) keys.clear();
    keys.set(secret, (key = createSecretKey(Buffer.from(secret))));
  }
  return key;
}

/**
 * A token or key checks out with the first secret that signs it: `secrets` is the signing secret
 * then the previous ones still accepted (rotation)
 */
export type Secrets = string | readonly string[];

function each(secrets: Secrets): readonly string[] {
  return typeof secrets === 'string' ? [secrets] : secrets;
}

/** `<nodeId>.1`, made once per node id: every native session's first token names it (an open allocates little) */
const firstNamed = new Map<string, string>();

/** `gen` 0: a token without a generation */
export function signToken(secret: string, sid: string, nodeId: string, gen = 0): string {
  let named = nodeId;
  if (gen === 1) {
    named = firstNamed.get(nodeId) ?? nodeId + '.1';
    if (firstNamed.size < 64) firstNamed.set(nodeId, named);
  } else if (gen > 1) named = nodeId + '.' + gen.toString(36);
  return named + '.' + signature(secret, sid + '.' + named);
}

/** What a valid token says: the node holding the session, and the token's generation (0: none) */
export interface TokenClaim {
  node: string;
  gen: number;
}

/** @returns what a token valid under one of `secrets` says, or null when it is forged or malformed */
export function readToken(secrets: Secrets, sid: string, token: string): TokenClaim | null {
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return null;
  const named = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  let ok = false;
  for (const secret of each(secrets)) {
    const want = Buffer.from(signature(secret, sid + '.' + named));
    if (given.length === want.length && timingSafeEqual(given, want)) {
      ok = true;
      break;
    }
  }
  if (!ok) return null;
  const g = named.indexOf('.');
  if (g < 0) return { node: named, gen: 0 };
  const gen = parseInt(named.slice(g + 1), 36);
  return Number.isSafeInteger(gen) && gen > 0 ? { node: named.slice(0, g), gen } : null;
}

/** The generation a token claims (not verified; 0: none) */
export function generationOf(token: string): number {
  const parts = token.split('.');
  return parts.length === 3 ? parseInt(parts[1]!, 36) || 0 : 0;
}

/** @returns the node named by a token valid under one of `secrets`, or null when it is forged or malformed */
export function verifyToken(secrets: Secrets, sid: string, token: string): string | null {
  return readToken(secrets, sid, token)?.node ?? null;
}

function signature(secret: string, signed: string): string {
  return createHmac('sha256', hmacKey(secret)).update(signed).digest('base64url').slice(0, 22);
}

/**
 * The token generations of one session, kept by the node that holds it. Every `open` gives the
 * client a new generation; a request may name any generation from the newest the client has used
 * up to the newest given (the client may not have received the last ones: its connection dropped
 * before the `open` arrived). Once a newer generation is used, the older ones are accepted for
 * `graceMs` only (requests already under way), then refused with SY_ERR_BAD_TOKEN: a token seen
 * once in a log or a proxy stops opening the session soon after the client moves on.
 */
export class TokenGens {
  /** the newest generation given */
  gen = 0;
  /** the oldest generation accepted without a grace: the newest the client has used */
  floor = 1;
  /** during a grace (until `graceUntil`), generations from this one on are accepted too */
  graceFloor = 1;
  graceUntil = 0;

  /**
   * The generations of every session that has had one `open`, shared: a session gets its own only
   * at its second (most never have one: an object at the first cost about 60 bytes of heap and 250
   * of RSS per idle native session, in two runs of 10,000). Nothing mutates it: `accept` writes only for a generation above the floor, and
   * none is above 1 here.
   */
  static readonly FIRST: TokenGens = Object.freeze(Object.assign(new TokenGens(), { gen: 1 }));

  /** The generation for a session's next `open`; `s.tokens` then holds its generations */
  static next(s: { tokens: TokenGens | null }): number {
    const t = s.tokens;
    if (t === null) {
      s.tokens = TokenGens.FIRST;
      return 1;
    }
    const own = t === TokenGens.FIRST ? (s.tokens = Object.assign(new TokenGens(), { gen: 1 })) : t;
    return ++own.gen;
  }

  /** Whether a request naming generation `g` is let in at `now`; the first use of a newer one starts the older ones' grace */
  accept(g: number, now: number, graceMs: number): boolean {
    if (g > this.gen) return false;
    if (g >= this.floor) {
      if (g > this.floor) {
        if (now > this.graceUntil) this.graceFloor = this.floor;
        this.graceUntil = now + graceMs;
        this.floor = g;
      }
      return true;
    }
    return g >= this.graceFloor && now <= this.graceUntil;
  }

  /**
   * The generations a node relaying a session's connection accepts: from the one its client came
   * with (`used`, checked by the holder) to the one the holder's `open` gave it (`given`)
   */
  static relayed(used: string, given: string): TokenGens {
    const t = new TokenGens();
    t.floor = t.graceFloor = Math.max(1, generationOf(used));
    t.gen = Math.max(t.floor, generationOf(given));
    return t;
  }

  /** for a hand-over: the same generations on the new node (the grace as time left) */
  toWire(now: number): [number, number, number, number] {
    return [this.gen, this.floor, this.graceFloor, Math.max(0, this.graceUntil - now)];
  }

  static fromWire(w: [number, number, number, number], now: number): TokenGens {
    const t = new TokenGens();
    [t.gen, t.floor, t.graceFloor, t.graceUntil] = [w[0], w[1], w[2], w[3] > 0 ? now + w[3] : 0];
    return t;
  }
}

/**
 * Resume keys: `<sid>.<signature>`, signature = base64url(HMAC-SHA256(secret, "resume." sid)) cut
 * to 22 characters. No node in it: the key stays the same when the session moves (Socket.IO
 * compares the `pid` it gets back with the one it sent to tell whether it recovered).
 */
export function signResumeKey(secret: string, sid: string): string {
  return (
    sid +
    '.' +
    createHmac('sha256', hmacKey(secret))
      .update('resume.' + sid)
      .digest('base64url')
      .slice(0, 22)
  );
}

/** @returns the sid a resume key valid under one of `secrets` names (anything after a second dot is ignored), or null */
export function verifyResumeKey(secrets: Secrets, key: string): string | null {
  const dot = key.indexOf('.');
  if (dot <= 0) return null;
  const sid = key.slice(0, dot);
  const end = key.indexOf('.', dot + 1);
  const given = Buffer.from(end < 0 ? key.slice(dot + 1) : key.slice(dot + 1, end));
  for (const secret of each(secrets)) {
    const want = Buffer.from(signResumeKey(secret, sid).slice(dot + 1));
    if (given.length === want.length && timingSafeEqual(given, want)) return sid;
  }
  return null;
}
