/**
 * A SockJS streaming receiver that re-attaches to its session through another node (relayed to the
 * node holding it) gets its status line, headers and prelude at once, as on one node
 * (test/sockjs-protocol.test.ts), not with the next frame or heartbeat (25 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { TestCluster } from './cluster-harness.ts';
import { until } from './helpers.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start({ gateways: 2, workers: 1 });
});
afterAll(async () => {
  await cluster?.stop();
});

/** A raw HTTP/1.1 request whose answer is read as it comes: status, headers, then chunks */
class Raw {
  private buf = Buffer.alloc(0);
  private readonly sock: Socket;
  constructor(port: number, method: string, path: string) {
    this.sock = connect(port, '127.0.0.1');
    this.sock.on('data', (d) => (this.buf = Buffer.concat([this.buf, d])));
    this.sock.on('error', () => {});
    this.sock.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${method === 'POST' ? 'Content-Length: 0\r\n' : ''}\r\n`);
  }

  /** the status and the chunks read so far, once the head is in */
  parsed(): { status: number; chunks: string[] } | undefined {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const status = Number(this.buf.subarray(0, end).toString().split(' ')[1]);
    const chunks: string[] = [];
    let i = end + 4;
    for (;;) {
      // a chunk's closing CRLF (uWS writes it with the next chunk)
      if (chunks.length > 0 && this.buf.subarray(i, i + 2).toString() === '\r\n') i += 2;
      const eol = this.buf.indexOf('\r\n', i);
      if (eol < 0) break;
      const size = parseInt(this.buf.subarray(i, eol).toString(), 16);
      if (this.buf.length < eol + 2 + size) break;
      chunks.push(this.buf.subarray(eol + 2, eol + 2 + size).toString());
      i = eol + 2 + size;
      if (size === 0) break;
    }
    return { status, chunks };
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** SockJS stream sessions node `url` holds without a receiver (`/metrics`) */
async function detachedSockJs(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^switchyard_sessions\{[^}]*transport="sse"[^}]*dialect="sockjs"[^}]*attached="false"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const cases = [
  { kind: 'xhr_streaming', method: 'POST', prelude: 'h'.repeat(2048) + '\n', open: 'o\n' },
  { kind: 'eventsource', method: 'GET', prelude: '\r\n', open: 'data: o\r\n\r\n' },
] as const;

describe('a SockJS receiver re-attaching through the other node', () => {
  for (const k of cases) {
    it(`${k.kind}: its head and prelude come at once, though the holder has nothing to send`, async () => {
      const [a, b] = cluster.gateways;
      const path = `/sockjs/000/reattach-${k.kind}-${process.pid}/${k.kind}`;
      // the session is made on node a, and its first receiver goes away
      const first = new Raw(a!.port, k.method, path);
      await until(() => (first.parsed()?.chunks.includes(k.open) ? true : undefined));
      const waiting = await detachedSockJs(a!.url);
      first.destroy();
      // once node a saw it go (the session waits, detached), another receiver through node b
      await until(async () => ((await detachedSockJs(a!.url)) > waiting ? true : Promise.reject(new Error('not yet'))), 10_000);
      const t = Date.now();
      const second = new Raw(b!.port, k.method, path);
      await until(() => (second.parsed()?.chunks[0] !== undefined ? true : undefined), 5000);
      expect(Date.now() - t).toBeLessThan(1500);
      const got = second.parsed()!;
      expect(got.status).toBe(200);
      expect(got.chunks[0]).toBe(k.prelude);
      // and it is the session's receiver (relayed): not refused as a second one
      await until(async () => ((await detachedSockJs(a!.url)) === waiting ? true : Promise.reject(new Error('not yet'))), 5000);
      expect(second.parsed()!.chunks.join('')).not.toContain('c[2010');
      second.destroy();
    }, 30_000);
  }
});
