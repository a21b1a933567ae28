/**
 * Delivery (gateway/delivery.ts) on its own, over a real MemoryBus: a stand-in worker on the
 * partition's subject numbers outputs and answers `resend`; a stand-in gateway hands what comes on
 * the node's subject to Delivery.receive. Sessions are minimal objects: Delivery only uses `sid`,
 * `subjectIn`, `transport`, `meta` and `ext`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { subjects } from '../cluster/bus.ts';
import type { InboundEnvelope, NodeEnvelope, OutputEnvelope } from '../cluster/envelope.ts';
import { Delivery, MAX_EARLY_OUTPUTS, MAX_GAP_ASKS, MAX_UNACKED, type LostCode } from '../gateway/delivery.ts';
import { resolveOptions } from '../gateway/options.ts';
import type { Session } from '../gateway/session.ts';

const NODE = 'g1';
const ACK_TIMEOUT_MS = 20;

const timers: ReturnType<typeof setInterval>[] = [];
afterEach(() => {
  for (const t of timers.splice(0)) clearInterval(t);
});

/** the fields of gateway/session.ts's SessionExt that Delivery uses */
interface Ext {
  unacked: InboundEnvelope[] | null;
  acked: number;
  unackedSince: number;
  lastOut: number;
  early: Map<number, NodeEnvelope> | null;
}

function setup() {
  const bus = new MemoryBus();
  const ext: Ext = { unacked: null, acked: 0, unackedSince: 0, lastOut: 0, early: null };
  const s = {
    sid: 'sid-1',
    subjectIn: subjects.partition(7),
    transport: 'websocket',
    meta: { ip: '127.0.0.1', origin: '', userAgent: 'test', query: {}, auth: '' },
    ext,
  } as unknown as Session;
  const lost: Array<{ sid: string; code: LostCode; at: number }> = [];
  const delivery = new Delivery(bus, NODE, resolveOptions({ atLeastOnce: true, ackTimeoutMs: ACK_TIMEOUT_MS }), (x, code) => {
    lost.push({ sid: x.sid, code, at: Date.now() });
  });

  // the gateway side: worker output for its sessions goes through Delivery, in `o` order
  const applied: NodeEnvelope[] = [];
  bus.subscribe(subjects.node(NODE), (e) => delivery.receive(s, e as NodeEnvelope, (_s, w) => applied.push(w)));
  const emitted = () => applied.filter((w) => w.t === 'emit').map((w) => (w as { args: number[] }).args[0]);

  // the worker side: numbers outputs, keeps them, answers `resend` (when `answering`) with what it kept
  const inbound: InboundEnvelope[] = [];
  const resends: Array<{ from: number; lo: number | undefined; at: number }> = [];
  const kept = new Map<number, OutputEnvelope>();
  const worker = {
    answering: true,
    out: 0,
    /** sends output number `o` = out + 1; `lose`: it never arrives (a NATS server died with it) */
    emit(o: { lose?: boolean } = {}): number {
      const e: OutputEnvelope = { t: 'emit', sid: s.sid, event: 'e', args: [++worker.out], o: worker.out };
      kept.set(worker.out, e);
      if (!o.lose) bus.publish(subjects.node(NODE), e);
      return worker.out;
    },
    /** the worker no longer keeps output `o` (it kept only its last ones) */
    drop(o: number): void {
      kept.delete(o);
    },
  };
  bus.subscribe(s.subjectIn, (e) => {
    const env = e as InboundEnvelope;
    inbound.push(env);
    if (env.t !== 'resend') return;
    resends.push({ from: env.from, lo: env.lo, at: Date.now() });
    if (!worker.answering) return;
    for (const [o, out] of [...kept].sort(([a], [b]) => a - b)) if (o >= env.from) bus.publish(subjects.node(NODE), out);
  });

  /** sweeps like the gateway does (it sweeps every ackTimeoutMs / 2 at most) */
  const sweepEvery = (ms: number) => timers.push(setInterval(() => delivery.sweep(Date.now()), ms));

  return { bus, s, ext, delivery, lost, applied, emitted, inbound, resends, worker, sweepEvery };
}

