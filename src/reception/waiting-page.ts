/**
 * The browser's waiting room (CONTRACT §3, the seed's Sc55–Sc56 and the sound that follows): the
 * HTML a browser gets while every content server is busy. It works without JavaScript — a
 * `<noscript>` meta refresh retries the item URL when due and the `rushgate_queue` cookie keeps
 * the place — and the script served from `/_rushgate/waiting.js` makes it live: countdown, the
 * position refreshed from `GET /api/queue/{token}`, the retry, then a chime, a notification and
 * the download once admitted. Pure: `renderWaitingPage` only builds a string; the reception
 * serves it and the `WAITING_PAGE_ASSETS` under `GET /_rushgate/<name>`.
 */
import { WAITING_SCRIPT } from './waiting-page/script.js';
import { WAITING_ICON, WAITING_STYLE } from './waiting-page/style.js';

export interface WaitingPageInfo {
  item: string;
  position: number;
  estimatedWaitSeconds: number;
  /** The reception's 80 % interval for the wait, `[low, high]` seconds, when it has one. */
  estimatedWaitRangeSeconds?: readonly [number, number];
  retryAfterSeconds: number;
  queueToken: string;
  /** Reception-relative URL the page retries (the item's URL). */
  retryUrl: string;
  /** Where the page's assets are served; defaults to `/_rushgate/`. */
  assetBase?: string;
}

export interface PageAsset {
  contentType: string;
  body: string | Buffer;
}

/** Assets served by the reception under `/_rushgate/<name>`. */
export const WAITING_PAGE_ASSETS: ReadonlyMap<string, PageAsset> = new Map<string, PageAsset>([
  ['waiting.js', { contentType: 'text/javascript; charset=utf-8', body: WAITING_SCRIPT }],
  ['waiting.css', { contentType: 'text/css; charset=utf-8', body: WAITING_STYLE }],
  ['icon.svg', { contentType: 'image/svg+xml', body: WAITING_ICON }],
]);

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** A wait as people say it: "40 s", "about 3 min", "about 1 h 5 min". */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.round(Number.isFinite(seconds) ? seconds : 0));
  if (s < 60) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const wholeSeconds = (n: number, min: number): number =>
  Math.max(min, Math.ceil(Number.isFinite(n) ? n : min));

/** A range worth showing: two finite seconds, low ≤ high, in whole seconds; else none. */
function rangeOf(range: readonly [number, number] | undefined): [number, number] | undefined {
  if (!range) return undefined;
  const [low, high] = range;
  if (!Number.isFinite(low) || !Number.isFinite(high) || low < 0 || high < low) return undefined;
  return [Math.floor(low), Math.ceil(high)];
}

export function renderWaitingPage(info: WaitingPageInfo): string {
  const item = escapeHtml(info.item);
  const retry = escapeHtml(info.retryUrl);
  const assets = escapeHtml(info.assetBase ?? '/_rushgate/');
  const retryAfter = wholeSeconds(info.retryAfterSeconds, 1);
  const position = wholeSeconds(info.position, 1);
  const estimate = wholeSeconds(info.estimatedWaitSeconds, 0);
  const range = rangeOf(info.estimatedWaitRangeSeconds);
  const wait = range
    ? `${formatWait(estimate)} (likely ${formatWait(range[0])} to ${formatWait(range[1])})`
    : formatWait(estimate);
  const rangeData = range ? `\n  data-range-low="${range[0]}"\n  data-range-high="${range[1]}"` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<noscript><meta http-equiv="refresh" content="${retryAfter};url=${retry}"></noscript>
<title>In line for ${item}</title>
<link rel="icon" href="${assets}icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${assets}waiting.css">
<script src="${assets}waiting.js" defer></script>
</head>
<body>
<main id="rushgate-wait" class="waiting"
  data-item="${item}"
  data-retry-url="${retry}"
  data-queue-token="${escapeHtml(info.queueToken)}"
  data-position="${position}"
  data-estimate="${estimate}"${rangeData}
  data-retry-after="${retryAfter}">
<h1 id="rg-heading">You are in line</h1>
<p class="item">${item}</p>
<dl class="figures">
  <div class="figure"><dt>Your position</dt><dd id="rg-position">${position}</dd></div>
  <div class="figure"><dt>Estimated wait</dt><dd id="rg-wait">${escapeHtml(wait)}</dd></div>
  <div class="figure"><dt>Next try in</dt><dd><span id="rg-countdown" role="timer" aria-live="off">${retryAfter} s</span></dd></div>
</dl>
<p id="rg-live" class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">You are number ${position} in line.</p>
<p id="rg-status" aria-live="assertive">Every download server is busy right now. This page tries again by itself when it is your turn; keep it open to keep your place. When you get in, you hear a short chime and the download starts.</p>
<p><button type="button" id="rg-notify" hidden>Notify me when it starts</button>
<a class="button" id="rg-download" hidden download>Download ${item}</a>
<a class="button" id="rg-retry" href="${retry}">Try again now</a></p>
<p class="hint nojs">Without JavaScript this page reloads itself in ${retryAfter} s; the download then starts by itself.</p>
</main>
</body>
</html>
`;
}
