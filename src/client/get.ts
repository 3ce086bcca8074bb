/**
 * `rushgate get URL` (CONTRACT §5): one order, downloaded into `FILE.part` beside its sidecar
 * (`FILE.part.json`, the order id), renamed to FILE once complete and verified. A rerun of the
 * same command continues the same order with `Range`; Ctrl-C leaves a resumable `.part`. Maps how
 * the order ended to the contract's exit codes and, with `--json`, prints the one-line summary.
 * The order itself is `order-flow.ts`; this module owns the files and the words.
 */
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { UsageError } from '../errors.js';
import type { Clock } from './clock.js';
import { defaultOutputName, parseItemUrl, partPathsOf } from './item-url.js';
import { type FlowResult, runOrder } from './order-flow.js';
import { type PartRecord, readSidecar, removeQuietly, writeSidecar } from './part-file.js';
import { createDisplay, type DisplayMode, formatBytes } from './progress.js';
import { createReceptionClient } from './reception-api.js';
import { FileSink } from './sink.js';

/** CONTRACT §5, plus the shell's convention for a run stopped by a signal (128 + signal number). */
export const GET_EXIT = {
  done: 0,
  failed: 1,
  usage: 2,
  busy: 3,
  integrity: 4,
  /** The purchase grant was refused (CONTRACT §7). */
  grant: 5,
  interrupted: 130,
} as const;

const GRANT_REFUSALS = new Set(['grant_required', 'bad_grant', 'grant_item', 'grant_used']);

export interface GetOptions {
  url: string;
  output?: string;
  maxWaitSeconds?: number;
  json: boolean;
  limitRate?: number;
  /** `--grant`; a `?grant=` in the URL is used when absent. */
  grant?: string;
}

export interface GetDeps {
  clock: Clock;
  cwd: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  displayMode: DisplayMode;
  /** Aborts on Ctrl-C / SIGTERM. */
  signal?: AbortSignal;
  /**
   * When the user started the command (ms since the epoch): `--max-wait` counts from here, so the
   * time the process took to start is part of the S seconds the user allowed.
   */
  startedAt?: number;
  dispatcher?: Dispatcher;
}

export interface GetSummary {
  orderId: string | null;
  item: string;
  server: string | null;
  bytes: number;
  sha256: string | null;
  waitedSeconds: number;
  attempts: number;
  error?: { code: string; message: string };
}

