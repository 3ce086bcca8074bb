/**
 * Respellings of a queue token: strings Node's lenient base64url decoder maps onto the same MAC
 * (junk characters, padding, the last character's spare bits, the standard alphabet).
 */
export function respellings(token: string): string[] {
  const [p, body, mac] = token.split('.') as [string, string, string];
  const out = new Set<string>();
  const at = (m: string) => `${p}.${body}.${m}`;
  for (const junk of ['!', ' ', '=', '==', '*', '\t', '@', '$']) {
    out.add(at(`${mac}${junk}`));
    out.add(at(`${mac.slice(0, 5)}${junk}${mac.slice(5)}`));
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(mac.at(-1)!);
  // 16 bytes in 22 characters: the last character carries 4 spare bits.
  for (let spare = 1; spare < 16; spare++) out.add(at(mac.slice(0, -1) + alphabet[(last & ~15) | spare]));
  out.add(at(mac.replaceAll('-', '+').replaceAll('_', '/')));
  out.delete(token);
  return [...out].filter((v) => v !== token);
}
