/**
 * `rushgate up [--config FILE]` (CONTRACT §1): runs the reception and every content server of the
 * deployment, or the built-in example deployment without `--config` (`npm start`). Wires signals,
 * the terminal and this CLI's own path to `deploy/up.ts`.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { onShutdownSignals } from '../../util/signals.js';

interface UpFlags {
  config?: string;
  dataDir?: string;
  basePort?: string;
  tls?: boolean;
  graceSeconds: string;
  readyFile?: string;
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run the reception and every content server of a deployment (default: the built-in example)')
    .option('--config <file>', 'deployment file; without it, the built-in example deployment')
    .option('--data-dir <dir>', 'example only: data folder (default: $RUSHGATE_DATA_DIR or ./data)')
    .option(
      '--base-port <port>',
      'example only: first port; the reception listens there, servers on the next three, internal ports 1000 above (default: $RUSHGATE_EXAMPLE_BASE_PORT or 8080)',
    )
    .option(
      '--tls',
      'example only: HTTPS on the public ports, with a self-signed certificate made in the data folder',
    )
    .option('--grace-seconds <s>', 'on shutdown, how long transfers in flight may take to finish', '10')
    .option('--ready-file <path>', 'once every role is ready, write their bound addresses there (JSON)')
    .addHelpText(
      'after',
      `
Without --config, the example keeps generated keys, sample items and its SQLite store in the data
folder, so a restart reuses them. Environment: RUSHGATE_DATA_DIR, RUSHGATE_EXAMPLE_BASE_PORT.`,
    )
    .action(async (flags: UpFlags) => {
      const grace = Number(flags.graceSeconds);
      if (!Number.isFinite(grace) || grace < 0) throw new UsageError('--grace-seconds must be a number ≥ 0');
      let basePort: number | undefined;
      if (flags.basePort !== undefined) {
        basePort = Number(flags.basePort);
        if (!Number.isInteger(basePort))
          throw new UsageError(`--base-port must be a port number, got ${flags.basePort}`);
      }
      if (flags.config && flags.tls)
        throw new UsageError('--tls applies to the example deployment; with --config, set tls in the file');
      if (flags.config && (flags.dataDir || flags.basePort))
        throw new UsageError(
          '--data-dir and --base-port apply to the example deployment only, not with --config',
        );

      let onShutdown: (why: string) => void = () => {};
      let onForce: (why: string) => void = () => {};
      const shutdownRequested = new Promise<string>((r) => {
        onShutdown = r;
      });
      const forceRequested = new Promise<string>((r) => {
        onForce = r;
      });
      const unsubscribe = onShutdownSignals({ stop: (sig) => onShutdown(sig), force: (sig) => onForce(sig) });
      // A closed terminal or pipe (`rushgate up | head`) must not take the supervisor down with it:
      // its children would be left without anyone to stop them.
      const ignore = () => {};
      process.stdout.on('error', ignore);
      process.stderr.on('error', ignore);
      try {
        const { runUp } = await import('../../deploy/up.js');
        await runUp(
          {
            graceSeconds: grace,
            ...(flags.config ? { config: flags.config } : {}),
            ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
            ...(flags.readyFile ? { readyFile: flags.readyFile } : {}),
            ...(basePort === undefined ? {} : { basePort }),
            ...(flags.tls ? { tls: true } : {}),
          },
          {
            command: [process.execPath, ...process.execArgv, process.argv[1] ?? ''],
            env: process.env,
            cwd: process.cwd(),
            stdout: (line) => process.stdout.write(`${line}\n`),
            stderr: (line) => process.stderr.write(`${line}\n`),
            shutdownRequested,
            forceRequested,
          },
        );
      } finally {
        unsubscribe();
      }
    });
}
