/**
 * The browser waiting page as markup: what it shows, that it retries without JavaScript (a
 * `<noscript>` meta refresh after Retry-After), that every value is escaped, and that the assets
 * it links are the ones the reception serves. The live behaviour is tested in headless Chromium
 * (test/e2e/browser-waiting-page.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatWait, renderWaitingPage, WAITING_PAGE_ASSETS } from '../../src/reception/waiting-page.js';

const info = {
  item: '/apps/editor-2.1.dmg',
  position: 3,
  estimatedWaitSeconds: 42,
  retryAfterSeconds: 7,
  queueToken: 'tok.abc_123',
  retryUrl: '/apps/editor-2.1.dmg',
};

test('shows position, estimate and countdown, and carries the token for the script', () => {
  const html = renderWaitingPage(info);
  assert.match(html, /<dd id="rg-position">3<\/dd>/);
  assert.match(html, /You are number 3 in line\./);
  assert.match(html, /id="rg-wait">42 s</);
  assert.match(html, /id="rg-countdown"[^>]*>7 s</);
  assert.match(html, /data-queue-token="tok\.abc_123"/);
  assert.match(html, /data-retry-after="7"/);
  assert.match(html, /role="status" aria-live="polite"/);
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
});

test('retries without JavaScript: a meta refresh to the item URL after Retry-After, inside noscript', () => {
  const html = renderWaitingPage(info);
  assert.match(
    html,
    /<noscript><meta http-equiv="refresh" content="7;url=\/apps\/editor-2\.1\.dmg"><\/noscript>/,
  );
});

test('escapes every value that reaches the markup', () => {
  const html = renderWaitingPage({
    ...info,
    item: '/a/<script>alert(1)</script>&"\'.bin',
    retryUrl: '/a/%3Cscript%3E"',
    queueToken: '"><img src=x>',
  });
  assert.doesNotMatch(html, /<script>alert/);
  assert.doesNotMatch(html, /<img src=x>/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;&amp;&quot;&#39;\.bin/);
});

test('never shows a retry sooner than one second or a negative wait', () => {
  const html = renderWaitingPage({ ...info, retryAfterSeconds: 0, estimatedWaitSeconds: -5, position: 0 });
  assert.match(html, /content="1;url=/);
  assert.match(html, /id="rg-wait">0 s</);
  assert.match(html, /<dd id="rg-position">1<\/dd>/);
});

test('links only assets the reception serves, with their content types', () => {
  const html = renderWaitingPage(info);
  const linked = [...html.matchAll(/(?:href|src)="\/_rushgate\/([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(new Set(linked), new Set(['icon.svg', 'waiting.css', 'waiting.js']));
  for (const name of linked) assert.ok(WAITING_PAGE_ASSETS.has(name!), name);
  assert.match(WAITING_PAGE_ASSETS.get('waiting.js')!.contentType, /^text\/javascript/);
  assert.match(WAITING_PAGE_ASSETS.get('waiting.css')!.contentType, /^text\/css/);
  assert.doesNotMatch(html, /https?:\/\//, 'no CDN or other origin');
});

test('the script is valid JavaScript', () => {
  const body = WAITING_PAGE_ASSETS.get('waiting.js')!.body.toString();
  assert.doesNotThrow(() => new Function(body));
});

test('formatWait speaks like people do', () => {
  assert.equal(formatWait(0), '0 s');
  assert.equal(formatWait(59.4), '59 s');
  assert.equal(formatWait(61), 'about 1 min');
  assert.equal(formatWait(3 * 3600 + 5 * 60), 'about 3 h 5 min');
  assert.equal(formatWait(Number.NaN), '0 s');
});

test('shows the range when the reception gives one, and hands it to the script; a bad one is left out', () => {
  const html = renderWaitingPage({ ...info, estimatedWaitRangeSeconds: [20.4, 95.2] });
  assert.match(html, /id="rg-wait">42 s \(likely 20 s to about 2 min\)</);
  assert.match(html, /data-range-low="20"/);
  assert.match(html, /data-range-high="96"/);
  for (const bad of [
    [50, 10],
    [-1, 5],
    [Number.NaN, 3],
  ] as [number, number][]) {
    const plain = renderWaitingPage({ ...info, estimatedWaitRangeSeconds: bad });
    assert.match(plain, /id="rg-wait">42 s</);
    assert.doesNotMatch(plain, /data-range-/);
  }
});

test('the script holds its retries open (Prefer: wait) and follows a held answer at once', () => {
  const script = WAITING_PAGE_ASSETS.get('waiting.js')?.body.toString() ?? '';
  assert.match(script, /Prefer: 'wait=' \+ hold/);
  assert.match(script, /Preference-Applied/);
  // The served regex keeps its escapes (a template literal would turn \s into s).
  assert.ok(script.includes('/(^|,)\\s*wait\\s*=\\s*(\\d+)/i'), 'Preference-Applied is parsed as wait=N');
  assert.match(script, /estimatedWaitRangeSeconds/);
});
