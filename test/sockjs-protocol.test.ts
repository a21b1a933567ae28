/**
 * sockjs-protocol 0.3.3 (sockjs/sockjs-protocol, sockjs-protocol-0.3.3.py), class by class: our own
 * tests of what each of the suite's test classes asserts, over raw TCP (so that headers, chunk
 * boundaries and closes are seen as the suite sees them) and the `ws` WebSocket client.
 *
 * The suite runs against an `echo` service (a message comes back as it was), a `close` service (the
 * server closes each session at once with `c[3000,"Go away!"]`) and a `cookie_needed_echo` one
 * (JSESSIONID on). Here they are nodes with small apps. One difference is by design: the gateway
 * carries native frames, so what the echo sends back is a native event frame's JSON text
 * (`{"type":"event","seq":1,"event":"message","args":["x"]}`) where the suite has `"x"`; the bytes
 * around it (framing, escaping, headers, chunks) are the suite's. Where ours differs from the suite
 * on purpose (JSONP's `/**\/` prefix, a dropped receiver that resumes, HTTP/1.0), the test says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tcp, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { closeAll, startNode, until } from './helpers.ts';
import type { App } from '../cluster/app.ts';
import { resolveOptions } from '../gateway/options.ts';

/** the suite's echo service: a message comes back as event `message` with the same text */
const echoApp: App = {
  event(session, event, args, reply) {
    if (event === 'message') session.emit('message', ...args);
    else reply?.(...args);
  },
};
/** the suite's close service: every session is closed at once (after its open went out) */
const closeApp: App = {
  open(session) {
    setImmediate(() => session.disconnect(3000, 'Go away!'));
  },
  event() {},
};

let echo: number;
let close: number;
let cookie: number;
let wide: number;
let echoNode: Awaited<ReturnType<typeof startNode>>;

beforeAll(async () => {
  echoNode = await startNode({ app: echoApp });
  echo = echoNode.port;
  close = (await startNode({ app: closeApp })).port;
  cookie = (await startNode({ app: echoApp, sockjs: { jsessionid: true } })).port;
  // room for one message holding every UTF-16 code unit, escaped (JSONEncoding)
  wide = (await startNode({ app: echoApp, maxPayloadBytes: 1024 * 1024, outboxMaxBytes: 8 * 1024 * 1024 })).port;
});
afterAll(closeAll);

// ---- a raw HTTP/1.x connection -------------------------------------------------------------------

interface Head {
  http: string;
  status: number;
  headers: Record<string, string>;
}

class Raw {
  private buf = Buffer.alloc(0);
  closed = false;
  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => (this.buf = Buffer.concat([this.buf, d])));
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }

  static async open(port: number): Promise<Raw> {
    const sock = tcp(port, '127.0.0.1');
    await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    return new Raw(sock);
  }

  /** everything received so far, unread */
  get pending(): number {
    return this.buf.length;
  }

  send(method: string, path: string, o: { headers?: Record<string, string>; body?: string; http?: string } = {}): void {
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const headers: Record<string, string> = { Host: '127.0.0.1', ...o.headers };
    if (body !== undefined || method === 'POST') headers['Content-Length'] = String(body?.length ?? 0);
    let text = `${method} ${path} HTTP/${o.http ?? '1.1'}\r\n`;
    for (const k in headers) text += `${k}: ${headers[k]}\r\n`;
    this.sock.write(text + '\r\n');
    if (body !== undefined && body.length > 0) this.sock.write(body);
  }

  private async take(n: number): Promise<string> {
    await until(() => (this.buf.length >= n ? true : undefined));
    const out = this.buf.subarray(0, n).toString('utf8');
    this.buf = this.buf.subarray(n);
    return out;
  }

  private async line(): Promise<string> {
    const at = await until(() => {
      const i = this.buf.indexOf('\r\n');
      return i >= 0 ? i : undefined;
    });
    const out = (await this.take(at + 2)).slice(0, -2);
    return out;
  }

  async head(): Promise<Head> {
    const [http, status] = (await this.line()).split(' ');
    const headers: Record<string, string> = {};
    for (let l = await this.line(); l !== ''; l = await this.line()) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    return { http: http!.slice(5), status: Number(status), headers };
  }

  /** a chunk's closing CRLF still to read (uWS writes it with the next chunk) */
  private crlf = false;
  /** the next chunk of a chunked body ('' for the last one) */
  async chunk(): Promise<string> {
    if (this.crlf) expect(await this.take(2)).toBe('\r\n');
    const size = parseInt(await this.line(), 16);
    const data = await this.take(size);
    this.crlf = size > 0;
    if (size === 0) expect(await this.take(2)).toBe('\r\n');
    return data;
  }

  async read(n: number): Promise<string> {
    return this.take(n);
  }

  /** a whole body: by Content-Length, or every chunk */
  async body(h: Head): Promise<string> {
    if (h.headers['content-length'] !== undefined) return this.take(Number(h.headers['content-length']));
    if (h.headers['transfer-encoding'] !== 'chunked') return '';
    let all = '';
    for (let c = await this.chunk(); c !== ''; c = await this.chunk()) all += c;
    return all;
  }

  async waitClosed(timeout = 5000): Promise<void> {
    await until(() => (this.closed ? true : undefined), timeout);
  }

  destroy(): void {
    this.sock.destroy();
  }
}

interface Res extends Head {
  body: string;
}

