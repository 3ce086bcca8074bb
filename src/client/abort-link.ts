/**
 * A signal that aborts when the caller's does or after `ms`, and lets go of both once the work is
 * done. `AbortSignal.any([long-lived, AbortSignal.timeout(ms)])` would do the first half, but on
 * Node 20 every such signal stays reachable from the long-lived one until it aborts (about 2 KB
 * each): a rush of 10,000 buyers, each retrying for minutes under one stop signal, grew by a
 * gigabyte. Here the listener is removed and the timer cleared in `done()`.
 */
export interface LinkedSignal {
  signal: AbortSignal;
  /** Whether it was the timer, not the caller, that aborted it. */
  readonly timedOut: boolean;
  done(): void;
}

export function linkSignal(outer: AbortSignal | undefined, ms: number): LinkedSignal {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort(outer?.reason);
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    },
    Math.max(0, Math.ceil(ms)),
  );
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    done() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

/** A child of a fan-out: aborts with its parent until released. */
export interface FanoutChild {
  signal: AbortSignal;
  release(): void;
}

/**
 * One stop signal for thousands of concurrent tasks (a rush's buyers), each given a child signal
 * of its own. Node's EventTarget walks every listener of a signal on each `addEventListener`, so
 * 10,000 buyers listening to one signal made every request's listener cost 10,000 steps (a
 * seventh of the rush client's CPU in the 10,000-buyer rehearsal). The parent here has one
 * listener, and each child only the few of its own task.
 */
export function signalFanout(parent: AbortSignal): { child(): FanoutChild } {
  const live = new Set<AbortController>();
  parent.addEventListener(
    'abort',
    () => {
      for (const c of live) c.abort(parent.reason);
      live.clear();
    },
    { once: true },
  );
  return {
    child() {
      const controller = new AbortController();
      if (parent.aborted) controller.abort(parent.reason);
      else live.add(controller);
      return { signal: controller.signal, release: () => live.delete(controller) };
    },
  };
}
