/**
 * How a grant finds its orders again (CONTRACT §7): the n-th order of one grant's purchase for one
 * item has a derived idempotency key, so the store's idempotency step (atomic in every backend,
 * shared by receptions on one Redis) is what makes "one order per grant and item". Pure.
 */
import { createHash } from 'node:crypto';

export function grantOrderKey(p: { iss: string; sub: string }, item: string, n: number): string {
  const h = createHash('sha256').update(`${p.iss}\n${p.sub}\n${item}`).digest('base64url');
  return `grant:${h}:${n}`;
}