/** one request on its own connection, read whole */
async function request(port: number, method: string, path: string, o: { headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  const c = await Raw.open(port);
  try {
    c.send(method, path, o);
    const h = await c.head();
    return { ...h, body: await c.body(h) };
  } finally {
    c.destroy();
  }
}
const GET = (port: number, path: string, headers?: Record<string, string>) => request(port, 'GET', path, { headers });
const POST = (port: number, path: string, body?: string, headers?: Record<string, string>) => request(port, 'POST', path, { body, headers });
const OPTIONS = (port: number, path: string, headers?: Record<string, string>) => request(port, 'OPTIONS', path, { headers });

/** a streaming request: its head now, its chunks one by one */
async function stream(port: number, method: string, path: string, headers?: Record<string, string>): Promise<{ c: Raw; h: Head }> {
  const c = await Raw.open(port);
  c.send(method, path, { headers });
  return { c, h: await c.head() };
}

let ids = 0;
const sid = () => `/sockjs/000/${process.pid}x${++ids}`;
/** whether the echo node's session of `url` has a receiver attached now */
const attached = (url: string) => echoNode.gateway.sessions.get(echoNode.gateway.chosenSid('sj:' + url.split('/')[3]!))?.conn != null;

/** an echoed message as it appears in `a[…]`: a native event frame's JSON text, as a JSON string */
const m = (seq: number, text: string) => JSON.stringify(JSON.stringify({ type: 'event', seq, event: 'message', args: [text] }));

// ---- the suite's verifications ------------------------------------------------------------------

function contentType(r: Head, expected: string): void {
  expect((r.headers['content-type'] ?? '').replace(/ /g, '')).toBe(expected);
}
function noCookie(r: Head): void {
  expect(r.headers['set-cookie']).toBeUndefined();
}
function cors(r: Head, origin?: string): void {
  expect(r.headers['access-control-allow-origin']).toBe(origin !== undefined && origin !== 'null' ? origin : '*');
  expect(r.headers['access-control-allow-credentials']).toBe('true');
}
function notCached(r: Head): void {
  expect(r.headers['cache-control']).toBe('no-store, no-cache, must-revalidate, max-age=0');
  expect(r.headers.expires).toBeUndefined();
  expect(r.headers['last-modified']).toBeUndefined();
}
function cacheable(r: Head): void {
  expect(r.headers['cache-control']).toMatch(/public/);
  expect(r.headers['cache-control']).toMatch(/max-age=[1-9][0-9]{6}/);
  expect(r.headers.expires).toBeTruthy();
}
async function verifyOptions(port: number, path: string, methods: string): Promise<void> {
  for (const origin of [undefined, 'test', 'null']) {
    const r = await OPTIONS(port, path, origin === undefined ? {} : { Origin: origin });
    expect(r.status).toBe(204);
    cacheable(r);
    expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(1_000_000);
    expect(r.headers['access-control-allow-methods']).toBe(methods);
    expect(r.body).toBe('');
    cors(r, origin);
  }
}
function verifyCookie(r: Head, value = 'dummy'): void {
  const parts = (r.headers['set-cookie'] ?? '').split(';');
  expect(parts[0]!.trim()).toBe(`JSESSIONID=${value}`);
  expect(parts[1]?.trim().toLowerCase()).toBe('path=/');
}

/** a WebSocket that records its messages and its close */
async function ws(
  port: number,
  path: string,
  headers?: Record<string, string>,
): Promise<{ s: WebSocket; got: string[]; closed: () => boolean; next(): Promise<string> }> {
  const s = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  const got: string[] = [];
  let read = 0;
  let closed = false;
  s.on('message', (d) => got.push(d.toString()));
  s.on('close', () => (closed = true));
  s.on('error', () => {});
  await new Promise((resolve, reject) => s.once('open', resolve).once('error', reject));
  return { s, got, closed: () => closed, next: () => until(() => (got.length > read ? got[read++] : undefined)) };
}

// ---- the suite's classes ---------------------------------------------------------------------------

describe('BaseUrlGreeting', () => {
  it('test_greeting', async () => {
    for (const path of ['/sockjs', '/sockjs/']) {
      const r = await GET(echo, path);
      expect(r.status).toBe(200);
      contentType(r, 'text/plain;charset=UTF-8');
      expect(r.body).toBe('Welcome to SockJS!\n');
      noCookie(r);
    }
    // no cookie there even with JSESSIONID on (only session requests set it)
    noCookie(await GET(cookie, '/sockjs'));
  });

  it('test_notFound', async () => {
    for (const suffix of ['/a', '/a.html', '//', '///', '/a/a', '/a/a/', '/a/']) expect((await GET(echo, '/sockjs' + suffix)).status, suffix).toBe(404);
  });
});

describe('IframePage', () => {
  const body = (src: string) =>
    `<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n  <script>\n    document.domain = document.domain;\n    _sockjs_onload = function(){SockJS.bootstrap_iframe();};\n  </script>\n  <script src="${src}"></script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>`;
  async function verify(path: string): Promise<Res> {
    const r = await GET(echo, '/sockjs' + path);
    expect(r.status, path).toBe(200);
    contentType(r, 'text/html;charset=UTF-8');
    cacheable(r);
    expect(r.headers.etag).toBeTruthy();
    expect(r.headers['last-modified']).toBeUndefined();
    // exactly the suite's page; the library from this node (an absolute path)
    expect(r.body.trim()).toBe(body('/sockjs/sockjs.min.js'));
    noCookie(r);
    return r;
  }

  it('test_simpleUrl', async () => {
    await verify('/iframe.html');
  });
  it('test_versionedUrl', async () => {
    for (const s of ['/iframe-a.html', '/iframe-.html', '/iframe-0.1.2.html', '/iframe-0.1.2abc-dirty.2144.html']) await verify(s);
  });
  it('test_queriedUrl', async () => {
    for (const s of ['/iframe-a.html?t=1234', '/iframe-0.1.2.html?t=123414', '/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123']) await verify(s);
  });
  it('test_invalidUrl', async () => {
    for (const s of ['/iframe.htm', '/iframe', '/IFRAME.HTML', '/IFRAME', '/iframe.HTML', '/iframe.xml', '/iframe-/.html'])
      expect((await GET(echo, '/sockjs' + s)).status, s).toBe(404);
  });
  it('test_cacheability', async () => {
    const r1 = await GET(echo, '/sockjs/iframe.html');
    const r2 = await GET(echo, '/sockjs/iframe.html');
    expect(r1.headers.etag).toBeTruthy();
    expect(r1.headers.etag).toBe(r2.headers.etag);
    const r = await GET(echo, '/sockjs/iframe.html', { 'If-None-Match': r1.headers.etag! });
    expect(r.status).toBe(304);
    expect(r.headers['content-type']).toBeUndefined();
    expect(r.body).toBe('');
  });
});

// (test_disabled_websocket has no counterpart: Switchyard's SockJS always offers websocket)
describe('InfoTest', () => {
  it('test_basic', async () => {
    const r = await GET(echo, '/sockjs/info');
    expect(r.status).toBe(200);
    contentType(r, 'application/json;charset=UTF-8');
    noCookie(r);
    notCached(r);
    cors(r);
    const data = JSON.parse(r.body);
    expect(data.websocket).toBe(true);
    expect(data.cookie_needed).toBe(false);
    expect(data.origins).toEqual(['*:*']);
    expect(Number.isInteger(data.entropy)).toBe(true);
  });
  it('test_entropy', async () => {
    const a = JSON.parse((await GET(echo, '/sockjs/info')).body).entropy;
    const b = JSON.parse((await GET(echo, '/sockjs/info')).body).entropy;
    expect(Number.isInteger(a) && Number.isInteger(b)).toBe(true);
    expect(a).not.toBe(b);
  });
  it('test_options', async () => {
    await verifyOptions(echo, '/sockjs/info', 'OPTIONS, GET');
  });
  it('test_options_null_origin', async () => {
    const r = await OPTIONS(echo, '/sockjs/info', { Origin: 'null' });
    expect(r.status).toBe(204);
    expect(r.body).toBe('');
    expect(r.headers['access-control-allow-origin']).toBe('*');
  });
});

describe('SessionURLs', () => {
  it('test_anyValue', async () => {
    for (const part of ['/a/a', '/_/_', '/1/1', '/abcdefgh_i-j%20/abcdefg_i-j%20']) {
      // (each its own node-wide id: the suite relies on its 5 s session timeout between runs)
      const r = await POST(echo, `/sockjs${part}${ids++}/xhr`);
      expect({ part, status: r.status, body: r.body }).toEqual({ part, status: 200, body: 'o\n' });
    }
  });
  it('test_invalidPaths', async () => {
    for (const suffix of ['//', '/a./a', '/a/a.', '/./.', '/', '///']) {
      expect((await GET(echo, `/sockjs${suffix}/xhr`)).status, 'GET ' + suffix).toBe(404);
      expect((await POST(echo, `/sockjs${suffix}/xhr`)).status, 'POST ' + suffix).toBe(404);
    }
  });
  it('test_ignoringServerId', async () => {
    const id = `srv${ids++}`;
    expect(await POST(echo, `/sockjs/000/${id}/xhr`)).toMatchObject({ status: 200, body: 'o\n' });
    expect(await POST(echo, `/sockjs/000/${id}/xhr_send`, '["a"]')).toMatchObject({ status: 204, body: '' });
    expect(await POST(echo, `/sockjs/999/${id}/xhr`)).toMatchObject({ status: 200, body: `a[${m(1, 'a')}]\n` });
  });
});

describe('Protocol', () => {
  it('test_simpleSession', async () => {
    const url = sid();
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: 'o\n' });
    expect(await POST(echo, url + '/xhr_send', '["a"]')).toMatchObject({ status: 204, body: '' });
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: `a[${m(1, 'a')}]\n` });
    expect((await POST(echo, '/sockjs/000/bad_session/xhr_send', '["a"]')).status).toBe(404);
    // a second receiver while one waits: c[2010] to the second
    const r1 = await Raw.open(echo);
    r1.send('POST', url + '/xhr');
    await until(() => (attached(url) ? true : undefined));
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: 'c[2010,"Another connection still open"]\n' });
    r1.destroy();
  });

  it('test_closeSession', async () => {
    const url = sid();
    expect(await POST(close, url + '/xhr')).toMatchObject({ status: 200, body: 'o\n' });
    expect(await POST(close, url + '/xhr')).toMatchObject({ status: 200, body: 'c[3000,"Go away!"]\n' });
    expect(await POST(close, url + '/xhr')).toMatchObject({ status: 200, body: 'c[3000,"Go away!"]\n' });
  });
});

