/**
 * What the user typed: a reception item URL such as `http://127.0.0.1:8080/apps/x.bin`, split
 * into the reception's origin (where `/api/orders` lives) and the decoded item path, plus the
 * file name a download is saved under by default (the item's last segment, like wget). Pure.
 */
import path from 'node:path';
import { UsageError } from '../errors.js';
import { itemPathFromUrlPath } from '../items/item-path.js';

export interface ItemUrl {
  /** `http://host:port`, no trailing slash. */
  origin: string;
  /** Decoded item path, e.g. `/apps/editor 2.dmg`. */
  item: string;
  /** A purchase grant carried in the link's `?grant=` (CONTRACT §7), if any. */
  grant?: string;
}

export function parseItemUrl(raw: string): ItemUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(
      `not a URL: ${JSON.stringify(raw)} (expected e.g. http://127.0.0.1:8080/apps/x.bin)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`only http:// and https:// URLs are supported, got ${url.protocol}`);
  if (url.username || url.password) throw new UsageError('the URL must not carry a user name or password');
  const checked = itemPathFromUrlPath(url.pathname);
  if (!checked.ok) throw new UsageError(`the URL names no valid item: ${checked.reason}`);
  const grant = url.searchParams.get('grant');
  return { origin: url.origin, item: checked.path, ...(grant ? { grant } : {}) };
}

/** The file name a download is saved under when `-o` is not given. */
export function defaultOutputName(item: string): string {
  const base = item.split('/').pop() ?? '';
  // Item paths are already free of separators and dot segments; this only guards a leading dot file
  // name from becoming hidden by surprise.
  return base === '' ? 'download' : base;
}

/** The files a download keeps beside its target while it is incomplete. */
export function partPathsOf(file: string): { part: string; sidecar: string } {
  const abs = path.resolve(file);
  return { part: `${abs}.part`, sidecar: `${abs}.part.json` };
}
