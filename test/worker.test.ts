import { describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../cluster/memory-bus.ts';
import { Worker } from '../cluster/worker.ts';
import { subjects } from '../cluster/bus.ts';
import type { InboundEnvelope, NodeEnvelope } from '../cluster/envelope.ts';
import type { App } from '../cluster/app.ts';

const meta = { ip: '127.0.0.1', origin: '', userAgent: 't', query: {}, auth: '', dialect: 'native' };

function setup(app: App) {
  const bus = new MemoryBus();
  const worker = new Worker({ bus, app, partitionCount: 1 });
  const out: NodeEnvelope[] = [];
  bus.subscribe(subjects.node('n1'), (e) => out.push(e as NodeEnvelope));
  const inbound = (e: InboundEnvelope) => bus.publish(subjects.partition(0), e);
  return { bus, worker, out, inbound };
}

describe('Worker', () => {
  it('waits for an async open, holding events in order, then accepts', async () => {
    const seen: unknown[] = [];
    let release!: () => void;
    const { out, inbound } = setup({
      open: () => new Promise<void>((r) => (release = r)),
      event: (_s, e, args) => void seen.push([e, ...args]),
    });
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'websocket', meta });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 2, event: 'a', args: [1] });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 3, event: 'b', args: [2] });
    expect(seen).toEqual([]);
    expect(out).toEqual([]);
    release();
    await vi.waitFor(() =>
      expect(seen).toEqual([
        ['a', 1],
        ['b', 2],
      ]),
    );
    expect(out[0]).toEqual({ t: 'accept', sid: 's1', n: 1 });
  });

  it('rejects a session whose open throws, with the message as the reason', () => {
    const { out, inbound, worker } = setup({
      open() {
        throw new Error('no entry');
      },
      event() {},
    });
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'sse', meta });
    expect(out).toEqual([{ t: 'disconnect', sid: 's1', code: 4403, reason: 'no entry', n: 1 }]);
    expect(worker.sessionCount).toBe(0);
  });

  it('drops duplicate deliveries by (sid, n), so a retry reaches the app once', () => {
    const seen: unknown[] = [];
    const { inbound } = setup({ event: (_s, e, args) => void seen.push(args[0]) });
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'websocket', meta });
    const e2: InboundEnvelope = { t: 'event', sid: 's1', node: 'n1', n: 2, event: 'x', args: [2] };
    inbound(e2);
    inbound(e2);
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'websocket', meta });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 3, event: 'x', args: [3] });
    expect(seen).toEqual([2, 3]);
  });

  it("serializes a session's events behind an async handler; a rejected handler replies with an error", async () => {
    const order: string[] = [];
    const { out, inbound } = setup({
      async event(_s, e, _args, reply) {
        order.push('start ' + e);
        await new Promise((r) => setTimeout(r, 5));
        order.push('end ' + e);
        if (e === 'bad') throw new Error('nope');
        reply?.('ok ' + e);
      },
    });
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'websocket', meta });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 2, event: 'one', args: [], ack: 1 });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 3, event: 'bad', args: [], ack: 2 });
    inbound({ t: 'event', sid: 's1', node: 'n1', n: 4, event: 'two', args: [], ack: 3 });
    await vi.waitFor(() => expect(order).toHaveLength(6));
    expect(order).toEqual(['start one', 'end one', 'start bad', 'end bad', 'start two', 'end two']);
    expect(out.slice(1)).toEqual([
      // each output carries the n of the event that caused it: that acknowledges the event
      { t: 'reply', sid: 's1', ack: 1, args: ['ok one'], n: 2 },
      { t: 'reply', sid: 's1', ack: 2, error: 'nope', n: 3 },
      { t: 'reply', sid: 's1', ack: 3, args: ['ok two'], n: 4 },
    ]);
  });

  it('calls close once and forgets the session', () => {
    const closed: unknown[] = [];
    const { inbound, worker } = setup({ event() {}, close: (s, r) => void closed.push([s.sid, r]) });
    inbound({ t: 'open', sid: 's1', node: 'n1', n: 1, transport: 'websocket', meta });
    inbound({ t: 'close', sid: 's1', node: 'n1', n: 2, code: 1000, reason: 'bye' });
    inbound({ t: 'close', sid: 's1', node: 'n1', n: 2, code: 1000, reason: 'bye' });
    expect(closed).toEqual([['s1', { code: 1000, reason: 'bye' }]]);
    expect(worker.sessionCount).toBe(0);
  });
});
