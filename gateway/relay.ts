/**
 * Any node answers any client: a connection (or poll, or POST) that lands on node B for a session
 * held by node A is relayed over the bus. The session — outbox, rooms, worker — stays on A.
 *
 * - On B, a *shadow* `Session` (never in the session table) stands in for the session: the
 *   transport attaches its connection to it as usual, frames from A are pushed into the shadow's
 *   outbox (with A's seqs) and written by the transport, client frames are forwarded to A.
 * - On A, a `RemoteConnection` stands in for B's connection: it implements `Connection` by
 *   publishing `r-out` to B.
 * Order holds because each direction is one publisher → one subscriber on the bus.
 */
import type { Gateway } from './gateway.ts';
import { Session, SessionState, type Connection } from './session.ts';
import { errors, type ErrorCode } from './errors.ts';
import { subjects } from '../cluster/bus.ts';
import type { RelayEnvelope } from '../cluster/envelope.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import { encodeClose, validateClientFrame, type ClientFrame, type Format, type Frame } from '../transports/frames.ts';

type Out = Extract<RelayEnvelope, { t: 'r-out' }>;

export class Relay {
  private nextCid = 1;
  /** B side: our connections to sessions held elsewhere */
  private readonly shadows = new Map<number, Session>();
  /** B side: POSTs waiting for the holder's answer */
  private readonly sends = new Map<number, { done: (error: ErrorCode | null) => void; deadline: number }>();
  /** A side: connections on other nodes to our sessions, by `${node}/${cid}` */
  private readonly remotes = new Map<string, RemoteConnection>();

  constructor(readonly gw: Gateway) {}

  get shadowCount(): number {
    return this.shadows.size;
  }

  /** requests relayed from this node to others, and from others to this one, since start */
  relayedOut = 0;
  relayedIn = 0;

  // ---- B side ------------------------------------------------------------------------------

  /**
   * Attaches `conn` (a local connection) to session `sid` held by node `home`. Returns the shadow
   * session the transport treats as its session.
   */
  open(sid: string, token: string, home: string, format: Format, meta: SessionMeta, transport: TransportName, conn: Connection, last: number, poll: boolean): Session {
    const cid = this.nextCid++;
    this.relayedOut++;
    const s = new Session(sid, format, meta, '', transport, this.gw.options.outboxMaxFrames, this.gw);
    s.relay = { home, cid, token, deadline: Date.now() + this.gw.options.relayTimeoutMs + (poll ? this.gw.options.pollTimeoutMs : 0) };
    s.conn = conn;
    s.outbox.reset(last);
    s.sent = last;
    this.shadows.set(cid, s);
    this.toNode(home, { t: 'r-attach', sid, token, last, from: this.gw.nodeId, cid, transport, poll });
    return s;
  }

  /** A client frame on a shadow's connection: to the holder */
  forward(s: Session, f: ClientFrame): void {
    this.toNode(s.relay!.home, { t: 'r-in', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid, frames: [f] });
  }

  /** The shadow's connection went away */
  detached(s: Session): void {
    if (!this.shadows.delete(s.relay!.cid)) return;
    this.gw.shadowGone(s);
    s.state = SessionState.Closed;
    this.toNode(s.relay!.home, { t: 'r-detach', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid });
  }

  /** The shadow must end (the client broke the protocol here, or read too slowly): so must the session */
  closed(s: Session, code: number, reason: string): void {
    const conn = s.conn;
    s.conn = null;
    this.gw.shadowGone(s);
    if (this.shadows.delete(s.relay!.cid)) this.toNode(s.relay!.home, { t: 'r-detach', sid: s.sid, from: this.gw.nodeId, cid: s.relay!.cid, code, reason });
    conn?.end(s, encodeClose(s.format, code, reason), code, reason);
  }

