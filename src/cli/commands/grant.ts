/**
 * `rushgate grant --config FILE --item PATH … --purchase SUB [--issuer ISS] [--key JWK] [--ttl 7d]
 * [--max N] [--email ADDR]`: prints a purchase grant (CONTRACT §7), signed with the issuer's
 * `secret` or the private JWK given, and a ready link — a shop integration tried without the shop.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';

interface GrantFlags {
  config: string;
  item: string[];
  purchase: string;
  issuer?: string;
  key?: string;
  ttl: string;
  max?: string;
  email?: string;
}

export function registerGrantCommand(program: Command): void {
  program
    .command('grant')
    .description('print a purchase grant (a signed JWT) for trying a shop integration')
    .requiredOption('--config <file>', 'deployment file (YAML or JSON)')
    .requiredOption('--item <path>', 'an item path the grant covers ("**" for all); repeatable', collect, [])
    .requiredOption('--purchase <sub>', "the shop's purchase id (the grant's `sub`)")
    .option('--issuer <iss>', 'the issuer (default: the only one in reception.grants)')
    .option('--key <file>', "the issuer's private JWK (needed for a JWKS issuer)")
    .option('--ttl <duration>', 'how long the grant is valid: 90s, 30m, 12h, 7d', '7d')
    .option('--max <n>', 'orders the grant may make per item (default 1)')
    .option('--email <address>', 'mail the ticket link there (when mail is configured)')
    .action(async (flags: GrantFlags) => {
      const [{ loadConfigFile }, { parseTtl, signGrant }] = await Promise.all([
        import('../../config/load.js'),
        import('../../grants/mint.js'),
      ]);
      const config = loadConfigFile(flags.config);
      const issuers = config.reception.grants?.issuers ?? [];
      const issuer =
        flags.issuer !== undefined
          ? issuers.find((i) => i.iss === flags.issuer)
          : issuers.length === 1
            ? issuers[0]
            : undefined;
      if (!issuer) throw new UsageError('--issuer must name one of reception.grants.issuers');
      const ttlSeconds = parseTtl(flags.ttl);
      if (ttlSeconds === undefined) throw new UsageError('--ttl must look like 90s, 30m, 12h or 7d');
      const max = flags.max === undefined ? undefined : Number(flags.max);
      if (max !== undefined && !(Number.isInteger(max) && max >= 1))
        throw new UsageError('--max must be ≥ 1');
      let key: { jwk: Record<string, unknown> } | { secret: string };
      if (flags.key !== undefined) key = { jwk: JSON.parse(readFileSync(flags.key, 'utf8')) };
      else if (issuer.secret !== undefined) key = { secret: issuer.secret };
      else throw new UsageError(`issuer ${issuer.iss} has a JWK Set: give its private key with --key`);
      const items = flags.item.includes('**') ? '**' : flags.item;
      const token = await signGrant(
        {
          iss: issuer.iss,
          sub: flags.purchase,
          items,
          ttlSeconds,
          ...(max !== undefined ? { max } : {}),
          ...(flags.email !== undefined ? { email: flags.email } : {}),
        },
        key,
      );
      process.stdout.write(`${token}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
