/**
 * The demo page in headless Chromium behind hostile proxies (test/hostile-proxy.ts, real sockets):
 * one that refuses WebSocket upgrades, and one that also buffers whole responses (so no stream
 * gets through). Each kind of client falls back by itself and chats with a page that reaches the
 * gateway directly. Screenshots go to test-artifacts/browser/.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Browser } from 'playwright-core';
import { closeAll, startNode } from './helpers.ts';
import { closeHostileProxies, startHostileProxy, type HostileProxy } from './hostile-proxy.ts';
import {
  currentTransport,
  expectNoPageErrors,
  launchBrowser,
  openDemo,
  saidOn,
  say,
  screenshot,
  waitForTexts,
  whoami,
  type DemoPage,
  useBrowserTimeouts,
} from './browser-kit.ts';

useBrowserTimeouts();

let browser: Browser;
let node: Awaited<ReturnType<typeof startNode>>;

beforeAll(async () => {
  browser = await launchBrowser();
  node = await startNode();
});
afterAll(async () => {
  await browser?.close();
  await closeHostileProxies();
  await closeAll();
});

/** `p` and a page on the gateway directly hear each other in `room` */
async function chatsWithDirect(p: DemoPage, room: string, label: string): Promise<void> {
  const direct = await openDemo(browser, node.url, { room });
  await say(p.page, `from behind: ${label}`);
  await say(direct.page, `to behind: ${label}`);
  await waitForTexts(p.page, [`from behind: ${label}`, `to behind: ${label}`]);
  await waitForTexts(direct.page, [`from behind: ${label}`]);
  expect((await saidOn(p.page)).map((m) => m.text)).toEqual([`from behind: ${label}`, `to behind: ${label}`]);
  await direct.page.close();
}

describe('demo page in Chromium behind a proxy that refuses WebSocket upgrades', () => {
  let proxy: HostileProxy;
  beforeAll(async () => {
    proxy = await startHostileProxy(node.url, { upgrade: 'refuse' });
  });

  const cases = [
    { client: 'native', fallback: 'sse', server: 'sse' },
    { client: 'socket.io', fallback: 'polling', server: 'polling' }, // the upgrade probe is refused: it stays on polling
    { client: 'signalr', fallback: 'ServerSentEvents', server: 'sse' },
    { client: 'sockjs', fallback: 'xhr-streaming', server: 'sse' },
  ];
  for (const c of cases) {
    it(`${c.client} (transport auto) falls back to ${c.fallback} and chats`, async () => {
      const upgrades = proxy.counts.upgrades;
      const p = await openDemo(browser, proxy.url, { client: c.client, room: `refused-${c.client}` });
      // it did try a WebSocket (socket.io-client: its upgrade, after the open)
      await vi.waitFor(() => expect(proxy.counts.upgrades).toBeGreaterThan(upgrades), { timeout: 10_000 });
      expect(await currentTransport(p.page)).toBe(c.fallback);
      // the app sees the same
      expect(await whoami(p.page)).toMatchObject({ client: c.client, transport: c.server });
      await chatsWithDirect(p, `refused-${c.client}`, c.client);
      await screenshot(p.page, `proxy-refuses-upgrade-${c.client.replace('.', '')}`);
      expectNoPageErrors(p);
      await p.page.close();
    }, 60_000);
  }

  it('the native client remembers what worked: a reload, and another tab, start with SSE, no WebSocket attempt', async () => {
    const context = await browser.newContext();
    const first = await openDemo(context, proxy.url, { room: 'remember' });
    expect(await currentTransport(first.page)).toBe('sse');
    const upgrades = proxy.counts.upgrades;
    await first.page.reload();
    await first.page.waitForSelector('#status[data-state="open"]');
    expect(await currentTransport(first.page)).toBe('sse');
    expect(proxy.counts.upgrades).toBe(upgrades);
    // another tab of the same browser profile (the same localStorage)
    const second = await openDemo(context, proxy.url, { room: 'remember' });
    expect(await currentTransport(second.page)).toBe('sse');
    expect(proxy.counts.upgrades).toBe(upgrades);
    // a new profile has nothing remembered: it tries the WebSocket first
    const fresh = await openDemo(browser, proxy.url, { room: 'remember' });
    expect(await currentTransport(fresh.page)).toBe('sse');
    expect(proxy.counts.upgrades).toBeGreaterThan(upgrades);
    for (const p of [first, second, fresh]) expectNoPageErrors(p);
    await context.close();
    await fresh.page.close();
  }, 60_000);
});