describe('Delivery: worker → gateway', () => {
  it('applies outputs in order, each once; outputs without `o` at once; asks for nothing', () => {
    const t = setup();
    t.worker.emit();
    t.worker.emit();
    t.worker.emit();
    // resends of outputs already applied (a duplicate event made the worker resend its kept ones)
    t.bus.publish(subjects.node(NODE), { t: 'emit', sid: t.s.sid, event: 'e', args: [2], o: 2 });
    t.bus.publish(subjects.node(NODE), { t: 'emit', sid: t.s.sid, event: 'e', args: [1], o: 1 });
    t.bus.publish(subjects.node(NODE), { t: 'ack', sid: t.s.sid, n: 1 });
    expect(t.emitted()).toEqual([1, 2, 3]);
    expect(t.applied.at(-1)).toEqual({ t: 'ack', sid: t.s.sid, n: 1 });
    expect(t.ext.lastOut).toBe(3);
    expect(t.ext.early).toBeNull();
    // nothing missing: no resend now, nor when sweeping much later
    t.delivery.sweep(Date.now() + 1_000_000);
    expect(t.resends).toEqual([]);
    expect(t.lost).toEqual([]);
  });

  it('asks for a gap (again after ackTimeoutMs), then applies it and what waited behind it, in order', async () => {
    const t = setup();
    t.worker.answering = false;
    t.worker.emit();
    t.worker.emit({ lose: true });
    t.worker.emit();
    t.worker.emit();
    // 3 and 4 wait for 2, which was asked for at once
    expect(t.emitted()).toEqual([1]);
    expect([...t.ext.early!.keys()]).toEqual([3, 4]);
    expect(t.resends).toEqual([{ from: 2, lo: 1, at: expect.any(Number) }]);
    // not filled: asked again, no sooner than ackTimeoutMs later
    t.sweepEvery(5);
    await vi.waitFor(() => expect(t.resends.length).toBeGreaterThanOrEqual(2), { timeout: 5000, interval: 5 });
    expect(t.resends[1]!.from).toBe(2);
    // (times taken as the asks reach the bus, a moment after the delivery's own clock read them: a
    // few ms of slack for a loaded machine, still far from the 5 ms sweep that would re-ask at once)
    expect(t.resends[1]!.at - t.resends[0]!.at).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 5);
    // the worker answers the next ask: the gap is filled
    t.worker.answering = true;
    await vi.waitFor(() => expect(t.emitted()).toEqual([1, 2, 3, 4]), { timeout: 5000, interval: 5 });
    expect(t.ext.lastOut).toBe(4);
    expect(t.ext.early).toBeNull();
    // nothing is asked for any more, and the session goes on
    const asked = t.resends.length;
    t.delivery.sweep(Date.now() + 1_000_000);
    expect(t.resends).toHaveLength(asked);
    t.worker.emit();
    expect(t.emitted()).toEqual([1, 2, 3, 4, 5]);
    expect(t.lost).toEqual([]);
  });

  it('a gap the worker can no longer fill ends the session with SY_ERR_OUTPUT_LOST after MAX_GAP_ASKS asks', async () => {
    const t = setup();
    t.worker.emit();
    const missing = t.worker.emit({ lose: true });
    t.worker.drop(missing); // the worker no longer has it: every resend brings only what came after
    const start = Date.now();
    t.worker.emit();
    t.worker.emit();
    t.sweepEvery(5);
    await vi.waitFor(() => expect(t.lost).toHaveLength(1), { timeout: 5000, interval: 5 });
    expect(t.lost[0]).toMatchObject({ sid: t.s.sid, code: 'SY_ERR_OUTPUT_LOST' });
    // asked for exactly MAX_GAP_ASKS times, ackTimeoutMs apart, before giving up
    expect(t.resends.map((r) => r.from)).toEqual(Array(MAX_GAP_ASKS).fill(missing));
    expect(t.lost[0]!.at - start).toBeGreaterThanOrEqual(MAX_GAP_ASKS * ACK_TIMEOUT_MS);
    expect(t.emitted()).toEqual([1]);
    // forgotten: what waited behind the gap is freed, and it is neither asked for nor given up again
    expect(t.ext.early).toBeNull();
    t.delivery.sweep(Date.now() + 1_000_000);
    expect(t.resends).toHaveLength(MAX_GAP_ASKS);
    expect(t.lost).toHaveLength(1);
  });

  it('more than MAX_EARLY_OUTPUTS outputs behind a gap end the session with SY_ERR_OUTPUT_LOST and free them', () => {
    const t = setup();
    t.worker.answering = false;
    t.worker.emit();
    t.worker.emit({ lose: true });
    for (let i = 0; i < MAX_EARLY_OUTPUTS; i++) t.worker.emit();
    expect(t.ext.early!.size).toBe(MAX_EARLY_OUTPUTS);
    // one held already, again: not one more
    t.bus.publish(subjects.node(NODE), { t: 'emit', sid: t.s.sid, event: 'e', args: [3], o: 3 });
    expect(t.ext.early!.size).toBe(MAX_EARLY_OUTPUTS);
    expect(t.lost).toEqual([]);
    // one more than the bound
    t.worker.emit();
    expect(t.lost).toEqual([{ sid: t.s.sid, code: 'SY_ERR_OUTPUT_LOST', at: expect.any(Number) }]);
    expect(t.ext.early).toBeNull();
    expect(t.emitted()).toEqual([1]);
    const asked = t.resends.length;
    t.delivery.sweep(Date.now() + 1_000_000);
    expect(t.resends).toHaveLength(asked);
    expect(t.lost).toHaveLength(1);
  });
});

