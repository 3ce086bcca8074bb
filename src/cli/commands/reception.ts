/**
 * `rushgate reception --config FILE` (CONTRACT §1): runs the deployment's reception alone — the
 * public listener (CONTRACT §3) and the internal one (§6) — until SIGTERM or SIGINT, then shuts
 * down gracefully: no new orders, the ones in progress are answered, notices flushed, the store
 * closed. A taken port exits 2 with a message naming it; a second signal exits at once.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { onShutdownSignals } from '../../util/signals.js';

/** A shutdown taking longer than this (a stuck client) is cut short. */
const STOP_GRACE_MS = 10_000;

export function registerReceptionCommand(program: Command): void {
  program
    .command('reception')
    .description('run the reception (public and internal listeners) of a deployment file')
    .requiredOption('--config <file>', 'the deployment file (YAML or JSON)')
    .option('--ready-file <path>', 'once listening, write the bound addresses there (JSON)')
    .action(async (opts: { config: string; readyFile?: string }) => {
      // Loaded only when the command runs, so that every other command starts quickly.
      const [
        { loadConfigFile },
        { buildReception, ListenError },
        { createMailer },
        { openStore },
        { createLogger },
        { writeReadyFile },
      ] = await Promise.all([
        import('../../config/load.js'),
        import('../../reception/app.js'),
        import('../../reception/mailer.js'),
        import('../../store/index.js'),
        import('../../util/log.js'),
        import('../../util/ready-file.js'),
      ]);
      const config = loadConfigFile(opts.config, { checkRoots: 'none' });
      const logger = createLogger('reception');
      const store = await openStore(config.reception.store, { logger });
      const mailer = createMailer(config.reception.mail, logger);
      const reception = buildReception({ config, store, logger, mailer });
      try {
        const bound = await reception.start();
        if (opts.readyFile) {
          writeReadyFile(opts.readyFile, {
            role: 'reception',
            pid: process.pid,
            reception: { public: bound.publicUrl, internal: bound.internalUrl },
          });
        }
      } catch (err) {
        await reception.stop().catch(() => {});
        await store.close().catch(() => {});
        if (err instanceof ListenError) throw new UsageError(err.message);
        throw err;
      }
      const force = () => {
        logger.warn('shutdown cut short');
        process.exit(1);
      };
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        onShutdownSignals({ stop: resolve, force });
      });
      logger.info({ signal }, 'reception shutting down');
      const timer = setTimeout(force, STOP_GRACE_MS);
      timer.unref();
      await reception.stop();
      await store.close();
      clearTimeout(timer);
      logger.info('reception stopped');
    });
}
