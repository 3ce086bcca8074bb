/**
 * Client addresses for bound tickets (CONTRACT §4, claim `cip`): the reception pins a ticket to a
 * prefix of the client's address, and a `strict` content server refuses a request from outside
 * it. Both sides see the same client through different sockets (dual-stack listeners report IPv4
 * clients as `::ffff:a.b.c.d`, link-local addresses carry a `%zone`, proxies write `[v6]`), so
 * every comparison goes through one canonical form: IPv4-mapped IPv6 *is* IPv4 here, zones and
 * brackets are dropped, IPv6 is written in RFC 5952 form. Pure functions; the only state is a
 * bounded cache of parsed CIDRs, because a content server sees the same few `cip` values over
 * and over.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * An address as 16 bytes of IPv6, IPv4 as `::ffff:a.b.c.d`, so that a v4 prefix is a v6 prefix
 * 96 bits longer and one comparison covers both families.
 */
interface Parsed {
  v4: boolean;
  bytes: Uint8Array;
}

interface ParsedCidr {
  bytes: Uint8Array;
  /** Prefix length in the 128-bit space. */
  bits: number;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/** Drops `[...]` around IPv6 (as in URLs and some proxy headers) and a `%zone` suffix. */
function strip(addr: string): string {
  let s = addr.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  return s;
}

function parse(addr: string): Parsed | null {
  const s = strip(addr);
  // node:net's isIP is strict (dotted quads only); ipaddr.js alone would also take "127.1" or hex
  // octets, which would give one client two spellings.
  const family = isIP(s);
  const bytes = new Uint8Array(16);
  if (family === 4) {
    const parts = s.split('.');
    bytes.set(V4_MAPPED_PREFIX);
    for (let i = 0; i < 4; i++) bytes[12 + i] = Number(parts[i]);
    return { v4: true, bytes };
  }
  if (family !== 6) return null;
  let v6: number[];
  try {
    v6 = ipaddr.IPv6.parse(s).toByteArray();
  } catch {
    return null;
  }
  bytes.set(v6);
  let mapped = true;
  for (let i = 0; i < 12; i++) {
    if (bytes[i] !== V4_MAPPED_PREFIX[i]) {
      mapped = false;
      break;
    }
  }
  return { v4: mapped, bytes };
}

function format(p: Parsed): string {
  if (p.v4) return `${p.bytes[12]}.${p.bytes[13]}.${p.bytes[14]}.${p.bytes[15]}`;
  return ipaddr.fromByteArray(Array.from(p.bytes)).toString();
}

function mask(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(16);
  const whole = bits >>> 3;
  out.set(bytes.subarray(0, whole));
  const rest = bits & 7;
  if (rest !== 0) out[whole] = (bytes[whole] ?? 0) & (0xff << (8 - rest));
  return out;
}

/**
 * The canonical spelling of an address: `::ffff:1.2.3.4` → `1.2.3.4`, `[2001:DB8::1%eth0]` →
 * `2001:db8::1`. A string that is not an IP address comes back trimmed but otherwise unchanged,
 * so that callers can still log it; {@link prefixOf} and {@link addressInPrefix} refuse it.
 */
export function normalizeAddress(addr: string): string {
  const p = parse(addr);
  return p ? format(p) : addr.trim();
}

/**
 * The CIDR a bound ticket carries: the client's address with everything past the family's
 * prefix length zeroed (`203.0.113.7` → `203.0.113.7/32`, `2001:db8::1` with /64 →
 * `2001:db8::/64`). An IPv4-mapped IPv6 client counts as IPv4, so it gets the IPv4 prefix.
 * Throws on a string that is not an address or an out-of-range prefix length: issuing a ticket
 * bound to nothing would be a silent hole, and the reception always has a socket address.
 */
export function prefixOf(addr: string, bindPrefix: { ipv4: number; ipv6: number }): string {
  const p = parse(addr);
  if (!p) throw new TypeError(`not an IP address: ${JSON.stringify(addr)}`);
  const bits = p.v4 ? bindPrefix.ipv4 : bindPrefix.ipv6;
  const max = p.v4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) {
    throw new RangeError(`bind prefix for IPv${p.v4 ? 4 : 6} must be an integer 0–${max}, got ${bits}`);
  }
  const masked = mask(p.bytes, p.v4 ? bits + 96 : bits);
  return `${format({ v4: p.v4, bytes: masked })}/${bits}`;
}

const CIDR_CACHE_MAX = 1024;
const cidrCache = new Map<string, ParsedCidr | null>();

function parseCidr(cidr: string): ParsedCidr | null {
  const cached = cidrCache.get(cidr);
  if (cached !== undefined) return cached;
  const parsed = parseCidrUncached(cidr);
  // Wholesale clearing keeps the cache bounded without bookkeeping; a content server's working
  // set of client prefixes is far below the cap, so this almost never happens.
  if (cidrCache.size >= CIDR_CACHE_MAX) cidrCache.clear();
  cidrCache.set(cidr, parsed);
  return parsed;
}

function parseCidrUncached(cidr: string): ParsedCidr | null {
  if (typeof cidr !== 'string') return null;
  const slash = cidr.lastIndexOf('/');
  if (slash === -1) return null;
  const bitsText = cidr.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null;
  let bits = Number(bitsText);
  const addrText = cidr.slice(0, slash);
  // A zone or brackets have no place in a CIDR; refusing them keeps one spelling per prefix.
  if (addrText.includes('%') || addrText.includes('[')) return null;
  const family = isIP(addrText);
  const p = parse(addrText);
  if (!p) return null;
  if (family === 4) {
    if (bits > 32) return null;
    bits += 96;
  } else if (bits > 128) {
    return null;
  }
  // Host bits past the prefix are ignored rather than refused: `cip` is authenticated, so an odd
  // spelling can only come from a key holder, and masking gives it the one sensible meaning.
  return { bytes: mask(p.bytes, bits), bits };
}

/** Whether a CIDR string is well formed (IPv4 /0–32, IPv6 /0–128, no zone). */
export function isCidr(cidr: string): boolean {
  return parseCidr(cidr) !== null;
}

/**
 * Whether `addr` lies inside `cidr`. IPv4 and its IPv4-mapped IPv6 spelling are the same address
 * on both sides. Anything unparsable is simply "not inside" — this runs on request data and
 * must not throw.
 */
export function addressInPrefix(addr: string, cidr: string): boolean {
  const range = parseCidr(cidr);
  if (!range) return false;
  const p = typeof addr === 'string' ? parse(addr) : null;
  if (!p) return false;
  const whole = range.bits >>> 3;
  for (let i = 0; i < whole; i++) if (p.bytes[i] !== range.bytes[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return ((p.bytes[whole] ?? 0) & m) === (range.bytes[whole] ?? 0);
}
