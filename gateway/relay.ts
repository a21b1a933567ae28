/**
 * Any node answers any client: a connection (or poll, or POST) that lands on node B for a session
 * held by node A is relayed over the bus. The session — outbox, rooms, worker — stays on A.
 *
 * - On B, a *shadow* `Session` (never in the session table) stands in for the session: the
 *   wire attaches its connection to it as usual, entries from A are pushed into the shadow's
 *   outbox (with A's seqs) and written by B's connection with B's codec; client frames are
 *   forwarded to A.
 * - On A, a `RemoteConnection` stands in for B's connection: it implements `Connection` by
 *   publishing `r-out` to B. Everything that crosses is dialect-neutral (entries, open info,
 *   close code and reason): each node encodes for its own client.
 * Order holds because each direction is one publisher → one subscriber on the bus.
 */
import { Session, SessionState, type SessionOwner } from './session.ts';
import type { ResolvedOptions } from './options.ts';
import type { OutboxLimits } from './outbox.ts';
import type { Bus } from '../cluster/bus.ts';
import { generationOf, TokenGens } from './token.ts';
import { errors, type ErrorCode } from '../transports/seam/errors.ts';
import { subjects } from '../cluster/bus.ts';
import type { RelayEnvelope } from '../cluster/envelope.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import { Entry, type WireEntry } from '../transports/seam/entry.ts';
import type { Carrier, ClientFrame, Connection, OpenInfo, Port, PortSession } from '../transports/seam/port.ts';
import { validateClientFrame } from '../transports/seam/client-frame.ts';
import { PollConnection } from '../transports/wires/poll.ts';
import { MAX_UNACKED } from './delivery.ts';

type Out = Extract<RelayEnvelope, { t: 'r-out' }>;
type Attach = Extract<RelayEnvelope, { t: 'r-attach' }>;

/** What the relay needs of its node (the Gateway): its identity, its table and the port's session moves */
export interface RelayHost extends SessionOwner, Pick<Port, 'attach' | 'detach' | 'deliver' | 'acknowledge' | 'fail' | 'transportChanged' | 'find' | 'locate'> {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly bus: Bus;
  readonly sessions: Map<string, Session>;
  readonly goneLimits: OutboxLimits;
  readonly isDraining: boolean;
  nodeDead(node: string): boolean;
  shadowGone(s: Session): void;
  beginHandOver(s: Session, to: string, cid: number): void;
  closeSession(s: Session, code: number, reason: string, notifyWorker: boolean, keepUnread?: boolean): void;
}

export class Relay {
  /**
   * numbers this node's relayed connections, from a random start: a node restarted with the same
   * id must not take what other nodes still send for its previous life's connections as its own
   */
  private nextCid = Math.floor(Math.random() * 2 ** 40);
  /** B side: our connections to sessions held elsewhere */
  private readonly shadowsByCid = new Map<number, Session>();
  /**
   * B side: client frames of connections whose holder has not answered yet. A draining holder
   * hands the session over instead of relaying (it keeps no connection for `cid` then, and would
   * drop frames sent to it): they wait here for its first answer, or go with the adopted session.
   */
  private readonly early = new Map<number, ClientFrame[]>();
  /**
   * B side: attaches not answered yet, kept to be sent again once to the node the cluster's
   * directory names when the one tried first has no such session (`moved`: that was done)
   */
  private readonly attaching = new Map<number, { m: Attach; moved: boolean }>();
  /** B side: POSTs waiting for the holder's answer (`retry`: asks the directory, when the holder has no such session) */
  private readonly sends = new Map<number, { done: (error: ErrorCode | null) => void; deadline: number; home: string; retry: (() => void) | null }>();
  /** A side: connections on other nodes to our sessions, by `${node}/${cid}` */
  private readonly remotes = new Map<string, RemoteConnection>();

  constructor(readonly gw: RelayHost) {}

  get shadowCount(): number {
    return this.shadowsByCid.size;
  }

  /** B side: the shadow sessions (their connections are pinged by this node) */
  shadows(): IterableIterator<Session> {
    return this.shadowsByCid.values();
  }

  /** requests relayed from this node to others, and from others to this one, since start */
  relayedOut = 0;
  relayedIn = 0;

  // ---- B side ------------------------------------------------------------------------------

