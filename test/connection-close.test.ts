/**
 * A request that says `Connection: close` gets an answer that says it too, on every route of every
 * dialect, and the socket then ends. uWS closes such a connection after the answer without saying
 * so, and a client that pools connections (Node's keep-alive agent, node-fetch, which always sends
 * `Connection: close` without an agent) then reuses a dead socket: "socket hang up" on every
 * second request. A request without it keeps its connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { Agent, request } from 'node:http';
import { closeAll, startNode } from './helpers.ts';

afterAll(closeAll);

/** one raw request; resolves with the head of the answer and whether the server ended the socket */
function raw(port: number, head: string, body = '', stream = false): Promise<{ status: number; headers: string[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(head + body));
    let got = '';
    let ended = false;
    const done = () => {
      const i = got.indexOf('\r\n\r\n');
      const lines = got.slice(0, i < 0 ? got.length : i).split('\r\n');
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers: lines.slice(1).map((l) => l.toLowerCase()), ended });
    };
    s.on('data', (d) => (got += d));
    s.on('end', () => {
      ended = true;
      done();
    });
    s.on('error', reject);
    // a kept-alive connection: read the head, then let go of it ourselves
    const timer = setInterval(() => {
      if (got.includes('\r\n\r\n') && !ended && (stream || !head.includes('Connection: close'))) {
        clearInterval(timer);
        s.destroy();
        done();
      }
    }, 20);
    s.on('close', () => clearInterval(timer));
  });
}

/** [name, method, path, body?]; an SSE stream's answer never ends: its head is what is checked */
const ROUTES: Array<[string, string, string, string?]> = [
  ['the gateway: /healthz', 'GET', '/healthz'],
  ['the gateway: /readyz', 'GET', '/readyz'],
  ['the gateway: /metrics', 'GET', '/metrics'],
  ['the gateway: the demo page', 'GET', '/'],
  ['the gateway: not found', 'GET', '/no/such/route'],
  ['native: a poll for an unknown session (an error)', 'GET', '/rt/poll?sid=AAAAAAAAAAAAAAAA&token=x.1.y'],
  ['native: a preflight', 'OPTIONS', '/rt/send'],
  ['Socket.IO: the polling handshake', 'GET', '/socket.io/?EIO=4&transport=polling'],
  ['Socket.IO: an unknown sid', 'GET', '/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA'],
  ['SignalR: negotiate', 'POST', '/hubs/demo/negotiate?negotiateVersion=1', ''],
  ['SignalR: a poll for an unknown id', 'GET', '/hubs/demo?id=nope'],
  ['SockJS: the greeting', 'GET', '/sockjs'],
  ['SockJS: /info', 'GET', '/sockjs/info'],
  ['SockJS: an xhr-polling open', 'POST', '/sockjs/000/conn-close-1/xhr', ''],
];

describe('Connection: close', () => {
  let node: Awaited<ReturnType<typeof startNode>>;
  beforeAll(async () => {
    node = await startNode({ ipOpenRate: 0 });
  });

  for (const [name, method, path, body] of ROUTES) {
    it(`${name}: said back once, and the socket ends; without it the connection is kept`, async () => {
      const len = body === undefined ? '' : `Content-Length: ${body.length}\r\n`;
      const closing = await raw(node.port, `${method} ${path} HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost\r\n${len}Connection: close\r\n\r\n`, body ?? '');
      expect(closing.status).toBeGreaterThanOrEqual(200);
      expect(closing.headers.filter((h) => h.startsWith('connection:'))).toEqual(['connection: close']);
      expect(closing.ended).toBe(true);
      const kept = await raw(
        node.port,
        `${method} ${path.replace('conn-close-1', 'conn-close-2')} HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost\r\n${len}\r\n`,
        body ?? '',
      );
      expect(kept.status).toBe(closing.status);
      expect(kept.headers.filter((h) => h.startsWith('connection:'))).toEqual([]);
      expect(kept.ended).toBe(false);
    });
  }

  it('a stream (native SSE) answering a request that says Connection: close says it in its head', async () => {
    const closing = await raw(node.port, 'GET /rt/sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '', true);
    expect(closing.status).toBe(200);
    expect(closing.headers.some((h) => h.startsWith('content-type: text/event-stream'))).toBe(true);
    expect(closing.headers.filter((h) => h.startsWith('connection:'))).toEqual(['connection: close']);
    const kept = await raw(node.port, 'GET /rt/sse HTTP/1.1\r\nHost: x\r\n\r\n', '', true);
    expect(kept.headers.filter((h) => h.startsWith('connection:'))).toEqual([]);
  });

  it("Node's keep-alive agent, every request saying Connection: close (as node-fetch does): 20 of 20 answered", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let answered = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const r = request(
          { host: '127.0.0.1', port: node.port, path: i % 2 ? '/healthz' : '/socket.io/?EIO=4&transport=polling', agent, headers: { Connection: 'close' } },
          (res) => {
            res.resume();
            res.on('end', () => {
              answered++;
              resolve();
            });
          },
        );
        r.on('error', reject);
        r.end();
      });
    }
    agent.destroy();
    expect(answered).toBe(20);
  });
});
