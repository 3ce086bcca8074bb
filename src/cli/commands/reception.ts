/** `rushgate reception` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerReceptionCommand(program: Command): void {
  program
    .command('reception')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate reception is not available yet');
    });
}
