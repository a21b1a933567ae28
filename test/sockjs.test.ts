/**
 * The SockJS dialect with the real sockjs-client 1.6 in Node (websocket, xhr-streaming,
 * eventsource, xhr-polling), and raw HTTP for the protocol's rules the client hides.
 */
import { afterEach, describe, expect, it } from 'vitest';
import SockJS from 'sockjs-client';
import { io, type Socket } from 'socket.io-client';
import { closeAll, http, startNode, until, WsClient } from './helpers.ts';
import type { App } from '../cluster/app.ts';

const sockets: Socket[] = [];
const clients: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.disconnect();
  await closeAll();
});

type Frame = Record<string, any>;

/** A sockjs-client whose messages (native frames' JSON text) are parsed */
async function connect(
  url: string,
  transport: string,
): Promise<{ s: InstanceType<typeof SockJS>; frames: Frame[]; request(event: string, ...args: unknown[]): Promise<Frame> }> {
  const s = new SockJS(url, null, { transports: [transport] });
  clients.push(s);
  const frames: Frame[] = [];
  s.onmessage = (m: { data: string }) => void frames.push(JSON.parse(m.data));
  await new Promise<void>((resolve, reject) => {
    s.onopen = () => resolve();
    s.onclose = (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`));
  });
  let ack = 0;
  return {
    s,
    frames,
    async request(event, ...args) {
      const id = ++ack;
      s.send(JSON.stringify({ type: 'event', event, args, ack: id }));
      return until(() => frames.find((f) => f.type === 'reply' && f.ack === id));
    },
  };
}

const TRANSPORTS = ['websocket', 'xhr-streaming', 'eventsource', 'xhr-polling'];

describe('sockjs-client on one node', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: echo with an ack, events, and a room shared with a native and a Socket.IO client`, async () => {
      const node = await startNode();
      const c = await connect(`${node.url}/sockjs`, transport);
      expect((c.s as unknown as { transport: string }).transport).toBe(transport);
      expect((await c.request('echo', 'héllo', { a: [1] })).args).toEqual(['héllo', { a: [1] }]);
      c.s.send(JSON.stringify({ type: 'event', event: 'echo', args: ['no ack'] }));
      await until(() => c.frames.find((f) => f.type === 'event' && f.event === 'echo'));
      expect((await c.request('join', 'sj')).args).toEqual([true]);
      const native = await WsClient.open(`${node.ws}/rt/ws`);
      await native.request('join', 'sj');
      const sio = io(node.url, { transports: ['websocket'] });
      sockets.push(sio);
      const heard: string[] = [];
      sio.on('said', (_r: string, text: string) => heard.push(text));
      await sio.emitWithAck('join', 'sj');
      await c.request('say', 'sj', 'from sockjs');
      await native.request('say', 'sj', 'from native');
      await sio.emitWithAck('say', 'sj', 'from socket.io');
      const said = () => c.frames.filter((f) => f.event === 'said').map((f) => f.args[1]);
      await until(() => (said().length === 3 ? true : undefined));
      expect(said()).toEqual(['from sockjs', 'from native', 'from socket.io']);
      await until(() => (heard.length === 3 ? true : undefined));
      await native.next((f) => f.event === 'said' && f.args[1] === 'from socket.io');
    });
  }
});

