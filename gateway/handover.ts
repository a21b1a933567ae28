/**
 * Hand-over of sessions from a draining gateway node (A) to the node its clients come back to (B).
 *
 * 1. B relays the client's reconnect to A (`r-attach`); A, draining, hands over instead of
 *    relaying. For a session in rooms, A first has B subscribe to the rooms (`r-prepare`; B
 *    buffers what comes and answers `r-ready` once its subscriptions are in force), recording the
 *    broadcasts it delivers meanwhile.
 * 2. A sends the state (`r-handover`): outbox, counters, unacknowledged envelopes, rooms, and the
 *    ids of those broadcasts. B installs the session with a token naming B and tells the worker
 *    (`rehome`).
 * 3. Worker output that still reaches A is forwarded (`r-fwd`), ending with the worker's
 *    `rehomed`; B holds output that comes directly until then. A also forwards broadcasts for a
 *    grace period (one may reach B before its subscription and A only later), then says `r-bye`;
 *    B releases the broadcasts it held back in each publisher's order, each once.
 */
import type { NodeEnvelope, RelayEnvelope, SessionState as HandedState } from '../cluster/envelope.ts';
import { SessionState, type Session } from './session.ts';
import { Entry } from '../transports/seam/entry.ts';
import { TokenGens } from './token.ts';
import type { ResolvedOptions } from './options.ts';
import type { Relay } from './relay.ts';
import type { Rooms } from './rooms.ts';
import type { Delivery } from './delivery.ts';
import type { WorkerOutput } from './worker-output.ts';
import type { Bus } from '../cluster/bus.ts';
import type { SessionMeta, TransportName } from '../cluster/types.ts';
import type { ClientFrame, Connection, PortSession } from '../transports/seam/port.ts';

/** What hand-overs need of their node (the Gateway) */
export interface HandoverHost {
  readonly nodeId: string;
  readonly options: ResolvedOptions;
  readonly bus: Bus;
  readonly sessions: Map<string, Session>;
  readonly relay: Relay;
  readonly rooms: Rooms;
  readonly delivery: Delivery;
  readonly output: Pick<WorkerOutput, 'apply'>;
  newSession(sid: string, meta: SessionMeta, transport: TransportName): Session;
  recount(s: Session): void;
  attach(ps: PortSession, conn: Connection, last: number, sendOpen: boolean): boolean;
  deliver(ps: PortSession, f: ClientFrame): void;
  forget(s: Session): void;
}

/** how long a draining node forwards broadcasts for a session it handed over */
export const HANDOVER_GRACE_MS = 1000;

export class Handover {
  /** (A) sessions handed over, and to which node: output still coming here is forwarded */
  readonly moved = new Map<string, string>();
  /** sessions in the middle of a hand-over, for the sweep's timeouts */
  private readonly pending = new Set<Session>();

  constructor(private readonly gw: HandoverHost) {}

  /**
   * (A) Node `to` has the session's client on its connection `cid`. A session in rooms first has
   * `to` subscribe to them (so no broadcast falls between the two nodes); then, or at once, its
   * state goes over.
   */
  begin(s: Session, to: string, cid: number): void {
    if (s.rooms === null || s.rooms.size === 0) return this.give(s, to, cid);
    s.ext.handing = { to, cid, ids: [], deadline: Date.now() + this.gw.options.relayTimeoutMs };
    this.pending.add(s);
    this.gw.relay.post(to, { t: 'r-prepare', cid, rooms: [...s.rooms] });
  }

  /** (A) Worker output for a session no longer here: to the node that has it */
  forward(w: NodeEnvelope): boolean {
    const to = this.moved.get(w.sid);
    if (to === undefined) return false;
    this.gw.relay.post(to, { t: 'r-fwd', sid: w.sid, e: w });
    return true;
  }

  onEnvelope(e: RelayEnvelope): void {
    const gw = this.gw;
    switch (e.t) {
      case 'r-prepare':
        return void this.prepare(e.cid, e.rooms);
      case 'r-ready': {
        const s = gw.sessions.get(e.sid);
        const h = s?.extIfAny?.handing;
        if (s !== undefined && h != null && h.cid === e.cid && h.to === e.from) this.give(s, e.from, e.cid);
        return;
      }
      case 'r-handover':
        return this.adopt(e.cid, e.state);
      case 'r-fwd': {
        const s = gw.sessions.get(e.sid);
        if (s === undefined) return;
        if (e.e.t === 'broadcast') return gw.rooms.deliver(s, e.e, null);
        if (e.e.t === 'rehomed') return this.release(s);
        return gw.delivery.receive(s, e.e, gw.output.apply);
      }
      case 'r-bye': {
        const s = gw.sessions.get(e.sid);
        if (s !== undefined) gw.rooms.release(s);
        return;
      }
    }
  }

  /** (A) Gives session `s` to node `to`, whose connection `cid` waits for it */
  private give(s: Session, to: string, cid: number): void {
    const gw = this.gw;
    const box = s.outbox;
    const x = s.ext;
    gw.relay.post(to, {
      t: 'r-handover',
      cid,
      state: {
        sid: s.sid,
        meta: s.meta,
        transport: s.transport,
        first: box.first,
        entries: box.since(box.first - 1).map((e) => e.toWire()),
        inSeq: s.inSeq,
        clientSeq: s.clientSeq,
        ...(s.clientAhead !== null ? { clientAhead: [...s.clientAhead] } : {}),
        acked: x.acked,
        unacked: x.unacked ?? [],
        rooms: s.rooms === null ? [] : [...s.rooms],
        open: s.state === SessionState.Open,
        lastOut: x.lastOut,
        delivered: x.handing?.ids ?? [],
        tokens: s.tokens?.toWire(Date.now()),
      },
    });
    // not ours any more: worker output that still comes here is forwarded, and so are broadcasts
    // for a moment: one that reached the new node before it subscribed may reach us only now.
    // Then we leave the rooms and say so.
    x.handing = null;
    x.movedTo = to;
    const t = setTimeout(() => {
      gw.rooms.leaveAll(s);
      gw.relay.post(to, { t: 'r-bye', sid: s.sid });
    }, HANDOVER_GRACE_MS);
    t.unref();
    this.pending.delete(s);
    const conn = s.conn;
    s.conn = null;
    conn?.drop();
    gw.forget(s);
    this.moved.set(s.sid, to);
  }