  /**
   * Attaches `conn` (a local connection) to session `sid` held by node `home`. Returns the shadow
   * session the wire treats as its session.
   */
  open(sid: string, token: string, home: string, meta: SessionMeta, conn: Connection, last: number, poll: boolean): Session {
    const cid = this.nextCid++;
    this.relayedOut++;
    const o = this.gw.options;
    const s = new Session(sid, meta, '', conn.transport, this.gw.goneLimits, this.gw);
    // the holder answers an attach at once, a poll too (it holds the poll after saying so): a
    // deadline longer than a poll's hold would let the local poll time out first, again and again
    s.relay = { home, cid, token, deadline: Date.now() + o.relayTimeoutMs };
    s.conn = conn;
    // `last` < 0: the client has no cursor; the holder goes on after what it wrote (its entries
    // come with their own seqs)
    s.outbox.reset(Math.max(0, last));
    s.sent = Math.max(0, last);
    this.shadowsByCid.set(cid, s);
    // a session scoped to a namespace (Socket.IO) is attached only by a client of that namespace
    const ns = meta.namespace;
    const m: Attach = { t: 'r-attach', sid, token, last, from: this.gw.nodeId, cid, transport: conn.transport, poll, ...(ns !== undefined ? { ns } : {}) };
    // the node the token names left or no longer has it: the directory says where it went (once
    // the wire has the shadow: the answer may come at once); one that died has none of its
    // sessions any more: unknown at once
    if (home === '') queueMicrotask(() => this.relocate(s, m));
    else if (this.gw.nodeDead(home)) queueMicrotask(() => this.expire(s, 'SY_ERR_UNKNOWN_SESSION'));
    else {
      this.attaching.set(cid, { m, moved: false });
      this.toNode(home, m);
    }
    return s;
  }

  /**
   * (B side) Asks the cluster's directory which node holds the shadow's session, and attaches
   * there (once: a second "no such session" ends it). Found on this node (a hand-over brought it
   * here meanwhile): the connection is restarted, its client comes back and finds it here.
   */
  private relocate(s: Session, m: Attach): void {
    const r = s.relay!;
    if (!this.shadowsByCid.has(r.cid)) return;
    this.attaching.set(r.cid, { m, moved: true });
    // the directory waits up to relayTimeoutMs for the holder: the attach's own wait comes after
    r.deadline = Date.now() + 2 * this.gw.options.relayTimeoutMs;
    this.gw.locate(s.sid, (node) => {
      if (this.shadowsByCid.get(r.cid) !== s) return;
      if (node === null || this.gw.nodeDead(node)) return this.expire(s, 'SY_ERR_UNKNOWN_SESSION');
      if (node === this.gw.nodeId) {
        const conn = s.conn;
        this.shadowsByCid.delete(r.cid);
        this.gone(s);
        return conn?.restart();
      }
      r.home = node;
      r.deadline = Date.now() + this.gw.options.relayTimeoutMs;
      this.toNode(node, m);
    });
  }

  /** (B side) A shadow whose holder is gone or never answered: its connection is ended with `code` */
  private expire(s: Session, code: ErrorCode): void {
    if (!this.shadowsByCid.has(s.relay!.cid)) return;
    const conn = s.conn;
    this.detached(s);
    conn?.end(s, errors[code].ws, code);
  }

  /**
   * Node `node` died (its heartbeats stopped, it said goodbye, or it restarted). Here, connections
   * relayed to it end with SY_ERR_NODE_LOST (their clients reconnect, to a new session) and POSTs
   * waiting for it fail; connections it relayed to this node are let go of (their sessions wait
   * for their clients within the resume window, as after a drop).
   */
  nodeLost(node: string): void {
    for (const s of [...this.shadowsByCid.values()]) if (s.relay!.home === node) this.expire(s, 'SY_ERR_NODE_LOST');
    for (const [cid, p] of this.sends) {
      if (p.home !== node) continue;
      this.sends.delete(cid);
      p.done('SY_ERR_UNKNOWN_SESSION');
    }
    for (const rc of [...this.remotes.values()]) {
      if (rc.node !== node) continue;
      this.remotes.delete(rc.key);
      rc.stopTimer();
      const s = rc.session;
      rc.session = null;
      if (s !== null) this.gw.detach(s, rc);
    }
  }

  /**
   * This node was stopped past its member timeout: the holders let go of its relayed connections
   * meanwhile. Each is restarted: its client reconnects and resumes (the holder still has the session).
   */
  restartAll(): void {
    for (const s of [...this.shadowsByCid.values()]) {
      const conn = s.conn;
      this.shadowsByCid.delete(s.relay!.cid);
      this.gone(s);
      conn?.restart();
    }
  }

