/**
 * A memory of recently opened tickets: the exact token string → the claims its decryption and
 * schema check yielded. In a rush one ticket comes back many times (range requests, a download
 * manager's segments, resumes), and opening it — base64url, AES-256-GCM, JSON — was the largest
 * share of our own code in a small download's CPU profile (bench/content.ts, one run each on this
 * shared machine: 82 → 53 µs of server CPU per 16 KiB request with this memory).
 *
 * Only the opening is remembered, never a verdict: the claims are a pure function of the token and
 * the key ring, so a hit is exactly what decrypting again would give. Everything that depends on
 * the request or the moment — server, path, expiry and validity window, client address, notice,
 * revocation — is still checked on every request by `checkClaims`. Only tokens that opened are
 * kept, so nothing a client can forge takes a place here; bounded (about the least recently used
 * goes first), so a flood of valid tickets costs at most `capacity` entries. A memory belongs to one
 * key ring: a ring change (rotation) means a new memory, so a dropped key's tickets stop opening.
 */
import { decryptCompact } from './jwe.js';
import type { KeyRing, TicketClaims } from './types.js';
import { parseClaims } from './verify.js';

/** Default entries: a few MB at ~300-character tokens, and more distinct tickets than a server serves at once. */
export const OPENED_TICKETS_CAPACITY = 4096;

interface Entry {
  claims: Readonly<TicketClaims>;
  /** Used since it last came up for eviction (second chance). */
  used: boolean;
}

export class OpenedTickets {
  readonly #ring: KeyRing;
  readonly #capacity: number;
  // A Map iterates in insertion order, so its first key is the longest since it was (re)inserted.
  readonly #entries = new Map<string, Entry>();

  constructor(ring: KeyRing, capacity = OPENED_TICKETS_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('capacity must be ≥ 1');
    this.#ring = ring;
    this.#capacity = capacity;
  }

  /**
   * The token's claims, or null when it does not open (malformed, foreign key, tampered, bad
   * claims). The claims are frozen: callers share one object per ticket.
   */
  open(token: string): Readonly<TicketClaims> | null {
    const hit = this.#entries.get(token);
    if (hit) {
      // A flag rather than a re-insertion: a hit is the common case (the profile showed the
      // Map delete + set of a strict LRU as this module's main cost).
      hit.used = true;
      return hit.claims;
    }
    const opened = decryptCompact(token, this.#ring);
    if (!opened.ok) return null;
    const claims = parseClaims(opened.plaintext);
    if (!claims) return null;
    const frozen = Object.freeze(claims);
    if (this.#entries.size >= this.#capacity) this.#evictOne();
    this.#entries.set(token, { claims: frozen, used: false });
    return frozen;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Least recently used, approximately (the CLOCK policy): the oldest entry goes unless it was
   * used since it was inserted or last passed over, in which case it moves to the back with its
   * flag cleared. Ends within one pass over the entries, since every flag passed over is cleared.
   */
  #evictOne(): void {
    for (const [token, entry] of this.#entries) {
      this.#entries.delete(token);
      if (!entry.used) return;
      entry.used = false;
      this.#entries.set(token, entry);
    }
  }
}
