/**
 * HTTP range semantics for one item (RFC 9110 §14, CONTRACT §4): from the request's `Range` and
 * `If-Range` headers and the item's validators, decides what the answer carries — the whole item
 * (`200`), one range (`206`), several ranges as `multipart/byteranges` (`206`), or `416`. Parsing
 * is range-parser's; this module adds If-Range, the multipart framing and the exact
 * `Content-Length` of a multipart body (the `send` package would have done the single-range part
 * but has no multipart support, hence the hand-written framing). Pure: the multipart boundary is
 * passed in.
 */
import parseRange from 'range-parser';

/** An inclusive byte range, as range-parser and `Content-Range` write it. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface Validators {
  /** Strong entity tag, quoted. */
  etag: string;
  lastModifiedMs: number;
}

export interface MultipartPart {
  range: ByteRange;
  /** Delimiter and part headers written before the part's bytes. */
  header: string;
}

export type RangePlan =
  | { status: 200; kind: 'full'; contentLength: number }
  | { status: 206; kind: 'single'; range: ByteRange; contentLength: number; contentRange: string }
  | {
      status: 206;
      kind: 'multi';
      contentType: string;
      parts: MultipartPart[];
      /** The closing delimiter. */
      trailer: string;
      contentLength: number;
    }
  | { status: 416; kind: 'unsatisfiable'; contentRange: string };

/**
 * More ranges than this in one request are answered with the whole item, as Apache does since
 * CVE-2011-3192: hundreds of tiny ranges cost far more to frame than to send.
 */
export const MAX_RANGES = 100;

export const PART_CONTENT_TYPE = 'application/octet-stream';

/**
 * Whether `If-Range` lets the `Range` header apply: an entity tag must match strongly (a weak tag
 * never does), a date must equal Last-Modified to the second. Absent, it allows.
 */
export function ifRangeAllows(ifRange: string | undefined, v: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('W/')) return false;
  if (value.startsWith('"')) return value === v.etag;
  const t = Date.parse(value);
  if (Number.isNaN(t)) return false;
  return Math.floor(t / 1000) === Math.floor(v.lastModifiedMs / 1000);
}

export function planRange(
  size: number,
  headers: { range?: string | undefined; ifRange?: string | undefined },
  validators: Validators,
  boundary: string,
): RangePlan {
  const full: RangePlan = { status: 200, kind: 'full', contentLength: size };
  if (headers.range === undefined || !ifRangeAllows(headers.ifRange, validators)) return full;
  const parsed = parseRange(size, headers.range, { combine: true });
  // -2: malformed — RFC 9110 says ignore the header.
  if (parsed === -2) return full;
  if (parsed === -1) return { status: 416, kind: 'unsatisfiable', contentRange: `bytes */${size}` };
  if (parsed.type !== 'bytes' || parsed.length > MAX_RANGES) return full;
  const only = parsed[0];
  if (parsed.length === 1 && only) {
    return {
      status: 206,
      kind: 'single',
      range: { start: only.start, end: only.end },
      contentLength: only.end - only.start + 1,
      contentRange: `bytes ${only.start}-${only.end}/${size}`,
    };
  }
  const parts: MultipartPart[] = parsed.map((r, i) => ({
    range: { start: r.start, end: r.end },
    header:
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\n` +
      `Content-Type: ${PART_CONTENT_TYPE}\r\n` +
      `Content-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
  }));
  const trailer = `\r\n--${boundary}--\r\n`;
  let contentLength = Buffer.byteLength(trailer);
  for (const p of parts) contentLength += Buffer.byteLength(p.header) + p.range.end - p.range.start + 1;
  return {
    status: 206,
    kind: 'multi',
    contentType: `multipart/byteranges; boundary=${boundary}`,
    parts,
    trailer,
    contentLength,
  };
}