  /** An upstream POST for a session held by `home`; `done` gets null, or the error to answer */
  send(sid: string, token: string, home: string, frames: ClientFrame[], done: (error: ErrorCode | null) => void): void {
    const cid = this.nextCid++;
    this.relayedOut++;
    this.sends.set(cid, { done, deadline: Date.now() + this.gw.options.relayTimeoutMs });
    this.toNode(home, { t: 'r-send', sid, token, from: this.gw.nodeId, cid, frames });
  }

  private onOut(e: Out): void {
    const s = this.shadows.get(e.cid);
    if (s === undefined || s.conn === null) return;
    const conn = s.conn;
    s.relay!.deadline = 0; // the holder answered: no timeout any more
    if (e.error !== undefined) {
      // refused without ending the session (a second poll): the request fails, nothing else
      this.shadows.delete(e.cid);
      this.gw.shadowGone(s);
      s.state = SessionState.Closed;
      s.conn = null;
      conn.fail(e.error as ErrorCode);
      return;
    }
    if (e.open !== undefined) {
      s.state = SessionState.Open;
      conn.sendOpen(s, e.open);
    } else if (s.state === SessionState.Opening) {
      s.state = SessionState.Open;
    }
    if (e.frames !== undefined && e.frames.length > 0) {
      const box = s.outbox;
      if (e.first! > box.last + 1) box.reset(e.first! - 1); // the holder skipped ahead (a lossy resume)
      let i = box.last + 1 - e.first!; // frames we already hold are not pushed twice
      for (; i < e.frames.length; i++) box.push(e.frames[i]!);
      conn.flush(s);
    }
    if (e.ping === true) conn.ping(s);
    if (e.restart === true) {
      this.shadows.delete(e.cid);
      this.gw.shadowGone(s);
      s.state = SessionState.Closed;
      s.conn = null;
      conn.restart();
      return;
    }
    if (e.end !== undefined) {
      this.shadows.delete(e.cid);
      this.gw.shadowGone(s);
      s.state = SessionState.Closed;
      s.conn = null;
      conn.end(s, e.end.close, e.end.code, e.end.reason);
    } else if (e.done === true) {
      // the poll is answered (frames were flushed into it above, or there were none)
      this.shadows.delete(e.cid);
      this.gw.shadowGone(s);
      s.state = SessionState.Closed;
      if (s.conn === conn) conn.drop();
    }
  }

