/**
 * Worker output applied to this node's sessions: emits and replies become outbox entries, accepts
 * open sessions, joins and leaves change rooms, disconnects end sessions. In a cluster, outputs
 * are applied in the worker's order, once each (Delivery.receive), and a session being handed over
 * holds what comes directly until the old node forwarded what it got first.
 */
import type { NodeEnvelope } from '../cluster/envelope.ts';
import { Entry } from '../transports/seam/entry.ts';
import type { ResolvedOptions } from './options.ts';
import type { Rooms } from './rooms.ts';
import type { Delivery } from './delivery.ts';

/** What applying worker output needs of its node (the Gateway) */
export interface OutputHost {
  readonly options: ResolvedOptions;
  readonly sessions: Map<string, Session>;
  readonly rooms: Rooms;
  readonly delivery: Delivery;
  /** (a hand-over) output for a session this node handed over goes on to its new node */
  readonly handover: { forward(w: NodeEnvelope): boolean };
  opened(s: Session): void;
  claimAnswered(s: Session, w: Extract<NodeEnvelope, { t: 'claimed' | 'taken' | 'gone' }>): void;
  closeSession(s: Session, code: number, reason: string, notifyWorker: boolean, keepUnread?: boolean): void;
}
import { SessionState, type Session } from './session.ts';
import { warnOnce } from '../lib/log.ts';
import { errors } from '../transports/seam/errors.ts';

export class WorkerOutput {
  constructor(private readonly gw: OutputHost) {}

  /** One envelope on this node's subject from a worker */
  receive(w: NodeEnvelope): void {
    const gw = this.gw;
    const s = gw.sessions.get(w.sid);
    // the answer to a claim (not numbered): only for a session still waiting for it
    if (w.t === 'claimed' || w.t === 'taken' || w.t === 'gone') {
      if (s !== undefined) gw.claimAnswered(s, w);
      return;
    }
    if (s === undefined) {
      // a session we handed over: its new node gets what still comes here, in order
      gw.handover.forward(w);
      return;
    }
    // just taken over: the old node first forwards what it got, then this comes in order
    const x = s.extIfAny;
    if (x !== null && x.held !== null) {
      x.held.push(w);
      return;
    }
    gw.delivery.receive(s, w, this.apply);
  }

  /** Applies one worker output to its session (in order: see Delivery.receive) */
  readonly apply = (s: Session, w: NodeEnvelope): void => {
    const gw = this.gw;
    const n = (w as { n?: number }).n;
    if (n !== undefined && gw.options.atLeastOnce) gw.delivery.acked(s, n);
    switch (w.t) {
      case 'emit': {
        const e = Entry.event(w.event, w.args, w.raw, w.ack);
        // the app emitted what no wire can carry (a BigInt, nesting past MAX_DEPTH): it is not sent
        if (e === null) return warnOnce(`event ${JSON.stringify(w.event)} not sent: its args cannot be encoded (BigInt, or nested too deep)`);
        s.push(e);
        return;
      }
      case 'reply': {
        let e = Entry.reply(w.ack, w.args, w.error, w.raw);
        if (e === null) {
          warnOnce('a reply could not be encoded (BigInt, or nested too deep): the client gets an error reply');
          e = Entry.reply(w.ack, undefined, 'the reply could not be encoded')!;
        }
        s.push(e);
        return;
      }
      case 'accept':
        if (s.state !== SessionState.Opening) return;
        s.state = SessionState.Open;
        gw.opened(s);
        return;
      case 'join': {
        const max = gw.options.maxRoomsPerSession;
        // a session in ever more rooms costs the node memory and subscriptions without bound
        if (max > 0 && s.rooms !== null && s.rooms.size >= max && !s.rooms.has(w.room))
          return gw.closeSession(s, errors.SY_ERR_TOO_MANY_ROOMS.ws, 'SY_ERR_TOO_MANY_ROOMS', true);
        gw.rooms.join(s, w.room);
        return;
      }
      case 'leave':
        gw.rooms.leave(s, w.room);
        return;
      case 'disconnect':
        // a rejected open never reached the app: no close for the worker then
        gw.closeSession(s, w.code, w.reason, s.state !== SessionState.Opening);
        return;
      case 'ack':
        return; // handled above
      case 'who':
        gw.delivery.reopen(s);
        return;
      case 'rehomed':
        return; // only meaningful as a forward (see Handover)
      case 'claimed':
      case 'taken':
      case 'gone':
        return; // handled in receive
    }
  };
}
