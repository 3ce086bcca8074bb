/**
 * Which address a request comes from (CONTRACT §2 `trustProxy`): the socket's peer, unless that
 * peer is a trusted proxy, in which case `X-Forwarded-For` is read from the right, skipping
 * trusted hops, and the first untrusted hop is the client. Reading from the right matters: the
 * left end of the header is whatever the client wrote, so believing it would let any client pick
 * the address its ticket is bound to and the bucket its requests are counted in. Pure.
 */
import ipaddr from 'ipaddr.js';
import { normalizeAddress } from '../tickets/index.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export interface TrustedProxies {
  readonly ranges: readonly Range[];
}

/** Parses `trustProxy` entries (already validated by the config schema). */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const ranges: Range[] = [];
  for (const entry of entries) {
    const cidr = entry.includes('/') ? entry : `${entry}/${ipaddr.parse(entry).kind() === 'ipv4' ? 32 : 128}`;
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    ranges.push(unmap(addr, bits));
  }
  return { ranges };
}

/** IPv4-mapped IPv6 is IPv4 here, as everywhere in rushgate. */
function unmap(addr: ipaddr.IPv4 | ipaddr.IPv6, bits: number): Range {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [addr, bits];
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const canonical = normalizeAddress(text);
  if (!ipaddr.isValid(canonical)) return undefined;
  // ipaddr.js also accepts forms like "127.1"; normalizeAddress only canonicalises real addresses.
  if (!ipaddr.IPv4.isValidFourPartDecimal(canonical) && !canonical.includes(':')) return undefined;
  return ipaddr.parse(canonical);
}

export function isTrusted(address: string, trusted: TrustedProxies): boolean {
  if (trusted.ranges.length === 0) return false;
  const parsed = parseAddress(address);
  if (!parsed) return false;
  return trusted.ranges.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits));
}

/**
 * The client's address in canonical form. `forwardedFor` is the raw header value(s); a malformed
 * entry ends the walk at the last hop we could trust, so garbage never becomes a client address.
 */
export function clientAddressOf(
  remoteAddress: string,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxies,
): string {
  const peer = normalizeAddress(remoteAddress);
  if (forwardedFor === undefined || !isTrusted(peer, trusted)) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = stripPort(hops[i] ?? '');
    if (!parseAddress(hop)) break;
    client = normalizeAddress(hop);
    if (!isTrusted(client, trusted)) break;
  }
  return client;
}

/** Some proxies append ":port" to IPv4 hops or write "[v6]:port". */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1] ?? hop;
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  if (v4port) return v4port[1] ?? hop;
  return hop;
}
