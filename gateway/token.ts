/**
 * Session tokens: `<nodeId>.<signature>`, signature = base64url(HMAC-SHA256(secret, sid "." nodeId))
 * cut to 22 characters (132 bits). The token proves the client was given this sid and names the
 * node that holds the session's state, so any node can route a request for it.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** the secret as a KeyObject (an HMAC keyed with one costs less to make: a node signs every open) */
let keyOf: { secret: string; key: KeyObject } | null = null;
function hmacKey(secret: string): KeyObject {
  if (keyOf === null || keyOf.secret !== secret) keyOf = { secret, key: createSecretKey(Buffer.from(secret)) };
  return keyOf.key;
}

export function signToken(secret: string, sid: string, nodeId: string): string {
  return nodeId + '.' + signature(secret, sid, nodeId);
}

/** @returns the node named by a valid token, or null when the token is forged or malformed */
export function verifyToken(secret: string, sid: string, token: string): string | null {
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return null;
  const nodeId = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  const want = Buffer.from(signature(secret, sid, nodeId));
  if (given.length !== want.length || !timingSafeEqual(given, want)) return null;
  return nodeId;
}

function signature(secret: string, sid: string, nodeId: string): string {
  return createHmac('sha256', hmacKey(secret)).update(sid + '.' + nodeId).digest('base64url').slice(0, 22);
}

/**
 * Resume keys: `<sid>.<signature>`, signature = base64url(HMAC-SHA256(secret, "resume." sid)) cut
 * to 22 characters. No node in it: the key stays the same when the session moves (Socket.IO
 * compares the `pid` it gets back with the one it sent to tell whether it recovered).
 */
export function signResumeKey(secret: string, sid: string): string {
  return sid + '.' + createHmac('sha256', hmacKey(secret)).update('resume.' + sid).digest('base64url').slice(0, 22);
}

/** @returns the sid a valid resume key names (anything after a second dot is ignored), or null */
export function verifyResumeKey(secret: string, key: string): string | null {
  const dot = key.indexOf('.');
  if (dot <= 0) return null;
  const sid = key.slice(0, dot);
  const end = key.indexOf('.', dot + 1);
  const given = Buffer.from(end < 0 ? key.slice(dot + 1) : key.slice(dot + 1, end));
  const want = Buffer.from(signResumeKey(secret, sid).slice(dot + 1));
  if (given.length !== want.length || !timingSafeEqual(given, want)) return null;
  return sid;
}
