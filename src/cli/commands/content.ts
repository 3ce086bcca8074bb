/**
 * `rushgate content --config FILE --id ID` (CONTRACT §1): runs one content server of the
 * deployment file until SIGTERM or SIGINT, then shuts down gracefully — draining, in-flight
 * transfers finishing within `--grace-seconds`, transfer events flushed — and exits 0. A second
 * signal cuts the grace period short. A listen address that is taken exits 2 naming it.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { onShutdownSignals } from '../../util/signals.js';

interface ContentOptions {
  config: string;
  id: string;
  graceSeconds: string;
  readyFile?: string;
}

export function registerContentCommand(program: Command): void {
  program
    .command('content')
    .description('run one content server of the deployment file')
    .requiredOption('--config <file>', 'deployment file (YAML or JSON)')
    .requiredOption('--id <id>', 'which content server of the file to run')
    .option('--grace-seconds <n>', 'on SIGTERM/SIGINT, how long transfers in flight may take to finish', '10')
    .option(
      '--ready-file <path>',
      'once listening with its catalog ready, write the bound addresses there (JSON)',
    )
    .action(async (opts: ContentOptions) => {
      const grace = Number(opts.graceSeconds);
      if (!/^\d+(\.\d+)?$/.test(opts.graceSeconds) || !Number.isFinite(grace)) {
        throw new UsageError(
          `--grace-seconds must be a number ≥ 0, got ${JSON.stringify(opts.graceSeconds)}`,
        );
      }
      // Loaded only when the command runs, so that every other command starts quickly.
      const [
        { loadConfigFile },
        { buildContentServer, ListenError, systemClock },
        { createLogger },
        { urlOfAddress, writeReadyFile },
      ] = await Promise.all([
        import('../../config/load.js'),
        import('../../content/index.js'),
        import('../../util/log.js'),
        import('../../util/ready-file.js'),
      ]);
      const config = loadConfigFile(opts.config, { checkRoots: { serverId: opts.id } });
      const logger = createLogger(`content:${opts.id}`);
      const server = buildContentServer({ config, serverId: opts.id, clock: systemClock, logger });

      const stopped = new Promise<void>((resolve) => {
        const stop = (graceMs: number) =>
          server.stop(graceMs).then(resolve, (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          });
        onShutdownSignals({
          stop: () => stop(grace * 1000),
          force: (signal) => {
            logger.warn({ signal }, 'second signal: cutting the grace period short');
            stop(0);
          },
        });
      });

      try {
        await server.start();
      } catch (err) {
        if (err instanceof ListenError)
          throw new UsageError(`content server ${JSON.stringify(opts.id)}: ${err.message}`);
        throw err;
      }
      if (opts.readyFile) {
        writeReadyFile(opts.readyFile, {
          role: 'content',
          pid: process.pid,
          contentServers: {
            [opts.id]: {
              public: urlOfAddress(server.publicAddress()),
              internal: urlOfAddress(server.internalAddress()),
            },
          },
        });
      }
      await stopped;
      // Anything still holding the event loop (a stuck socket) must not keep a stopped server alive.
      setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
    });
}
