/**
 * The reception's Prometheus metrics (`GET /metrics` on the internal port), on a registry of its
 * own (never prom-client's global one, so two receptions in one test process do not collide).
 * Counters are bumped where things happen; gauges that describe state (per-server load, health,
 * the line, calibration) are read from their owners at scrape time through `MetricSources`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Calibration } from './wait-estimator.js';

export interface ServerMetricsView {
  id: string;
  load: number;
  up: boolean;
  usable: boolean;
  /** 0 = unknown, 1 = up, 2 = down. */
  health: number;
  failures: number;
  outstanding: number;
  untracked: number;
  capacity: number;
  distance: number | null;
  draining: boolean;
}

export interface MetricSources {
  servers(): ServerMetricsView[];
  queueLength(): number;
  calibration(): Calibration;
  admissionRate(): number;
  completionRate(): number;
  estimatedWaitSeconds(): number;
  mail(): { sent: number; failed: number };
  pendingRevocations(): number;
  heldOpen(): number;
  /** Shares of slot use while anyone waits; null while nobody has. */
  slotUse(): { windowSeconds: number; window: number | null; run: number | null };
}

export interface ReceptionMetrics {
  readonly registry: Registry;
  readonly orders: Counter<'result'>;
  readonly ticketsIssued: Counter<'server'>;
  readonly noticeFailures: Counter<'server'>;
  readonly admissions: Counter;
  readonly events: Counter<'type'>;
  readonly orderSeconds: Histogram<'result'>;
  bind(sources: MetricSources): void;
}

export function createReceptionMetrics(): ReceptionMetrics {
  const registry = new Registry();
  let sources: MetricSources | undefined;
  const P = 'rushgate_reception_';

  const perServer = (name: string, help: string, pick: (s: ServerMetricsView) => number | null) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sources?.servers() ?? []) {
          const v = pick(s);
          if (v !== null) this.set({ server: s.id }, v);
        }
      },
    });
  const single = (name: string, help: string, read: (s: MetricSources) => number | null) =>
    new Gauge({
      name: `${P}${name}`,
      help,
      registers: [registry],
      collect() {
        // An unknown figure (nobody has waited yet) is NaN, not a misleading 0.
        if (sources) this.set(read(sources) ?? Number.NaN);
      },
    });

  perServer('server_load', 'Load of each content server as seen by the reception (0–1+)', (s) => s.load);
  perServer('server_up', '1 when the content server is up by the health hysteresis', (s) => (s.up ? 1 : 0));
  perServer('server_usable', '1 when the server may get new tickets (up, not suspect, not draining)', (s) =>
    s.usable ? 1 : 0,
  );
  perServer('server_health', 'Health state: 0 unknown, 1 up, 2 down', (s) => s.health);
  perServer('server_failures', 'Failures in a row', (s) => s.failures);
  perServer('server_outstanding_tickets', 'Tickets holding a slot on the server', (s) => s.outstanding);
  perServer(
    'server_untracked_transfers',
    'Transfers the server reports that no known ticket covers',
    (s) => s.untracked,
  );
  perServer('server_capacity', 'Usable capacity now (lower while ramping in)', (s) => s.capacity);
  perServer(
    'server_distance',
    'Configured distance, or the measured poll round trip in ms',
    (s) => s.distance,
  );
  perServer('server_draining', '1 when the server is draining', (s) => (s.draining ? 1 : 0));
  single('queue_length', 'Clients waiting in line', (s) => s.queueLength());
  single('estimated_wait_seconds', 'Estimated wait for a client joining the line now', (s) =>
    s.estimatedWaitSeconds(),
  );
  single('admission_rate', 'Clients admitted from the line per second (EWMA)', (s) => s.admissionRate());
  single('completion_rate', 'Slots freed per second (EWMA)', (s) => s.completionRate());
  single(
    'wait_admitted_before_estimate_ratio',
    'Share of recent waiters admitted no later than their first estimate',
    (s) => s.calibration().admittedBeforeEstimate,
  );
  single(
    'wait_estimate_median_abs_error_seconds',
    'Median absolute error of the first wait estimate, recent waiters',
    (s) => s.calibration().medianAbsoluteErrorSeconds,
  );
  single(
    'wait_admitted_in_range_ratio',
    'Share of recent waiters admitted inside their first 80 % range (goal 0.75–0.85)',
    (s) => s.calibration().admittedInRange,
  );
  single(
    'wait_estimate_median_relative_error',
    'Median |actual − first estimate| / actual, recent waiters (goal ≤ 0.2)',
    (s) => s.calibration().medianRelativeError,
  );
  single(
    'wait_calibration_samples',
    'Waiters the calibration figures are computed from',
    (s) => s.calibration().samples,
  );
  single('held_open_requests', 'Requests held open until their client is admitted', (s) => s.heldOpen());
  single(
    'slot_use_while_waiting_ratio',
    'Share of usable slot-time in use while anyone waited, over the last minute',
    (s) => s.slotUse().window,
  );
  single(
    'slot_use_while_waiting_run_ratio',
    'Share of usable slot-time in use while anyone waited, since the reception started',
    (s) => s.slotUse().run,
  );
  single('mail_sent', 'Ticket e-mails sent', (s) => s.mail().sent);
  single('mail_failed', 'Ticket e-mails that failed', (s) => s.mail().failed);
  single('pending_revocations', 'Revocations waiting for an unreachable content server', (s) =>
    s.pendingRevocations(),
  );

  return {
    registry,
    orders: new Counter({
      name: `${P}orders_total`,
      help: 'Order and ticket requests by result (ticketed, existing, busy, unknown_item, …)',
      labelNames: ['result'],
      registers: [registry],
    }),
    ticketsIssued: new Counter({
      name: `${P}tickets_issued_total`,
      help: 'Tickets issued, by content server',
      labelNames: ['server'],
      registers: [registry],
    }),
    noticeFailures: new Counter({
      name: `${P}notice_failures_total`,
      help: 'Ticket notices that were not acknowledged, by content server',
      labelNames: ['server'],
      registers: [registry],
    }),
    admissions: new Counter({
      name: `${P}admissions_total`,
      help: 'Waiting clients admitted from the line',
      registers: [registry],
    }),
    events: new Counter({
      name: `${P}transfer_events_total`,
      help: 'Transfer events applied, by type',
      labelNames: ['type'],
      registers: [registry],
    }),
    orderSeconds: new Histogram({
      name: `${P}order_duration_seconds`,
      help: 'Time to answer an order or ticket request, by result',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    bind(s) {
      sources = s;
    },
  };
}
