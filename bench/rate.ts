/**
 * Throughput of an async operation with a fixed number in flight, as bench/line.ts,
 * bench/line-http.ts and bench/store.ts measure it, so that their rates are counted alike.
 */

/** Runs `count` calls of `op`, `concurrency` at a time; returns calls per second. */
export async function ratePerSecond(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

/**
 * As `ratePerSecond`, for about `ms` milliseconds: no call starts after that, and the ones in
 * flight then are waited for and counted, so the rate is of calls finished.
 */
export async function ratePerSecondFor(
  ms: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let started = 0;
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) await op(started++);
    }),
  );
  return started / ((performance.now() - start) / 1000);
}