describe('WebsocketHttpErrors', () => {
  it('test_httpMethod', async () => {
    const r = await GET(echo, '/sockjs/0/0/websocket');
    expect(r.status).toBe(400);
    expect(r.body).toContain('Can "Upgrade" only to "WebSocket".');
  });
  it('test_invalidConnectionHeader', async () => {
    const r = await GET(echo, '/sockjs/0/0/websocket', { Upgrade: 'WebSocket', Connection: 'close' });
    expect(r.status).toBe(400);
    expect(r.body).toContain('"Connection" must be "Upgrade".');
  });
  it('test_invalidMethod', async () => {
    for (const h of [{ Upgrade: 'WebSocket', Connection: 'Upgrade' }, {}] as Array<Record<string, string>>) {
      const r = await request(echo, 'POST', '/sockjs/0/0/websocket', { headers: h });
      expect(r.status).toBe(405);
      expect(r.headers['content-type']).toBeUndefined();
      expect(r.headers.allow).toBeTruthy();
      expect(r.body).toBe('');
    }
  });
});

// The suite's hixie-76 cases, over RFC 6455: uWebSockets.js (and every browser sockjs-client 1.x
// runs in) speaks no hixie-76; a hixie-76 handshake is refused (test_haproxy)
describe('WebsocketHixie76', () => {
  it('test_transport', async () => {
    const w = await ws(echo, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    w.s.send('["a"]');
    expect(await w.next()).toBe(`a[${m(1, 'a')}]`);
    w.s.close();
  });
  it('test_close', async () => {
    const w = await ws(close, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    expect(await w.next()).toBe('c[3000,"Go away!"]');
    await until(() => (w.closed() ? true : undefined));
  });
  it('test_empty_frame', async () => {
    const w = await ws(echo, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    w.s.send('');
    w.s.send('["a"]');
    expect(await w.next()).toBe(`a[${m(1, 'a')}]`);
    w.s.close();
  });
  it('test_reuseSessionId', async () => {
    const url = sid() + '/websocket';
    const w1 = await ws(echo, url);
    expect(await w1.next()).toBe('o');
    const w2 = await ws(echo, url);
    expect(await w2.next()).toBe('o');
    w1.s.send('["a"]');
    expect(await w1.next()).toBe(`a[${m(1, 'a')}]`);
    w2.s.send('["b"]');
    expect(await w2.next()).toBe(`a[${m(1, 'b')}]`);
    expect(w1.closed() || w2.closed()).toBe(false);
    w1.s.close();
    w2.s.close();
    await until(() => (w1.closed() && w2.closed() ? true : undefined));
    const w3 = await ws(echo, url);
    expect(await w3.next()).toBe('o');
    w3.s.send('["a"]');
    expect(await w3.next()).toBe(`a[${m(1, 'a')}]`);
    w3.s.close();
  });
  it('test_haproxy: a hixie-76 handshake is refused', async () => {
    const r = await GET(echo, sid() + '/websocket', {
      Connection: 'Upgrade',
      Upgrade: 'WebSocket',
      Origin: 'http://127.0.0.1',
      'Sec-WebSocket-Key1': '4 @1  46546xW%0l 1 5',
      'Sec-WebSocket-Key2': '12998 5 Y3 1  .P00',
    });
    expect(r.status).toBe(400);
  });
  it('test_broken_json', async () => {
    const w = await ws(echo, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    w.s.send('["a');
    await until(() => (w.closed() ? true : undefined));
  });
});

describe('WebsocketHybi10', () => {
  it('test_transport', async () => {
    const w = await ws(echo, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    w.s.send('');
    w.s.send('["a"]');
    expect(await w.next()).toBe(`a[${m(1, 'a')}]`);
    w.s.close();
  });
  it('test_close', async () => {
    const w = await ws(close, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    expect(await w.next()).toBe('c[3000,"Go away!"]');
    await until(() => (w.closed() ? true : undefined));
  });
  it('test_headersSanity (and test_firefox_602_connection_header)', async () => {
    for (const [version, connection] of [
      ['7', 'Upgrade'],
      ['8', 'Upgrade'],
      ['13', 'Upgrade'],
      ['7', 'keep-alive, Upgrade'],
    ] as const) {
      const { c, h } = await stream(echo, 'GET', sid() + '/websocket', {
        Upgrade: 'websocket',
        Connection: connection,
        'Sec-WebSocket-Version': version,
        'Sec-WebSocket-Origin': 'http://asd',
        'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
      });
      expect(h.status, version).toBe(101);
      expect(h.headers['sec-websocket-accept']).toBe('HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
      expect(h.headers.connection!.toLowerCase()).toBe('upgrade');
      expect(h.headers.upgrade!.toLowerCase()).toBe('websocket');
      expect(h.headers['content-length']).toBeUndefined();
      c.destroy();
    }
  });
  it('test_broken_json', async () => {
    const w = await ws(echo, sid() + '/websocket');
    expect(await w.next()).toBe('o');
    w.s.send('["a');
    await until(() => (w.closed() ? true : undefined));
  });
});

describe('XhrPolling', () => {
  it('test_options', async () => {
    for (const suffix of ['/xhr', '/xhr_send']) await verifyOptions(echo, '/sockjs/abc/abc' + suffix, 'OPTIONS, POST');
  });
  it('test_transport', async () => {
    const url = sid();
    let r = await POST(echo, url + '/xhr');
    expect(r).toMatchObject({ status: 200, body: 'o\n' });
    contentType(r, 'application/javascript;charset=UTF-8');
    cors(r);
    notCached(r);
    r = await POST(echo, url + '/xhr_send', '["x"]');
    expect(r).toMatchObject({ status: 204, body: '' });
    contentType(r, 'text/plain;charset=UTF-8');
    cors(r);
    notCached(r);
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: `a[${m(1, 'x')}]\n` });
  });
  it('test_invalid_session', async () => {
    expect((await POST(echo, sid() + '/xhr_send', '["x"]')).status).toBe(404);
  });
  it('test_invalid_json', async () => {
    const url = sid();
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: 'o\n' });
    let r = await POST(echo, url + '/xhr_send', '["x');
    expect(r.status).toBe(500);
    expect(r.body).toContain('Broken JSON encoding.');
    r = await POST(echo, url + '/xhr_send', '');
    expect(r.status).toBe(500);
    expect(r.body).toContain('Payload expected.');
    expect(await POST(echo, url + '/xhr_send', '["a"]')).toMatchObject({ status: 204, body: '' });
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: `a[${m(1, 'a')}]\n` });
  });
  it('test_content_types', async () => {
    const url = sid();
    expect((await POST(echo, url + '/xhr')).body).toBe('o\n');
    const types = ['text/plain', 'T', 'application/json', 'application/xml', '', 'application/json; charset=utf-8', 'text/xml; charset=utf-8', 'text/xml'];
    for (const ct of types) expect(await POST(echo, url + '/xhr_send', '["a"]', { 'Content-Type': ct })).toMatchObject({ status: 204, body: '' });
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: `a[${types.map((_, i) => m(i + 1, 'a')).join(',')}]\n` });
  });
  it('test_request_headers_cors', async () => {
    let r = await POST(echo, sid() + '/xhr', undefined, { 'Access-Control-Request-Headers': 'a, b, c' });
    expect(r.status).toBe(200);
    cors(r);
    expect(r.headers['access-control-allow-headers']).toBe('a, b, c');
    r = await POST(echo, sid() + '/xhr', undefined, { 'Access-Control-Request-Headers': '' });
    expect(r.status).toBe(200);
    cors(r);
    expect(r.headers['access-control-allow-headers']).toBeUndefined();
    r = await POST(echo, sid() + '/xhr');
    expect(r.status).toBe(200);
    cors(r);
    expect(r.headers['access-control-allow-headers']).toBeUndefined();
  });
});

