/** `rushgate up` — placeholder until its issue lands; the owner replaces this file. */
import type { Command } from 'commander';

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('(not yet available)')
    .action(() => {
      throw new Error('rushgate up is not available yet');
    });
}
