/**
 * The demo page in headless Chromium through HAProxy (round-robin, no stickiness) in front of two
 * gateway nodes on NATS with a worker: socket.io-client and @microsoft/signalr pages whose HTTP
 * requests land on both nodes, and a page that lives through a rolling restart of both gateways
 * losing nothing. Screenshots go to test-artifacts/browser/.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { TestCluster } from './cluster-harness.ts';
import { startHaproxy } from './haproxy.ts';
import { http, portBelowEphemeral } from './helpers.ts';
import { currentTransport, expectNoPageErrors, launchBrowser, openDemo, saidOn, say, screenshot, waitForTexts, useBrowserTimeouts } from './browser-kit.ts';

useBrowserTimeouts();

let browser: Browser;
let cluster: TestCluster;
let haproxy: ChildProcess;
let lb: string;

beforeAll(async () => {
  browser = await launchBrowser();
  cluster = await TestCluster.start({ gateways: 0, workers: 1 });
  // ports outside the ephemeral range: they restart on the same port while HAProxy's checks retry them
  for (const id of ['g1', 'g2']) await cluster.addGateway(id, ['--drain-window-ms', '1000', '--port', String(await portBelowEphemeral())]);
  ({ proc: haproxy, lb } = await startHaproxy(cluster));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  haproxy?.kill('SIGKILL');
  await cluster?.stop();
});

/** requests the gateways passed to the node that holds the session, per dialect */
async function crossed(): Promise<{ socketio: number; signalr: number }> {
  const n = { socketio: 0, signalr: 0 };
  for (const g of cluster.gateways) {
    const h = (await http(`${g.url}/healthz`)).body;
    n.socketio += h.socketio.tunneled.in;
    n.signalr += h.signalr.tunneled.in;
  }
  return n;
}

describe('demo page in Chromium behind HAProxy round-robin over two gateways', () => {
  it('socket.io-client (polling, then the upgrade) and @microsoft/signalr (long-polling, SSE) pages chat, their requests landing on both nodes', async () => {
    const base = `http://${lb}`;
    const before = await crossed();
    const kinds = [
      { client: 'socket.io', transport: 'polling' },
      { client: 'socket.io', transport: 'auto' },
      { client: 'signalr', transport: 'LongPolling' },
      { client: 'signalr', transport: 'ServerSentEvents' },
    ];
    const pages = [];
    for (const k of kinds) pages.push(await openDemo(browser, base, { ...k, room: 'across' }));
    // the auto socket.io-client page upgrades to a WebSocket; the probe may land on either node
    await pages[1]!.page.waitForFunction(() => document.querySelector('#current-transport')?.textContent === 'websocket', undefined, { timeout: 10_000 });
    const texts: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const [i, k] of kinds.entries()) {
        const text = `${k.client}/${k.transport} #${round}`;
        texts.push(text);
        await say(pages[i]!.page, text);
      }
    }
    for (const [i, p] of pages.entries()) {
      await waitForTexts(p.page, texts, 20_000);
      const got = await saidOn(p.page);
      // each message once, each sender's messages in the order sent
      expect(got.map((m) => m.text).sort()).toEqual([...texts].sort());
      for (const k of kinds) {
        const mine = got.filter((m) => m.text.startsWith(`${k.client}/${k.transport} `)).map((m) => m.text);
        expect(mine).toEqual([0, 1, 2].map((r) => `${k.client}/${k.transport} #${r}`));
      }
      expect(await currentTransport(p.page)).toBe(kinds[i]!.transport === 'auto' ? 'websocket' : kinds[i]!.transport);
      await screenshot(p.page, `haproxy-${kinds[i]!.client.replace('.', '')}-${kinds[i]!.transport}`);
      expectNoPageErrors(p);
    }
    // round-robin really sent requests to the node that does not hold the session, for both dialects
    const after = await crossed();
    expect(after.socketio - before.socketio).toBeGreaterThan(3);
    expect(after.signalr - before.signalr).toBeGreaterThan(3);
    for (const p of pages) await p.page.close();
  });

  it('a page lives through a rolling restart of both gateways and misses nothing', async () => {
    const base = `http://${lb}`;
    const rx = await openDemo(browser, base, { transport: 'websocket', room: 'restart' });
    const tx = await openDemo(browser, base, { transport: 'polling', room: 'restart' });
    let sent = 0;
    let sending = true;
    let stopAt = Infinity;
    // the sender says a message every 100 ms from before the first restart until after the last
    const feed = (async () => {
      while (sending && sent < stopAt) {
        await say(tx.page, `r${sent}`);
        sent++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const sid = await rx.page.textContent('#sid');
    const txSid = await tx.page.textContent('#sid');
    let sentAtFirst = -1;
    try {
      await vi.waitFor(() => expect(sent).toBeGreaterThanOrEqual(5), { timeout: 10_000 });
      for (const old of [...cluster.gateways]) {
        if (sentAtFirst < 0) sentAtFirst = sent;
        old.proc.kill('SIGTERM');
        expect(await old.exited).toBe(0);
        // (sessions of the earlier test's closed pages wait out their resume window, so some close)
        expect(old.log()).toMatch(/drained: \d+ sessions handed over, \d+ closed/);
        cluster.gateways.splice(cluster.gateways.indexOf(old), 1);
        // the same port again, so that HAProxy finds it
        const fresh = await cluster.addGateway(old.id, ['--drain-window-ms', '1000', '--port', String(old.port)]);
        expect(fresh.port).toBe(old.port);
        // HAProxy's health check has it back in the pool: an answer through HAProxy from it
        const { node } = (await http(`${fresh.url}/healthz`)).body;
        await vi.waitFor(async () => expect((await http(`http://${lb}/healthz`)).body.node).toBe(node), { timeout: 10_000, interval: 50 });
      }
    } catch (e) {
      sending = false;
      await feed.catch(() => {});
      throw e;
    }
    const sentAtLast = sent;
    stopAt = sent + 10;
    await feed;
    const N = sent;
    // the restarts happened while the feed ran
    expect(sentAtFirst).toBeGreaterThanOrEqual(5);
    expect(sentAtLast - sentAtFirst).toBeGreaterThan(10);
    expect(N).toBe(sentAtLast + 10);
    const want = Array.from({ length: N }, (_, i) => `r${i}`);
    await waitForTexts(rx.page, want, 30_000);
    // everything, once, in order, on the page that was connected to a restarting node
    expect((await saidOn(rx.page)).map((m) => m.text)).toEqual(want);
    expect((await saidOn(tx.page)).map((m) => m.text)).toEqual(want);
    // the same session all along: handed over between nodes, never a new one
    expect(await rx.page.textContent('#sid')).toBe(sid);
    expect(await tx.page.textContent('#sid')).toBe(txSid);
    await screenshot(rx.page, 'rolling-restart-receiver');
    expectNoPageErrors(rx);
    expectNoPageErrors(tx);
    await rx.page.close();
    await tx.page.close();
  }, 90_000);
});
