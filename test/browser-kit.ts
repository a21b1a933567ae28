/**
 * Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) for the browser tests:
 * launching it, opening the demo page with a client kind and transport, chatting, screenshots.
 * Screenshots are kept as test artifacts in test-artifacts/browser/ (not in git).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium: $CHROMIUM, else the `chromium` on the PATH (what npm test's pretest installs), else /usr/bin/chromium */
export const CHROMIUM = process.env.CHROMIUM || findOnPath('chromium') || '/usr/bin/chromium';

function findOnPath(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
}
/**
 * A browser, pages and a few real servers on a 2-core machine that runs two test files at once: a
 * page can take seconds to load and open, so a browser test file gets more than the suite's 30 s
 */
export function useBrowserTimeouts(): void {
  vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 });
}

export const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'browser');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: npm test's pretest installs it (apt-get install -y chromium), or set CHROMIUM to a Chromium binary`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface DemoPage {
  page: Page;
  /** uncaught errors in the page */
  errors: string[];
}

/**
 * Opens the demo page at `base` (in a new context, or in `browser` when it is one: tabs sharing
 * storage) with client kind `client` and `transport`, waits until it is open
 * and, unless `join` is false, has joined `room`.
 */
export async function openDemo(
  browser: Browser | BrowserContext,
  base: string,
  o: { client?: string; transport?: string; room?: string; join?: boolean; timeout?: number } = {},
): Promise<DemoPage> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const room = o.room ?? 'lobby';
  const timeout = o.timeout ?? 30_000; // a page through a proxy on a loaded machine can take 15 s to load its bundles and open
  await page.goto(
    `${base}/?client=${encodeURIComponent(o.client ?? 'native')}&transport=${encodeURIComponent(o.transport ?? 'auto')}&room=${encodeURIComponent(room)}`,
  );
  await page.waitForSelector('#status[data-state="open"]', { timeout }).catch(async (e: Error) => {
    // say what the page saw (its log, its state), not only that it never opened
    const log = await page.$$eval('#log li', (lis) => lis.map((li) => li.textContent)).catch(() => []);
    throw new Error(
      `${o.client ?? 'native'}/${o.transport ?? 'auto'} page never opened (${e.message.split('\n')[0]}); page errors: ${JSON.stringify(errors)}; its log: ${JSON.stringify(log)}`,
    );
  });
  // the session's sid as the app sees it is shown once the page knows it
  await page.waitForFunction(() => document.querySelector('#sid')?.textContent !== '–', undefined, { timeout });
  if (o.join !== false) {
    await page.click('#join');
    await page.waitForSelector(`#rooms li[data-room="${room}"]`, { timeout });
  }
  return { page, errors };
}

export async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#send');
}

export interface Said {
  text: string;
  from: string;
  fromClient: string;
  fromTransport: string;
}

/** the page's chat log */
export function saidOn(page: Page): Promise<Said[]> {
  return page.$$eval('#log li.msg', (lis) =>
    lis.map((li) => {
      const d = (li as HTMLElement).dataset;
      return { text: d.text!, from: d.from!, fromClient: d.fromClient!, fromTransport: d.fromTransport! };
    }),
  );
}

/** waits until the page's log has a message with each of `texts` */
export async function waitForTexts(page: Page, texts: string[], timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const have = new Set(Array.from(document.querySelectorAll('#log li.msg'), (li) => (li as HTMLElement).dataset.text));
      return want.every((t) => have.has(t));
    },
    texts,
    { timeout },
  );
}

export async function currentTransport(page: Page): Promise<string> {
  return (await page.textContent('#current-transport')) ?? '';
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** the page threw nothing */
export function expectNoPageErrors(p: DemoPage): void {
  expect(p.errors).toEqual([]);
}

/** what the app says of the page's session (the demo app's whoami: `session.transport` etc.) */
export async function whoami(page: Page): Promise<{ sid: string; client: string; transport: string; ip: string }> {
  return page.evaluate(() => (window as any).syDemo.conn.whoami());
}
