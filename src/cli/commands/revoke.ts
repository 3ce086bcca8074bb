/** `rushgate revoke` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerRevokeCommand(program: Command): void {
  program
    .command('revoke')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate revoke is not available yet');
    });
}
