/** `rushgate keys new [--id ID]`: prints a fresh ticket key entry for the deployment file. */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { newTicketKey } from '../../config/keys.js';
import { UsageError } from '../../errors.js';

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('manage ticket keys');
  keys
    .command('new')
    .description(
      'print a fresh ticket key entry (YAML) for secrets.ticketKeys; put it FIRST to start issuing with it',
    )
    .option(
      '--id <id>',
      'key id, becomes the ticket header `kid`',
      `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`,
    )
    .option(
      '--grant-issuer <iss>',
      "instead: write a shop's EdDSA key pair for purchase grants (CONTRACT §7)",
    )
    .option('--out <dir>', 'with --grant-issuer: where the two files go', '.')
    .action(async (opts: { id: string; grantIssuer?: string; out: string }) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.id))
        throw new UsageError(`--id must be 1–64 letters, digits, ".", "_" or "-"`);
      if (opts.grantIssuer === undefined) {
        process.stdout.write(stringify([{ id: opts.id, key: newTicketKey() }]));
        return;
      }
      const [{ writeShopKeys }] = await Promise.all([import('../shop-keys.js')]);
      const written = await writeShopKeys(opts.grantIssuer, opts.id, opts.out);
      process.stdout.write(
        `private key (keep it in the shop, mode 0600): ${written.privateFile}\n` +
          `public JWK Set (for the reception): ${written.publicFile}\n\n` +
          stringify({ grants: { issuers: [{ iss: opts.grantIssuer, jwks: written.publicFile }] } }),
      );
    });
}
