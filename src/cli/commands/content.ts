/** `rushgate content` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerContentCommand(program: Command): void {
  program
    .command('content')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate content is not available yet');
    });
}
