/**
 * The operators' dashboard page as a string (src/reception/dashboard.ts): a complete HTML
 * document, self-contained (no URL to anywhere else, so it works on an isolated internal network
 * and leaks nothing), a title that cannot inject markup, and an inline script (the file
 * src/reception/dashboard/dashboard.js, inlined with the style sheet) that parses, polls the
 * relative `status` URL and is the only script the CSP lets run. The page's behaviour in a browser
 * is covered by test/e2e/dashboard-live.test.ts and test/e2e/dashboard-states.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { renderDashboard } from '../../src/reception/dashboard.js';

const scriptsOf = (html: string): string[] =>
  [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)].map((m) => {
    assert.equal(m[1], '', 'no attributes on <script> (in particular no src)');
    return m[2] ?? '';
  });

test('renderDashboard returns a complete HTML document', () => {
  const html = renderDashboard({});
  assert.match(html, /^<!doctype html>\n<html lang="en">/);
  assert.match(html, /<meta charset="utf-8">/);
  assert.match(html, /<title>rushgate reception — dashboard<\/title>/);
  assert.match(html, /<\/body>\n<\/html>\n$/);
  for (const tag of ['html', 'head', 'body', 'main', 'style', 'script', 'header', 'table']) {
    const open = html.match(new RegExp(`<${tag}[\\s>]`, 'g'))?.length ?? 0;
    const close = html.match(new RegExp(`</${tag}>`, 'g'))?.length ?? 0;
    assert.equal(open, close, `<${tag}> opened ${open} times, closed ${close} times`);
  }
  const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length, 'ids are unique');
  // Every element the script looks up by id is in the page.
  for (const script of scriptsOf(html)) {
    for (const m of script.matchAll(/byId\('([^']+)'\)/g))
      assert.ok(ids.includes(m[1]), `#${m[1]} is in the page`);
  }
});

test('renderDashboard loads nothing from anywhere else', () => {
  const html = renderDashboard({ title: 'edge reception' });
  assert.doesNotMatch(html, /https?:\/\//i, 'no absolute URL');
  assert.doesNotMatch(html, /(?:src|href|action)\s*=\s*["']?\/\//i, 'no protocol-relative URL');
  assert.doesNotMatch(html, /<link\b/i, 'no external style sheet or icon');
  assert.doesNotMatch(html, /<(?:img|iframe|object|embed)\b/i);
  assert.doesNotMatch(html, /@import|url\(/i, 'the style sheet fetches nothing');
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; connect-src 'self';/);
  const scripts = scriptsOf(html);
  assert.equal(scripts.length, 1);
  const script = scripts[0] ?? '';
  assert.match(script, /fetch\('status',/, 'polls the relative status URL on its own origin');
  assert.doesNotMatch(
    script,
    /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/,
    'strings go in as text',
  );
});

test('the CSP allows exactly the inline style and script, by hash', () => {
  const html = renderDashboard();
  const csp = /Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
  assert.doesNotMatch(csp, /unsafe-inline/);
  const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
  assert.match(style, /--bg:/, 'the style sheet is inlined');
  assert.ok(csp.includes(`style-src ${hash(style)};`), csp);
  const [script = ''] = scriptsOf(html);
  assert.ok(csp.includes(`script-src ${hash(script)};`), csp);
});

test('the inline script is valid JavaScript', () => {
  for (const script of scriptsOf(renderDashboard())) {
    // Parses without running: a syntax error (say, a `${` left in the template) throws here.
    assert.doesNotThrow(() => new Function(script));
  }
});

test('the title is escaped', () => {
  const html = renderDashboard({ title: '<img src=x onerror=alert(1)> & "co"' });
  assert.ok(!html.includes('<img src=x'));
  assert.match(html, /<title>&lt;img src=x onerror=alert\(1\)&gt; &amp; &quot;co&quot; — dashboard<\/title>/);
  assert.match(html, /data-title="&lt;img src=x onerror=alert\(1\)&gt; &amp; &quot;co&quot; — dashboard"/);
});
