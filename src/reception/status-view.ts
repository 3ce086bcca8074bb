/**
 * The shape of `GET /status` on the reception's internal port: one schema that the producer
 * (app.ts) is typed by, the dashboard's script is type-checked against (a JSDoc import of
 * `StatusView`), and the tests validate real answers and their fixtures with. Instants are ISO
 * 8601 strings, as everywhere else in the protocol; ages and durations are numbers with their
 * unit in the name. Fields another part of the line may not report yet are optional, so an older
 * or newer reception still validates and the dashboard shows "—" for what is missing.
 */
import { z } from 'zod';

const instant = z.iso.datetime();
const share = z.number().min(0);
const count = z.number().int().min(0);

export const serverViewSchema = z.object({
  id: z.string(),
  health: z.enum(['unknown', 'up', 'down']),
  /** When `health` last changed. */
  healthSince: instant,
  suspect: z.boolean(),
  failures: count,
  lastError: z.string().nullable(),
  draining: z.boolean(),
  capacity: count,
  /** Lower than `capacity` while ramping in after being down. */
  usableCapacity: count,
  outstanding: count,
  untracked: count,
  active: count.nullable(),
  load: share.nullable(),
  slotLoad: share.nullable(),
  memoryShare: share.nullable(),
  rssBytes: z.number().nullable(),
  memoryLimitBytes: z.number().nullable(),
  bytesPerSecond: z.number().nullable(),
  distance: z.number().nullable(),
  rttMs: z.number().nullable(),
  lastReportAgeMs: z.number().nullable(),
  catalogItems: count,
  polls: z.object({ ok: count, failed: count }),
});

const verdictSchema = z.object({
  server: z.string(),
  load: z.number(),
  slotLoad: z.number(),
  memoryShare: z.number().nullable(),
  freeSlots: z.number(),
  candidate: z.boolean(),
  rank: z.number().int().optional(),
  reason: z.string(),
});

export const calibrationViewSchema = z.object({
  /** Waiters the figures are computed from; the others are meaningless at 0. */
  samples: count,
  /** Share admitted no later than their first estimate. */
  admittedBeforeEstimate: share,
  /** Share admitted inside their first `estimatedWaitRangeSeconds` (when the line quotes one). */
  admittedInRange: share.nullable().optional(),
  /** Waiters that were quoted a range (the denominator of `admittedInRange`). */
  rangeSamples: count.optional(),
  medianAbsoluteErrorSeconds: z.number().min(0),
  /** Median of |actual − estimate| / actual. */
  medianRelativeError: z.number().min(0).nullable().optional(),
});

export const slotUseViewSchema = z.object({
  /** The sliding window `window` covers. */
  windowSeconds: z.number().positive(),
  /** Share of usable slot-time in use while anyone waited, over the window; null if nobody did. */
  window: share.nullable(),
  /** The same over the whole run. */
  run: share.nullable(),
});

export const queueViewSchema = z.object({
  length: count,
  /** The estimate the latest newcomer got. */
  estimatedWaitSeconds: z.number().min(0),
  estimatedWaitRangeSeconds: z.tuple([z.number(), z.number()]).nullable().optional(),
  /** Admissions from the line per second (EWMA): the line's speed. */
  admissionRate: z.number().min(0),
  /** Requests held open (`Prefer: wait`) until their client is admitted. */
  heldOpen: count,
  calibration: calibrationViewSchema,
  slotUse: slotUseViewSchema,
});

export const statusViewSchema = z.object({
  /** The reception's clock: ages on the page are computed against it, not the browser's. */
  now: instant,
  servers: z.array(serverViewSchema),
  exclusions: z.array(z.object({ server: z.string(), path: z.string(), reason: z.string() })),
  lastAllocation: z
    .object({
      item: z.string(),
      at: instant,
      allocation: z.object({
        choice: z.string().optional(),
        ranked: z.array(z.string()),
        verdicts: z.array(verdictSchema),
      }),
    })
    .nullable(),
  queue: queueViewSchema,
  pendingRevocations: count,
  store: z.object({ up: z.boolean(), outages: count }),
});

export type ServerView = z.infer<typeof serverViewSchema>;
export type CalibrationView = z.infer<typeof calibrationViewSchema>;
export type SlotUseView = z.infer<typeof slotUseViewSchema>;
export type QueueView = z.infer<typeof queueViewSchema>;
export type StatusView = z.infer<typeof statusViewSchema>;
