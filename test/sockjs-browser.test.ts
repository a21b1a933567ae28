/**
 * sockjs-client 1.6 in headless Chromium (Debian's, driven by playwright-core) over `jsonp-polling`,
 * which needs a DOM (it loads each answer as a script) and so cannot run in Node: against an app
 * that emits in its `open`, so that the session's first answer has `o` and messages waiting (each
 * jsonp answer carries one frame: `o` first, the messages on the next poll).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { closeAll, startNode } from './helpers.ts';
import { launchBrowser, useBrowserTimeouts } from './browser-kit.ts';
import type { App } from '../cluster/app.ts';

useBrowserTimeouts();

let browser: Browser;
let node: Awaited<ReturnType<typeof startNode>>;

/** emits two events in `open`; answers `echo` */
const app: App = {
  open(session) {
    session.emit('hello', 1);
    session.emit('hello', 2);
  },
  event(_session, event, args, reply) {
    if (event === 'echo') reply?.(...args);
  },
};

beforeAll(async () => {
  browser = await launchBrowser();
  node = await startNode({ app });
});
afterAll(async () => {
  await browser?.close();
  await closeAll();
});

describe('sockjs-client in Chromium over jsonp-polling', () => {
  it('opens, gets what the app emitted on open, in order, and echoes', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${node.url}/sockjs`);
    await page.addScriptTag({ url: '/sockjs/sockjs.min.js' });
    const got = await page.evaluate(
      (url) =>
        new Promise<{ transport: string; frames: Array<Record<string, unknown>> }>((resolve, reject) => {
          const SockJS = (window as unknown as { SockJS: new (u: string, r: null, o: object) => any }).SockJS;
          const s = new SockJS(url, null, { transports: ['jsonp-polling'] });
          const frames: Array<Record<string, unknown>> = [];
          s.onopen = () => s.send(JSON.stringify({ type: 'event', event: 'echo', args: ['over jsonp'], ack: 1 }));
          s.onmessage = (m: { data: string }) => {
            const f = JSON.parse(m.data);
            frames.push(f);
            if (f.type === 'reply') {
              resolve({ transport: s.transport, frames });
              s.close();
            }
          };
          s.onclose = (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`));
        }),
      `${node.url}/sockjs`,
    );
    expect(got.transport).toBe('jsonp-polling');
    expect(got.frames.map((f) => [f.type, f.event ?? null, f.args])).toEqual([
      ['event', 'hello', [1]],
      ['event', 'hello', [2]],
      ['reply', null, ['over jsonp']],
    ]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