describe('Delivery: client → worker', () => {
  const event = (t: ReturnType<typeof setup>, n: number): InboundEnvelope => ({ t: 'event', sid: t.s.sid, node: NODE, n, event: 'e', args: [n] });

  it('keeps envelopes until acknowledged and resends the rest after ackTimeoutMs', () => {
    const t = setup();
    for (let n = 1; n <= 3; n++) t.delivery.toWorker(t.s, event(t, n));
    expect(t.inbound.map((e) => e.n)).toEqual([1, 2, 3]);
    t.delivery.acked(t.s, 2);
    expect(t.ext.unacked!.map((e) => e.n)).toEqual([3]);
    t.delivery.sweep(t.ext.unackedSince + ACK_TIMEOUT_MS);
    expect(t.inbound.map((e) => e.n)).toEqual([1, 2, 3, 3]);
    t.delivery.acked(t.s, 3);
    expect(t.ext.unacked).toBeNull();
    expect(t.lost).toEqual([]);
  });

  it('more than MAX_UNACKED envelopes waiting for a worker end the session with SY_ERR_BACKLOG_FULL', () => {
    const t = setup();
    let n = 0;
    while (n < MAX_UNACKED) t.delivery.toWorker(t.s, event(t, ++n));
    expect(t.ext.unacked).toHaveLength(MAX_UNACKED);
    // an acknowledgement makes room for one more
    t.delivery.acked(t.s, 1);
    t.delivery.toWorker(t.s, event(t, ++n));
    expect(t.ext.unacked).toHaveLength(MAX_UNACKED);
    expect(t.lost).toEqual([]);
    expect(t.inbound).toHaveLength(MAX_UNACKED + 1);
    // one more than the bound: the session is given up, and that envelope is not sent
    t.delivery.toWorker(t.s, event(t, ++n));
    expect(t.lost).toEqual([{ sid: t.s.sid, code: 'SY_ERR_BACKLOG_FULL', at: expect.any(Number) }]);
    expect(t.inbound).toHaveLength(MAX_UNACKED + 1);
    // forgotten: nothing held, nothing resent
    expect(t.ext.unacked).toBeNull();
    t.delivery.sweep(Date.now() + 1_000_000);
    expect(t.inbound).toHaveLength(MAX_UNACKED + 1);
  });
});
