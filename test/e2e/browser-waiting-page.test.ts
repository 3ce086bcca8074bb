/**
 * The browser waiting page (CONTRACT §3, the seed's Sc55–Sc56 and its sound), in headless Chromium
 * through playwright-core, against a real reception and content server whose only slot is held:
 * busy → the waiting page (position, estimate, live countdown, an aria-live region, assets only
 * from the reception) → the slot frees → the page retries by itself, plays a sound (asserted by
 * hooking `AudioContext`), shows a notification, and the download starts while the page stays to
 * say so. A second browser without JavaScript gets there too: meta refresh + the queue cookie.
 * Leaves a screenshot of the waiting page in `test-artifacts/`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/proc.js';
import { holdSlot, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/apps/editor-2.1.dmg';
const BODY = randomBytes(512 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');
const HOLD = '/hold.bin';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');

let stack: Stack;
let browser: Browser;

before(async () => {
  stack = await startStack({
    servers: 1,
    server: () => ({ capacity: 1 }),
    reception: { queue: { holdSeconds: 3, maxRetryAfterSeconds: 3, abandonSeconds: 20 } },
    items: { [ITEM]: { content: BODY }, [HOLD]: { content: randomBytes(40 * 1024 * 1024) } },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Records every sound started and every notification shown, before any page script runs. */
const HOOKS = `
  window.__sounds = [];
  window.__notifications = [];
  const Base = window.AudioContext || window.webkitAudioContext;
  if (Base) {
    class Recording extends Base {
      createOscillator() {
        const osc = super.createOscillator();
        const start = osc.start.bind(osc);
        osc.start = (...args) => {
          window.__sounds.push({ frequency: osc.frequency.value, state: this.state });
          return start(...args);
        };
        return osc;
      }
    }
    window.AudioContext = Recording;
  }
  class RecordingNotification {
    static permission = 'granted';
    static requestPermission() { return Promise.resolve('granted'); }
    constructor(title, options) { window.__notifications.push({ title, body: options && options.body }); }
  }
  window.Notification = RecordingNotification;
`;

test('busy → waiting page → the slot frees → sound, notification, and the download starts', {
  timeout: 120_000,
}, async () => {
  const hold = await holdSlot(stack, HOLD, path.join(stack.dep.dir, 'holder-js'));
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1024, height: 720 } });
  try {
    await context.addInitScript(HOOKS);
    const page = await context.newPage();
    const origins = new Set<string>();
    page.on('request', (req) => origins.add(new URL(req.url()).origin));
    // The script's retries: each holds itself open with Prefer: wait (CONTRACT §3).
    const prefers: (string | undefined)[] = [];
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/orders')
        prefers.push(req.headers().prefer);
    });

    const res = await page.goto(stack.url(ITEM));
    assert.equal(res?.status(), 503);
    assert.match(res?.headers()['retry-after'] ?? '', /^\d+$/);
    await page.waitForSelector('html.js', { timeout: 10_000 });
    assert.equal(await page.textContent('#rg-position'), '1');
    assert.match((await page.textContent('#rg-live')) ?? '', /number 1 in line/);
    assert.equal(await page.getAttribute('#rg-live', 'aria-live'), 'polite');
    assert.match((await page.textContent('#rg-wait')) ?? '', /\d+ s|min/);
    assert.match(await page.title(), /In line for \/apps\/editor-2\.1\.dmg/);
    // The countdown is live: it changes by itself.
    const first = await page.textContent('#rg-countdown');
    await page.waitForFunction(
      `document.getElementById('rg-countdown').textContent !== ${JSON.stringify(first)}`,
      null,
      {
        timeout: 10_000,
      },
    );

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'waiting-page.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 780 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'waiting-page-phone.png'), fullPage: true });
    const overflow = await page.evaluate('document.documentElement.scrollWidth > window.innerWidth');
    assert.equal(overflow, false, 'readable on a phone: no sideways scrolling');

    const download = page.waitForEvent('download', { timeout: 60_000 });
    assert.equal(await hold.release(), 0, hold.holder.output());
    const dl = await download;
    assert.equal(dl.suggestedFilename(), 'editor-2.1.dmg');
    const saved = path.join(stack.dep.dir, 'browser-download.bin');
    await dl.saveAs(saved);
    assert.equal(createHash('sha256').update(readFileSync(saved)).digest('hex'), SHA);

    await page.waitForSelector('main.admitted', { timeout: 10_000 });
    assert.match((await page.textContent('#rg-status')) ?? '', /has started/);
    const sounds = (await page.evaluate('window.__sounds')) as unknown[];
    assert.ok(sounds.length >= 1, 'a sound was played');
    const notes = (await page.evaluate('window.__notifications')) as { title: string }[];
    assert.equal(notes.length, 1, 'one notification');
    assert.ok(page.url().startsWith(stack.url(ITEM)), 'the page stays');
    assert.ok(prefers.length >= 1, 'the script retried');
    for (const p of prefers) assert.match(p ?? '', /^wait=\d+$/, 'every retry holds itself open');

    const allowed = new Set([
      new URL(stack.dep.config.reception.publicUrl).origin,
      ...stack.dep.config.contentServers.map((s) => new URL(s.publicUrl).origin),
    ]);
    for (const origin of origins) assert.ok(allowed.has(origin), `no request to ${origin} (no CDN)`);
  } finally {
    await context.close();
    if (hold.holder.child.exitCode === null) await hold.release();
  }
});

test('without JavaScript: the meta refresh and the queue cookie get the download started', {
  timeout: 120_000,
}, async () => {
  const hold = await holdSlot(stack, HOLD, path.join(stack.dep.dir, 'holder-nojs'));
  const context = await browser.newContext({ acceptDownloads: true, javaScriptEnabled: false });
  try {
    const page = await context.newPage();
    const res = await page.goto(stack.url(ITEM));
    assert.equal(res?.status(), 503);
    assert.equal(await page.textContent('#rg-position'), '1');
    const cookies = await context.cookies();
    const queue = cookies.find((c) => c.name === 'rushgate_queue');
    assert.ok(queue, 'the reception set the queue cookie');
    assert.equal(queue.httpOnly, true);
    const download = page.waitForEvent('download', { timeout: 60_000 });
    await waitUntil(async () => (await page.textContent('#rg-position')) === '1', 5_000, 'page shown');
    assert.equal(await hold.release(), 0, hold.holder.output());
    const dl = await download;
    assert.equal(dl.suggestedFilename(), 'editor-2.1.dmg');
    const saved = path.join(stack.dep.dir, 'browser-nojs.bin');
    await dl.saveAs(saved);
    assert.equal(createHash('sha256').update(readFileSync(saved)).digest('hex'), SHA);
  } finally {
    await context.close();
    if (hold.holder.child.exitCode === null) await hold.release();
  }
});
