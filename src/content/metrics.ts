/**
 * The content server's Prometheus metrics (`GET /metrics` on the internal port, CONTRACT §6), on a
 * Registry of its own — never prom-client's global one, so several servers in one process (tests,
 * `rushgate up`) do not mix their numbers. Counters are bumped by the request path; gauges read
 * their value from the live state at scrape time, through the `sources` passed in.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricSources {
  transfers(): number;
  serving(): number;
  /** The most clients served at once since this process started. */
  servingMax(): number;
  capacity(): number;
  draining(): boolean;
  catalogItems(): number;
  outbox(): number;
  notices(): number;
  revocations(): number;
}

export interface ContentMetrics {
  registry: Registry;
  /** Answers on the public port, by HTTP status and code (`ok`, `partial` or an error code). */
  answered(status: number, code: string): void;
  /** Item bytes written to connections (counted here, handed to prom-client at scrape time). */
  addBytesSent(n: number): void;
  fulfilled: Counter;
  eventsSent: Counter;
  eventsDropped: Counter;
  eventBatchFailures: Counter;
  catalogScan: Histogram;
}

export function buildContentMetrics(serverId: string, sources: MetricSources): ContentMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ server: serverId });
  collectDefaultMetrics({ register: registry, prefix: 'rushgate_content_' });

  // The request path only bumps plain numbers; they reach prom-client at scrape time (`collect`).
  // A prom-client `inc` — even on a cached labelled child — hashes and validates labels on every
  // call, once or twice per request on a rush of small downloads.
  const answerCounts = new Map<string, { status: string; code: string; n: number }>();
  let bytesPending = 0;
  new Counter({
    name: 'rushgate_content_answers_total',
    help: 'Answers on the public port, by status and code.',
    labelNames: ['status', 'code'] as const,
    registers: [registry],
    collect() {
      for (const a of answerCounts.values()) {
        if (a.n === 0) continue;
        this.inc({ status: a.status, code: a.code }, a.n);
        a.n = 0;
      }
    },
  });
  new Counter({
    name: 'rushgate_content_bytes_sent_total',
    help: 'Item bytes written to connections.',
    registers: [registry],
    collect() {
      if (bytesPending === 0) return;
      this.inc(bytesPending);
      bytesPending = 0;
    },
  });

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('rushgate_content_transfers', 'Transfers in progress.', sources.transfers);
  gauge(
    'rushgate_content_serving',
    'Clients being served: tickets with a transfer in progress plus untracked transfers.',
    sources.serving,
  );
  gauge(
    'rushgate_content_serving_max',
    'Most clients served at once since this process started (a high-water mark scrapes cannot miss).',
    sources.servingMax,
  );
  gauge('rushgate_content_capacity', 'Clients this server serves at once.', sources.capacity);
  gauge('rushgate_content_draining', '1 while shutting down.', () => (sources.draining() ? 1 : 0));
  gauge('rushgate_content_catalog_items', 'Items in the catalog.', sources.catalogItems);
  gauge('rushgate_content_event_outbox', 'Transfer events waiting to reach the reception.', sources.outbox);
  gauge('rushgate_content_notices', 'Ticket notices held.', sources.notices);
  gauge('rushgate_content_revocations', 'Revocations held (tickets and orders).', sources.revocations);

  return {
    registry,
    answered(status, code) {
      const key = `${status} ${code}`;
      const a = answerCounts.get(key);
      if (a) a.n++;
      else answerCounts.set(key, { status: String(status), code, n: 1 });
    },
    addBytesSent(n) {
      bytesPending += n;
    },
    fulfilled: new Counter({
      name: 'rushgate_content_fulfilled_total',
      help: 'Tickets whose every byte was delivered.',
      registers: [registry],
    }),
    eventsSent: new Counter({
      name: 'rushgate_content_events_sent_total',
      help: 'Transfer events the reception accepted.',
      registers: [registry],
    }),
    eventsDropped: new Counter({
      name: 'rushgate_content_events_dropped_total',
      help: 'Transfer events dropped (outbox full, or refused by the reception as invalid).',
      registers: [registry],
    }),
    eventBatchFailures: new Counter({
      name: 'rushgate_content_event_batch_failures_total',
      help: 'Event batches that failed and will be retried.',
      registers: [registry],
    }),
    catalogScan: new Histogram({
      name: 'rushgate_content_catalog_scan_seconds',
      help: 'Duration of catalog scans.',
      buckets: [0.01, 0.1, 1, 10, 60, 600],
      registers: [registry],
    }),
  };
}
