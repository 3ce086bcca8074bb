/** `rushgate rush` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerRushCommand(program: Command): void {
  program
    .command('rush')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate rush is not available yet');
    });
}
