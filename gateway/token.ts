/**
 * Session tokens: `<nodeId>.<signature>`, signature = base64url(HMAC-SHA256(secret, sid "." nodeId))
 * cut to 22 characters (132 bits). The token proves the client was given this sid and names the
 * node that holds the session's state, so any node can route a request for it.
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

export function signToken(secret: string, sid: string, nodeId: string): string {
  return nodeId + '.' + signature(secret, sid, nodeId);
}

/** @returns the node named by a token valid under one of `secrets`, or null when it is forged or malformed */
export function verifyToken(secrets: Secrets, sid: string, token: string): string | null {
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return null;
  const nodeId = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  for (const secret of each(secrets)) {
    const want = Buffer.from(signature(secret, sid, nodeId));
    if (given.length === want.length && timingSafeEqual(given, want)) return nodeId;
  }
  return null;
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
