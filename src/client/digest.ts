/**
 * `Repr-Digest` (RFC 9530), the content servers' statement of the item's SHA-256 (CONTRACT §4):
 * parses the structured-field dictionary (`sha-256=:<base64>:`, possibly beside other
 * algorithms) and compares it with what the client computed. Pure.
 */

/** The SHA-256 the header states, as lowercase hex, or undefined when it states none we can read. */
export function sha256FromReprDigest(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  for (const member of value.split(',')) {
    const m = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*(?:;.*)?$/i.exec(member);
    if (!m) continue;
    const bytes = Buffer.from(m[1] ?? '', 'base64');
    if (bytes.length === 32) return bytes.toString('hex');
  }
  return undefined;
}