/**
 * A stream ends once it carried this much (the suite's test server is set to 4096 bytes; ours is
 * SockJS's default, 128 KiB): messages of `size` x's are sent one at a time until it ends
 */
async function responseLimit(c: Raw, url: string, size: number, wrap: (frame: string) => string, opened: string): Promise<void> {
  let carried = opened.length;
  for (let i = 1; ; i++) {
    expect(await POST(echo, url + '/xhr_send', JSON.stringify(['x'.repeat(size)]))).toMatchObject({ status: 204 });
    const expected = wrap(`a[${m(i, 'x'.repeat(size))}]`);
    expect(await c.chunk()).toBe(expected);
    carried += expected.length;
    if (carried >= 128 * 1024) break;
  }
  // the response ends right after what crossed the limit
  expect(await c.chunk()).toBe('');
}

describe('XhrStreaming', () => {
  it('test_options', async () => {
    await verifyOptions(echo, '/sockjs/abc/abc/xhr_streaming', 'OPTIONS, POST');
  });
  it('test_transport', async () => {
    const url = sid();
    const { c, h } = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    expect(h.status).toBe(200);
    contentType(h, 'application/javascript;charset=UTF-8');
    cors(h);
    notCached(h);
    expect(await c.chunk()).toBe('h'.repeat(2048) + '\n');
    expect(await c.chunk()).toBe('o\n');
    expect(await POST(echo, url + '/xhr_send', '["x"]')).toMatchObject({ status: 204, body: '' });
    expect(await c.chunk()).toBe(`a[${m(1, 'x')}]\n`);
    c.destroy();
  });
  it('test_response_limit', async () => {
    const url = sid();
    const { c, h } = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    expect(h.status).toBe(200);
    expect(await c.chunk()).toBeTruthy();
    expect(await c.chunk()).toBe('o\n');
    await responseLimit(c, url, 4096, (f) => f + '\n', 'o\n');
    c.destroy();
  });
});

