/**
 * A hostile HTTP proxy in front of a gateway, for the native client's fallback tests (and the
 * browser tests): real sockets on a free port, nothing mocked. It forwards every HTTP request
 * (any method, headers and body; keep-alive on both sides) to `target`, and treats WebSocket
 * upgrades (`Upgrade:` requests) as `mode.upgrade` says:
 *
 * - `pass`: forwarded; the raw sockets are piped both ways (the gateway's answer, 101 or an
 *   error, reaches the client as it is).
 * - `refuse`: answered `403 Forbidden` by the proxy, like a proxy that does not allow upgrades.
 * - `close`: the client's TCP connection is destroyed.
 * - `blackhole`: the TCP connection is accepted, and nothing is ever answered or forwarded.
 * - `eat`: forwarded, and the gateway's answer headers (the 101) reach the client, but then no
 *   WebSocket frame gets through, either way (the gateway has opened a session the client never
 *   hears of). An addition to the modes above; the proxy closes the upstream side when the client
 *   goes, like a real one.
 *
 * `bufferResponses`: every HTTP response is held whole (status, headers, body) until the gateway
 * ends it, then sent in one piece with a Content-Length, like a buffering proxy. A response that
 * never ends (an SSE stream) never reaches the client; one whose client goes away is abandoned and
 * its upstream request aborted.
 *
 * Close a proxy with `proxy.close()`, or every one still open with `closeHostileProxies()`, in
 * afterAll/afterEach (helpers.ts `closeAll` closes the gateways only).
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface HostileProxy {
  url: string; // http://127.0.0.1:<port>
  port: number;
  counts: { requests: number; upgrades: number };
  dropAll(): void; // destroy every open client connection (like a network cut)
  close(): Promise<void>;
}

export interface HostileMode {
  /** refuse = 403 answer; close = destroy socket; blackhole = accept TCP, never answer nor forward; eat = forward, pass the 101, then drop every frame */
  upgrade?: 'pass' | 'refuse' | 'close' | 'blackhole' | 'eat';
  /** hold each whole HTTP response (status, headers, body) until upstream ends it, then send it in one piece */
  bufferResponses?: boolean;
}

/** hop-by-hop headers: they describe one connection, never forwarded */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function endToEnd(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  // headers named in `Connection:` are hop-by-hop too
  const listed = new Set(
    String(h.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && !HOP.has(k) && !listed.has(k)) out[k] = v;
  }
  return out;
}

const open = new Set<HostileProxy>();

/** Close every hostile proxy still open. */
export async function closeHostileProxies(): Promise<void> {
  await Promise.all([...open].map((p) => p.close()));
}

export function startHostileProxy(target: string, mode: HostileMode = {}): Promise<HostileProxy> {
  const up = new URL(target);
  const upHost = up.hostname;
  const upPort = Number(up.port || 80);
  const upgradeMode = mode.upgrade ?? 'pass';
  const agent = new Agent({ keepAlive: true });
  /** client-side sockets (HTTP and upgraded) */
  const clients = new Set<Socket>();
  /** upstream sockets of upgrades */
  const upstreams = new Set<Socket>();
  const counts = { requests: 0, upgrades: 0 };

  const server = createServer({ keepAlive: true }, (req, res) => {
    counts.requests++;
    const upReq = httpRequest({ host: upHost, port: upPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent });
    let finished = false;
    // the client went away before its answer was complete: abandon the upstream request
    res.on('close', () => {
      if (!finished) upReq.destroy();
    });
    upReq.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      } else {
        res.destroy();
      }
    });
    upReq.on('response', (upRes) => {
      const headers = endToEnd(upRes.headers);
      const status = upRes.statusCode ?? 502;
      const bodyless = req.method === 'HEAD' || status === 204 || status === 304;
      upRes.on('error', () => res.destroy());
      if (mode.bufferResponses) {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          finished = true;
          if (res.destroyed) return;
          const body = Buffer.concat(chunks);
          delete headers['content-length'];
          if (!bodyless) headers['content-length'] = body.length;
          res.writeHead(status, headers);
          res.end(bodyless ? undefined : body);
        });
        return;
      }
      res.writeHead(status, headers);
      res.flushHeaders(); // a stream's headers go at once
      upRes.on('data', (c: Buffer) => res.write(c));
      upRes.on('end', () => {
        finished = true;
        res.end();
      });
    });
    req.pipe(upReq);
  });
  server.keepAliveTimeout = 30_000;

  server.on('connection', (s: Socket) => {
    clients.add(s);
    s.on('close', () => clients.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());

  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    counts.upgrades++;
    socket.on('error', () => {});
    switch (upgradeMode) {
      case 'refuse':
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nForbidden');
        return;
      case 'close':
        socket.destroy();
        return;
      case 'blackhole':
        // read (and drop) what comes, so that the client's close is seen (the server keeps an
        // upgraded socket half-open after the client's FIN: end it then)
        socket.resume();
        socket.on('end', () => socket.destroy());
        return; // kept open (and in `clients`) until the client, dropAll or close ends it
    }
    const upSock = netConnect({ host: upHost, port: upPort });
    upstreams.add(upSock);
    upSock.on('close', () => {
      upstreams.delete(upSock);
      socket.destroy();
    });
    upSock.on('error', () => {});
    socket.on('close', () => upSock.destroy());
    let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upSock.write(raw + '\r\n');
    if (upgradeMode === 'pass') {
      if (head.length) upSock.write(head);
      upSock.pipe(socket);
      socket.pipe(upSock);
      return;
    }
    // eat: the answer's headers pass, then nothing more either way
    let pending: Buffer | null = Buffer.alloc(0);
    upSock.on('data', (c: Buffer) => {
      if (pending === null) return;
      pending = Buffer.concat([pending, c]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.write(pending.subarray(0, end + 4));
      pending = null;
    });
    // read (and drop) what the client sends; its FIN ends the connection (see blackhole)
    socket.resume();
    socket.on('end', () => socket.destroy());
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      let closing: Promise<void> | null = null;
      const proxy: HostileProxy = {
        url: `http://127.0.0.1:${port}`,
        port,
        counts,
        dropAll() {
          for (const s of [...clients]) s.destroy();
          for (const s of [...upstreams]) s.destroy();
        },
        close() {
          if (closing) return closing;
          open.delete(proxy);
          closing = new Promise<void>((done) => {
            server.close(() => done());
            proxy.dropAll();
            agent.destroy();
          });
          return closing;
        },
      };
      open.add(proxy);
      resolve(proxy);
    });
  });
}
