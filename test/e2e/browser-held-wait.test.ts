/**
 * The waiting page's script against a reception that holds requests open (CONTRACT §3
 * "Admission without delay"), in headless Chromium. The fake reception here answers the way the
 * contract says: a held `POST /api/orders` is answered busy with `Preference-Applied` when its
 * hold ends, or `201` the moment the client is admitted. Every `Retry-After` it sends after the
 * first is 600 s, so a page that waited for Retry-After would never reach the second request
 * within the test: that the second arrives at all shows a held busy answer is followed at once,
 * and the download shows the page was admitted through its held-open request.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { renderWaitingPage, WAITING_PAGE_ASSETS } from '../../src/reception/waiting-page.js';
import { launchChromium } from '../helpers/browser.js';
import { waitUntil } from './get-harness.js';

const ITEM = '/launch/held.bin';
const BODY = Buffer.from('held-open admission\n'.repeat(100));

interface Held {
  prefer: string | undefined;
  body: string;
  res: ServerResponse;
}

let server: Server;
let origin: string;
let browser: Browser;
const held: Held[] = [];

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === ITEM) {
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'retry-after': '2' });
    res.end(
      renderWaitingPage({
        item: ITEM,
        position: 2,
        estimatedWaitSeconds: 40,
        retryAfterSeconds: 2,
        queueToken: 'tok-1',
        retryUrl: ITEM,
      }),
    );
    return;
  }
  const asset = url.startsWith('/_rushgate/')
    ? WAITING_PAGE_ASSETS.get(url.slice('/_rushgate/'.length))
    : undefined;
  if (req.method === 'GET' && asset) {
    res.writeHead(200, { 'content-type': asset.contentType });
    res.end(asset.body);
    return;
  }
  if (req.method === 'POST' && url === '/api/orders') {
    held.push({ prefer: req.headers.prefer as string | undefined, body, res });
    return;
  }
  if (req.method === 'GET' && url === '/t/ticket/file.bin') {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(BODY.length),
      'content-disposition': 'attachment; filename="held.bin"',
    });
    res.end(BODY);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: 'not_found', message: 'Not found.' } }));
}

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const h of held) h.res.destroy();
  server?.closeAllConnections();
  server?.close();
});

test('the page holds its retry open, follows a held busy answer at once, and is admitted through it', {
  timeout: 90_000,
}, async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  try {
    const page = await context.newPage();
    const res = await page.goto(`${origin}${ITEM}`);
    assert.equal(res?.status(), 503);
    await page.waitForSelector('html.js', { timeout: 10_000 });

    // The first retry goes at once, asking for the longest hold (30 s), with the token.
    await waitUntil(async () => held.length >= 1, 10_000, 'the first held request');
    assert.equal(held[0]!.prefer, 'wait=30');
    assert.deepEqual(JSON.parse(held[0]!.body), { item: ITEM, queueToken: 'tok-1' });
    assert.match((await page.textContent('#rg-countdown')) ?? '', /^listening/);

    // Its hold ends at the reception's cap (2 s): busy, with Preference-Applied, a range, and a
    // Retry-After of 600 s.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const first = held[0]!.res;
    first.writeHead(503, {
      'content-type': 'application/json',
      'retry-after': '600',
      'preference-applied': 'wait=2',
    });
    first.end(
      JSON.stringify({
        status: 'busy',
        position: 1,
        estimatedWaitSeconds: 12,
        estimatedWaitRangeSeconds: [5, 30],
        retryAfterSeconds: 600,
        queueToken: 'tok-1',
      }),
    );

    // The next held request follows at once (not after 600 s), holding as long as allowed.
    await waitUntil(async () => held.length >= 2, 15_000, 'the next held request');
    assert.equal(held[1]!.prefer, 'wait=30');
    assert.equal(await page.textContent('#rg-position'), '1');
    assert.match((await page.textContent('#rg-wait')) ?? '', /^12 s \(likely 5 s to 30 s\)$/);

    // Admitted while it is held: 201 with the ticket, and the download starts.
    const download = page.waitForEvent('download', { timeout: 30_000 });
    const second = held[1]!.res;
    second.writeHead(201, { 'content-type': 'application/json' });
    second.end(
      JSON.stringify({
        orderId: 'o-1',
        status: 'ticketed',
        ticket: {
          id: 't-1',
          url: `${origin}/t/ticket/file.bin`,
          server: 'a',
          notBefore: new Date(Date.now() - 1000).toISOString(),
          expiresAt: new Date(Date.now() + 600_000).toISOString(),
        },
      }),
    );
    const dl = await download;
    assert.equal(dl.suggestedFilename(), 'held.bin');
    await page.waitForSelector('main.admitted', { timeout: 10_000 });
    assert.match((await page.textContent('#rg-status')) ?? '', /has started/);
    assert.equal(held.length, 2, 'no request beyond the two held ones');
  } finally {
    await context.close();
  }
});