export async function runGet(opts: GetOptions, deps: GetDeps): Promise<number> {
  const { origin, item, grant: urlGrant } = parseItemUrl(opts.url);
  const grant = opts.grant ?? urlGrant;
  const target = outputPath(opts.output, item, deps.cwd);
  const { part, sidecar } = partPathsOf(target);
  mkdirSync(path.dirname(target), { recursive: true });
  const display = createDisplay({ mode: deps.displayMode, stream: deps.stderr, item, now: deps.clock.now });
  const fail = (text: string) => deps.stderr.write(`rushgate get: ${text}\n`);

  let record = readSidecar(sidecar);
  if (record && (record.origin !== origin || record.item !== item)) {
    display.notice?.(`${path.basename(part)} belongs to ${record.origin}${record.item}; starting over`);
    record = undefined;
  }
  if (!record) removeQuietly(part, sidecar);

  const sink = await FileSink.open(part);
  if (record && sink.length > 0)
    display.notice?.(`continuing order ${record.orderId} at ${formatBytes(sink.length)}`);
  const reception = createReceptionClient({
    origin,
    ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
    ...(grant ? { grant } : {}),
  });
  const deadline =
    opts.maxWaitSeconds === undefined
      ? undefined
      : Math.round((deps.startedAt ?? deps.clock.now()) + opts.maxWaitSeconds * 1000);

  let result: FlowResult | undefined;
  let interrupted = false;
  try {
    result = await runOrder({
      reception,
      item,
      sink,
      clock: deps.clock,
      observer: display,
      ...(deadline === undefined ? {} : { deadline }),
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
      ...(opts.limitRate ? { limitRate: opts.limitRate } : {}),
      ...(record ? { resume: resumeOf(record) } : {}),
      onState: (state) => writeSidecar(sidecar, { origin, item, ...state }),
    });
  } catch (err) {
    if (!deps.signal?.aborted) {
      display.close();
      await sink.close();
      throw err;
    }
    interrupted = true;
  }
  display.close();

  const held = sink.length;
  if (result?.kind === 'done') await sink.ensureCreated();
  await sink.close();

  if (interrupted || !result) {
    if (held === 0) {
      removeQuietly(part, sidecar);
      fail('interrupted');
    } else {
      fail(
        `interrupted with ${formatBytes(held)} in ${path.basename(part)}; run the same command again to continue`,
      );
    }
    if (opts.json)
      printSummary(deps.stdout, {
        ...emptySummary(item, reception.attempts),
        bytes: held,
        error: { code: 'interrupted', message: 'interrupted' },
      });
    return GET_EXIT.interrupted;
  }

  const summary: GetSummary = {
    orderId: result.orderId ?? null,
    item,
    server: result.server ?? null,
    bytes: result.bytes,
    sha256: result.kind === 'done' ? result.sha256 : null,
    waitedSeconds: Math.round(result.waitedMs / 100) / 10,
    attempts: result.attempts,
  };
  let code: number;
  switch (result.kind) {
    case 'done':
      renameSync(part, target);
      removeQuietly(sidecar);
      display.line(`saved ${target} (${formatBytes(result.size)}, sha-256 ${result.sha256})`);
      code = GET_EXIT.done;
      break;
    case 'integrity':
      removeQuietly(part, sidecar);
      summary.error = {
        code: 'integrity',
        message: `sha-256 ${result.actual} differs from the stated ${result.expected}`,
      };
      fail(
        `integrity check failed: the bytes hash to ${result.actual}, the server stated ${result.expected}; the file was deleted`,
      );
      code = GET_EXIT.integrity;
      break;
    case 'busy_timeout':
      if (held === 0) removeQuietly(part, sidecar);
      summary.error = { code: 'busy', message: `still busy after ${opts.maxWaitSeconds} s` };
      fail(
        `still busy after --max-wait ${opts.maxWaitSeconds} s; giving up${held > 0 ? ` (${formatBytes(held)} kept in ${path.basename(part)}; rerun to continue)` : ''}`,
      );
      code = GET_EXIT.busy;
      break;
    case 'failed':
      if (held === 0) removeQuietly(part, sidecar);
      summary.error = { code: result.code, message: result.message };
      fail(
        `${result.message}${held > 0 ? ` (${formatBytes(held)} kept in ${path.basename(part)}; rerun to continue)` : ''}`,
      );
      code = GRANT_REFUSALS.has(result.code) ? GET_EXIT.grant : GET_EXIT.failed;
      break;
  }
  if (opts.json) printSummary(deps.stdout, summary);
  return code;
}

function resumeOf(record: PartRecord) {
  return {
    orderId: record.orderId,
    ...(record.ticket ? { ticket: record.ticket } : {}),
    ...(record.size === undefined ? {} : { size: record.size }),
    ...(record.sha256 === undefined ? {} : { sha256: record.sha256 }),
  };
}

function emptySummary(item: string, attempts: number): GetSummary {
  return { orderId: null, item, server: null, bytes: 0, sha256: null, waitedSeconds: 0, attempts };
}

function printSummary(stdout: NodeJS.WritableStream, summary: GetSummary): void {
  stdout.write(`${JSON.stringify(summary)}\n`);
}

/** `-o FILE`, `-o DIR/` or an existing folder, or the item's name in the working folder. */
export function outputPath(output: string | undefined, item: string, cwd: string): string {
  const name = defaultOutputName(item);
  if (output === undefined || output === '') return path.resolve(cwd, name);
  const resolved = path.resolve(cwd, output);
  if (output.endsWith('/') || (existsSync(resolved) && statSync(resolved).isDirectory()))
    return path.join(resolved, name);
  return resolved;
}

/** `--max-wait S`: seconds, ≥ 0, decimals allowed. */
export function parseSeconds(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`${flag} must be a number of seconds ≥ 0, got ${JSON.stringify(value)}`);
  return n;
}

/** `--limit-rate 500K` / `2M` / `1G` / `123456` → bytes per second (like curl and wget). */
export function parseRate(value: string, flag = '--limit-rate'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?\s*$/.exec(value);
  if (!m) throw new UsageError(`${flag} must look like 500K, 2M or 123456, got ${JSON.stringify(value)}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const rate = Math.floor(Number(m[1]) * unit);
  if (rate < 1) throw new UsageError(`${flag} must be at least 1 byte per second`);
  return rate;
}
