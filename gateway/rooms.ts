/**
 * Rooms on one gateway node: local members, and the bus subscription to `sy.room.<room>` that
 * exists only while the node has a local member. A broadcast is one bus message per node; here it
 * becomes one JSON body for every local member (frames differ only in `seq`).
 */
import { subjects, type Bus, type Subscription } from '../cluster/bus.ts';
import type { RoomEnvelope } from '../cluster/envelope.ts';
import { eventTail } from '../transports/frames.ts';
import type { Session } from './session.ts';

interface Room {
  members: Set<Session>;
  sub: Subscription;
}

export class Rooms {
  private readonly rooms = new Map<string, Room>();

  constructor(
    private readonly bus: Bus,
    /** a member that moved to another node: the broadcast is forwarded there (hand-over) */
    private readonly forward: (s: Session, e: RoomEnvelope) => void,
  ) {}

  get size(): number {
    return this.rooms.size;
  }

  join(s: Session, name: string): void {
    (s.rooms ??= new Set()).add(name);
    let room = this.rooms.get(name);
    if (room === undefined) {
      room = { members: new Set(), sub: this.bus.subscribe(subjects.room(name), (e) => this.onBroadcast(e as RoomEnvelope)) };
      this.rooms.set(name, room);
    }
    room.members.add(s);
  }

  leave(s: Session, name: string): void {
    s.rooms?.delete(name);
    const room = this.rooms.get(name);
    if (room === undefined || !room.members.delete(s)) return;
    if (room.members.size === 0) {
      room.sub.unsubscribe();
      this.rooms.delete(name);
    }
  }

  leaveAll(s: Session): void {
    if (s.rooms !== null) for (const name of [...s.rooms]) this.leave(s, name);
  }

  /** Delivers a broadcast to one session (also one forwarded from its old node) */
  deliver(s: Session, e: RoomEnvelope, tail: string | null): void {
    if (e.except !== undefined && e.except.includes(s.sid)) return;
    if (s.movedTo !== null) return this.forward(s, e);
    // a session just handed over may get a broadcast twice: directly, and forwarded
    if (s.seen !== null && e.id !== undefined) {
      if (s.seen.has(e.id)) return;
      s.seen.add(e.id);
    }
    s.pushEvent(e.event, e.args, s.format === 'json' ? (tail ?? eventTail(e.event, e.args)) : null);
  }

  private onBroadcast(e: RoomEnvelope): void {
    const room = this.rooms.get(e.room);
    if (room === undefined) return;
    const tail = eventTail(e.event, e.args);
    for (const s of room.members) this.deliver(s, e, tail);
  }
}
