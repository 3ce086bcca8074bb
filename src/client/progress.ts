/**
 * What `rushgate get` shows while it works (CONTRACT §5). On a terminal: a status line with the
 * position and a live countdown to the next try, the terminal bell when admitted after waiting
 * (the seed's "notifying a user of success of connection by sounds"), and a cli-progress bar with
 * bytes, rate and ETA. Not on a terminal: plain lines, one per event, and no escape code or bell.
 * With `--quiet`: nothing (errors are the command's to print). Everything goes to stderr, so that
 * stdout carries only the `--json` summary.
 */
import { SingleBar } from 'cli-progress';
import type { FlowObserver } from './order-flow.js';
import type { BusyView } from './waiting-room.js';

export type DisplayMode = 'tty' | 'plain' | 'quiet';

export interface Display extends FlowObserver {
  /** A final line for the user (not in quiet mode). */
  line(text: string): void;
  /** Stops timers and bars; safe to call twice. */
  close(): void;
}

export interface DisplayOptions {
  mode: DisplayMode;
  stream: NodeJS.WritableStream;
  item: string;
  now?: () => number;
}

/** `1536` → `1.5 KiB`. Pure. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Whole seconds left until `at`, never negative. Pure. */
export function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The status line of a busy wait: position, estimate (and its range when given), what comes next. Pure. */
export function busyLine(item: string, view: BusyView, now: number): string {
  const where = view.position > 0 ? `position ${view.position}` : 'busy';
  const range = view.estimatedWaitRangeSeconds;
  const within = range ? ` (likely ${Math.round(range[0])}–${Math.round(range[1])} s)` : '';
  const next = view.heldOpen ? 'waiting for a free slot' : `next try in ${secondsUntil(view.retryAt, now)} s`;
  return `in line for ${item}: ${where}, estimated wait ${Math.round(view.estimatedWaitSeconds)} s${within}, ${next}`;
}

export function chooseMode(opts: {
  quiet: boolean;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
}): DisplayMode {
  if (opts.quiet) return 'quiet';
  return opts.stdoutIsTTY && opts.stderrIsTTY ? 'tty' : 'plain';
}

export function createDisplay(opts: DisplayOptions): Display {
  if (opts.mode === 'quiet') return { line() {}, close() {} };
  return opts.mode === 'tty' ? ttyDisplay(opts) : plainDisplay(opts);
}

function plainDisplay(opts: DisplayOptions): Display {
  const out = (text: string) => opts.stream.write(`${text}\n`);
  const now = opts.now ?? Date.now;
  let lastPosition: number | undefined;
  let lastRetryAt: number | undefined;
  return {
    busy(view) {
      // One line per busy answer, and one when a read of the place shows a new position.
      if (!view.heldOpen && view.retryAt === lastRetryAt && view.position === lastPosition) return;
      lastPosition = view.position;
      lastRetryAt = view.retryAt;
      out(busyLine(opts.item, view, now()));
    },
    unreachable(message, retryAt) {
      out(`reception unreachable (${message}); next try in ${secondsUntil(retryAt, now())} s`);
    },
    admitted(info) {
      out(
        `${info.afterWaiting ? 'admitted: ' : ''}ticket for server ${info.server}${info.fresh ? ' (fresh ticket)' : ''}`,
      );
    },
    transferStart(info) {
      out(
        info.offset > 0
          ? `resuming ${opts.item} from server ${info.server} at ${formatBytes(info.offset)} of ${formatBytes(info.size)}`
          : `downloading ${opts.item} from server ${info.server} (${formatBytes(info.size)})`,
      );
    },
    notice(text) {
      out(text);
    },
    line(text) {
      out(text);
    },
    close() {},
  };
}

function ttyDisplay(opts: DisplayOptions): Display {
  const stream = opts.stream;
  const now = opts.now ?? Date.now;
  let view: BusyView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let statusShown = false;
  let bar: SingleBar | undefined;
  let rate = { startBytes: 0, startAt: 0 };

  const clearStatus = () => {
    if (statusShown) stream.write('\r\x1b[2K');
    statusShown = false;
  };
  const renderStatus = (text: string) => {
    stream.write(`\r\x1b[2K${text}`);
    statusShown = true;
  };
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  const println = (text: string) => {
    clearStatus();
    stream.write(`${text}\n`);
  };

  return {
    busy(v) {
      view = v;
      renderStatus(busyLine(opts.item, v, now()));
      if (!timer) {
        timer = setInterval(() => {
          if (view) renderStatus(busyLine(opts.item, view, now()));
        }, 250);
        timer.unref();
      }
    },
    retrying() {
      if (view) renderStatus(`in line for ${opts.item}: trying now…`);
    },
    unreachable(message, retryAt) {
      stopTimer();
      renderStatus(`reception unreachable (${message}); next try in ${secondsUntil(retryAt, now())} s`);
    },
    admitted(info) {
      stopTimer();
      view = undefined;
      clearStatus();
      // The terminal bell: the seed's sound that tells the user the wait is over.
      if (info.afterWaiting) stream.write('\x07');
      println(`${info.afterWaiting ? "it's your turn: " : ''}downloading from server ${info.server}`);
    },
    transferStart(info) {
      stopBar();
      rate = { startBytes: info.offset, startAt: now() };
      bar = new SingleBar({
        stream,
        format: ' {bar} {percentage}% | {held} / {size} | {rate} | ETA {eta_formatted}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 8,
      });
      bar.start(info.size, info.offset, {
        held: formatBytes(info.offset),
        size: formatBytes(info.size),
        rate: '–',
      });
    },
    transferProgress(held) {
      if (!bar) return;
      const t = now();
      const seconds = (t - rate.startAt) / 1000;
      const perSecond = seconds > 0 ? (held - rate.startBytes) / seconds : 0;
      bar.update(held, { held: formatBytes(held), rate: `${formatBytes(perSecond)}/s` });
    },
    transferEnd() {
      stopBar();
    },
    notice(text) {
      println(text);
    },
    line(text) {
      stopBar();
      println(text);
    },
    close() {
      stopTimer();
      stopBar();
      clearStatus();
    },
  };
}
