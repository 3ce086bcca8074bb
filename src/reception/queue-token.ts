/**
 * Queue tokens (CONTRACT §3): the opaque string that keeps a waiting client's place, carried in
 * the `rushgate_queue` cookie, the `Rushgate-Queue-Token` header or the `queueToken` field. It is
 * signed, not secret: HMAC-SHA-256 under a key derived by HKDF from the ticket keys, so a client
 * cannot forge a place or move one to another item. It names the item it waits for, which lets
 * the waiting line hand a freed slot only to a waiter whose item that server holds. Every key of
 * the ring verifies, so tokens survive a key rotation like tickets do. The key is the
 * deployment's own, so another deployment's tokens never verify; a token in any other spelling
 * than the one issued is refused; and a token is worth something only while its place is in the
 * store's line (the line, not the token, decides — an abandoned place is gone for good).
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { KeyRing } from '../tickets/index.js';
import { idSource } from './ids.js';

const PREFIX = 'q1';
const MAC_BYTES = 16;
export const MAX_QUEUE_TOKEN_LENGTH = 2048;

export interface QueueTokenFacts {
  item: string;
  /** ms since the epoch. */
  issuedAt: number;
}

export interface QueueTokens {
  mint(item: string, now: number): string;
  /** The token's facts, or undefined when it is malformed or not ours. */
  read(token: string): QueueTokenFacts | undefined;
}

function deriveKey(key: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'rushgate queue token v1', 32));
}

export function createQueueTokens(ring: KeyRing): QueueTokens {
  const keys = ring.map((k) => deriveKey(k.key));
  const signing = keys[0];
  if (!signing) throw new Error('ticket key ring is empty');
  const nonce = idSource();
  const mac = (key: Buffer, body: string) =>
    createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);
  return {
    mint(item, now) {
      const payload = JSON.stringify({ n: nonce(), i: item, t: now });
      const body = `${PREFIX}.${Buffer.from(payload).toString('base64url')}`;
      return `${body}.${mac(signing, body).toString('base64url')}`;
    },
    read(token) {
      if (typeof token !== 'string' || token.length > MAX_QUEUE_TOKEN_LENGTH) return undefined;
      const parts = token.split('.');
      if (parts.length !== 3 || parts[0] !== PREFIX) return undefined;
      const body = `${parts[0]}.${parts[1]}`;
      const given = Buffer.from(parts[2] ?? '', 'base64url');
      if (given.length !== MAC_BYTES) return undefined;
      // Node's base64url decoder skips junk ("!", " ", "=") and ignores the last character's
      // spare bits, so many strings decode to one MAC. Only the spelling we issued is the token:
      // otherwise each respelling would be a new bucket and a new place for the same token.
      if (given.toString('base64url') !== parts[2]) return undefined;
      if (!keys.some((k) => timingSafeEqual(mac(k, body), given))) return undefined;
      try {
        const payload = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as unknown;
        if (typeof payload !== 'object' || payload === null) return undefined;
        const { i, t } = payload as { i?: unknown; t?: unknown };
        if (typeof i !== 'string' || typeof t !== 'number') return undefined;
        return { item: i, issuedAt: t };
      } catch {
        return undefined;
      }
    },
  };
}