describe('demo page in Chromium behind a proxy that refuses upgrades and buffers whole responses', () => {
  let proxy: HostileProxy;
  beforeAll(async () => {
    proxy = await startHostileProxy(node.url, { upgrade: 'refuse', bufferResponses: true });
  });

  const cases = [
    { client: 'native', fallback: 'polling' }, // SSE's open never arrives: long-polling
    { client: 'socket.io', fallback: 'polling' },
    { client: 'sockjs', fallback: 'xhr-polling' }, // xhr-streaming and eventsource never open
    // (not @microsoft/signalr: its SSE transport waits for the stream's open with no deadline, so
    // behind such a proxy it never gets to long-polling; docs/signalr.md says so)
  ];
  for (const c of cases) {
    it(`${c.client} (transport auto) falls back to ${c.fallback} and chats`, async () => {
      const p = await openDemo(browser, proxy.url, { client: c.client, room: `buffered-${c.client}`, timeout: 25_000 });
      expect(await currentTransport(p.page)).toBe(c.fallback);
      expect(await whoami(p.page)).toMatchObject({ client: c.client, transport: 'polling' });
      await chatsWithDirect(p, `buffered-${c.client}`, c.client);
      await screenshot(p.page, `proxy-buffers-${c.client.replace('.', '')}`);
      expectNoPageErrors(p);
      await p.page.close();
    }, 60_000);
  }
});

describe('sockjs-client in Chromium whose receiving connection is cut', () => {
  let proxy: HostileProxy;
  beforeAll(async () => {
    proxy = await startHostileProxy(node.url, { upgrade: 'refuse' });
  });

  // (xhr-polling: Chromium sends the held poll again on a new connection, as no byte of its answer
  // had come; eventsource: sockjs-client takes the error as a network one and opens the next)
  for (const transport of ['eventsource', 'xhr-polling']) {
    it(`${transport}: the receiver comes back, and what was said meanwhile arrives once, in order`, async () => {
      const room = `cut-${transport}`;
      const p = await openDemo(browser, proxy.url, { client: 'sockjs', transport, room });
      const sid = await p.page.textContent('#sid');
      const direct = await openDemo(browser, node.url, { room });
      proxy.dropAll();
      const want = Array.from({ length: 10 }, (_, i) => `${transport} ${i}`);
      for (const t of want) await say(direct.page, t);
      await waitForTexts(p.page, want, 20_000);
      expect((await saidOn(p.page)).map((m) => m.text)).toEqual(want);
      // the same session all along
      expect(await p.page.textContent('#sid')).toBe(sid);
      expect(await p.page.getAttribute('#status', 'data-state')).toBe('open');
      expectNoPageErrors(p);
      await p.page.close();
      await direct.page.close();
    }, 60_000);
  }

  it('xhr-streaming: sockjs-client ends the session itself (a cut XHR has status 0, which it takes as permanent)', async () => {
    const p = await openDemo(browser, proxy.url, { client: 'sockjs', transport: 'xhr-streaming', room: 'cut-stream' });
    proxy.dropAll();
    await p.page.waitForSelector('#status[data-state="closed"]', { timeout: 20_000 });
    expect(await p.page.textContent('#log')).toContain('closed: 1006 permanent');
    expectNoPageErrors(p);
    await p.page.close();
  }, 60_000);
});
