/** GET /metrics after a known workload: the counts match what happened. */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { closeAll, http, startNode, WsClient } from './helpers.ts';

afterAll(closeAll);

/** Prometheus text format → { 'name{labels}': value } */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a metric line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('/metrics', () => {
  it('counts sessions by transport and dialect, opens, closes by code, refusals by code, messages in and out, rooms', async () => {
    const n = await startNode({ maxSessions: 2 });
    // a long-polling session: between polls it holds no connection, and does not count against maxSessions
    const poll = await http(`${n.url}/rt/poll`);
    expect(poll.body[0].type).toBe('open');
    const a = await WsClient.open(`${n.ws}/rt/ws`);
    const b = await WsClient.open(`${n.ws}/rt/ws`);
    // refused: the node holds maxSessions connected sessions
    const refused = await WsClient.open(`${n.ws}/rt/ws`);
    expect((await refused.waitClosed()).code).toBe(1013);
    // 5 requests (5 events in, 5 replies out), a join (1 in, 1 out), a broadcast to both members (1 in, 2 out)
    for (let i = 0; i < 5; i++) await a.request('echo', i);
    await a.request('join', 'room');
    await b.request('join', 'room');
    b.emit('say', 'room', 'hi');
    await a.next((f) => f.event === 'said');
    await b.next((f) => f.event === 'said');
    // a malformed frame ends b with SY_ERR_MALFORMED_FRAME; a closes itself (1000)
    b.send('not json');
    await b.waitClosed();
    a.send({ type: 'close' });
    await a.waitClosed();
    await vi.waitFor(() => expect(n.gateway.sessions.size).toBe(1));

    const res = await fetch(`${n.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parse(await res.text());
    // the poll was answered: no request held for it now
    expect(m.get('switchyard_sessions{transport="polling",dialect="native",attached="false"}')).toBe(1);
    expect(m.get('switchyard_sessions{transport="websocket",dialect="native",attached="true"}')).toBeUndefined();
    expect(m.get('switchyard_sessions_opened_total{transport="websocket",dialect="native"}')).toBe(2);
    expect(m.get('switchyard_sessions_opened_total{transport="polling",dialect="native"}')).toBe(1);
    expect(m.get('switchyard_sessions_closed_total{code="SY_ERR_MALFORMED_FRAME"}')).toBe(1);
    expect(m.get('switchyard_sessions_closed_total{code="1000"}')).toBe(1);
    expect(m.get('switchyard_admission_refusals_total{code="SY_ERR_TOO_MANY_SESSIONS"}')).toBe(1);
    // in: 5 echoes + 2 joins + 1 say; out: 5 + 2 replies, 2 said
    expect(m.get('switchyard_messages_in_total')).toBe(8);
    expect(m.get('switchyard_messages_out_total')).toBe(9);
    expect(m.get('switchyard_rooms')).toBe(0);
    expect(m.get('switchyard_outbox_bytes')).toBe(0);
  });

  it('is off with metrics: false', async () => {
    const n = await startNode({ metrics: false });
    expect((await http(`${n.url}/metrics`)).status).toBe(404);
  });
});
