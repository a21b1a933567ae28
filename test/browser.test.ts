/**
 * The demo page in a real headless Chromium (Debian's, driven by playwright-core), on one node:
 * every client kind the gateway serves, each the real library the page loads from the gateway,
 * chatting in one room; sockjs-client's browser-only transports; a dropped connection that
 * resumes. Screenshots go to test-artifacts/browser/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { closeAll, startNode } from './helpers.ts';
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
  await closeAll();
});

describe('demo page in Chromium', () => {
  it('serves the client libraries it loads, from node_modules', async () => {
    for (const path of [
      '/vendor/socket.io.min.js',
      '/vendor/signalr.min.js',
      '/vendor/signalr-protocol-msgpack.min.js',
      '/sockjs/sockjs.min.js',
      '/client.js',
    ]) {
      const r = await fetch(`${node.url}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type'), path).toMatch(/javascript/);
      expect((await r.text()).length, path).toBeGreaterThan(path === '/client.js' ? 10 : 10_000);
    }
  });

  it('native WebSocket, SSE and long-polling pages chat in one room', async () => {
    const pages = await Promise.all(['websocket', 'sse', 'polling'].map((transport) => openDemo(browser, node.url, { transport })));
    for (const [i, { page }] of pages.entries()) {
      expect(await currentTransport(page)).toBe(['websocket', 'sse', 'polling'][i]);
      await say(page, `hello from page ${i}`);
    }
    const texts = ['hello from page 0', 'hello from page 1', 'hello from page 2'];
    for (const { page } of pages) {
      await waitForTexts(page, texts);
      expect((await saidOn(page)).map((m) => m.text).sort()).toEqual(texts);
    }
    // whoami answers with the page's own transport and session
    const { page } = pages[1]!;
    await page.click('#whoami');
    await page.waitForFunction(() => document.querySelector('#whoami-out')?.textContent?.includes('"sse"'));
    const who = JSON.parse((await page.textContent('#whoami-out'))!);
    expect(who).toMatchObject({ client: 'native', transport: 'sse', ip: '127.0.0.1' });
    expect(who.sid).toBe(await page.textContent('#sid'));
    for (const p of pages) {
      expectNoPageErrors(p);
      await p.page.close();
    }
  });

  it('four pages, one per client kind (native, socket.io-client, @microsoft/signalr, sockjs-client), chat in one room', async () => {
    const kinds = [
      { client: 'native', app: 'native', transport: 'websocket', server: 'websocket' },
      { client: 'socket.io', app: 'socket.io', transport: 'websocket', server: 'websocket' }, // auto: polling, then the upgrade
      { client: 'signalr', app: 'signalr', transport: 'WebSockets', server: 'websocket' }, // auto: negotiate picks WebSockets
      { client: 'sockjs', app: 'sockjs', transport: 'websocket', server: 'websocket' }, // auto: sockjs-client picks websocket
    ];
    const pages = [];
    for (const k of kinds) pages.push(await openDemo(browser, node.url, { client: k.client, room: 'four' }));
    for (const [i, k] of kinds.entries()) {
      const { page } = pages[i]!;
      expect(await page.textContent('#current-client')).toBe(k.client);
      // socket.io-client starts with polling and upgrades
      await page.waitForFunction((t) => document.querySelector('#current-transport')?.textContent === t, k.transport, { timeout: 10_000 });
      // and the app sees the same (session.transport follows the upgrade)
      expect(await whoami(page)).toMatchObject({ client: k.app, transport: k.server, sid: await page.textContent('#sid') });
    }
    for (const [i, k] of kinds.entries()) await say(pages[i]!.page, `hi from ${k.client}`);
    const texts = kinds.map((k) => `hi from ${k.client}`);
    for (const [i, { page }] of pages.entries()) {
      await waitForTexts(page, texts);
      const got = await saidOn(page);
      expect(got.map((m) => m.text).sort()).toEqual([...texts].sort());
      // each message says who sent it: client kind and transport
      for (const [j, k] of kinds.entries()) {
        const m = got.find((x) => x.text === `hi from ${k.client}`)!;
        expect(m.fromClient).toBe(k.app);
        expect(m.fromTransport).toBe(k.transport);
        if (i === j) expect(m.from).toBe(await page.textContent('#sid'));
      }
      await screenshot(page, `four-kinds-${kinds[i]!.client.replace('.', '')}`);
      expectNoPageErrors(pages[i]!);
    }
    for (const p of pages) await p.page.close();
  });

  // sockjs-client's transport → the kind of request the gateway serves it with; a test each (an
  // iframe transport loads a page and sockjs-client again: slow on a busy machine)
  const oldBrowserTransports = {
    htmlfile: 'sse',
    'jsonp-polling': 'polling',
    'iframe-eventsource': 'sse',
    'iframe-htmlfile': 'sse',
    'iframe-xhr-polling': 'polling',
  };
  it.each(Object.entries(oldBrowserTransports))("sockjs-client's browser-only transport %s chats with a native page", async (transport, server) => {
    const room = `old-browsers-${transport}`;
    const native = await openDemo(browser, node.url, { room });
    const p = await openDemo(browser, node.url, { client: 'sockjs', transport, room, timeout: 30_000 });
    expect(await currentTransport(p.page)).toBe(transport);
    expect(await whoami(p.page)).toMatchObject({ client: 'sockjs', transport: server });
    await say(p.page, `over ${transport}`);
    await say(native.page, `to ${transport}`);
    await waitForTexts(p.page, [`over ${transport}`, `to ${transport}`]);
    await waitForTexts(native.page, [`over ${transport}`]);
    const m = (await saidOn(native.page)).find((x) => x.text === `over ${transport}`)!;
    expect(m).toMatchObject({ fromClient: 'sockjs', fromTransport: transport });
    await screenshot(p.page, `sockjs-${transport}`);
    expectNoPageErrors(p);
    await p.page.close();
    await native.page.close();
  });

  it('a page whose connection drops resumes and misses nothing', async () => {
    const { page: rx } = await openDemo(browser, node.url, { transport: 'websocket', room: 'drops' });
    const { page: tx } = await openDemo(browser, node.url, { transport: 'polling', room: 'drops' });
    const sid = await rx.textContent('#sid');
    // the sessions that exist now (earlier tests' closed pages may expire meanwhile, so compare ids, not a count)
    const before = new Set(node.gateway.sessions.keys());
    await rx.click('#drop');
    for (let i = 0; i < 20; i++) await say(tx, `m${i}`);
    await waitForTexts(rx, ['m19']);
    expect((await saidOn(rx)).map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    // it did drop, and came back to the same session, which missed nothing
    await rx.waitForSelector('#log li.sys:has-text("resumed session")');
    expect(await rx.textContent('#log li.sys:has-text("resumed session")')).toContain(`resumed session ${sid} over websocket: nothing missed`);
    expect(await rx.textContent('#sid')).toBe(sid);
    // no session was made for the dropped page: it came back to its own
    expect([...node.gateway.sessions.keys()].filter((id) => !before.has(id))).toEqual([]);
    expect(node.gateway.sessions.has(sid!)).toBe(true);
    await rx.close();
    await tx.close();
  });

  it("follows the node's paths for each dialect (socketio.path, signalr.hubs, sockjs.prefix), and offers no dialect the node does not serve", async () => {
    const custom = await startNode({ socketio: { path: '/live/' }, signalr: { hubs: ['chat'] }, sockjs: { prefix: '/sj' } });
    for (const client of ['socket.io', 'signalr', 'sockjs']) {
      const p = await openDemo(browser, custom.url, { client, room: 'paths' });
      expect(await whoami(p.page)).toMatchObject({ client });
      expectNoPageErrors(p);
      await p.page.close();
    }
    const bare = await startNode({ socketio: false, signalr: false, sockjs: false });
    const p = await openDemo(browser, bare.url, { room: 'paths' });
    const disabled = await p.page.$$eval('#client option', (os) =>
      os.filter((o) => (o as HTMLOptionElement).disabled).map((o) => (o as HTMLOptionElement).value),
    );
    expect(disabled).toEqual(['socket.io', 'signalr', 'sockjs']);
    expectNoPageErrors(p);
    await p.page.close();
  });
});
