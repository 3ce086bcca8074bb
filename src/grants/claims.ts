/**
 * A purchase grant's claims (CONTRACT §7) as one schema: what the shop signs and what the
 * reception reads after the signature holds. Pure. `exp`/`nbf` are checked by the verifier (with
 * `clockSkewSeconds`); this schema only says which claims a grant must carry and their shapes.
 */
import { z } from 'zod';

export const grantClaimsSchema = z.object({
  iss: z.string().min(1).max(512),
  sub: z.string().min(1).max(512),
  items: z.union([z.literal('**'), z.array(z.string().min(1).max(4096)).min(1).max(1000)]),
  exp: z.number().int(),
  iat: z.number().int(),
  nbf: z.number().int().optional(),
  jti: z.string().min(1).max(512).optional(),
  max: z.number().int().min(1).max(1000).default(1),
  email: z.email().max(254).optional(),
});

export type GrantClaims = z.output<typeof grantClaimsSchema>;

/** The purchase a grant belongs to: what orders record and what a refund revokes. */
export interface Purchase {
  iss: string;
  sub: string;
}
