/**
 * The ticket's envelope: JWE compact serialization (RFC 7516) with `alg: dir`, `enc: A256GCM`
 * and the key id in `kid` (CONTRACT §4), written directly on node:crypto. Why not `jose`: measured
 * here, jose's (async, WebCrypto-based) compactDecrypt/CompactEncrypt manage only ~5–11k
 * create+verify pairs per second, against ~100k/s for plain node:crypto AES-256-GCM, and a content
 * server verifies a ticket on every range request of a rush (`npm run bench`, bench/tickets.ts,
 * prints both side by side; there our verify ran ~10–15× jose's compactDecrypt). The format is byte-for-byte standard: tests check that jose decrypts
 * our tokens and that our decrypt accepts jose's.
 *
 * Layout: `BASE64URL(header) . "" . BASE64URL(iv) . BASE64URL(ciphertext) . BASE64URL(tag)`; the
 * encrypted-key segment is empty under `dir`; the IV is 96 random bits; the AAD is the ASCII of
 * the header segment exactly as transmitted; the tag is 128 bits. Decryption never throws on
 * input: every malformed, foreign or tampered token is `{ ok: false }` (only a malformed ring
 * key, a configuration error, throws).
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from 'node:crypto';
import type { KeyRing, TicketKey } from './types.js';

export const JWE_ALG = 'dir';
export const JWE_ENC = 'A256GCM';
/**
 * Longest token accepted. A ticket lives in one URL path segment and a typical one is ~300
 * characters; the cap stops a hostile client from making us base64-decode and AES megabytes.
 */
export const MAX_TOKEN_LENGTH = 2048;

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** base64url lengths (unpadded) of the fixed-size parts. */
const IV_CHARS = 16;
const TAG_CHARS = 22;

/** Everything derived from a ring key that does not change between tokens. */
interface PreparedKey {
  /** The id and bytes it was derived from, to notice a TicketKey object mutated in place. */
  id: string;
  raw: Uint8Array;
  secret: KeyObject;
  /** The base64url protected header we emit — and the one our own tokens arrive with. */
  headerB64: string;
  /** ASCII bytes of headerB64: the AAD. */
  aad: Buffer;
}

// Keyed by the TicketKey object, so that a dropped ring frees its entries.
const prepared = new WeakMap<TicketKey, PreparedKey>();

function prepare(key: TicketKey): PreparedKey {
  const hit = prepared.get(key);
  if (hit && hit.id === key.id && hit.raw === key.key) return hit;
  // A wrong-sized key is a configuration error (the deployment schema already refuses one), not
  // a property of any token, so it throws rather than turning every ticket into bad_ticket.
  if (!(key.key instanceof Uint8Array) || key.key.length !== KEY_BYTES) {
    throw new TypeError(`ticket key ${JSON.stringify(key.id)} must be ${KEY_BYTES} bytes`);
  }
  if (typeof key.id !== 'string' || key.id.length === 0)
    throw new TypeError('ticket key id must be a non-empty string');
  // Member order fixed so that our tokens hit the string-compare fast path in findKey.
  const headerB64 = Buffer.from(JSON.stringify({ alg: JWE_ALG, enc: JWE_ENC, kid: key.id })).toString(
    'base64url',
  );
  const entry: PreparedKey = {
    id: key.id,
    raw: key.key,
    // A KeyObject spares node:crypto re-importing raw key bytes on every cipher (measured faster).
    secret: createSecretKey(key.key),
    headerB64,
    aad: Buffer.from(headerB64, 'latin1'),
  };
  prepared.set(key, entry);
  return entry;
}

/*
 * IVs come from a pool of random bytes refilled in one call: randomBytes(12) per token costs about
 * as much as the encryption itself. Node does the same for crypto.randomUUID. The pool is only
 * ever read forward, so no IV is handed out twice. With random 96-bit IVs, NIST SP 800-38D bounds
 * a key to 2^32 messages; rotate ticket keys long before that (billions of tickets).
 */
const IV_POOL_BYTES = IV_BYTES * 1024;
const ivPool = Buffer.alloc(IV_POOL_BYTES);
let ivOffset = IV_POOL_BYTES;

function nextIv(): Buffer {
  if (ivOffset + IV_BYTES > IV_POOL_BYTES) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  // A copy, not a view: the pool is overwritten on refill while a caller might keep the IV.
  const iv = Buffer.from(ivPool.subarray(ivOffset, ivOffset + IV_BYTES));
  ivOffset += IV_BYTES;
  return iv;
}

