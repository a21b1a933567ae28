import { afterAll, describe, expect, it, vi } from 'vitest';
import { EventSource } from 'eventsource';
import { closeAll, http, send, startNode, WsClient, type Frame } from './helpers.ts';

afterAll(closeAll);

describe('rooms across transports', () => {
  it('one room with a WebSocket, an SSE and a long-polling member: each gets every said', async () => {
    const node = await startNode();
    // WebSocket member
    const ws = await WsClient.open(`${node.ws}/rt/ws`);
    expect((await ws.request('join', 'mixed')).args).toEqual([true]);

    // SSE member
    const es = new EventSource(`${node.url}/rt/sse`);
    const sseFrames: Frame[] = [];
    es.onmessage = (m) => sseFrames.push(JSON.parse(m.data));
    const sseOpen = await vi.waitFor(() => sseFrames.find((f) => f.type === 'open') ?? Promise.reject(new Error('no open')));
    await send(node.url, sseOpen.sid, sseOpen.token, [{ type: 'event', event: 'join', args: ['mixed'], ack: 1 }]);
    await vi.waitFor(() => expect(sseFrames.some((f) => f.type === 'reply' && f.ack === 1)).toBe(true));

    // long-polling member
    const pollOpen = (await http(`${node.url}/rt/poll`)).body[0];
    const pq = `sid=${pollOpen.sid}&token=${encodeURIComponent(pollOpen.token)}`;
    await send(node.url, pollOpen.sid, pollOpen.token, [{ type: 'event', event: 'join', args: ['mixed'], ack: 1 }]);
    const polled: Frame[] = [];
    let last = 0;
    const pollOnce = async () => {
      const r = await http(`${node.url}/rt/poll?${pq}&last=${last}`);
      for (const f of r.body) {
        polled.push(f);
        if (f.seq) last = f.seq;
      }
    };
    await pollOnce(); // the join reply

    // each member says something
    ws.emit('say', 'mixed', 'from ws');
    await send(node.url, sseOpen.sid, sseOpen.token, [{ type: 'event', event: 'say', args: ['mixed', 'from sse'] }]);
    await send(node.url, pollOpen.sid, pollOpen.token, [{ type: 'event', event: 'say', args: ['mixed', 'from poll'] }]);

    const expected = [
      ['mixed', 'from ws', ws.open.sid, { client: 'native', transport: 'websocket' }],
      ['mixed', 'from sse', sseOpen.sid, { client: 'native', transport: 'sse' }],
      ['mixed', 'from poll', pollOpen.sid, { client: 'native', transport: 'polling' }],
    ];
    await vi.waitFor(() => expect(ws.events('said').map((f) => f.args)).toEqual(expected));
    await vi.waitFor(() => expect(sseFrames.filter((f) => f.event === 'said').map((f) => f.args)).toEqual(expected));
    await vi.waitFor(async () => {
      if (polled.filter((f) => f.event === 'said').length < 3) await pollOnce();
      expect(polled.filter((f) => f.event === 'said').map((f) => f.args)).toEqual(expected);
    });
    es.close();
    ws.sock.close();
  });

  it('leave stops delivery, and a node drops the room when its last member goes', async () => {
    const node = await startNode();
    const a = await WsClient.open(`${node.ws}/rt/ws`);
    const b = await WsClient.open(`${node.ws}/rt/ws`);
    await a.request('join', 'r');
    await b.request('join', 'r');
    expect(node.gateway.health().rooms).toBe(1);
    await b.request('leave', 'r');
    a.emit('say', 'r', 'only a hears this');
    await a.next((f) => f.event === 'said');
    await b.request('echo', 'sync'); // b has seen everything sent before this reply
    expect(b.events('said')).toEqual([]);
    a.send({ type: 'close' });
    await a.waitClosed();
    await vi.waitFor(() => expect(node.gateway.health().rooms).toBe(0));
    b.sock.close();
  });
});
