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
  bytesSent: Counter;
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

  const answers = new Counter({
    name: 'rushgate_content_answers_total',
    help: 'Answers on the public port, by status and code.',
    labelNames: ['status', 'code'] as const,
    registers: [registry],
  });
  // Label children cached: looking them up by object costs more than the increment itself.
  const children = new Map<string, ReturnType<typeof answers.labels>>();

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
      let child = children.get(key);
      if (!child) {
        child = answers.labels(String(status), code);
        children.set(key, child);
      }
      child.inc();
    },
    bytesSent: new Counter({
      name: 'rushgate_content_bytes_sent_total',
      help: 'Item bytes written to connections.',
      registers: [registry],
    }),
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
