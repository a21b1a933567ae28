/**
 * Forcing a full garbage collection in a running server, through the V8 inspector.
 *
 * Why: the idle-memory test divides an RSS difference by the number of sessions. Without a GC,
 * whatever garbage the young generation happens to hold at the two sample points (megabytes)
 * swamps a per-session cost of a kilobyte or so. Servers are started for that test with
 * NODE_OPTIONS=--inspect=127.0.0.1:0, which needs no cooperation from the server's code; each
 * Node process in the server's tree prints its inspector URL on stderr.
 */
import WebSocket from 'ws';

const URL_RE = /Debugger listening on (ws:\/\/\S+)/;

export function inspectorUrls(stderrLines: string[]): string[] {
  const urls = new Set<string>();
  for (const line of stderrLines) {
    const m = URL_RE.exec(line);
    if (m) urls.add(m[1]!);
  }
  return [...urls];
}

/** Run a few inspector commands on one target, in order. */
async function call(url: string, commands: { method: string; params?: object }[], timeoutMs = 15000): Promise<unknown[]> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const results: unknown[] = [];
    for (const [i, cmd] of commands.entries()) {
      const id = i + 1;
      results.push(
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`inspector: ${cmd.method} timed out`)), timeoutMs);
          const onMessage = (data: WebSocket.RawData) => {
            const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
            if (msg.id !== id) return;
            clearTimeout(timer);
            ws.off('message', onMessage);
            if (msg.error) reject(new Error(`inspector: ${cmd.method}: ${msg.error.message}`));
            else resolve(msg.result);
          };
          ws.on('message', onMessage);
          ws.send(JSON.stringify({ id, method: cmd.method, params: cmd.params ?? {} }));
        }),
      );
    }
    return results;
  } finally {
    ws.terminate();
  }
}

export interface HeapNumbers {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Full GC (twice: the first pass can leave objects kept only by weak references or finalizers)
 * in every process, then the sum of their V8 heap numbers.
 */
export async function collectGarbage(urls: string[]): Promise<HeapNumbers> {
  const total: HeapNumbers = { heapUsed: 0, external: 0, arrayBuffers: 0 };
  for (const url of urls) {
    const results = await call(url, [
      { method: 'HeapProfiler.collectGarbage' },
      { method: 'HeapProfiler.collectGarbage' },
      {
        method: 'Runtime.evaluate',
        params: { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true },
      },
    ]);
    const value = (results[2] as { result?: { value?: unknown } } | undefined)?.result?.value;
    if (typeof value === 'string') {
      const mem = JSON.parse(value) as HeapNumbers;
      total.heapUsed += mem.heapUsed;
      total.external += mem.external;
      total.arrayBuffers += mem.arrayBuffers;
    }
  }
  return total;
}