  /** The shadow's client acknowledged entries up to `seq`: the holder releases them (one message a turn per shadow) */
  acknowledge(s: Session, seq: number): void {
    s.outbox.release(Math.min(seq, s.sent));
    const had = this.acks.get(s);
    if (had !== undefined && had >= seq) return;
    if (this.acks.size === 0) setImmediate(this.sendAcks);
    this.acks.set(s, seq);
  }

  /** acknowledgements of this turn, per shadow */
  private readonly acks = new Map<Session, number>();

  private readonly sendAcks = (): void => {
    for (const [s, seq] of this.acks)
      if (s.relay !== null && this.shadowsByCid.has(s.relay.cid))
        this.toNode(s.relay.home, { t: 'r-ack', sid: s.sid, from: this.gw.nodeId, cid: s.relay.cid, seq });
    this.acks.clear();
  };

  /** A client frame on a shadow's connection: to the holder (held back until the holder answered: see `early`) */
  forward(s: Session, f: ClientFrame): void {
    const r = s.relay!;
    if (r.deadline !== 0) {
      let q = this.early.get(r.cid);
      if (q === undefined) this.early.set(r.cid, (q = []));
      // as many as a session may have unacknowledged: a client that sends more must wait for its open
      if (q.length >= MAX_UNACKED) return this.gw.fail(s, 'SY_ERR_BACKLOG_FULL');
      q.push(f);
      return;
    }
    this.toNode(r.home, { t: 'r-in', sid: s.sid, from: this.gw.nodeId, cid: r.cid, frames: [f] });
  }

  /** The frames held back for connection `cid`, now sent to the holder (or dropped: the session ended) */
  private releaseEarly(s: Session, send: boolean): void {
    const q = this.early.get(s.relay!.cid);
    if (q === undefined) return;
    this.early.delete(s.relay!.cid);
    if (send) this.toNode(s.relay!.home, { t: 'r-in', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid, frames: q });
  }

  /** (B side) The frames held back for connection `cid`, for the session a hand-over installs here */
  takeEarly(cid: number): ClientFrame[] {
    const q = this.early.get(cid) ?? [];
    this.early.delete(cid);
    return q;
  }

  /** The shadow's connection goes over another transport now (its carrier upgraded here): the holder's worker hears of it */
  transportChanged(s: Session): void {
    const r = s.relay!;
    if (this.shadowsByCid.has(r.cid)) this.toNode(r.home, { t: 'r-transport', sid: s.sid, from: this.gw.nodeId, cid: r.cid, transport: s.transport });
  }

  /** The shadow's connection went away */
  detached(s: Session): void {
    if (!this.shadowsByCid.delete(s.relay!.cid)) return;
    // what its client said before it went still reaches the session (the holder takes it from a connection it no longer has)
    this.releaseEarly(s, true);
    this.gone(s);
    this.toNode(s.relay!.home, { t: 'r-detach', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid });
  }

  /** The shadow must end (the client broke the protocol here, or read too slowly): so must the session */
  closed(s: Session, code: number, reason: string): void {
    const conn = s.conn;
    s.conn = null;
    this.early.delete(s.relay!.cid);
    this.gw.shadowGone(s);
    if (this.shadowsByCid.delete(s.relay!.cid))
      this.toNode(s.relay!.home, { t: 'r-detach', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid, code, reason });
    conn?.end(s, code, reason);
  }

  /**
   * An upstream POST for a session held by `home` ('': unknown, see Target); `done` gets null, or
   * the error to answer. A holder that has no such session (or is dead): the directory is asked
   * once where it went
   */
  send(sid: string, token: string, home: string, frames: ClientFrame[], done: (error: ErrorCode | null) => void, moved = false): void {
    if (this.gw.nodeDead(home)) return done('SY_ERR_UNKNOWN_SESSION');
    if (home === '') {
      if (moved) return done('SY_ERR_UNKNOWN_SESSION');
      return this.gw.locate(sid, (node) => {
        if (node === null || node === this.gw.nodeId) {
          // here after all (a hand-over brought it meanwhile), or nowhere
          const t = node === null ? null : this.gw.find(sid, token, 0);
          if (t === null || t.kind !== 'session') return done('SY_ERR_UNKNOWN_SESSION');
          for (const f of frames) this.gw.deliver(t.session, f);
          return done(null);
        }
        this.send(sid, token, node, frames, done, true);
      });
    }
    const cid = this.nextCid++;
    this.relayedOut++;
    const retry = moved ? null : () => this.send(sid, token, '', frames, done, false);
    this.sends.set(cid, { done, deadline: Date.now() + this.gw.options.relayTimeoutMs, home, retry });
    this.toNode(home, { t: 'r-send', sid, token, from: this.gw.nodeId, cid, frames });
  }

