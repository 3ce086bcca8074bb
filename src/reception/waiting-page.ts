/**
 * The browser's waiting room (CONTRACT §3, the seed's Sc55–Sc56): the HTML a browser gets while
 * every content server is busy. It works without JavaScript — a `<meta http-equiv="refresh">`
 * retries the same URL when due and the `rushgate_queue` cookie keeps the place — and scripts
 * served from `/_rushgate/` make it livelier.
 */

export interface WaitingPageInfo {
  item: string;
  position: number;
  estimatedWaitSeconds: number;
  retryAfterSeconds: number;
  queueToken: string;
  /** Reception-relative URL the page retries (the item's URL). */
  retryUrl: string;
}

export interface PageAsset {
  contentType: string;
  body: string | Buffer;
}

/** Assets served by the reception under `/_rushgate/<name>`. */
export const WAITING_PAGE_ASSETS: ReadonlyMap<string, PageAsset> = new Map();

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export function renderWaitingPage(info: WaitingPageInfo): string {
  const item = escapeHtml(info.item);
  const retry = escapeHtml(info.retryUrl);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${info.retryAfterSeconds};url=${retry}">
<title>Waiting for ${item}</title>
</head>
<body>
<main>
<h1>You are in line for ${item}</h1>
<p role="status" aria-live="polite">Position <strong id="position">${info.position}</strong>,
estimated wait about <strong id="wait">${info.estimatedWaitSeconds}</strong> s.</p>
<p>This page retries by itself in <span id="countdown">${info.retryAfterSeconds}</span> s. Keep it open to keep your place.</p>
<p><a href="${retry}">Retry now</a></p>
</main>
</body>
</html>
`;
}
