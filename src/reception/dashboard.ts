/**
 * The operators' live dashboard (CONTRACT §6: `GET /dashboard` on the reception's internal port):
 * one self-contained HTML page — its style sheet and script (dashboard/dashboard.css and
 * dashboard/dashboard.js, real files that Biome checks and `tsc -p tsconfig.dashboard.json` types
 * against the `GET /status` schema) inlined, nothing fetched from anywhere else, and a
 * Content-Security-Policy that allows exactly those two by hash — that polls the internal API's
 * `GET /status` every second and draws what the load condition monitor (the seed's module 132)
 * and the allocator (module 133) see: a card per content server (up, down, draining, ramping in,
 * suspect, and for how long; slot load and memory share; outstanding tickets against capacity;
 * clients being served; bytes/s; distance; age of its last load report; the latest allocation's
 * verdict on it, the way mirrorbits' `?mirrorlist` explains itself), the waiting line (slot use
 * while anyone waits, held-open requests, the line's speed, the current estimate and how well the
 * estimates came true), and the item copies that disagree with the majority. When polling fails
 * the page says so and greys the last picture out rather than showing old numbers as if they were
 * live. Building the page is pure; the two files are read once, when this module loads (the build
 * copies them next to the compiled module).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface DashboardOptions {
  /** Shown in the heading and the window title; defaults to "rushgate reception". */
  title?: string;
}

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const asset = (name: string): string => readFileSync(new URL(`./dashboard/${name}`, import.meta.url), 'utf8');

/** Exactly the text between the tags: the CSP hash covers it byte for byte. */
const STYLE = `\n${asset('dashboard.css')}`;
const SCRIPT = `\n${asset('dashboard.js')}`;

const hashOf = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * Everything the page may load: its own inline style and script (by hash, so an injected one
 * would not run), and `status` on its own origin. `default-src 'none'` is what makes "no CDN"
 * hold even if someone edits the page later.
 */
const CSP =
  `default-src 'none'; connect-src 'self'; style-src ${hashOf(STYLE)}; script-src ${hashOf(SCRIPT)}; ` +
  "img-src data:; base-uri 'none'; form-action 'none'";

export function renderDashboard(opts: DashboardOptions = {}): string {
  const title = escapeHtml(opts.title ?? 'rushgate reception');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title} — dashboard</title>
<style>${STYLE}</style>
</head>
<body data-title="${title} — dashboard">
<header>
  <h1>${title} <span class="muted">— live dashboard</span></h1>
  <span id="rg-conn" class="conn" data-connection="connecting" role="status" aria-live="polite">connecting…</span>
  <span class="muted">last updated <span id="rg-updated">never</span></span>
</header>
<p id="rg-banner" class="banner" role="alert" hidden></p>
<noscript><p class="banner">This dashboard needs JavaScript. The raw picture is at <a href="status">status</a>.</p></noscript>
<main id="rg-main">
<dl class="summary" aria-label="Totals">
  <div><dt>servers up</dt><dd id="rg-sum-up">—</dd></div>
  <div><dt>tickets / usable slots</dt><dd id="rg-sum-tickets">—</dd></div>
  <div><dt>clients being served</dt><dd id="rg-sum-active">—</dd></div>
  <div><dt>throughput</dt><dd id="rg-sum-bytes">—</dd></div>
  <div><dt>waiting in line</dt><dd id="rg-sum-line">—</dd></div>
  <div><dt>estimated wait</dt><dd id="rg-sum-wait">—</dd></div>
  <div><dt>admissions</dt><dd id="rg-sum-admit">—</dd></div>
  <div><dt>slot use while waiting</dt><dd id="rg-sum-slot-use">—</dd></div>
  <div><dt>held-open requests</dt><dd id="rg-sum-held">—</dd></div>
  <div><dt>pending revocations</dt><dd id="rg-sum-revocations">—</dd></div>
</dl>

<h2>Content servers</h2>
<div id="rg-servers" class="servers" aria-live="off"></div>
<p id="rg-no-servers" class="empty" hidden>The status lists no content servers.</p>

<h2>Latest allocation</h2>
<div id="rg-allocation" data-section="allocation"><p class="empty">Waiting for the first status…</p></div>

<h2>Waiting line</h2>
<div data-section="queue">
<div id="rg-queue-figures">
<dl class="figures queue-figures">
  <div><dt>waiting</dt><dd id="rg-line-length">—</dd></div>
  <div><dt>held-open requests</dt><dd id="rg-line-held">—</dd></div>
  <div><dt>line speed</dt><dd id="rg-line-admit">—</dd></div>
  <div><dt>estimate for a newcomer</dt><dd id="rg-line-wait">—</dd></div>
  <div><dt>slot use while anyone waits</dt><dd id="rg-line-slot-use">—</dd></div>
</dl>
<h3>How the first estimates came true</h3>
<dl class="figures queue-figures">
  <div><dt>from</dt><dd id="rg-cal-samples">—</dd></div>
  <div><dt>admitted by their estimate</dt><dd id="rg-cal-by-estimate">—</dd></div>
  <div><dt>admitted inside their range</dt><dd id="rg-cal-in-range">—</dd></div>
  <div><dt>median error</dt><dd id="rg-cal-abs-error">—</dd></div>
  <div><dt>median error / actual wait</dt><dd id="rg-cal-rel-error">—</dd></div>
</dl>
</div>
<p id="rg-no-queue" class="empty" hidden>The status says nothing about a waiting line.</p>
</div>

<h2>Item copies that disagree (<span id="rg-exclusions-count">0</span>)</h2>
<div data-section="exclusions">
<p id="rg-no-exclusions" class="empty">Every server's copy of every item agrees with the majority.</p>
<table id="rg-exclusions-table" hidden>
  <thead><tr><th>server</th><th>item</th><th>why that copy is not used</th></tr></thead>
  <tbody id="rg-exclusions"></tbody>
</table>
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
