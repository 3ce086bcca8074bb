/**
 * Item paths: the one normaliser both the reception and the content servers use, so that the
 * name an order carries, the name in a ticket and the file on disk always agree. An item path is
 * absolute (`/apps/editor-2.1.dmg`), made of plain segments, and never leaves the item tree:
 * `..`/`.` segments, NUL and other control characters, backslashes, and encoded slashes or dots
 * are refused rather than "repaired", because a repaired path is a second name for a file.
 */

const MAX_ITEM_PATH = 1024;

export type ItemPathResult = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Takes the raw (still percent-encoded) path of a URL and returns the decoded item path, or why
 * it is refused.
 */
export function itemPathFromUrlPath(rawPath: string): ItemPathResult {
  if (rawPath.length > MAX_ITEM_PATH * 3) return { ok: false, reason: 'path too long' };
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'path must start with "/"' };
  const segments = rawPath.slice(1).split('/');
  const decoded: string[] = [];
  for (const raw of segments) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { ok: false, reason: 'bad percent-encoding' };
    }
    // An encoded "/" would smuggle a separator past the split above.
    if (seg.includes('/')) return { ok: false, reason: 'encoded "/" in a segment' };
    decoded.push(seg);
  }
  return checkItemPath(`/${decoded.join('/')}`);
}

/** Validates an already-decoded item path (e.g. the `item` field of `POST /api/orders`). */
export function checkItemPath(path: string): ItemPathResult {
  if (typeof path !== 'string' || path.length === 0) return { ok: false, reason: 'empty path' };
  if (path.length > MAX_ITEM_PATH) return { ok: false, reason: 'path too long' };
  if (!path.startsWith('/')) return { ok: false, reason: 'path must start with "/"' };
  if (path === '/') return { ok: false, reason: 'path names no item' };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(path))
    return { ok: false, reason: 'control character or backslash in path' };
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg === '') return { ok: false, reason: 'empty segment in path' };
    if (seg === '.' || seg === '..') return { ok: false, reason: '"." or ".." segment in path' };
    if (seg.length > 255) return { ok: false, reason: 'segment too long' };
  }
  return { ok: true, path };
}

/** Encodes an item path for use in a URL, segment by segment. */
export function encodeItemPath(path: string): string {
  return path
    .split('/')
    .map((seg) => encodeURIComponent(seg))
    .join('/');
}