  /** The shadow is done here: no more frames go to or come from its holder for it */
  private gone(s: Session): void {
    this.early.delete(s.relay!.cid);
    this.attaching.delete(s.relay!.cid);
    this.gw.shadowGone(s);
    s.state = SessionState.Closed;
    s.conn = null;
  }

  private onOut(e: Out): void {
    const s = this.shadowsByCid.get(e.cid);
    if (s === undefined || s.conn === null) return;
    const conn = s.conn;
    if (e.gone === true) {
      // the node the token names has no such session: the directory says where it went (once)
      const a = this.attaching.get(e.cid);
      return a !== undefined && !a.moved ? this.relocate(s, a.m) : this.expire(s, 'SY_ERR_UNKNOWN_SESSION');
    }
    this.attaching.delete(e.cid);
    // the holder answered (it relays): no timeout any more, and what the client said meanwhile goes
    // to it now, first (unless the session is refused or ended)
    if (s.relay!.deadline !== 0) {
      s.relay!.deadline = 0;
      this.releaseEarly(s, e.error === undefined && e.end === undefined);
    }
    if (e.written !== undefined) conn.writtenBefore?.(e.written);
    if (e.error !== undefined) {
      // refused without ending the session (a second poll): the request fails, nothing else
      this.shadowsByCid.delete(e.cid);
      this.gone(s);
      conn.fail(e.error as ErrorCode);
      return;
    }
    if (e.open !== undefined) {
      s.state = SessionState.Open;
      // requests naming an older token than the client's are refused here as the holder would
      if (generationOf(e.open.token) > 0) s.tokens = TokenGens.relayed(s.relay!.token, e.open.token);
      conn.sendOpen(s, e.open);
    } else if (s.state === SessionState.Opening) {
      s.state = SessionState.Open;
    }
    if (e.entries !== undefined && e.entries.length > 0) {
      const box = s.outbox;
      if (e.first! > box.last + 1) box.reset(e.first! - 1); // the holder skipped ahead (a lossy resume)
      // entries we already hold are not pushed twice; the holder enforces the budget
      for (let i = box.last + 1 - e.first!; i < e.entries.length; i++) box.push(Entry.from(e.entries[i]!));
      conn.flush(s);
    }
    if (e.restart === true) {
      this.shadowsByCid.delete(e.cid);
      this.gone(s);
      conn.restart();
      return;
    }
    if (e.end !== undefined) {
      this.shadowsByCid.delete(e.cid);
      this.gone(s);
      conn.end(s, e.end.code, e.end.reason);
    } else if (e.done === true) {
      // the poll is answered (entries were flushed into it above, or there were none), or the
      // connection was replaced by a newer one
      this.shadowsByCid.delete(e.cid);
      this.gone(s);
      conn.drop();
    }
  }

  /**
   * Ends relays whose holder never answered. The local connection is told the session is unknown
   * here; the holder only hears that the connection went away: a node that was slow, not gone,
   * keeps the session for the client's next try.
   */
  sweep(now: number): void {
    // (deleting from a Map while iterating it is safe: no copy of every shadow each sweep)
    for (const s of this.shadowsByCid.values()) {
      const d = s.relay!.deadline;
      if (d !== 0 && now > d) this.expire(s, 'SY_ERR_UNKNOWN_SESSION');
    }
    for (const [cid, p] of this.sends) {
      if (now > p.deadline) {
        this.sends.delete(cid);
        p.done('SY_ERR_UNKNOWN_SESSION');
      }
    }
  }

  // ---- A side ------------------------------------------------------------------------------

