/**
 * The shop's side, for trying an integration without the shop (CONTRACT §1 `rushgate grant`,
 * `rushgate keys new --grant-issuer`, and the demo): an EdDSA key pair as JWKs, and a grant
 * signed with an issuer's private JWK or HS256 secret. The reception never signs grants.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { algForJwk } from './issuer-keys.js';

export interface ShopKeyPair {
  privateJwk: JWK;
  publicJwks: { keys: JWK[] };
}

export async function newShopKeyPair(kid: string): Promise<ShopKeyPair> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' };
  return { privateJwk: priv, publicJwks: { keys: [pub] } };
}

export interface GrantInput {
  iss: string;
  sub: string;
  items: string[] | '**';
  ttlSeconds: number;
  max?: number;
  email?: string;
  nowMs?: number;
}

/** Signs with a private JWK (its `kid` goes in the header) or an HS256 secret. */
export async function signGrant(input: GrantInput, key: { jwk: JWK } | { secret: string }): Promise<string> {
  const iat = Math.floor((input.nowMs ?? Date.now()) / 1000);
  const jwt = new SignJWT({
    items: input.items,
    ...(input.max !== undefined ? { max: input.max } : {}),
    ...(input.email !== undefined ? { email: input.email } : {}),
  })
    .setIssuer(input.iss)
    .setSubject(input.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + input.ttlSeconds)
    .setJti(randomUUID());
  if ('secret' in key) {
    return jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(key.secret));
  }
  const alg = algForJwk(key.jwk);
  if (!alg || key.jwk.d === undefined)
    throw new Error('the key file is not a private EdDSA, ES256 or RS256 JWK');
  const header = { alg, typ: 'JWT', ...(typeof key.jwk.kid === 'string' ? { kid: key.jwk.kid } : {}) };
  return jwt.setProtectedHeader(header).sign(await importJWK(key.jwk, alg));
}

/** `7d`, `12h`, `30m`, `90s` or plain seconds. */
export function parseTtl(value: string): number | undefined {
  const m = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * unit : undefined;
}
