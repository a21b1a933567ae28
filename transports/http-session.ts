/**
 * What the two HTTP transports (SSE, long-polling) share: reading the connect request into
 * session meta, and finding the session a request names.
 */
import type { Gateway } from '../gateway/gateway.ts';
import type { RequestInfo } from '../gateway/http.ts';
import type { ErrorCode } from '../gateway/errors.ts';
import type { Session } from '../gateway/session.ts';
import type { SessionMeta } from '../cluster/types.ts';
import type { Frame } from './frames.ts';
import { connectQuery } from './query.ts';

export function metaOf(r: RequestInfo): SessionMeta {
  return { ip: r.ip, origin: r.origin, userAgent: r.userAgent, query: connectQuery(r.query), auth: r.query.get('auth') ?? r.authorization };
}

export type Target =
  | { kind: 'session'; session: Session }
  /** the session ended recently: these frames (unread ones, then `close`) are all that is left */
  | { kind: 'ended'; frames: Frame[] }
  /** held by another node: relay */
  | { kind: 'remote'; home: string; sid: string; token: string }
  | { kind: 'error'; error: ErrorCode };

/** The session a request names with `sid` and `token` */
export function target(gw: Gateway, r: RequestInfo, last: number): Target {
  const sid = r.query.get('sid') ?? '';
  const token = r.query.get('token') ?? '';
  const found = gw.lookup(sid, token);
  if ('session' in found) return { kind: 'session', session: found.session };
  if ('home' in found) return { kind: 'remote', home: found.home, sid, token };
  if (found.error === 'SY_ERR_UNKNOWN_SESSION') {
    const ended = gw.endedSession(sid, last);
    if (ended !== null) return { kind: 'ended', frames: [...ended.frames, ended.close] };
  }
  return { kind: 'error', error: found.error };
}