describe('the SockJS protocol, raw', () => {
  it('the greeting and /info', async () => {
    const node = await startNode();
    const g = await fetch(`${node.url}/sockjs`);
    expect(await g.text()).toBe('Welcome to SockJS!\n');
    expect(g.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    const info = await http(`${node.url}/sockjs/info`, { headers: { origin: 'http://example.test' } });
    expect(Object.keys(info.body).sort()).toEqual(['cookie_needed', 'entropy', 'origins', 'websocket']);
    expect(info.body).toMatchObject({ websocket: true, cookie_needed: false, origins: ['*:*'] });
    expect(info.headers.get('access-control-allow-origin')).toBe('http://example.test');
  });

  it('xhr: o, then messages in a[…]; xhr_send errors; a second receiver gets c[2010]; a closed session its close', async () => {
    const node = await startNode();
    const base = `${node.url}/sockjs/000/abc123`;
    const post = async (path: string, body?: string) => {
      const r = await fetch(`${base}/${path}`, { method: 'POST', body });
      return { status: r.status, text: await r.text() };
    };
    expect(await post('xhr')).toEqual({ status: 200, text: 'o\n' });
    expect(await post('xhr_send', '')).toMatchObject({ status: 500, text: 'Payload expected.' });
    expect(await post('xhr_send', '[x')).toMatchObject({ status: 500, text: 'Broken JSON encoding.' });
    expect((await fetch(`${node.url}/sockjs/000/nosuch/xhr_send`, { method: 'POST', body: '["x"]' })).status).toBe(404);
    expect((await post('xhr_send', JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: [1], ack: 7 })]))).status).toBe(204);
    const answer = await post('xhr');
    expect(answer.text.startsWith('a[')).toBe(true);
    expect(JSON.parse(JSON.parse(answer.text.slice(1))[0])).toMatchObject({ type: 'reply', ack: 7, args: [1] });
    const first = post('xhr');
    await until(() => (node.gateway.sessions.get(node.gateway.chosenSid('sj:abc123'))?.conn ? true : undefined));
    expect(await post('xhr')).toEqual({ status: 200, text: 'c[2010,"Another connection still open"]\n' });
    expect((await post('xhr_send', JSON.stringify([JSON.stringify({ type: 'close' })]))).status).toBe(204);
    expect((await first).text).toMatch(/^c\[1000,/);
    // a closed session keeps saying so, with its own close
    expect(await post('xhr')).toEqual({ status: 200, text: 'c[1000,"client closed"]\n' });
  });

  it('a session that timed out answers c[3000,"Go away!"] (the errors table\'s SockJS close), not 4510', async () => {
    const node = await startNode({ resumeWindowMs: 200 });
    const base = `${node.url}/sockjs/000/expire1`;
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    // no receiver: the session ends once the resume window is over
    await until(() => (node.gateway.sessions.has(node.gateway.chosenSid('sj:expire1')) ? undefined : true));
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('c[3000,"Go away!"]\n');
    // every receiver gets the same close, a stream too
    expect(await (await fetch(`${base}/xhr_streaming`, { method: 'POST' })).text()).toBe('h'.repeat(2048) + '\nc[3000,"Go away!"]\n');
  });

  it("an app's own close code and reason reach the client as they are", async () => {
    const app: App = {
      open(session) {
        setImmediate(() => session.disconnect(4001, 'SY_ERR_SESSION_TIMEOUT'));
      },
      event() {},
    };
    const node = await startNode({ app });
    const base = `${node.url}/sockjs/000/appclose1`;
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    await until(() => (node.gateway.sessions.has(node.gateway.chosenSid('sj:appclose1')) ? undefined : true));
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('c[4001,"SY_ERR_SESSION_TIMEOUT"]\n');
  });

  it('a poll while a stream is the receiver (and a stream while a poll is) gets c[2010]; the first stays', async () => {
    const node = await startNode();
    const base = `${node.url}/sockjs/000/mixed1`;
    const stream = await fetch(`${base}/xhr_streaming`, { method: 'POST' });
    const reader = stream.body!.getReader();
    let text = '';
    const read = async (until: string) => {
      while (!text.includes(until)) text += Buffer.from((await reader.read()).value!).toString();
    };
    await read('o\n');
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('c[2010,"Another connection still open"]\n');
    expect(await (await fetch(`${base}/jsonp?c=cb`)).text()).toBe('/**/cb("c[2010,\\"Another connection still open\\"]");\r\n');
    await fetch(`${base}/xhr_send`, { method: 'POST', body: JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['still here'] })]) });
    await read('still here');
    await reader.cancel();
    // the stream is gone: a poll is the receiver now, and a stream gets c[2010]
    await until(() => (node.gateway.sessions.get(node.gateway.chosenSid('sj:mixed1'))?.conn ? undefined : true));
    const held = fetch(`${base}/xhr`, { method: 'POST' }).then((r) => r.text());
    await until(() => (node.gateway.sessions.get(node.gateway.chosenSid('sj:mixed1'))?.conn ? true : undefined));
    expect(await (await fetch(`${base}/eventsource`)).text()).toBe('\r\ndata: c[2010,"Another connection still open"]\r\n\r\n');
    await fetch(`${base}/xhr_send`, { method: 'POST', body: JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['to the poll'] })]) });
    expect(await held).toContain('to the poll');
  });

  it("o goes out when the session is made, before the app's open is done (xhr, jsonp, xhr_streaming, eventsource, websocket); what open emitted follows", async () => {
    let pending = 0;
    const app: App = {
      async open(session) {
        pending++;
        await new Promise((r) => setTimeout(r, 1000));
        session.emit('opened', 1);
        pending--;
      },
      event() {},
    };
    const node = await startNode({ app });
    const base = (id: string) => `${node.url}/sockjs/000/${id}`;
    const t0 = Date.now();
    // xhr: the first poll is answered o at once; the next one gets what open emitted
    expect(await (await fetch(`${base('slow1')}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    expect(pending).toBe(1);
    expect(Date.now() - t0).toBeLessThan(900);
    expect(await (await fetch(`${base('slow1')}/xhr`, { method: 'POST' })).text()).toMatch(/^a\[.*opened/);
    expect(await (await fetch(`${base('slow2')}/jsonp?c=cb`)).text()).toBe('/**/cb("o");\r\n');
    expect(pending).toBe(1);
    expect(await (await fetch(`${base('slow2')}/jsonp?c=cb`)).text()).toMatch(/^\/\*\*\/cb\("a\[.*opened/);
    // streams: o, then (a second later) the messages, on the same response
    for (const [kind, method, o] of [
      ['xhr_streaming', 'POST', 'h'.repeat(2048) + '\no\n'],
      ['eventsource', 'GET', '\r\ndata: o\r\n\r\n'],
    ] as const) {
      const t1 = Date.now();
      const res = await fetch(`${base('slow-' + kind)}/${kind}`, { method });
      const reader = res.body!.getReader();
      let text = '';
      while (text.length < o.length) text += Buffer.from((await reader.read()).value!).toString();
      expect(text).toBe(o);
      expect(pending).toBe(1);
      expect(Date.now() - t1).toBeLessThan(900);
      while (!text.includes('opened')) text += Buffer.from((await reader.read()).value!).toString();
      await reader.cancel();
    }
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${node.ws}/sockjs/000/slow3/websocket`);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    await until(() => got[0]);
    expect(got[0]).toBe('o');
    expect(pending).toBe(1);
    await until(() => (got.some((m) => m.includes('opened')) ? true : undefined));
    ws.close();
  });

  it('a session the app refuses: o, then its close', async () => {
    const app: App = {
      open() {
        throw new Error('not you');
      },
      event() {},
    };
    const node = await startNode({ app });
    const base = `${node.url}/sockjs/000/refused1`;
    // (in one process the worker refuses at once: the close may come in the same answer)
    let all = await (await fetch(`${base}/xhr`, { method: 'POST' })).text();
    expect(all.startsWith('o\n')).toBe(true);
    if (all === 'o\n') all += await (await fetch(`${base}/xhr`, { method: 'POST' })).text();
    expect(all).toBe('o\nc[4403,"not you"]\n');
    // jsonp: one frame an answer
    expect(await (await fetch(`${node.url}/sockjs/000/refused2/jsonp?c=cb`)).text()).toBe('/**/cb("o");\r\n');
    expect(await (await fetch(`${node.url}/sockjs/000/refused2/jsonp?c=cb`)).text()).toBe('/**/cb("c[4403,\\"not you\\"]");\r\n');
  });

  it('bad session URLs are 404', async () => {
    const node = await startNode();
    for (const path of ['/sockjs//abc/xhr', '/sockjs/000//xhr', '/sockjs/a.b/abc/xhr', '/sockjs/000/a.b/xhr']) {
      expect((await fetch(`${node.url}${path}`, { method: 'POST' })).status, path).toBe(404);
    }
  });

  it('xhr_streaming: a 2 KiB h prelude, then o and messages, one per line', async () => {
    const node = await startNode();
    const res = await fetch(`${node.url}/sockjs/000/stream1/xhr_streaming`, { method: 'POST' });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('o\n')) text += Buffer.from((await reader.read()).value!).toString();
    expect(text.startsWith('h'.repeat(2048) + '\n')).toBe(true);
    await fetch(`${node.url}/sockjs/000/stream1/xhr_send`, { method: 'POST', body: JSON.stringify(['plain text']) });
    await reader.cancel();
  });
});

