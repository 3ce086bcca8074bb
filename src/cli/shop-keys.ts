/** Writes a shop's grant key pair (`rushgate keys new --grant-issuer`): private JWK 0600, public JWK Set. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { newShopKeyPair } from '../grants/mint.js';

export async function writeShopKeys(
  iss: string,
  kid: string,
  dir: string,
): Promise<{ privateFile: string; publicFile: string }> {
  const pair = await newShopKeyPair(kid);
  mkdirSync(dir, { recursive: true });
  const host = safeName(iss);
  const privateFile = path.resolve(dir, `${host}-${kid}.private.jwk.json`);
  const publicFile = path.resolve(dir, `${host}-jwks.json`);
  writeFileSync(privateFile, `${JSON.stringify({ ...pair.privateJwk, iss })}\n`, { mode: 0o600, flag: 'wx' });
  writeFileSync(publicFile, `${JSON.stringify(pair.publicJwks, null, 2)}\n`);
  return { privateFile, publicFile };
}

function safeName(iss: string): string {
  try {
    return new URL(iss).hostname.replace(/[^A-Za-z0-9.-]/g, '_') || 'shop';
  } catch {
    return iss.replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 64) || 'shop';
  }
}
