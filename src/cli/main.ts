#!/usr/bin/env node
/**
 * The `rushgate` command line (CONTRACT §1). Each subcommand lives in `commands/<name>.ts` and
 * registers itself on the program; this file only wires them together and turns the errors the
 * project defines into exit codes: configuration and usage problems exit 2 without a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, UsageError } from '../errors.js';
import { registerConfigCommand } from './commands/config.js';
import { registerContentCommand } from './commands/content.js';
import { registerGetCommand } from './commands/get.js';
import { registerGrantCommand } from './commands/grant.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerReceptionCommand } from './commands/reception.js';
import { registerRevokeCommand } from './commands/revoke.js';
import { registerRushCommand } from './commands/rush.js';
import { registerUpCommand } from './commands/up.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function buildProgram(): Command {
  const program = new Command('rushgate')
    .description('Hands out permission tickets to the least-loaded content server during download rushes.')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerUpCommand,
    registerReceptionCommand,
    registerContentCommand,
    registerGetCommand,
    registerRushCommand,
    registerKeysCommand,
    registerConfigCommand,
    registerRevokeCommand,
    registerGrantCommand,
  ]) {
    register(program);
  }
  program.commands.forEach((c) => {
    c.exitOverride();
  });
  return program;
}

/** Prints a failure the way the contract wants (stderr, no stack) and returns its exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; anything else commander rejects is a usage error.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof ConfigError || err instanceof UsageError) {
    process.stderr.write(`rushgate: ${err.message}\n`);
    return EXIT.usage;
  }
  process.stderr.write(`rushgate: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.RUSHGATE_DEBUG) console.error(err);
  return EXIT.failed;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

await main(process.argv);
