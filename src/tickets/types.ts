/**
 * The permission ticket's vocabulary (CONTRACT §4, the seed's FIG. 7–10): claims, key ring,
 * policies and refusal codes. Types only; `issue.ts` and `verify.ts` hold the logic.
 */

export type TicketPolicy = 'open' | 'expiring' | 'window' | 'strict';

export interface TicketKey {
  /** Becomes the JWE protected header's `kid`. */
  id: string;
  /** 32 raw bytes (A256GCM). */
  key: Uint8Array;
}

/** The first key issues; every key verifies (rotation). */
export type KeyRing = readonly TicketKey[];

export interface TicketClaims {
  /** Ticket id. */
  jti: string;
  /** Order id. */
  oid: string;
  /** Content server id the ticket is for. */
  aud: string;
  /** Item path, e.g. `/apps/editor-2.1.dmg`. */
  path: string;
  /** Seconds since the epoch. */
  iat: number;
  nbf: number;
  exp: number;
  /** Client address prefix as a CIDR, when the ticket is bound. */
  cip?: string;
}

/** Refusal codes in the order the checks run (CONTRACT §4); `revoked` is checked last. */
export const REFUSAL_CODES = [
  'bad_ticket',
  'wrong_server',
  'wrong_path',
  'expired',
  'not_yet_valid',
  'wrong_client',
  'no_notice',
  'revoked',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];
