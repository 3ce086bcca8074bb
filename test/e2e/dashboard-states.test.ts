/**
 * The dashboard page against a scripted `GET /status` (a tiny loopback HTTP server standing in
 * for the reception's internal API), in headless Chromium: the states a live deployment rarely
 * shows on cue — draining, ramping in, suspect, unknown, memory near its limit, how long a server
 * has been up or down, a long waiting line with its slot use, held-open requests, speed, estimate
 * range and calibration, a busy allocation — plus hostile strings (markup in an item path stays
 * text), malformed entries (a figure becomes "—", the page keeps working), a status without the
 * optional figures, a failing status (offline, then live again) and a server leaving the list.
 * The scripted status is typed by, and validated against, the schema the reception produces.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { renderDashboard } from '../../src/reception/dashboard.js';
import { type ServerView, type StatusView, statusViewSchema } from '../../src/reception/status-view.js';
import { launchChromium } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/proc.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const GUARD_MS = 15_000;
const MB = 1024 * 1024;
/** The scripted reception's clock runs an hour ahead of the browser's: ages must use its clock. */
const SKEW_MS = 3_600_000;
const HOSTILE_PATH = '/x/<img src=x onerror="window.__pwned=1">.bin';

const iso = (t: number) => new Date(t).toISOString();

const server = (id: string, now: number, extra: Partial<ServerView>): ServerView => ({
  id,
  health: 'up',
  healthSince: iso(now - 3_600_000),
  suspect: false,
  failures: 0,
  lastError: null,
  draining: false,
  capacity: 10,
  usableCapacity: 10,
  outstanding: 0,
  untracked: 0,
  active: 0,
  load: null,
  slotLoad: null,
  memoryShare: null,
  rssBytes: 90 * MB,
  memoryLimitBytes: null,
  bytesPerSecond: null,
  distance: 4.2,
  rttMs: 4.2,
  lastReportAgeMs: 120,
  catalogItems: 12,
  polls: { ok: 500, failed: 0 },
  ...extra,
});

function statusDocument(now: number): StatusView {
  return {
    now: iso(now),
    servers: [
      server('hot', now, {
        outstanding: 8,
        untracked: 1,
        active: 7,
        bytesPerSecond: 12_500_000,
        rssBytes: 480 * MB,
        memoryLimitBytes: 512 * MB,
        healthSince: iso(now - 90_000),
      }),
      server('leaving', now, { draining: true, outstanding: 2, active: 2, bytesPerSecond: 1_000_000 }),
      server('warming', now, { usableCapacity: 3, capacity: 12, outstanding: 1 }),
      server('flaky', now, { suspect: true, failures: 1, lastError: 'ticket notice: timeout' }),
      server('new', now, {
        health: 'unknown',
        rssBytes: null,
        active: null,
        lastReportAgeMs: null,
        rttMs: null,
        distance: null,
      }),
      server('gone', now, {
        health: 'down',
        failures: 14,
        lastError: 'load report: ECONNREFUSED',
        lastReportAgeMs: 9000,
        healthSince: iso(now - 8000),
      }),
    ],
    exclusions: [{ server: 'gone', path: HOSTILE_PATH, reason: 'copy (1 bytes) differs from the majority' }],
    lastAllocation: {
      item: '/apps/editor-2.1.bin',
      at: iso(now - 5000),
      allocation: {
        ranked: [],
        verdicts: [
          {
            server: 'hot',
            load: 0.94,
            slotLoad: 0.9,
            memoryShare: 0.94,
            freeSlots: 0,
            candidate: false,
            reason: 'memory full: 94% of its limit in use',
          },
          {
            server: 'leaving',
            load: 0.2,
            slotLoad: 0.2,
            memoryShare: null,
            freeSlots: 8,
            candidate: false,
            reason: 'draining (shutting down)',
          },
        ],
      },
    },
    queue: {
      length: 42,
      estimatedWaitSeconds: 95,
      estimatedWaitRangeSeconds: [40, 200],
      admissionRate: 1.5,
      heldOpen: 17,
      calibration: {
        samples: 20,
        admittedBeforeEstimate: 0.55,
        admittedInRange: 0.8,
        medianAbsoluteErrorSeconds: 3.25,
        medianRelativeError: 0.125,
      },
      slotUse: { windowSeconds: 60, window: 0.874, run: 0.96 },
    },
    pendingRevocations: 1,
    store: { up: true, outages: 0 },
  };
}