  onEnvelope(e: RelayEnvelope): void {
    switch (e.t) {
      case 'r-out':
        return this.onOut(e);
      case 'r-done': {
        const p = this.sends.get(e.cid);
        if (p === undefined) return;
        this.sends.delete(e.cid);
        if (e.gone === true) return p.retry !== null ? p.retry() : p.done('SY_ERR_UNKNOWN_SESSION');
        return p.done((e.error as ErrorCode | undefined) ?? null);
      }
      case 'r-attach':
        return this.onAttach(e);
      case 'r-in': {
        const rc = this.remotes.get(e.from + '/' + e.cid);
        // frames of a connection this node let go (it drained, was replaced, a poll was answered)
        // that were on their way: still the client's, for the session if it is still here
        // (the other node may have acknowledged them to its client already)
        const s = rc !== undefined ? rc.session : this.gw.sessions.get(e.sid);
        if (s == null || (s as Session).state === SessionState.Closed) return;
        this.deliverAll(s, e.frames);
        return;
      }
      case 'r-transport': {
        const rc = this.remotes.get(e.from + '/' + e.cid);
        if (rc === undefined) return;
        rc.transport = e.transport;
        const s = rc.session;
        if (s !== null && s.conn === rc) this.gw.transportChanged(s);
        return;
      }
      case 'r-ack': {
        const s = this.remotes.get(e.from + '/' + e.cid)?.session;
        if (s != null) this.gw.acknowledge(s, e.seq);
        return;
      }
      case 'r-detach': {
        const key = e.from + '/' + e.cid;
        const rc = this.remotes.get(key);
        if (rc === undefined) return;
        this.remotes.delete(key);
        const s = rc.session;
        rc.session = null;
        rc.stopTimer();
        if (s === null) return;
        if (e.code !== undefined) this.gw.closeSession(s as Session, e.code, e.reason ?? '', true);
        else this.gw.detach(s, rc);
        return;
      }
      case 'r-send': {
        this.relayedIn++;
        const t = this.gw.find(e.sid, e.token, 0);
        const reply = (error?: string) => this.toNode(e.from, error === undefined ? { t: 'r-done', cid: e.cid } : { t: 'r-done', cid: e.cid, error });
        if (t.kind === 'remote') return this.toNode(e.from, { t: 'r-done', cid: e.cid, gone: true });
        if (t.kind !== 'session') return reply(t.kind === 'error' ? t.error : 'SY_ERR_UNKNOWN_SESSION');
        this.deliverAll(t.session, e.frames);
        return reply();
      }
    }
  }

  /** Client frames decoded by the other node (dialect-neutral), checked again here */
  private deliverAll(s: PortSession, frames: unknown[]): void {
    for (const f of frames) {
      const v = validateClientFrame(f, true);
      if (v !== null) this.gw.deliver(s, v);
    }
  }

  private onAttach(e: Extract<RelayEnvelope, { t: 'r-attach' }>): void {
    this.relayedIn++;
    const t = this.gw.find(e.sid, e.token, e.last);
    const out = (m: Omit<Out, 't' | 'cid'>) => this.toNode(e.from, { t: 'r-out', cid: e.cid, ...m });
    if (t.kind === 'ended')
      return out({ first: t.ended.first, entries: t.ended.entries.map((x) => x.toWire()), end: { code: t.ended.code, reason: t.ended.reason } });
    // not here (though the token may name this node): the asker looks it up in the directory
    if (t.kind === 'remote') return out({ gone: true });
    if (t.kind !== 'session') {
      const code: ErrorCode = t.kind === 'error' ? t.error : 'SY_ERR_UNKNOWN_SESSION';
      return out({ end: { code: errors[code].ws, reason: code } });
    }
    const s = t.session as Session;
    // the client resumes it from another namespace (a Socket.IO pid of `/` sent in a CONNECT to
    // `/admin`): no session of that namespace, as on the holding node itself
    if (e.ns !== undefined && s.meta.namespace !== e.ns) return out({ end: { code: errors.SY_ERR_UNKNOWN_SESSION.ws, reason: 'SY_ERR_UNKNOWN_SESSION' } });
    // a second poll while one is held (here or relayed): refused, the first stays (every dialect's rule but SignalR's, whose polls are tunneled instead)
    const held = s.conn;
    if (e.poll && ((held instanceof RemoteConnection && held.poll && held.session !== null) || (held instanceof PollConnection && held.active)))
      return out({ error: 'SY_ERR_POLL_CONFLICT' });
    // a receiver without a cursor (e.last < 0: SockJS, whose streams too are refused) while the session has one: the same
    if (e.last < 0 && held !== null && (held instanceof RemoteConnection ? held.session !== null : !(held instanceof PollConnection) || held.active))
      return out({ error: 'SY_ERR_POLL_CONFLICT' });
    // a draining node gives the session away instead of relaying to it
    if (this.gw.isDraining) return this.gw.beginHandOver(s, e.from, e.cid);
    const rc = new RemoteConnection(this, e.from, e.cid, e.transport, e.poll);
    rc.session = s;
    this.remotes.set(rc.key, rc);
    out(s.sent > 0 ? { written: s.sent } : {}); // attached
    // a client without a cursor (e.last < 0, SockJS): written is delivered, so it goes on after `sent`
    // (such a client was told its session is open once: a reattach is no new open)
    this.gw.attach(s, rc, e.last < 0 ? s.sent : e.last, !e.poll && e.last >= 0);
    if (e.poll && rc.session !== null) rc.hold(this.gw.options.pollTimeoutMs);
  }

