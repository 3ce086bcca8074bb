/**
 * Shutdown signals for the long-running commands (`up`, `reception`, `content`). The first
 * SIGINT or SIGTERM asks for a graceful stop; a later one — the user pressing Ctrl-C again —
 * cuts it short. Signals that arrive together count as one: a terminal's Ctrl-C reaches every
 * process of the foreground group, and npm/npx forward the same signal to their child, so one key
 * press often arrives twice within milliseconds and must not skip the graceful part.
 */

export const SAME_SIGNAL_WINDOW_MS = 1000;

export interface ShutdownHandlers {
  stop(signal: NodeJS.Signals): void;
  force(signal: NodeJS.Signals): void;
}

/** Subscribes to SIGINT and SIGTERM; returns the unsubscribe. `now` is injectable for tests. */
export function onShutdownSignals(
  handlers: ShutdownHandlers,
  opts: { windowMs?: number; now?: () => number; target?: NodeJS.EventEmitter } = {},
): () => void {
  const windowMs = opts.windowMs ?? SAME_SIGNAL_WINDOW_MS;
  const now = opts.now ?? Date.now;
  const target = opts.target ?? process;
  let firstAt: number | undefined;
  let forced = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const at = now();
    if (firstAt === undefined) {
      firstAt = at;
      handlers.stop(signal);
    } else if (!forced && at - firstAt >= windowMs) {
      forced = true;
      handlers.force(signal);
    }
  };
  target.on('SIGINT', onSignal);
  target.on('SIGTERM', onSignal);
  return () => {
    target.off('SIGINT', onSignal);
    target.off('SIGTERM', onSignal);
  };
}
