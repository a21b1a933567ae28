/**
 * The demo page in a real headless Chromium (Debian's, driven by playwright-core): each
 * transport connects, and chat messages cross between pages on different transports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { closeAll, startNode } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
let browser: Browser;
let node: Awaited<ReturnType<typeof startNode>>;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm test's pretest installs it (apt-get install -y chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  node = await startNode();
});
afterAll(async () => {
  await browser?.close();
  await closeAll();
});

async function openPage(transport: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${node.url}/?transport=${transport}&room=lobby`);
  await page.waitForSelector('#status[data-state="open"]', { timeout: 10_000 });
  expect(await page.textContent('#current-transport')).toBe(transport);
  await page.click('#join');
  await page.waitForSelector('#rooms li[data-room="lobby"]');
  return { page, errors };
}

describe('demo page in Chromium', () => {
  it('WebSocket, SSE and long-polling pages chat in one room', async () => {
    const pages = await Promise.all(['websocket', 'sse', 'polling'].map(openPage));
    for (const [i, { page }] of pages.entries()) {
      await page.fill('#text', `hello from page ${i}`);
      await page.click('#send');
    }
    for (const { page } of pages) {
      for (let i = 0; i < 3; i++) await page.waitForSelector(`#log li.msg[data-text="hello from page ${i}"]`, { timeout: 10_000 });
      const texts = await page.$$eval('#log li.msg', (lis) => lis.map((li) => (li as HTMLElement).dataset.text));
      expect(texts.sort()).toEqual(['hello from page 0', 'hello from page 1', 'hello from page 2']);
    }
    // whoami answers with the page's own transport and session
    const { page } = pages[1]!;
    await page.click('#whoami');
    await page.waitForFunction(() => document.querySelector('#whoami-out')?.textContent?.includes('"sse"'));
    const who = JSON.parse((await page.textContent('#whoami-out'))!);
    expect(who).toMatchObject({ transport: 'sse', ip: '127.0.0.1' });
    expect(who.sid).toBe(await page.textContent('#sid'));
    for (const p of pages) {
      expect(p.errors).toEqual([]);
      await p.page.close();
    }
  });

  it('a page whose connection drops resumes and misses nothing', async () => {
    const { page: rx } = await openPage('websocket');
    const { page: tx } = await openPage('polling');
    await rx.click('#drop');
    for (let i = 0; i < 20; i++) {
      await tx.fill('#text', `m${i}`);
      await tx.click('#send');
    }
    await rx.waitForSelector('#log li.msg[data-text="m19"]', { timeout: 15_000 });
    const texts = await rx.$$eval('#log li.msg', (lis) => lis.map((li) => (li as HTMLElement).dataset.text));
    expect(texts).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    await rx.close();
    await tx.close();
  });
});
