/**
 * A node's session table: the live sessions by sid, the ones that ended a moment ago
 * (tombstones: why they ended, and what their clients had not read), and finding the session a
 * client names, whatever the key (a signed token naming a node, a signed resume key naming none,
 * a key the client chose), wherever it is in the cluster. What it needs of its node is `TableHost`.
 */
import { createHmac } from 'node:crypto';
import type { Ended, Target } from '../transports/seam/port.ts';
import type { Directory } from './directory.ts';
import type { ResolvedOptions } from './options.ts';
import type { Outbox } from './outbox.ts';
import { SessionState, type Session } from './session.ts';
import { readToken, signResumeKey, signToken, type TokenGens, verifyResumeKey } from './token.ts';

export interface TableHost {
  readonly options: ResolvedOptions;
  readonly nodeId: string;
  readonly clustered: boolean;
  readonly directory: Pick<Directory, 'locate'>;
  /** another gateway node said goodbye (it drained: its sessions went to other nodes) */
  nodeLeft(node: string): boolean;
  /** a live session a connection is about to attach to, or the node's refusal (its session limit) */
  attachable(s: Session): Target;
}

/** A session that ended, remembered briefly so a late poll learns why instead of a bare 404 */
interface Tombstone {
  code: number;
  reason: string;
  at: number;
  /** the outbox, kept when the session ended without a connection (entries may be unread) */
  outbox: Outbox | null;
  /** its token generations: a superseded token learns nothing of how it ended */
  tokens: TokenGens | null;
}

/** what a tombstone is counted as holding besides the unread entries it keeps (its object, the map's entry, the sid) */
const TOMBSTONE_OVERHEAD = 256;

/**
 * What an outbox's entries hold in the heap. `bytes` counts their encoded size (the outbox's
 * bound); the objects around them take more: measured 106–274 B of heap for entries counted
 * 38–94 B (a small event or reply, raw or parsed args, one object arg), about twice the count
 * and 64 B each besides
 */
export function heldBytes(box: Outbox): number {
  return 2 * box.bytes + 64 * box.size;
}

/** what a tombstone is counted as holding (its outbox no longer changes: the session ended) */
function tombBytes(t: Tombstone): number {
  return TOMBSTONE_OVERHEAD + (t.outbox === null ? 0 : heldBytes(t.outbox));
}

export class SessionTable {
  private readonly tombstones = new Map<string, Tombstone>();
  /** what the tombstones are counted as holding (see sweep): fixed once made, so kept as a sum */
  private tombBytes = 0;
  /** the secret that signs, then the previous ones that still verify */
  readonly secrets: readonly string[];

  constructor(
    private readonly host: TableHost,
    /** the live sessions of this node, by sid */
    readonly sessions: Map<string, Session>,
  ) {
    this.secrets = [host.options.secret, ...host.options.previousSecrets];
  }

