/**
 * `rushgate rush URL --clients N [--concurrency C] [--rate R] [--status URL] [--max-seconds S]
 * [--json] [--buyers FILE]`: rehearses a launch with N simulated buyers that behave like `rushgate get` (see
 * `client/rush.ts`) and prints what happened (CONTRACT §5). Exit 0 when every buyer got its item
 * intact, 1 otherwise.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { BuyerRecord } from '../../client/rush-report.js';
import { UsageError } from '../../errors.js';

interface RushFlags {
  clients: string;
  concurrency?: string;
  maxSeconds: string;
  rate?: string;
  status?: string;
  fifoTolerance: string;
  ramp: string;
  json?: boolean;
  buyers?: string;
}

/** Every buyer at once, as in a real rush, up to what one process's open files allow. */
const DEFAULT_CONCURRENCY_CAP = 10_000;

function wholeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n))
    throw new UsageError(`${flag} must be a whole number, got ${value}`);
  return n;
}

export function registerRushCommand(program: Command): void {
  program
    .command('rush')
    .description(
      'rehearse a launch: N simulated buyers (on loopback each from its own 127.x.y.z) order, wait holding their retries open, and download (bytes discarded, digests checked)',
    )
    .argument('<url>', 'reception item URL, e.g. http://127.0.0.1:8080/sample/big.bin')
    .requiredOption('--clients <n>', 'how many buyers in all')
    .option(
      '--concurrency <c>',
      `how many at once (default: all of them, at most ${DEFAULT_CONCURRENCY_CAP})`,
    )
    .option('--rate <bytes>', 'each buyer downloads at this pace, e.g. 256K or 1M bytes per second')
    .option(
      '--status <url>',
      "the reception's internal GET /status (e.g. http://127.0.0.1:9080/status), sampled for slot use",
    )
    .option(
      '--ramp <s>',
      'buyers arrive evenly over the first S seconds, as in a launch (0: all at once)',
      '0',
    )
    .option('--fifo-tolerance <s>', 'admissions out of line order by more than this count as inversions', '1')
    .option('--max-seconds <s>', 'stop the rehearsal after this long; unfinished buyers are reported', '300')
    .option('--json', 'print the report as one JSON object on the last line of stdout')
    .option(
      '--buyers <file>',
      "write every buyer's record (arrival, first estimate and range, admission, outcome) to FILE, one JSON object per line",
    )
    .action(async (url: string, flags: RushFlags) => {
      // Loaded only when the command runs, so that other commands start without the client's modules.
      const [{ systemClock }, { runRush }, { formatReport }, { parseRate, parseSeconds }] = await Promise.all(
        [
          import('../../client/clock.js'),
          import('../../client/rush.js'),
          import('../../client/rush-report.js'),
          import('../../client/get.js'),
        ],
      );
      const clients = wholeNumber(flags.clients, '--clients');
      const concurrency =
        flags.concurrency === undefined
          ? Math.min(Math.max(clients, 1), DEFAULT_CONCURRENCY_CAP)
          : wholeNumber(flags.concurrency, '--concurrency');
      const maxSeconds = Number(flags.maxSeconds);
      const rate = flags.rate === undefined ? undefined : parseRate(flags.rate, '--rate');
      const fifoToleranceSeconds = parseSeconds(flags.fifoTolerance, '--fifo-tolerance');
      const rampSeconds = parseSeconds(flags.ramp, '--ramp');
      const controller = new AbortController();
      const onSignal = () => controller.abort(new Error('interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const tty = process.stderr.isTTY === true && !flags.json;
      try {
        const report = await runRush(
          {
            url,
            clients,
            concurrency,
            maxSeconds,
            fifoToleranceSeconds,
            rampSeconds,
            ...(rate === undefined ? {} : { rate }),
            ...(flags.status === undefined ? {} : { statusUrl: flags.status }),
          },
          {
            clock: systemClock,
            signal: controller.signal,
            ...(flags.buyers === undefined
              ? {}
              : {
                  // The per-buyer figures behind the report's aggregates: calibration and FIFO order
                  // can be examined by arrival time (the report gives only their medians and counts).
                  onRecords: (records: readonly BuyerRecord[]) =>
                    writeFileSync(
                      flags.buyers as string,
                      records.map((r) => `${JSON.stringify(r)}\n`).join(''),
                    ),
                }),
            ...(tty
              ? {
                  onBuyerDone: (done: number, total: number) =>
                    process.stderr.write(`\r\x1b[2K${done}/${total} buyers finished`),
                }
              : {}),
          },
        );
        if (tty) process.stderr.write('\r\x1b[2K');
        if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else process.stdout.write(`${formatReport(report).join('\n')}\n`);
        process.exitCode =
          report.outcomes.done === report.clients && report.integrity.intact === report.clients ? 0 : 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
