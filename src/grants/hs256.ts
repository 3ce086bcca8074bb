/** HS256 grants without a JOSE library (no `jose` import, so `rushgate up` starts light). */
import { createHmac } from 'node:crypto';

/**
 * An HS256 grant with `node:crypto` alone, synchronously: the recipe a shop without a JOSE
 * library follows (docs/SHOP-INTEGRATION.md), and what `rushgate up` prints for the demo shop.
 */
export function hs256Grant(secret: string, claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