  /** (B) Subscribes the waiting connection's shadow to the rooms, then tells the old node */
  private async prepare(cid: number, rooms: string[]): Promise<void> {
    const gw = this.gw;
    const shadow = gw.relay.shadowOf(cid);
    if (shadow === null) return;
    // the holder is alive and hands over (after our r-ready, or its own timeout): wait for it
    shadow.relay!.deadline = Date.now() + 2 * gw.options.relayTimeoutMs;
    shadow.ext.buffer = [];
    for (const room of rooms) gw.rooms.join(shadow, room);
    await gw.bus.flush(); // our subscriptions are in force at the server from here on
    gw.relay.post(shadow.relay!.home, { t: 'r-ready', sid: shadow.sid, from: gw.nodeId, cid });
  }

  /** (B) Installs a session handed over by a draining node, for the waiting connection `cid` */
  private adopt(cid: number, st: HandedState): void {
    const gw = this.gw;
    const shadow = gw.relay.take(cid);
    if (shadow === null) return; // the connection went away meanwhile; the session is lost with the old node
    // what the client said since it came here (held back: the old node keeps no connection for it)
    const early = gw.relay.takeEarly(cid);
    const sid = st.sid;
    // a new token names this node (openFrame signs it): the client's next request comes here directly.
    // The transport is the one the worker knows (the old node's): when the client came back over
    // another one, attaching its connection below tells the worker, after the rehome, in order
    const s = gw.newSession(sid, st.meta, st.transport);
    s.state = st.open ? SessionState.Open : SessionState.Opening;
    s.outbox.reset(st.first - 1);
    for (const e of st.entries) s.outbox.push(Entry.from(e));
    s.inSeq = st.inSeq;
    s.clientSeq = st.clientSeq;
    if (st.clientAhead !== undefined && st.clientAhead.length > 0) s.clientAhead = new Set(st.clientAhead);
    // the tokens the client holds stay good here (the open below gives it a newer one)
    if (st.tokens !== undefined) s.tokens = TokenGens.fromWire(st.tokens, Date.now());
    const x = s.ext;
    x.acked = st.acked;
    x.lastOut = st.lastOut;
    if (st.unacked.length > 0) {
      x.unacked = st.unacked.map((e) => ({ ...e, node: gw.nodeId }));
      x.unackedSince = Date.now();
      gw.delivery.adopted(s);
    }
    x.held = [];
    x.heldUntil = Date.now() + gw.options.relayTimeoutMs;
    gw.sessions.set(sid, s);
    gw.recount(s);
    // the rooms: broadcasts the old node did not deliver (it got them after it handed over) follow
    // what it did; per publisher the order is the one NATS delivered to both nodes
    gw.rooms.leaveAll(shadow);
    for (const room of st.rooms) gw.rooms.join(s, room);
    // hold broadcasts back until the old node stops forwarding; what it delivered already is out
    const delivered = new Set(st.delivered);
    x.buffer = (shadow.ext.buffer ?? []).filter((e) => e.id === undefined || !delivered.has(e.id));
    x.bufferIds = delivered;
    for (const e of x.buffer) if (e.id !== undefined) delivered.add(e.id);
    x.bufferUntil = Date.now() + HANDOVER_GRACE_MS + gw.options.relayTimeoutMs;
    shadow.ext.buffer = null;
    this.pending.add(s);
    // the worker sends to us from now on; what it sent before reaches us through the old node
    gw.delivery.toWorker(s, { t: 'rehome', sid, node: gw.nodeId, n: ++s.inSeq });
    const conn = shadow.conn!;
    shadow.conn = null;
    conn.session = s;
    // `open` tells the client the new token (a poll answer carries it first, too)
    gw.attach(s, conn, shadow.sent, true);
    // then what the client said meanwhile, after the rehome (and a transport change), in order
    for (const f of early) gw.deliver(s, f);
  }

  /** (B) The old node forwarded everything it got: what came directly may be applied now */
  private release(s: Session): void {
    const x = s.ext;
    const q = x.held;
    x.held = null;
    if (q !== null) for (const w of q) this.gw.delivery.receive(s, w, this.gw.output.apply);
  }

  /** Timeouts: a new node that never said ready, an old node that never forwarded or said bye */
  sweep(now: number): void {
    for (const s of this.pending) {
      const x = s.ext;
      // the new node never said it is ready: hand over anyway (a broadcast may fall between)
      if (x.handing !== null && now > x.handing.deadline) this.give(s, x.handing.to, x.handing.cid);
      if (x.held !== null && now > x.heldUntil) this.release(s);
      if (x.buffer !== null && now > x.bufferUntil) this.gw.rooms.release(s);
      if ((x.handing === null && x.held === null && x.buffer === null) || s.state === SessionState.Closed) this.pending.delete(s);
    }
  }
}
