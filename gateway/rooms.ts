/**
 * Rooms on one gateway node: local members, and the bus subscription to `sy.room.<room>` that
 * exists only while the node has a local member. A broadcast is one bus message per node; here it
 * becomes one shared outbox entry for every local member, which each codec encodes once.
 */
import { subjects, type Bus, type Subscription } from '../cluster/bus.ts';
import type { RoomEnvelope } from '../cluster/envelope.ts';
import { Entry } from '../transports/seam/entry.ts';
import { warnOnce } from '../lib/log.ts';
import type { Session } from './session.ts';

interface Room {
  members: Set<Session>;
  sub: Subscription;
}

export class Rooms {
  private readonly rooms = new Map<string, Room>();

  constructor(
    private readonly bus: Bus,
    /** a member that was handed to another node: the broadcast is forwarded there */
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

  /** Delivers a broadcast to one session; `entry`: the one shared by every local member, when there is one */
  deliver(s: Session, e: RoomEnvelope, entry: Entry | null): void {
    if (e.except?.includes(s.sid)) return;
    const x = s.extIfAny;
    if (x !== null) {
      if (x.movedTo !== null) return this.forward(s, e);
      // a session being handed to this node: held back, once each (see Handover.adopt)
      if (x.buffer !== null) {
        if (e.id !== undefined) {
          if (x.bufferIds!.has(e.id)) return;
          x.bufferIds!.add(e.id);
        }
        x.buffer.push(e);
        return;
      }
      // being handed away: the new node drops from its buffer what we delivered here
      if (x.handing !== null && e.id !== undefined) x.handing.ids.push(e.id);
    }
    const one = entry ?? Entry.event(e.event, e.args);
    // batched: a member's writes of several broadcasts go out together (see Gateway.wake)
    if (one !== null) s.push(one, true);
  }

  /**
   * Delivers held-back broadcasts in publish order: each worker's in the order of its counter
   * (the two paths may have mixed them), in the slots they arrived in.
   */
  release(s: Session): void {
    const held = s.ext.buffer;
    s.ext.buffer = null;
    s.ext.bufferIds = null;
    if (held === null) return;
    const byWorker = new Map<string, RoomEnvelope[]>();
    for (const e of held) {
      const w = publisherOf(e);
      (byWorker.get(w) ?? byWorker.set(w, []).get(w)!).push(e);
    }
    for (const list of byWorker.values()) list.sort((x, y) => counterOf(x) - counterOf(y));
    const next = new Map<string, number>();
    for (const e of held) {
      const w = publisherOf(e);
      const i = next.get(w) ?? 0;
      next.set(w, i + 1);
      this.deliver(s, byWorker.get(w)![i]!, null);
    }
  }

  private onBroadcast(e: RoomEnvelope): void {
    const room = this.rooms.get(e.room);
    if (room === undefined) return;
    const entry = Entry.event(e.event, e.args, undefined, undefined, true);
    if (entry === null) return warnOnce(`broadcast ${JSON.stringify(e.event)} not sent: its args cannot be encoded (BigInt, or nested too deep)`);
    for (const s of room.members) this.deliver(s, e, entry);
  }
}

/** broadcast ids are `<worker>.<counter>` (Worker.broadcast) */
function publisherOf(e: RoomEnvelope): string {
  return e.id === undefined ? '' : e.id.slice(0, e.id.lastIndexOf('.'));
}

function counterOf(e: RoomEnvelope): number {
  return e.id === undefined ? 0 : Number(e.id.slice(e.id.lastIndexOf('.') + 1));
}