  /** Ends relays whose holder never answered: the session is lost with its node */
  sweep(now: number): void {
    for (const s of this.shadows.values()) {
      const d = s.relay!.deadline;
      if (d !== 0 && now > d) {
        this.closed(s, errors.SY_ERR_UNKNOWN_SESSION.ws, 'SY_ERR_UNKNOWN_SESSION');
        s.state = SessionState.Closed;
      }
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
        return p.done((e.error as ErrorCode | undefined) ?? null);
      }
      case 'r-attach':
        return this.onAttach(e);
      case 'r-in': {
        const rc = this.remotes.get(e.from + '/' + e.cid);
        const s = rc?.session;
        if (s == null) return;
        for (const f of e.frames) {
          const v = validateClientFrame(f);
          if (v !== null) this.gw.handleFrame(s, v);
        }
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
        if (e.code !== undefined) this.gw.closeSession(s, e.code, e.reason ?? '', true);
        else this.gw.detach(s, rc);
        return;
      }
      case 'r-send': {
        this.relayedIn++;
        const found = this.gw.lookup(e.sid, e.token);
        const reply = (error?: string) => this.toNode(e.from, error === undefined ? { t: 'r-done', cid: e.cid } : { t: 'r-done', cid: e.cid, error });
        if (!('session' in found)) return reply('error' in found ? found.error : 'SY_ERR_UNKNOWN_SESSION');
        for (const f of e.frames) {
          const v = validateClientFrame(f);
          if (v !== null) this.gw.handleFrame(found.session, v);
        }
        return reply();
      }
    }
  }

  private onAttach(e: Extract<RelayEnvelope, { t: 'r-attach' }>): void {
    this.relayedIn++;
    const found = this.gw.lookup(e.sid, e.token);
    const out = (m: Omit<Out, 't' | 'cid'>) => this.toNode(e.from, { t: 'r-out', cid: e.cid, ...m });
    if (!('session' in found)) {
      const ended = this.gw.endedSession(e.sid, e.last);
      if (ended !== null) return out({ first: ended.first, frames: ended.frames, end: { close: ended.close, code: ended.code, reason: ended.reason } });
      const code: ErrorCode = 'error' in found ? found.error : 'SY_ERR_UNKNOWN_SESSION';
      return out({ end: { close: encodeClose('json', errors[code].ws, code), code: errors[code].ws, reason: code } });
    }
    const s = found.session;
    if (e.poll && s.conn instanceof RemoteConnection && s.conn.poll && s.conn.session !== null) return out({ error: 'SY_ERR_POLL_CONFLICT' });
    // a draining node gives the session away instead of relaying to it
    if (this.gw.isDraining) return this.gw.beginHandOver(s, e.from, e.cid);
    const rc = new RemoteConnection(this, e.from, e.cid, e.transport, e.poll);
    rc.session = s;
    this.remotes.set(e.from + '/' + e.cid, rc);
    out({}); // attached
    this.gw.attach(s, rc, e.last, !e.poll);
    if (e.poll && rc.session !== null) rc.hold(this.gw.options.pollTimeoutMs);
  }

  /** Publishes to another gateway node */
  post(node: string, m: RelayEnvelope): void {
    this.toNode(node, m);
  }

  /** (B side) The shadow of connection `cid`, if its connection is still there */
  shadowOf(cid: number): Session | null {
    const s = this.shadows.get(cid);
    return s === undefined || s.conn === null ? null : s;
  }

  /** (B side) The shadow of connection `cid`, removed from the relay: a hand-over replaces it */
  take(cid: number): Session | null {
    const s = this.shadows.get(cid);
    if (s === undefined || s.conn === null) return null;
    this.shadows.delete(cid);
    return s;
  }

  forget(rc: RemoteConnection): void {
    this.remotes.delete(rc.key);
  }

  private toNode(node: string, m: RelayEnvelope): void {
    this.gw.bus.publish(subjects.node(node), m);
  }
}

/** On the holder: a connection that lives on another node. */
class RemoteConnection implements Connection {
  session: Session | null = null;
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  readonly key: string;

  constructor(
    private readonly relay: Relay,
    readonly node: string,
    readonly cid: number,
    readonly transport: TransportName,
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

  sendOpen(_s: Session, open: Frame): void {
    this.out({ open });
  }

  flush(s: Session): void {
    if (s.sent >= s.outbox.last) return;
    if (this.poll) {
      // like a local poll: frames of one tick go out in one answer
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.answer());
      }
      return;
    }
    const first = s.sent + 1;
    const frames = s.outbox.since(s.sent);
    s.sent = s.outbox.last;
    this.out({ first, frames });
  }

  /** a poll's one answer: whatever is pending (maybe nothing), then this connection is done */
  private answer(): void {
    this.stopTimer();
    const s = this.session;
    if (s === null) return;
    this.session = null;
    this.relay.forget(this);
    const first = s.sent + 1;
    const frames = s.outbox.since(s.sent);
    s.sent = s.outbox.last;
    this.out({ first, frames, done: true });
    this.relay.gw.detach(s, this);
  }

  ping(): void {
    if (!this.poll) this.out({ ping: true });
  }

  end(s: Session, close: Frame, code: number, reason: string): void {
    this.stopTimer();
    const frames = s.outbox.since(s.sent);
    this.out({ first: s.sent + 1, frames, end: { close, code, reason } });
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
    if (this.poll) this.out({ done: true });
    else this.out({ end: { close: encodeClose('json', 1000, 'replaced'), code: 1000, reason: 'replaced by a newer connection' } });
  }
}
