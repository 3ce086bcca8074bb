/**
 * Who "one client" is for fair shares (CONTRACT §3 "Fair shares"): the client's address prefix
 * under `tickets.bindPrefix` (an IPv4 /32, an IPv6 /64 by default), never an address alone and
 * never a token the client brings. One /64 holds 2^64 addresses, so counting per /128 would give
 * a single home router 2^64 buckets; counting per queue token would let every respelling or
 * forgery of a token start afresh. A string that is not an address (it cannot happen with a real
 * socket, but keeps a bug from becoming a hole) is its own key.
 */
import { prefixOf } from '../tickets/address.js';

export type BindPrefix = { ipv4: number; ipv6: number };

export function clientKeyOf(address: string, bindPrefix: BindPrefix): string {
  try {
    return prefixOf(address, bindPrefix);
  } catch {
    return `?${address}`;
  }
}