describe('EventSource', () => {
  it('test_transport', async () => {
    const url = sid();
    const { c, h } = await stream(echo, 'GET', url + '/eventsource');
    expect(h.status).toBe(200);
    contentType(h, 'text/event-stream;charset=UTF-8');
    notCached(h);
    expect(await c.chunk()).toBe('\r\n');
    expect(await c.chunk()).toBe('data: o\r\n\r\n');
    expect(await POST(echo, url + '/xhr_send', '["x"]')).toMatchObject({ status: 204, body: '' });
    expect(await c.chunk()).toBe(`data: a[${m(1, 'x')}]\r\n\r\n`);
    // leading spaces, NUL and newlines travel JSON-escaped
    expect(await POST(echo, url + '/xhr_send', String.raw`["  \u0000\n\r "]`)).toMatchObject({ status: 204, body: '' });
    const frame = `data: a[${m(2, '  \u0000\n\r ')}]\r\n\r\n`;
    expect(frame).toContain(String.raw`  \\u0000\\n\\r `);
    expect(await c.chunk()).toBe(frame);
    c.destroy();
  });
  it('test_response_limit', async () => {
    const url = sid();
    const { c } = await stream(echo, 'GET', url + '/eventsource');
    expect(await c.chunk()).toBeTruthy();
    expect(await c.chunk()).toBe('data: o\r\n\r\n');
    await responseLimit(c, url, 4096, (f) => `data: ${f}\r\n\r\n`, 'data: o\r\n\r\n');
    c.destroy();
  });
});

describe('HtmlFile', () => {
  const head = (cb: string) =>
    `<!doctype html>\n<html><head>\n  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n</head><body><h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.${cb};\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>`;
  const call = (f: string) => `<script>\np(${JSON.stringify(f)});\n</script>\r\n`;

  it('test_transport', async () => {
    const url = sid();
    const { c, h } = await stream(echo, 'GET', url + '/htmlfile?c=%63allback');
    expect(h.status).toBe(200);
    contentType(h, 'text/html;charset=UTF-8');
    notCached(h);
    const d = await c.chunk();
    expect(d.trim()).toBe(head('callback'));
    expect(d.length).toBeGreaterThan(1024);
    expect(await c.chunk()).toBe('<script>\np("o");\n</script>\r\n');
    expect(await POST(echo, url + '/xhr_send', '["x"]')).toMatchObject({ status: 204, body: '' });
    expect(await c.chunk()).toBe(call(`a[${m(1, 'x')}]`));
    c.destroy();
  });
  it('test_no_callback', async () => {
    const r = await GET(echo, '/sockjs/a/a/htmlfile');
    expect(r.status).toBe(500);
    expect(r.body).toContain('"callback" parameter required');
  });
  it('test_response_limit', async () => {
    const url = sid();
    const { c } = await stream(echo, 'GET', url + '/htmlfile?c=callback');
    expect(await c.chunk()).toBeTruthy();
    expect(await c.chunk()).toBe(call('o'));
    await responseLimit(c, url, 4096, call, call('o'));
    c.destroy();
  });
});

