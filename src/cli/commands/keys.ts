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
    .action((opts: { id: string }) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.id))
        throw new UsageError(`--id must be 1–64 letters, digits, ".", "_" or "-"`);
      process.stdout.write(stringify([{ id: opts.id, key: newTicketKey() }]));
    });
}