/** Encrypts `plaintext` under `key` and returns the compact serialization. */
export function encryptCompact(plaintext: Uint8Array, key: TicketKey): string {
  const k = prepare(key);
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', k.secret, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(k.aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const ct = tail.length === 0 ? head : Buffer.concat([head, tail]);
  const tag = cipher.getAuthTag();
  return `${k.headerB64}..${iv.toString('base64url')}.${ct.toString('base64url')}.${tag.toString('base64url')}`;
}

export type DecryptResult = { ok: true; plaintext: Buffer; kid: string } | { ok: false; reason: string };

const fail = (reason: string): DecryptResult => ({ ok: false, reason });

// The token is checked against this once, so that the segments only need length checks.
const TOKEN_ALPHABET = /^[A-Za-z0-9_.-]+$/;

function b64val(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  return c === 45 ? 62 : 63;
}

/**
 * Strict, canonical unpadded base64url, assuming the alphabet is already checked. Canonical
 * matters: Buffer's decoder ignores the unused low bits of the last character, so without this
 * check flipping them would give a second spelling of the same, still valid, ticket.
 */
function canonicalB64(s: string): boolean {
  const rem = s.length & 3;
  if (rem === 0) return true;
  if (rem === 1) return false;
  const v = b64val(s.charCodeAt(s.length - 1));
  return rem === 2 ? (v & 0x0f) === 0 : (v & 0x03) === 0;
}

/**
 * Finds the ring key for a header segment. Our own tokens carry exactly the header we emit, so a
 * string compare settles them; anything else (e.g. jose's output with members in another order)
 * is decoded and checked member by member.
 */
function findKey(headerB64: string, ring: KeyRing): { key: PreparedKey } | { reason: string } {
  for (const key of ring) {
    const k = prepare(key);
    if (k.headerB64 === headerB64) return { key: k };
  }
  if (headerB64.length === 0 || !canonicalB64(headerB64)) return { reason: 'bad header encoding' };
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(headerB64, 'base64url').toString('utf8'));
  } catch {
    return { reason: 'header is not JSON' };
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    return { reason: 'header is not an object' };
  const h = header as Record<string, unknown>;
  if (h.alg !== JWE_ALG) return { reason: 'unsupported alg' };
  if (h.enc !== JWE_ENC) return { reason: 'unsupported enc' };
  // RFC 7516: a `crit` we do not understand must be refused; `zip` would mean the plaintext is
  // compressed, which we never do and do not implement.
  if (Object.hasOwn(h, 'crit')) return { reason: 'unsupported crit' };
  if (Object.hasOwn(h, 'zip')) return { reason: 'unsupported zip' };
  if (typeof h.kid !== 'string') return { reason: 'missing kid' };
  for (const key of ring) {
    if (key.id === h.kid) return { key: prepare(key) };
  }
  return { reason: 'unknown kid' };
}

/**
 * Decrypts a compact JWE with whichever ring key its `kid` names. Returns the plaintext and the
 * kid, or why the token is refused; never throws on any input string.
 */
export function decryptCompact(token: string, ring: KeyRing): DecryptResult {
  if (typeof token !== 'string') return fail('not a string');
  if (token.length > MAX_TOKEN_LENGTH) return fail('token too long');
  if (!TOKEN_ALPHABET.test(token)) return fail('bad character');
  const parts = token.split('.');
  if (parts.length !== 5) return fail('wrong segment count');
  const [header, encKey, ivB64, ctB64, tagB64] = parts as [string, string, string, string, string];
  if (encKey.length !== 0) return fail('encrypted key must be empty under dir');
  if (ivB64.length !== IV_CHARS || !canonicalB64(ivB64)) return fail('bad iv');
  if (tagB64.length !== TAG_CHARS || !canonicalB64(tagB64)) return fail('bad tag');
  if (ctB64.length === 0 || !canonicalB64(ctB64)) return fail('bad ciphertext');
  const found = findKey(header, ring);
  if ('reason' in found) return fail(found.reason);
  const k = found.key;
  const aad = k.headerB64 === header ? k.aad : Buffer.from(header, 'latin1');
  try {
    const decipher = createDecipheriv('aes-256-gcm', k.secret, Buffer.from(ivB64, 'base64url'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(tagB64, 'base64url'));
    const head = decipher.update(Buffer.from(ctB64, 'base64url'));
    // final() is where GCM checks the tag; it throws on any tampering.
    const tail = decipher.final();
    return { ok: true, plaintext: tail.length === 0 ? head : Buffer.concat([head, tail]), kid: k.id };
  } catch {
    return fail('decryption failed');
  }
}