// JSONP answers start with an empty comment, `/**/` (as the reference server 0.3.24 and later
// protocol versions: a response that starts with the callback's name can be sniffed as Flash, the
// "Rosetta Flash" attack); the rest is the suite's bytes
describe('JsonPolling', () => {
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
  it('test_transport', async () => {
    const url = sid();
    let r = await GET(echo, url + '/jsonp?c=%63allback');
    expect(r.status).toBe(200);
    contentType(r, 'application/javascript;charset=UTF-8');
    notCached(r);
    expect(r.body).toBe('/**/callback("o");\r\n');
    r = await POST(echo, url + '/jsonp_send', 'd=%5B%22x%22%5D', form);
    expect(r).toMatchObject({ status: 200, body: 'ok' });
    contentType(r, 'text/plain;charset=UTF-8');
    notCached(r);
    r = await GET(echo, url + '/jsonp?c=%63allback');
    expect(r).toMatchObject({ status: 200, body: `/**/callback(${JSON.stringify(`a[${m(1, 'x')}]`)});\r\n` });
  });
  it('test_no_callback', async () => {
    const r = await GET(echo, '/sockjs/a/a/jsonp');
    expect(r.status).toBe(500);
    expect(r.body).toContain('"callback" parameter required');
  });
  it('test_invalid_json', async () => {
    const url = sid();
    expect((await GET(echo, url + '/jsonp?c=x')).body).toBe('/**/x("o");\r\n');
    let r = await POST(echo, url + '/jsonp_send', 'd=%5B%22x', form);
    expect(r.status).toBe(500);
    expect(r.body).toContain('Broken JSON encoding.');
    for (const data of ['', 'd=', 'p=p']) {
      r = await POST(echo, url + '/jsonp_send', data, form);
      expect(r.status, data).toBe(500);
      expect(r.body).toContain('Payload expected.');
    }
    expect((await POST(echo, url + '/jsonp_send', 'd=%5B%22b%22%5D', form)).body).toBe('ok');
    expect(await GET(echo, url + '/jsonp?c=x')).toMatchObject({ status: 200, body: `/**/x(${JSON.stringify(`a[${m(1, 'b')}]`)});\r\n` });
  });
  it('test_content_types', async () => {
    const url = sid();
    expect((await GET(echo, url + '/jsonp?c=x')).body).toBe('/**/x("o");\r\n');
    expect((await POST(echo, url + '/jsonp_send', 'd=%5B%22abc%22%5D', form)).body).toBe('ok');
    expect((await POST(echo, url + '/jsonp_send', '["%61bc"]', { 'Content-Type': 'text/plain' })).body).toBe('ok');
    expect(await GET(echo, url + '/jsonp?c=x')).toMatchObject({ status: 200, body: `/**/x(${JSON.stringify(`a[${m(1, 'abc')},${m(2, '%61bc')}]`)});\r\n` });
  });
  it('test_close', async () => {
    const url = sid();
    expect((await GET(close, url + '/jsonp?c=x')).body).toBe('/**/x("o");\r\n');
    expect((await GET(close, url + '/jsonp?c=x')).body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
    expect((await GET(close, url + '/jsonp?c=x')).body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
  });
});

describe('JsessionidCookie', () => {
  it('test_basic (and off by default)', async () => {
    const r = await GET(cookie, '/sockjs/info');
    expect(r.status).toBe(200);
    noCookie(r);
    expect(JSON.parse(r.body).cookie_needed).toBe(true);
    // the default: no cookie anywhere, cookie_needed false
    expect(JSON.parse((await GET(echo, '/sockjs/info')).body).cookie_needed).toBe(false);
    const url = sid();
    noCookie(await POST(echo, url + '/xhr'));
    noCookie(await POST(echo, url + '/xhr_send', '["x"]'));
    noCookie(await GET(echo, sid() + '/jsonp?c=x'));
    noCookie(await OPTIONS(echo, '/sockjs/abc/abc/xhr'));
  });
  it('test_xhr', async () => {
    let r = await POST(cookie, sid() + '/xhr');
    expect(r).toMatchObject({ status: 200, body: 'o\n' });
    verifyCookie(r);
    // the client's own cookie is echoed
    r = await POST(cookie, sid() + '/xhr', undefined, { Cookie: 'JSESSIONID=abcdef' });
    expect(r).toMatchObject({ status: 200, body: 'o\n' });
    verifyCookie(r, 'abcdef');
  });
  it('test_xhr_streaming', async () => {
    const { c, h } = await stream(cookie, 'POST', sid() + '/xhr_streaming', { 'Content-Length': '0' });
    expect(h.status).toBe(200);
    verifyCookie(h);
    c.destroy();
  });
  it('test_eventsource', async () => {
    const { c, h } = await stream(cookie, 'GET', sid() + '/eventsource');
    expect(h.status).toBe(200);
    verifyCookie(h);
    c.destroy();
  });
  it('test_htmlfile', async () => {
    const { c, h } = await stream(cookie, 'GET', sid() + '/htmlfile?c=%63allback');
    expect(h.status).toBe(200);
    verifyCookie(h);
    c.destroy();
  });
  it('test_jsonp', async () => {
    const url = sid();
    let r = await GET(cookie, url + '/jsonp?c=%63allback');
    expect(r.status).toBe(200);
    verifyCookie(r);
    expect(r.body).toBe('/**/callback("o");\r\n');
    r = await POST(cookie, url + '/jsonp_send', 'd=%5B%22x%22%5D', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r).toMatchObject({ status: 200, body: 'ok' });
    verifyCookie(r);
  });
});

describe('JsessionidCookie: the option', () => {
  it('is off by default, a boolean, and the CLI turns it on with --sockjs-jsessionid', async () => {
    expect(resolveOptions({}).sockjs).toEqual({ prefix: '/sockjs', jsessionid: false, lookupMs: 100 });
    expect(resolveOptions({ sockjs: { jsessionid: true } }).sockjs).toEqual({ prefix: '/sockjs', jsessionid: true, lookupMs: 100 });
    expect(() => resolveOptions({ sockjs: { jsessionid: 'yes' as never } })).toThrow(/sockjs\.jsessionid/);
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'switchyard.mjs'), 'start', '--port', '0', '--host', '127.0.0.1', '--sockjs-jsessionid'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const port = await until(() => {
        const found = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        return found ? Number(found[1]) : undefined;
      }, 15_000);
      expect(JSON.parse((await GET(port, '/sockjs/info')).body).cookie_needed).toBe(true);
      verifyCookie(await POST(port, sid() + '/xhr'));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('RawWebsocket', () => {
  it('test_transport', async () => {
    const w = await ws(echo, '/sockjs/websocket');
    w.s.send('Hello world!\uffff');
    // no SockJS framing: the echo's native frame itself
    expect(await w.next()).toBe(JSON.stringify({ type: 'event', seq: 1, event: 'message', args: ['Hello world!\uffff'] }));
    w.s.close();
  });
  it('test_close', async () => {
    const w = await ws(close, '/sockjs/websocket');
    await until(() => (w.closed() ? true : undefined));
    expect(w.got).toEqual([]);
  });
});

describe('JSONEncoding', () => {
  it('test_xhr_server_encodes: what the server must escape above U+00FF comes escaped', async () => {
    // the suite's escapable_by_server, U+0100 and up
    let chars = '';
    for (let i = 0x100; i <= 0xffff; i++)
      if (/[\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/.test(String.fromCharCode(i))) chars += String.fromCharCode(i);
    const esc = [...chars].map((ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0')).join('');
    const url = sid();
    expect(await POST(echo, url + '/xhr')).toMatchObject({ status: 200, body: 'o\n' });
    expect((await POST(echo, url + '/xhr_send', '["' + chars + '"]')).status).toBe(204);
    const r = await POST(echo, url + '/xhr');
    expect(r.status).toBe(200);
    // the received text is the escaped one, byte for byte
    expect(r.body).toBe('a[' + m(1, '@').replace('@', esc) + ']\n');
  });

  it('test_xhr_server_decodes: every UTF-16 code unit, sent escaped, comes back the same', async () => {
    let all = '';
    for (let i = 0; i <= 0xffff; i++) all += '\\u' + i.toString(16).padStart(4, '0');
    const url = sid();
    expect(await POST(wide, url + '/xhr')).toMatchObject({ status: 200, body: 'o\n' });
    expect((await POST(wide, url + '/xhr_send', '["' + all + '"]')).status).toBe(204);
    const r = await POST(wide, url + '/xhr');
    expect(r.status).toBe(200);
    const recv = JSON.parse(r.body.trim().slice(1)) as string[];
    expect(recv).toHaveLength(1);
    const got = JSON.parse(recv[0]!).args[0] as string;
    const expected = JSON.parse('"' + all + '"') as string;
    expect(got.length).toBe(0x10000);
    expect(got === expected).toBe(true);
    // and nothing the server must escape went out raw
    expect(r.body).not.toMatch(/[\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff<]/);
  });
});

describe('HandlingClose', () => {
  it('test_close_frame', async () => {
    const url = sid();
    const r1 = await stream(close, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r1.c.chunk();
    expect(await r1.c.chunk()).toBe('o\n');
    expect(await r1.c.chunk()).toBe('c[3000,"Go away!"]\n');
    const r2 = await stream(close, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r2.c.chunk();
    expect(await r2.c.chunk()).toBe('c[3000,"Go away!"]\n');
    // both answers end after the close
    expect(await r1.c.chunk()).toBe('');
    expect(await r2.c.chunk()).toBe('');
    r1.c.destroy();
    r2.c.destroy();
  });

  it('test_close_request', async () => {
    const url = sid();
    const r1 = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r1.c.chunk();
    expect(await r1.c.chunk()).toBe('o\n');
    const r2 = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r2.c.chunk();
    expect(await r2.c.chunk()).toBe('c[2010,"Another connection still open"]\n');
    expect(await r2.c.chunk()).toBe('');
    r1.c.destroy();
    r2.c.destroy();
  });

  // The suite lets a server end the session when a receiver is aborted (the next receiver gets `o`
  // of a new session, or c[1002,"Connection interrupted"]). Switchyard keeps the session instead
  // (see docs/sockjs.md, "A dropped receiver"): the next receiver goes on where the aborted one
  // stopped and gets what was sent meanwhile, neither `o` nor a close.
  it('test_abort_xhr_streaming: the session outlives an aborted receiver', async () => {
    const url = sid();
    const r1 = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r1.c.chunk();
    expect(await r1.c.chunk()).toBe('o\n');
    const r2 = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r2.c.chunk();
    expect(await r2.c.chunk()).toBe('c[2010,"Another connection still open"]\n');
    expect(await r2.c.chunk()).toBe('');
    r1.c.destroy();
    // once the node saw the abort, what is sent waits for the next receiver
    await until(() => (attached(url) ? undefined : true));
    expect(await POST(echo, url + '/xhr_send', '["after"]')).toMatchObject({ status: 204 });
    const r3 = await stream(echo, 'POST', url + '/xhr_streaming', { 'Content-Length': '0' });
    await r3.c.chunk();
    expect(await r3.c.chunk()).toBe(`a[${m(1, 'after')}]\n`);
    r3.c.destroy();
  });

  it('test_abort_xhr_polling: the session outlives an aborted poll', async () => {
    const url = sid();
    expect((await POST(echo, url + '/xhr')).body).toBe('o\n');
    const r1 = await Raw.open(echo);
    r1.send('POST', url + '/xhr');
    await until(() => (attached(url) ? true : undefined));
    expect((await POST(echo, url + '/xhr')).body).toBe('c[2010,"Another connection still open"]\n');
    r1.destroy();
    await until(() => (attached(url) ? undefined : true));
    expect(await POST(echo, url + '/xhr_send', '["after"]')).toMatchObject({ status: 204 });
    expect((await POST(echo, url + '/xhr')).body).toBe(`a[${m(1, 'after')}]\n`);
  });
});

// uWebSockets.js does not answer HTTP/1.0 requests at all: no status line, nothing; it closes the
// connection when its idle timeout (about 10 s) runs out. The suite's Http10 cases cannot pass;
// these tests pin today's behaviour (docs/sockjs.md, "Limits"): they fail the day uWS answers.
describe('Http10', () => {
  it('test_synchronous and test_streaming: no answer, the connection is closed unanswered', async () => {
    const sync = await Raw.open(echo);
    sync.send('GET', '/sockjs', { http: '1.0', headers: { Connection: 'Keep-Alive' } });
    const streaming = await Raw.open(close);
    streaming.send('POST', sid() + '/xhr_streaming', { http: '1.0', headers: { Connection: 'Keep-Alive' } });
    await Promise.all([sync.waitClosed(20_000), streaming.waitClosed(20_000)]);
    expect(sync.pending).toBe(0);
    expect(streaming.pending).toBe(0);
  }, 30_000);
});

describe('Http11', () => {
  it('test_synchronous', async () => {
    const c = await Raw.open(echo);
    c.send('GET', '/sockjs', { headers: { Connection: 'Keep-Alive' } });
    let r = await c.head();
    expect(r.http).toBe('1.1');
    expect(['keep-alive', '']).toContain((r.headers.connection ?? '').toLowerCase());
    expect(Number(r.headers['content-length'])).toBe(19);
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(await c.read(19)).toBe('Welcome to SockJS!\n');
    // another request on the same connection
    c.send('GET', '/sockjs', { headers: { Connection: 'Keep-Alive' } });
    r = await c.head();
    expect(r.status).toBe(200);
    c.destroy();
  });

  it('test_streaming', async () => {
    const { c, h } = await stream(close, 'POST', sid() + '/xhr_streaming', { Connection: 'Keep-Alive', 'Content-Length': '0' });
    expect(h.status).toBe(200);
    expect(h.headers['transfer-encoding']?.toLowerCase()).toBe('chunked');
    expect(h.headers['content-length']).toBeUndefined();
    expect((await c.chunk())[0]).toBe('h');
    expect(await c.chunk()).toBe('o\n');
    expect(await c.chunk()).toBe('c[3000,"Go away!"]\n');
    expect(await c.chunk()).toBe('');
    c.destroy();
  });
});

// Not one of the suite's classes: the reference server (sockjs-node 0.3.24) writes a receiver's
// status line, headers and prelude as the request comes, before it looks at the session. A receiver
// that re-attaches to a session with nothing to send must get them at once too, not with the next
// frame or the heartbeat (25 s): a client, or a proxy, waiting for the head would give up first.
describe('a receiver that re-attaches to its session', () => {
  const cases = [
    {
      kind: 'xhr_streaming',
      method: 'POST',
      headers: { 'Content-Length': '0' },
      prelude: 'h'.repeat(2048) + '\n',
      open: 'o\n',
      type: 'application/javascript;charset=UTF-8',
    },
    { kind: 'eventsource', method: 'GET', headers: {}, prelude: '\r\n', open: 'data: o\r\n\r\n', type: 'text/event-stream;charset=UTF-8' },
  ] as const;
  for (const k of cases) {
    it(`${k.kind}: gets its status line, headers and prelude at once, not with the next frame or heartbeat`, async () => {
      const url = sid();
      const r1 = await stream(echo, k.method, `${url}/${k.kind}`, k.headers);
      expect(await r1.c.chunk()).toBe(k.prelude);
      expect(await r1.c.chunk()).toBe(k.open);
      r1.c.destroy();
      await until(() => (attached(url) ? undefined : true));
      // the session waits with nothing to send: the second receiver's answer has no frame to start it
      const t = Date.now();
      const r2 = await stream(echo, k.method, `${url}/${k.kind}`, k.headers);
      expect(r2.h.status).toBe(200);
      contentType(r2.h, k.type);
      notCached(r2.h);
      expect(await r2.c.chunk()).toBe(k.prelude);
      expect(Date.now() - t).toBeLessThan(1500);
      await until(() => (attached(url) ? true : undefined));
      // and it is the session's receiver: what is sent now comes on it
      expect(await POST(echo, url + '/xhr_send', '["again"]')).toMatchObject({ status: 204 });
      expect(await r2.c.chunk()).toBe(k.kind === 'eventsource' ? `data: a[${m(1, 'again')}]\r\n\r\n` : `a[${m(1, 'again')}]\n`);
      r2.c.destroy();
    });
  }
});
