import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { Membership } from '../cluster/membership.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('Membership', () => {
  it('workers find each other at once, a goodbye removes at once, silence removes after the timeout', () => {
    vi.useFakeTimers();
    const bus = new MemoryBus();
    const seenByGateway: string[][] = [];
    const gateway = new Membership({ bus, heartbeatMs: 100, timeoutMs: 300, onChange: (w) => seenByGateway.push(w) });
    const a = new Membership({ bus, workerId: 'a', heartbeatMs: 100, timeoutMs: 300 });
    const b = new Membership({ bus, workerId: 'b', heartbeatMs: 100, timeoutMs: 300 });
    // a answered b's first heartbeat: both know both, without waiting a period
    expect(a.workers).toEqual(['a', 'b']);
    expect(b.workers).toEqual(['a', 'b']);
    expect(gateway.workers).toEqual(['a', 'b']);
    b.stop();
    expect(a.workers).toEqual(['a']);
    expect(seenByGateway.at(-1)).toEqual(['a']);
    // a worker that goes silent (its timer never runs again) is dropped after the timeout
    const c = new Membership({ bus, workerId: 'c', heartbeatMs: 100, timeoutMs: 300 });
    expect(gateway.workers).toEqual(['a', 'c']);
    (c as any).timer.unref?.();
    clearInterval((c as any).timer);
    vi.advanceTimersByTime(450);
    expect(gateway.workers).toEqual(['a']);
    expect(a.workers).toEqual(['a']);
    a.stop();
    gateway.stop();
  });

  it('a participant that was itself stopped past the timeout keeps the others and reports the stall once', () => {
    vi.useFakeTimers();
    const bus = new MemoryBus();
    const stalls: number[] = [];
    const a = new Membership({ bus, workerId: 'a', heartbeatMs: 100, timeoutMs: 300, onStall: () => stalls.push(Date.now()) });
    const b = new Membership({ bus, workerId: 'b', heartbeatMs: 100, timeoutMs: 300 });
    expect(a.workers).toEqual(['a', 'b']);
    // a process stop: no timer runs on either side for a while (b's timer would fire; stop it too
    // so that from a's side b looks silent exactly as long as a itself was)
    clearInterval((a as any).timer);
    clearInterval((b as any).timer);
    vi.setSystemTime(Date.now() + 1000);
    expect(a.checkStall(Date.now())).toBe(true);
    expect(a.checkStall(Date.now())).toBe(false); // once
    expect(stalls).toHaveLength(1);
    // b was not dropped: the silent one was a
    (a as any).tick();
    expect(a.workers).toEqual(['a', 'b']);
    a.stop();
    b.stop();
  });
});
