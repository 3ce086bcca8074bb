/**
 * The paid link in a real browser (CONTRACT §7), headless Chromium against a real reception and
 * content server whose only slot is held: `GET /paid/…?grant=` → the waiting page (the grant kept
 * in an HttpOnly cookie for the item's path) → the slot frees → the page retries the bare item URL
 * and the download starts. The content server never sees the grant: not in a URL, not in a Referer.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { holdSlot, type Stack, startStack } from './get-harness.js';

const ITEM = '/paid/album.zip';
const BODY = randomBytes(256 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');
const HOLD = '/hold.bin';
const ISS = 'https://shop.example.com';
const SECRET = randomBytes(32).toString('base64url');

function hsGrant(sub: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: ISS, sub, items: [ITEM], iat: now, exp: now + 600 })}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

let stack: Stack;
let browser: Browser;

before(async () => {
  stack = await startStack({
    servers: 1,
    server: () => ({ capacity: 1 }),
    reception: {
      queue: { holdSeconds: 3, maxRetryAfterSeconds: 3, abandonSeconds: 20 },
      grants: { required: ['/paid/**'], issuers: [{ iss: ISS, secret: SECRET }] },
    },
    items: { [ITEM]: { content: BODY }, [HOLD]: { content: randomBytes(40 * 1024 * 1024) } },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('paid link → waiting page → admitted → download, and no grant reaches the content server', {
  timeout: 120_000,
}, async () => {
  const grant = hsGrant('browser-purchase');
  const signature = grant.split('.')[2] ?? 'none';
  const hold = await holdSlot(stack, HOLD, path.join(stack.dep.dir, 'holder'));
  const context = await browser.newContext({ acceptDownloads: true });
  try {
    const page = await context.newPage();
    const contentOrigin = new URL(stack.dep.config.contentServers[0]!.publicUrl).origin;
    const toContent: { url: string; referer: string | undefined }[] = [];
    page.on('request', (req) => {
      if (new URL(req.url()).origin === contentOrigin)
        toContent.push({ url: req.url(), referer: req.headers().referer });
    });

    const refused = await page.goto(stack.url(ITEM));
    assert.equal(refused?.status(), 401, 'no grant, no place');

    const res = await page.goto(`${stack.url(ITEM)}?grant=${grant}`);
    assert.equal(res?.status(), 503);
    assert.equal(res?.headers()['referrer-policy'], 'no-referrer');
    assert.ok(!(await page.content()).includes(signature), 'the page does not carry the grant');
    await page.waitForSelector('html.js', { timeout: 10_000 });
    const cookie = (await context.cookies()).find((c) => c.name.startsWith('rushgate_grant_'));
    assert.ok(cookie, 'the grant is kept in a cookie while waiting');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');

    const download = page.waitForEvent('download', { timeout: 60_000 });
    assert.equal(await hold.release(), 0, hold.holder.output());
    const dl = await download;
    const saved = path.join(stack.dep.dir, 'album.zip');
    await dl.saveAs(saved);
    assert.equal(createHash('sha256').update(readFileSync(saved)).digest('hex'), SHA);

    assert.ok(toContent.length >= 1, 'the download went to the content server');
    for (const r of toContent) {
      assert.ok(!r.url.includes('grant') && !r.url.includes(signature), r.url);
      assert.equal(r.referer, undefined, `no Referer to the content server: ${r.referer}`);
    }
    assert.ok(!stack.logs().includes(signature), 'the grant is never logged');
  } finally {
    await context.close();
    if (hold.holder.child.exitCode === null) await hold.release();
  }
});