/** Off the schema on purpose: what a page left open across an upgrade may meet. */
const ODD_SERVER = { id: 'odd', health: 'up', capacity: 'lots', outstanding: {}, polls: 7 };

/** The status a reception without held-open requests or ranges sends: the optional figures absent. */
function plainer(doc: StatusView): StatusView {
  const { estimatedWaitRangeSeconds: _range, ...queue } = doc.queue;
  const { admittedInRange: _inRange, medianRelativeError: _relative, ...calibration } = queue.calibration;
  return { ...doc, queue: { ...queue, calibration, slotUse: { windowSeconds: 60, window: null, run: 0.5 } } };
}

describe('dashboard states', { timeout: 60_000 }, () => {
  let http: Server;
  let base: string;
  let mode: 'ok' | 'fail' | 'shrunk' | 'plain' = 'ok';
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    http = createServer((req, res) => {
      if (req.url === '/dashboard') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(renderDashboard({ title: 'edge-1' }));
        return;
      }
      if (req.url === '/status') {
        if (mode === 'fail') {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end('{"error":{"code":"internal","message":"boom"}}');
          return;
        }
        let doc = statusDocument(Date.now() + SKEW_MS);
        if (mode === 'plain') doc = plainer(doc);
        const servers: unknown[] = mode === 'shrunk' ? doc.servers.slice(0, 2) : [...doc.servers, ODD_SERVER];
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ ...doc, servers }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
    page.setDefaultTimeout(GUARD_MS);
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status 500|500 \(Internal Server Error\)/.test(m.text()))
        problems.push(m.text());
    });
    after(() => assert.deepEqual(problems, [], 'no script errors in the page'));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  });

  const field = (id: string, name: string) =>
    page.textContent(`[data-server="${id}"] [data-field="${name}"]`);
  const state = (id: string) => page.getAttribute(`[data-server="${id}"]`, 'data-state');

  it('scripts a status the reception could send (the schema both share)', () => {
    // A fixture drifted from the producer would test a page nobody sees.
    const doc = statusDocument(Date.now());
    assert.deepEqual(statusViewSchema.parse(doc), doc);
    assert.deepEqual(statusViewSchema.parse(plainer(doc)), plainer(doc));
    assert.equal(statusViewSchema.safeParse({ ...doc, servers: [ODD_SERVER] }).success, false);
  });

  it('names every state, most serious first', async () => {
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('[data-server="odd"]');
    assert.equal(await page.title(), 'edge-1 — dashboard');
    assert.equal(await state('hot'), 'up');
    // healthSince is an ISO instant on the reception's clock (an hour ahead of the browser's).
    assert.equal(
      await page.textContent('[data-server="hot"] .state-detail'),
      'up for 90 s, taking new tickets',
    );
    assert.match((await page.textContent('[data-server="warming"] .state-detail')) ?? '', /^back from down/);
    assert.equal(await state('leaving'), 'draining');
    assert.equal(await state('warming'), 'ramping');
    assert.equal(await field('warming', 'capacity'), '3 (of 12)');
    assert.equal(await state('flaky'), 'suspect');
    assert.equal(await field('flaky', 'error'), 'ticket notice: timeout');
    assert.equal(await state('new'), 'unknown');
    assert.equal(await field('new', 'report-age'), 'never');
    assert.equal(await state('gone'), 'down');
    assert.match(
      (await page.textContent('[data-server="gone"] .state-detail')) ?? '',
      /^down for 8\.\d s, 14 failures/,
    );
    assert.equal(await field('gone', 'active'), '—', 'a down server serves nobody we know of');
  });

  it('shows load, memory against its limit, clients, bytes/s and distance', async () => {
    assert.equal(await field('hot', 'load'), '90%');
    assert.equal(await field('hot', 'memory'), '94% of 512 MiB');
    assert.equal(await page.getAttribute('[data-server="hot"] .bars .fill >> nth=1', 'class'), 'fill hot');
    assert.equal(await field('hot', 'outstanding'), '8');
    assert.equal(await field('hot', 'active'), '7');
    assert.equal(await field('hot', 'bytes'), '12.5 MB/s');
    assert.equal(await field('hot', 'distance'), '4.2 ms (measured)');
    assert.equal(await field('leaving', 'memory'), '90.0 MiB, no limit');
    assert.equal(await page.textContent('#rg-sum-up'), '5 / 7');
    assert.equal(await page.textContent('#rg-sum-bytes'), '13.5 MB/s');
  });

  it('shows the waiting line and a busy allocation, with ages on the reception’s clock', async () => {
    assert.equal(await page.textContent('#rg-line-length'), '42');
    assert.equal(await page.textContent('#rg-sum-wait'), 'about 2 min');
    assert.equal(await page.textContent('#rg-line-wait'), 'about 2 min (80% between 40 s and about 3 min)');
    assert.equal(await page.textContent('#rg-line-admit'), '1.50 per second');
    assert.equal(await page.textContent('#rg-sum-admit'), '1.50/s');
    assert.equal(await page.textContent('#rg-line-held'), '17');
    assert.equal(await page.textContent('#rg-sum-held'), '17');
    assert.equal(await page.textContent('#rg-line-slot-use'), '87% over the last 60 s; 96% since start');
    assert.equal(await page.textContent('#rg-sum-slot-use'), '87%');
    assert.equal(await page.getAttribute('#rg-sum-slot-use', 'class'), 'below-goal', 'under 95 % is flagged');
    assert.equal(await page.textContent('#rg-cal-samples'), '20 waiters');
    assert.equal(await page.textContent('#rg-cal-by-estimate'), '55%');
    assert.equal(await page.textContent('#rg-cal-in-range'), '80%');
    assert.equal(await page.textContent('#rg-cal-abs-error'), '3.3 s');
    assert.equal(await page.textContent('#rg-cal-rel-error'), '13%');
    const allocation = (await page.textContent('#rg-allocation')) ?? '';
    assert.match(allocation, /\/apps\/editor-2\.1\.bin → busy: no server had room, 5\.\d s ago/);
    assert.match((await field('hot', 'verdict')) ?? '', /ago: Not used memory full: 94%/);
    assert.match((await field('warming', 'verdict')) ?? '', /not in the latest allocation/);
  });

  it('keeps hostile strings as text and survives malformed entries', async () => {
    const row = page.locator('#rg-exclusions tr');
    assert.equal(await row.count(), 1);
    assert.equal(await row.locator('td.path').textContent(), HOSTILE_PATH);
    assert.equal(await page.locator('#rg-exclusions img').count(), 0);
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    assert.equal(await field('odd', 'capacity'), '—');
    assert.equal(await field('odd', 'polls'), '—');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-states.png'), fullPage: true });
  });

  it('shows "—" for the figures a status does not carry, and says when nobody waited lately', async () => {
    mode = 'plain';
    await page.locator('#rg-cal-in-range', { hasText: /^—$/ }).waitFor();
    assert.equal(await page.textContent('#rg-cal-rel-error'), '—');
    assert.equal(await page.textContent('#rg-cal-by-estimate'), '55%');
    assert.equal(await page.textContent('#rg-line-wait'), 'about 2 min');
    assert.equal(
      await page.textContent('#rg-line-slot-use'),
      'nobody waited in the last 60 s; 50% since start',
    );
    assert.equal(await page.textContent('#rg-sum-slot-use'), '—');
    assert.equal(await page.getAttribute('#rg-sum-slot-use', 'class'), '', 'no share, nothing to flag');
    mode = 'ok';
    await page.locator('#rg-cal-in-range', { hasText: /^80%$/ }).waitFor();
  });

  it('goes offline when the status fails, and live again when it answers', async () => {
    mode = 'fail';
    await page.waitForSelector('#rg-conn[data-connection="offline"]');
    assert.match((await page.textContent('#rg-banner')) ?? '', /\(HTTP 500\)/);
    assert.match(await page.title(), /^⚠ /);
    mode = 'shrunk';
    await page.waitForSelector('#rg-conn[data-connection="live"]');
    assert.ok(await page.isHidden('#rg-banner'));
    await page.waitForSelector('[data-server="odd"]', { state: 'detached' });
    assert.equal(
      await page.locator('[data-server]').count(),
      2,
      'servers that left the status leave the page',
    );
  });
});
