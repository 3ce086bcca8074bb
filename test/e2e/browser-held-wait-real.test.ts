/**
 * The waiting page in Chromium, admitted through its held-open request (CONTRACT §3 "Admission
 * without delay"), against a real reception and a real content server of capacity 1 — the flow
 * of browser-held-wait.test.ts, whose reception is a fake written in the test.
 *
 * A first order, made by the test, takes the only slot; its ticket is not used yet. The browser
 * opens `GET /{item}` and gets the waiting page (503, HTML); its script sends its retry with
 * `Prefer: wait=N`. While the reception holds that request open, the test downloads the first
 * ticket to its end, which fulfils the order and frees the slot. The page must be admitted on that
 * very request — seen in Playwright: sent before the slot was freed, carrying `Prefer: wait`,
 * answered `201` with the ticket, and no retry sent after the freeing — and its download must
 * bring the item's bytes.
 *
 * What makes it able to fail: a page that did not hold its retry open is answered busy at once
 * and is admitted, if at all, on a later retry sent after the slot was freed, which the order of
 * the events refuses; `queue.holdSeconds` and `queue.maxRetryAfterSeconds` are high so that the
 * page's `Retry-After` (its hold) is the reception's whole estimate, not a cap below it. That
 * estimate is the cold-start one (about 10 s: nothing measured yet, a ticket not used), so the
 * order of the events, not a bound on time, is what tells holding from waiting out `Retry-After`;
 * a slowly read first download would not raise it reliably, as the server's measured rate comes
 * in bursts of the socket buffers and reads 0 between them. Order and outcomes only.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Request } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/launch/held-real.bin';
const BODY = randomBytes(512 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');
/** How long the test waits for the page's admission once the slot is freed: only a guard. */
const ADMISSION_BOUND_MS = 30_000;

let stack: Stack;
let browser: Browser;

before(async () => {
  stack = await startStack({
    servers: 1,
    server: () => ({ capacity: 1 }),
    reception: {
      // The front waiter's Retry-After is capped at holdSeconds − 1 and at maxRetryAfterSeconds;
      // both high, so the page is told the whole estimate (it asks to be held for 30 s).
      queue: { holdSeconds: 600, maxRetryAfterSeconds: 600, abandonSeconds: 600 },
      // The first ticket must not lapse on its own and free the slot: the test frees it.
      tickets: { claimSeconds: 600, claimSecondsWhileWaiting: 600 },
    },
    items: { [ITEM]: { content: BODY } },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

async function heldOpen(): Promise<number> {
  const res = await fetch(`${stack.internalUrl}/status`);
  return ((await res.json()) as { queue: { heldOpen: number } }).queue.heldOpen;
}

test('the page is admitted through its held-open retry when the real slot frees, and downloads the item', {
  timeout: 120_000,
}, async () => {
  // The first order takes the only slot; its ticket waits, unused, until the test frees the slot.
  const first = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: ITEM }),
  });
  const firstBody = (await first.json()) as { ticket?: { url: string } };
  assert.equal(first.status, 201, JSON.stringify(firstBody));
  assert.ok(firstBody.ticket?.url);

  const context = await browser.newContext({ acceptDownloads: true });
  try {
    // Everything in one order: the page's retries (sent, answered) and the test's freeing of the slot.
    const events: string[] = [];
    const retries: Request[] = [];
    const page = await context.newPage();
    const isRetry = (req: Request) =>
      req.method() === 'POST' && new URL(req.url()).pathname === '/api/orders';
    page.on('request', (req) => {
      if (!isRetry(req)) return;
      retries.push(req);
      events.push(`retry ${retries.indexOf(req)} sent, prefer ${req.headers().prefer ?? 'none'}`);
    });
    page.on('response', (res) => {
      const req = res.request();
      if (isRetry(req)) events.push(`retry ${retries.indexOf(req)} answered ${res.status()}`);
    });
    const answered = (i: number) => events.some((e) => e.startsWith(`retry ${i} answered`));
    const log = () => events.join('; ');

    const res = await page.goto(stack.url(ITEM));
    assert.equal(res?.status(), 503);
    assert.match(res?.headers()['content-type'] ?? '', /^text\/html/);
    const retryAfter = Number(res?.headers()['retry-after']);
    assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`);
    await page.waitForSelector('html.js', { timeout: 10_000 });
    assert.equal(await page.textContent('#rg-position'), '1');

    // Free the slot only while the reception holds the page's retry open — or once a retry was
    // answered without being held, and then the assertions below fail, as they should.
    await waitUntil(
      async () => retries.length >= 1 && (answered(retries.length - 1) || (await heldOpen()) >= 1),
      20_000,
      'the page to send its retry',
    );
    const inFlight = retries.findIndex((_, i) => !answered(i));

    const download = page.waitForEvent('download', { timeout: ADMISSION_BOUND_MS + 30_000 });
    // A failure before it is awaited must be reported as itself, not as this promise's rejection.
    download.catch(() => {});
    events.push('slot freeing');
    const firstDownload = await fetch(firstBody.ticket.url);
    assert.equal(firstDownload.status, 200);
    const firstBytes = Buffer.from(await firstDownload.arrayBuffer());
    events.push('slot freed');
    assert.equal(createHash('sha256').update(firstBytes).digest('hex'), SHA, 'the first download is whole');

    await waitUntil(
      () => events.some((e) => / answered 201$/.test(e)),
      ADMISSION_BOUND_MS,
      `the page's admission (${log()})`,
    );
    const admitting = Number(/^retry (\d+)/.exec(events.find((e) => / answered 201$/.test(e))!)?.[1]);
    assert.notEqual(inFlight, -1, `a retry was held open when the slot was freed (${log()})`);
    assert.equal(admitting, inFlight, `admitted on the retry held open across the freeing (${log()})`);
    const prefer = retries[admitting]!.headers().prefer ?? '';
    assert.match(prefer, /^wait=\d+$/, 'the admitting retry holds itself open');
    assert.ok(
      events.indexOf(`retry ${admitting} sent, prefer ${prefer}`) < events.indexOf('slot freeing'),
      `the admitting retry was sent before the slot was freed (${log()})`,
    );
    assert.ok(
      !events.some((e, i) => i > events.indexOf('slot freeing') && / sent, /.test(e)),
      `no retry was sent after the slot was freed (${log()})`,
    );
    const ticket = (await (await retries[admitting]!.response())?.json()) as { ticket?: { url: string } };
    assert.ok(ticket.ticket?.url, 'the 201 carries the ticket');

    const dl = await download;
    assert.equal(dl.suggestedFilename(), 'held-real.bin');
    assert.equal(dl.url(), ticket.ticket.url, 'the download is the admitting ticket');
    const saved = path.join(stack.dep.dir, 'browser-held-real.bin');
    await dl.saveAs(saved);
    assert.equal(createHash('sha256').update(readFileSync(saved)).digest('hex'), SHA, 'the right bytes');
    await page.waitForSelector('main.admitted', { timeout: 10_000 });
    assert.match((await page.textContent('#rg-status')) ?? '', /has started/);
    console.log(`Retry-After ${retryAfter} s; ${log()}`);
  } finally {
    await context.close();
  }
});
