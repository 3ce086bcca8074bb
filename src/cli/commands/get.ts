/** `rushgate get` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerGetCommand(program: Command): void {
  program
    .command('get')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate get is not available yet');
    });
}
