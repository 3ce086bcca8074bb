/**
 * `rushgate get URL [-o FILE] [--max-wait S] [--json] [--quiet]` (CONTRACT §1, §5): orders the
 * item at a reception URL, waits in line while busy, and downloads it with resume and a digest
 * check. Wires the real clock, terminal and signals to `client/get.ts` and sets the exit code.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Dispatcher } from 'undici';
import { UsageError } from '../../errors.js';

/** Exit code of an interrupted run (the shell's 128 + SIGINT); see `client/get.ts`. */
const INTERRUPTED = 130;

interface GetFlags {
  output?: string;
  maxWait?: string;
  json?: boolean;
  quiet?: boolean;
  limitRate?: string;
  insecure?: boolean;
  cacert?: string;
  grant?: string;
}

export function registerGetCommand(program: Command): void {
  program
    .command('get')
    .description(
      'order the item at a reception URL and download it, waiting in line while every server is busy',
    )
    .argument('<url>', 'reception item URL, e.g. http://127.0.0.1:8080/apps/editor-2.1.dmg')
    .option('-o, --output <file>', "where to save it (default: the item's name in the current folder)")
    .option('--max-wait <seconds>', 'give up (exit 3) when still busy after this many seconds')
    .option('--json', 'print a one-line JSON summary as the last line of stdout')
    .option('-q, --quiet', 'print nothing but errors (no progress bar)')
    .option('--grant <jwt>', "the shop's purchase grant for a paid item (exit 5 when it is refused)")
    .option('--limit-rate <rate>', 'download at most this fast, e.g. 500K or 2M bytes per second')
    .option('-k, --insecure', "HTTPS: do not check the servers' certificates (like curl -k); tests only")
    .option('--cacert <file>', 'HTTPS: trust the certificates signed by this PEM file (like curl --cacert)')
    .addHelpText(
      'after',
      `
Exit codes: 0 done, 1 failed, 2 usage, 3 still busy after --max-wait, 4 integrity check failed, 5 purchase grant refused,
130 interrupted (the .part file is kept; run the same command again to continue).`,
    )
    .action(async (url: string, flags: GetFlags) => {
      // Loaded only when the command runs, so that other commands start without the client's modules.
      const [{ systemClock }, { GET_EXIT, parseRate, parseSeconds, runGet }, { chooseMode }] =
        await Promise.all([
          import('../../client/clock.js'),
          import('../../client/get.js'),
          import('../../client/progress.js'),
        ]);
      const maxWaitSeconds =
        flags.maxWait === undefined ? undefined : parseSeconds(flags.maxWait, '--max-wait');
      const limitRate = flags.limitRate === undefined ? undefined : parseRate(flags.limitRate);
      const dispatcher = await tlsDispatcher(flags);
      const controller = new AbortController();
      let signalled: NodeJS.Signals | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        if (signalled) process.exit(INTERRUPTED);
        signalled = sig;
        controller.abort(new Error(`interrupted by ${sig}`));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        process.exitCode = await runGet(
          {
            url,
            json: flags.json === true,
            ...(flags.output === undefined ? {} : { output: flags.output }),
            ...(maxWaitSeconds === undefined ? {} : { maxWaitSeconds }),
            ...(limitRate === undefined ? {} : { limitRate }),
            ...(flags.grant === undefined ? {} : { grant: flags.grant }),
          },
          {
            clock: systemClock,
            cwd: process.cwd(),
            stdout: process.stdout,
            stderr: process.stderr,
            displayMode: chooseMode({
              quiet: flags.quiet === true,
              stdoutIsTTY: process.stdout.isTTY === true,
              stderrIsTTY: process.stderr.isTTY === true,
            }),
            signal: controller.signal,
            ...(dispatcher ? { dispatcher } : {}),
            startedAt: performance.timeOrigin,
          },
        );
        if (signalled === 'SIGTERM' && process.exitCode === GET_EXIT.interrupted) process.exitCode = 143;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await dispatcher?.close();
      }
    });
}

/**
 * The connection pool for `--insecure` / `--cacert` (both the reception and the content servers
 * are reached through it); undefined without either, so the default pool and system CAs apply.
 * `--cacert` replaces the system CAs, as curl's does.
 */
async function tlsDispatcher(flags: GetFlags): Promise<Dispatcher | undefined> {
  if (flags.insecure && flags.cacert) throw new UsageError('use --insecure or --cacert, not both');
  if (!flags.insecure && flags.cacert === undefined) return undefined;
  const { Agent } = await import('undici');
  if (flags.insecure) return new Agent({ connect: { rejectUnauthorized: false } });
  let ca: Buffer;
  try {
    ca = readFileSync(flags.cacert as string);
  } catch (err) {
    throw new UsageError(`--cacert: cannot read ${flags.cacert} (${(err as NodeJS.ErrnoException).code})`);
  }
  if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--cacert: ${flags.cacert} holds no PEM certificate`);
  return new Agent({ connect: { ca } });
}