  /** Publishes to another gateway node */
  post(node: string, m: RelayEnvelope): void {
    this.toNode(node, m);
  }

  /** (B side) The shadow of connection `cid`, if its connection is still there */
  shadowOf(cid: number): Session | null {
    const s = this.shadowsByCid.get(cid);
    return s === undefined || s.conn === null ? null : s;
  }

  /** (B side) The shadow of connection `cid`, removed from the relay: a hand-over replaces it */
  take(cid: number): Session | null {
    const s = this.shadowOf(cid);
    if (s !== null) this.shadowsByCid.delete(cid);
    return s;
  }

  forget(rc: RemoteConnection): void {
    this.remotes.delete(rc.key);
  }

  private toNode(node: string, m: RelayEnvelope): void {
    // ('' : a shadow still asking the directory: no node has heard of it yet)
    if (node !== '') this.gw.bus.publish(subjects.node(node), m);
  }
}

/** On the holder: a connection that lives on another node (whose own heartbeat pings it). */
class RemoteConnection implements Connection, Carrier {
  session: PortSession | null = null;
  pingRound = 0;
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  readonly key: string;
  /** its own carrier (a getter, not a field: one less per connection) */
  get carrier(): this {
    return this;
  }

  constructor(
    private readonly relay: Relay,
    readonly node: string,
    readonly cid: number,
    /** the other node's connection's (it says when its carrier upgrades: r-transport) */
    public transport: TransportName,
    /** a long-poll: answered once, with everything pending */
    readonly poll: boolean,
  ) {
    this.key = node + '/' + cid;
  }

  private out(m: Omit<Out, 't' | 'cid'>): void {
    this.relay.post(this.node, { t: 'r-out', cid: this.cid, ...m });
  }

  hold(ms: number): void {
    this.timer = setTimeout(() => this.answer(), ms);
  }

  stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  ping(): void {}

  sendOpen(_s: PortSession, open: OpenInfo): void {
    this.out({ open });
  }

  /** entries after what was sent, as they cross the bus; advances `sent` */
  private take(s: PortSession): { first: number; entries: WireEntry[] } {
    const first = s.sent + 1;
    const entries: WireEntry[] = [];
    for (let seq = first; seq <= s.outbox.last; seq++) {
      const x = s.outbox.get(seq);
      if (x !== undefined) entries.push(x.toWire());
    }
    s.sent = s.outbox.last;
    return { first, entries };
  }

  flush(s: PortSession): void {
    if (s.sent >= s.outbox.last) return;
    if (this.poll) {
      // like a local poll: entries of one tick go out in one answer
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.answer());
      }
      return;
    }
    this.out(this.take(s));
  }

  /** a poll's one answer: whatever is pending (maybe nothing), then this connection is done */
  private answer(): void {
    this.stopTimer();
    const s = this.session;
    if (s === null) return;
    this.session = null;
    this.relay.forget(this);
    this.out({ ...this.take(s), done: true });
    this.relay.gw.detach(s, this, false);
  }

  end(s: PortSession, code: number, reason: string): void {
    this.stopTimer();
    this.out({ ...this.take(s), end: { code, reason } });
    this.session = null;
    this.relay.forget(this);
  }

  restart(): void {
    this.stopTimer();
    if (this.session === null) return;
    this.session = null;
    this.relay.forget(this);
    this.out({ restart: true });
  }

  fail(code: ErrorCode): void {
    this.stopTimer();
    this.session = null;
    this.relay.forget(this);
    this.out({ error: code });
  }

  drop(): void {
    this.stopTimer();
    if (this.session === null) return;
    this.session = null;
    this.relay.forget(this);
    this.out({ done: true });
  }
}