describe('the browser-only transports and the raw WebSocket, raw', () => {
  it('jsonp: the callback gets o, then messages; jsonp_send takes a d= form or a raw body; a bad callback is refused', async () => {
    const node = await startNode();
    const base = `${node.url}/sockjs/000/jp1`;
    expect(await (await fetch(`${base}/jsonp`)).text()).toBe('"callback" parameter required');
    expect(await (await fetch(`${base}/jsonp?c=bad%3Cx`)).text()).toBe('invalid "callback" parameter');
    expect(await (await fetch(`${base}/jsonp?c=cb`)).text()).toBe('/**/cb("o");\r\n');
    const frame = JSON.stringify({ type: 'event', event: 'echo', args: ['jp'], ack: 3 });
    const form = await fetch(`${base}/jsonp_send`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'd=' + encodeURIComponent(JSON.stringify([frame])),
    });
    expect({ status: form.status, text: await form.text() }).toEqual({ status: 200, text: 'ok' });
    const text = await (await fetch(`${base}/jsonp?c=cb`)).text();
    expect(text.startsWith('/**/cb("a[')).toBe(true);
    const inner = JSON.parse(text.slice('/**/cb('.length, -';\r\n'.length - 1)) as string;
    expect(JSON.parse(JSON.parse(inner.slice(1))[0])).toMatchObject({ type: 'reply', ack: 3, args: ['jp'] });
    const rawBody = await fetch(`${base}/jsonp_send`, { method: 'POST', body: JSON.stringify(['plain']) });
    expect(await rawBody.text()).toBe('ok');
  });

  it('jsonp answers one frame each and loses none: o, then what the app emitted on open, then its close', async () => {
    const app: App = {
      open(session) {
        session.emit('hello', 1);
        session.emit('hello', 2);
      },
      event(session, event) {
        if (event !== 'bye') return;
        session.emit('going', 1);
        session.disconnect(4001, 'bye');
      },
    };
    const node = await startNode({ app });
    const base = `${node.url}/sockjs/000/jpopen1`;
    const frame = async () => {
      const text = await (await fetch(`${base}/jsonp?c=cb`)).text();
      expect(text).toMatch(/^\/\*\*\/cb\(".*"\);\r\n$/s);
      return JSON.parse(text.slice('/**/cb('.length, -');\r\n'.length)) as string;
    };
    expect(await frame()).toBe('o');
    const messages = await frame();
    expect(messages.startsWith('a[')).toBe(true);
    expect((JSON.parse(messages.slice(1)) as string[]).map((m) => JSON.parse(m))).toMatchObject([
      { event: 'hello', args: [1] },
      { event: 'hello', args: [2] },
    ]);
    // messages and a close of the same moment: the messages, then the close on the next poll
    const held = frame();
    await until(() => (node.gateway.sessions.get(node.gateway.chosenSid('sj:jpopen1'))?.conn ? true : undefined));
    expect(
      (await fetch(`${base}/jsonp_send`, { method: 'POST', body: JSON.stringify([JSON.stringify({ type: 'event', event: 'bye', args: [] })]) })).status,
    ).toBe(200);
    const last = await held;
    expect(last).toMatch(/^a\[/);
    expect(JSON.parse(JSON.parse(last.slice(1))[0])).toMatchObject({ type: 'event', event: 'going', args: [1] });
    expect(await frame()).toBe('c[4001,"bye"]');
  });

  it('htmlfile: a page over 1 KiB calling the callback with each frame', async () => {
    const node = await startNode();
    const res = await fetch(`${node.url}/sockjs/000/hf1/htmlfile?c=parentCb`);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('p("o")')) text += Buffer.from((await reader.read()).value!).toString();
    expect(text.indexOf('<script>\np("o")')).toBeGreaterThan(1024);
    expect(text).toContain('parent.parentCb');
    await reader.cancel();
  });

  it('iframe.html with an ETag (304 when unchanged), and the client library it loads', async () => {
    const node = await startNode();
    const page = await fetch(`${node.url}/sockjs/iframe.html`);
    expect(page.status).toBe(200);
    const etag = page.headers.get('etag')!;
    expect(await page.text()).toContain('/sockjs/sockjs.min.js');
    expect((await fetch(`${node.url}/sockjs/iframe-1.6.1.html`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const lib = await fetch(`${node.url}/sockjs/sockjs.min.js`);
    expect(lib.status).toBe(200);
    expect((await lib.text()).length).toBeGreaterThan(10_000);
  });

  it('the raw WebSocket: one message is one native frame, no SockJS framing', async () => {
    const node = await startNode();
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${node.ws}/sockjs/websocket`);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'event', event: 'echo', args: ['raw'], ack: 1 }));
    await until(() => (got.length > 0 ? true : undefined));
    expect(JSON.parse(got[0]!)).toMatchObject({ type: 'reply', ack: 1, args: ['raw'] });
    ws.close();
  });

  it('frames escape what would break a page or an old engine: <, U+2028, U+2029', async () => {
    const node = await startNode();
    const base = `${node.url}/sockjs/000/esc1`;
    await fetch(`${base}/xhr`, { method: 'POST' });
    await fetch(`${base}/xhr_send`, {
      method: 'POST',
      body: JSON.stringify([JSON.stringify({ type: 'event', event: 'echo', args: ['</script>\u2028\u2029'], ack: 1 })]),
    });
    const text = await (await fetch(`${base}/xhr`, { method: 'POST' })).text();
    expect(text).not.toMatch(/<|\u2028|\u2029/);
    expect(text).toContain('\\u003c/script>');
    const msg = JSON.parse(JSON.parse(text.slice(1))[0]);
    expect(msg.args).toEqual(['</script>\u2028\u2029']);
  });

  it('the sid an app sees (and shows other clients) is no credential: it names the session but opens nothing of it', async () => {
    const node = await startNode();
    const victim = await connect(`${node.url}/sockjs`, 'xhr-polling');
    const id = (victim.s as any)._transport.url.split('/').at(-1) as string; // the client's own session id
    await victim.request('join', 'lobby');
    const other = await WsClient.open(`${node.ws}/rt/ws`);
    await other.request('join', 'lobby');
    victim.s.send(JSON.stringify({ type: 'event', event: 'say', args: ['lobby', 'hi'] }));
    const said = await other.next((f) => f.event === 'said');
    const sid = said.args[2] as string;
    // the sid others see names the victim's session, and says nothing of its id
    expect((await victim.request('whoami')).args[0].sid).toBe(sid);
    expect(sid).not.toContain(id);
    expect(sid).toMatch(/^sj:[A-Za-z0-9_-]{22}$/);
    // with it, and with what follows its prefix, nothing reaches the victim's session: a send is
    // 404 (no such session), a receive makes a new session of its own, a close ends only that one
    for (const guess of [sid, sid.slice(3)]) {
      const p = encodeURIComponent(guess);
      const post = await fetch(`${node.url}/sockjs/000/${p}/xhr_send`, {
        method: 'POST',
        body: JSON.stringify([JSON.stringify({ type: 'event', event: 'say', args: ['lobby', 'forged'] })]),
      });
      expect(post.status).toBe(404);
      const recv = await fetch(`${node.url}/sockjs/000/${p}/xhr`, { method: 'POST' });
      expect(await recv.text()).toBe('o\n');
      expect(node.gateway.chosenSid('sj:' + guess)).not.toBe(sid);
      await fetch(`${node.url}/sockjs/000/${p}/xhr_send`, { method: 'POST', body: JSON.stringify([JSON.stringify({ type: 'close' })]) });
    }
    // the victim's session is whole: it still talks, and nobody spoke in its name
    expect((await victim.request('echo', 'mine')).args).toEqual(['mine']);
    expect(other.frames.filter((f) => f.event === 'said' && f.args[1] === 'forged')).toEqual([]);
    expect(node.gateway.sessions.get(sid)?.meta.dialect).toBe('sockjs');
  });

  it("a SockJS id cannot name another dialect's session", async () => {
    const node = await startNode();
    const native = await WsClient.open(`${node.ws}/rt/ws`);
    const sid = native.open.sid as string;
    // even a sid that happened to start like a SockJS one is out of reach: SockJS sids have a ':'
    const r = await fetch(`${node.url}/sockjs/000/${sid}/xhr_send`, { method: 'POST', body: '["x"]' });
    expect(r.status).toBe(404);
  });
});

describe('heartbeats', () => {
  /** reads a streaming response until `done` says its text so far is enough */
  async function readUntil(res: Response, done: (text: string) => boolean): Promise<string> {
    const reader = res.body!.getReader();
    let text = '';
    while (!done(text)) text += Buffer.from((await reader.read()).value!).toString();
    await reader.cancel();
    return text;
  }
  const count = (text: string, what: string) => text.split(what).length - 1;

  for (const [kind, method, o, h] of [
    ['xhr_streaming', 'POST', 'o\n', 'h\n'],
    ['eventsource', 'GET', 'data: o\r\n\r\n', 'data: h\r\n\r\n'],
    ['htmlfile?c=cb', 'GET', '<script>\np("o");\n</script>\r\n', '<script>\np("h");\n</script>\r\n'],
  ] as const) {
    it(`${kind.split('?')[0]}: ${JSON.stringify(h)} every pingMs`, async () => {
      const node = await startNode({ pingMs: 150 });
      const t0 = Date.now();
      const res = await fetch(`${node.url}/sockjs/000/hb-${kind.split('?')[0]}/${kind}`, { method });
      // three heartbeats after the open: 150 ms apart, so not before 300 ms
      const text = await readUntil(res, (t) => t.includes(o) && count(t.slice(t.indexOf(o)), h) >= 3);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(text.slice(text.indexOf(o) + o.length)).toBe(h.repeat(3));
    });
  }

  it('websocket: h every pingMs', async () => {
    const node = await startNode({ pingMs: 150 });
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${node.ws}/sockjs/000/hb-ws/websocket`);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    const t0 = Date.now();
    await until(() => (got.length >= 4 ? true : undefined));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(got.slice(0, 4)).toEqual(['o', 'h', 'h', 'h']);
    ws.close();
  });

  it('xhr and jsonp: a poll with nothing to say is answered h at the poll timeout', async () => {
    const node = await startNode({ pollTimeoutMs: 300 });
    const base = `${node.url}/sockjs/000/hb-poll`;
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('o\n');
    let t0 = Date.now();
    expect(await (await fetch(`${base}/xhr`, { method: 'POST' })).text()).toBe('h\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const jsonp = `${node.url}/sockjs/000/hb-jsonp/jsonp?c=cb`;
    expect(await (await fetch(jsonp)).text()).toBe('/**/cb("o");\r\n');
    t0 = Date.now();
    expect(await (await fetch(jsonp)).text()).toBe('/**/cb("h");\r\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });
});