  /** The session a client names by `sid` and signed `token` (Port.find) */
  find(sid: string, token: string, last: number): Target {
    const host = this.host;
    const claim = readToken(this.secrets, sid, token);
    if (claim === null) return { kind: 'error', error: 'SY_ERR_BAD_TOKEN' };
    // here, even when the token names another node (this node took the session over)
    const s = this.sessions.get(sid);
    if (s !== undefined && s.state !== SessionState.Closed) {
      // (a shadow knows its tokens once the holder's open came through it)
      if (claim.gen > 0 && (s.relay === null || s.tokens !== null) && !this.current(s.tokens, claim.gen)) return { kind: 'error', error: 'SY_ERR_BAD_TOKEN' };
      return host.attachable(s);
    }
    // held by another node: relayed to the node the token names (only a cluster has other nodes).
    // One that left (drained) handed its sessions over: where the session is is asked of the
    // cluster (home ''). One that died had its sessions end with it: the relay refuses at once.
    if (claim.node !== host.nodeId && host.clustered) return { kind: 'remote', home: host.nodeLeft(claim.node) ? '' : claim.node, sid, token };
    const t = this.tombstones.get(sid);
    if (t !== undefined && claim.gen > 0 && !this.current(t.tokens, claim.gen)) return { kind: 'error', error: 'SY_ERR_BAD_TOKEN' };
    const ended = this.endedSession(sid, last);
    if (ended !== null) return { kind: 'ended', ended };
    // named by this node, but not here (handed over before this node drained, or this node
    // restarted): in a cluster the relay asks the directory where it is
    return host.clustered ? { kind: 'remote', home: '', sid, token } : { kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' };
  }

  /** a token of generation `gen` still opens a session with these generations */
  private current(tokens: TokenGens | null, gen: number): boolean {
    return tokens?.accept(gen, Date.now(), this.host.options.tokenGraceMs) === true;
  }

  /**
   * For a session that ended recently: the entries the client has not seen (after `last`) and
   * why it ended, so a late poll or resume learns everything. Null if unknown.
   */
  endedSession(sid: string, last: number): Ended | null {
    const t = this.tombstones.get(sid);
    if (t === undefined) return null;
    const entries = t.outbox === null ? [] : t.outbox.since(last);
    const first = t.outbox === null ? last + 1 : Math.max(last + 1, t.outbox.first);
    return { first, entries, code: t.code, reason: t.reason };
  }

  /** A resume key for `sid` that names no node and never changes (Port.resumeKey) */
  resumeKey(sid: string): string {
    return signResumeKey(this.host.options.secret, sid);
  }

  /** The session a resume key names: this node's table, recently ended ones, then the cluster (Port.resume) */
  resume(key: string, last: number, done: (t: Target) => void): void {
    const host = this.host;
    const sid = verifyResumeKey(this.secrets, key);
    if (sid === null) return done({ kind: 'error', error: 'SY_ERR_BAD_TOKEN' });
    const here = this.sessions.get(sid);
    if (here !== undefined && here.state !== SessionState.Closed) return done(host.attachable(here));
    const ended = this.endedSession(sid, last);
    if (ended !== null) return done({ kind: 'ended', ended });
    if (!host.clustered) return done({ kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' });
    host.directory.locate([sid], (node) => {
      if (node === null) return done({ kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' });
      // a token naming the holder, as if the client had been given it
      if (node !== host.nodeId) return done({ kind: 'remote', home: node, sid, token: signToken(host.options.secret, sid, node) });
      const s = this.sessions.get(sid);
      done(s !== undefined && s.state !== SessionState.Closed ? host.attachable(s) : { kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' });
    });
  }

  /** The session a key the client chose names, wherever it is (Port.lookup) */
  lookup(key: string, done: (t: Target) => void, waitMs?: number): void {
    const host = this.host;
    const sids = this.chosenSids(key);
    for (const sid of sids) {
      const here = this.sessions.get(sid);
      if (here !== undefined && here.state !== SessionState.Closed) return done(host.attachable(here));
    }
    for (const sid of sids) {
      const ended = this.endedSession(sid, 0);
      if (ended !== null) return done({ kind: 'ended', ended });
    }
    if (!host.clustered) return done({ kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' });
    host.directory.locate(
      sids,
      (node, sid) => {
        const s = this.sessions.get(sid);
        if (s !== undefined && s.state !== SessionState.Closed) return done(host.attachable(s));
        if (node === null || node === host.nodeId) return done({ kind: 'error', error: 'SY_ERR_UNKNOWN_SESSION' });
        done({ kind: 'remote', home: node, sid, token: signToken(host.options.secret, sid, node) });
      },
      waitMs,
    );
  }

  /**
   * The sid of the session a client names by a key of its own choosing (a session id in its
   * URLs): a keyed hash of the key under the signing secret. Every node makes the same sid of the
   * same key (so the sid's worker can tell two nodes' claims apart), and the sid, which apps see
   * and may show to other clients, gives nobody the key: it is no credential.
   */
  chosenSid(key: string, secret = this.host.options.secret): string {
    return 'sj:' + createHmac('sha256', secret).update(key).digest('base64url').slice(0, 22);
  }

  /** The sids `key` may have: under the signing secret, then under the previous ones (a session made before a rotation) */
  private chosenSids(key: string): string[] {
    return this.secrets.map((secret) => this.chosenSid(key, secret));
  }

  /**
   * Remembers how session `s` ended; `unread`: its outbox, kept for a late resume or poll (a
   * session that ended without a connection), else null
   */
  bury(s: Session, code: number, reason: string, unread: Outbox | null): void {
    const t: Tombstone = { code, reason, at: Date.now(), outbox: unread, tokens: s.tokens };
    this.forgetTombstone(s.sid); // (kept in age order: a sid that ends again goes to the end)
    this.tombstones.set(s.sid, t);
    this.tombBytes += tombBytes(t);
  }

  private forgetTombstone(sid: string): void {
    const t = this.tombstones.get(sid);
    if (t === undefined) return;
    this.tombstones.delete(sid);
    this.tombBytes -= tombBytes(t);
  }

  /** Forgets the tombstones older than `keepMs`. @returns what the rest are counted as holding */
  sweep(now: number, keepMs: number): number {
    for (const [sid, t] of this.tombstones) {
      if (now - t.at <= keepMs) break; // insertion order = age order
      this.forgetTombstone(sid);
    }
    return this.tombBytes;
  }

  /**
   * Over the node's budget: the unread entries of ended sessions go, oldest first (a late poll then
   * learns only how its session ended), until `held` fits `budget`. @returns what is held then
   */
  freeUnread(held: number, budget: number): number {
    for (const t of this.tombstones.values()) {
      if (held <= budget) break;
      if (t.outbox === null) continue;
      const freed = heldBytes(t.outbox);
      held -= freed;
      this.tombBytes -= freed;
      t.outbox = null;
    }
    return held;
  }
}
