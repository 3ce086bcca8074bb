/**
 * `rushgate config check --config FILE`: validates a deployment file and prints it resolved, with
 * defaults filled in and secrets masked. Exit 0 when valid, 2 when not (CONTRACT §1).
 */
import type { Command } from 'commander';

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('work with deployment files');
  config
    .command('check')
    .description('validate a deployment file and print it resolved (defaults filled in, secrets masked)')
    .requiredOption('--config <file>', 'deployment file (YAML or JSON)')
    .action(async (opts: { config: string }) => {
      const [{ stringify }, { maskSecrets }, { loadConfigFile }] = await Promise.all([
        import('yaml'),
        import('../../config/keys.js'),
        import('../../config/load.js'),
      ]);
      const resolved = loadConfigFile(opts.config, { checkRoots: 'all' });
      process.stdout.write(`# ${opts.config}: valid\n${stringify(maskSecrets(resolved))}`);
    });
}
