/**
 * The dashboard page against a scripted `GET /status` (a tiny loopback HTTP server standing in
 * for the reception's internal API), in headless Chromium: the states a live deployment rarely
 * shows on cue — draining, ramping in, suspect, unknown, memory near its limit, a long waiting
 * line, a busy allocation, the fields the status may carry later (`bytesPerSecond`,
 * `memoryLimitBytes`, `healthSince`, `queue.estimatedWaitSeconds`, `now`) — plus hostile strings
 * (markup in an item path stays text), malformed entries (a figure becomes "—", the page keeps
 * working), a failing status (offline, then live again) and a server leaving the list.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { renderDashboard } from '../../src/reception/dashboard.js';
import { launchChromium } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/proc.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const GUARD_MS = 15_000;
const MB = 1024 * 1024;
/** The scripted reception's clock runs an hour ahead of the browser's: ages must use its clock. */
const SKEW_MS = 3_600_000;
const HOSTILE_PATH = '/x/<img src=x onerror="window.__pwned=1">.bin';

const server = (id: string, extra: Record<string, unknown>) => ({
  id,
  health: 'up',
  suspect: false,
  failures: 0,
  lastError: null,
  draining: false,
  capacity: 10,
  usableCapacity: 10,
  outstanding: 0,
  untracked: 0,
  active: 0,
  rssBytes: 90 * MB,
  distance: 4.2,
  rttMs: 4.2,
  lastReportAgeMs: 120,
  catalogItems: 12,
  polls: { ok: 500, failed: 0 },
  ...extra,
});

function statusDocument(now: number) {
  return {
    now,
    servers: [
      server('hot', {
        outstanding: 8,
        untracked: 1,
        active: 7,
        bytesPerSecond: 12_500_000,
        rssBytes: 480 * MB,
        memoryLimitBytes: 512 * MB,
        healthSince: now - 90_000,
      }),
      server('leaving', { draining: true, outstanding: 2, active: 2, bytesPerSecond: 1_000_000 }),
      server('warming', { usableCapacity: 3, capacity: 12, outstanding: 1 }),
      server('flaky', { suspect: true, failures: 1, lastError: 'ticket notice: timeout' }),
      server('new', {
        health: 'unknown',
        rssBytes: null,
        active: null,
        lastReportAgeMs: null,
        rttMs: null,
        distance: null,
      }),
      server('gone', {
        health: 'down',
        failures: 14,
        lastError: 'load report: ECONNREFUSED',
        lastReportAgeMs: 9000,
        healthSince: now - 8000,
      }),
      { id: 'odd', health: 'up', capacity: 'lots', outstanding: {}, polls: 7 },
    ],
    exclusions: [{ server: 'gone', path: HOSTILE_PATH, reason: 'copy (1 bytes) differs from the majority' }],
    lastAllocation: {
      item: '/apps/editor-2.1.bin',
      at: now - 5000,
      allocation: {
        choice: undefined,
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
      admissionRate: 1.5,
      calibration: { samples: 20, admittedBeforeEstimate: 0.85, medianAbsoluteErrorSeconds: 3.25 },
    },
    pendingRevocations: 1,
  };
}

describe('dashboard states', { timeout: 60_000 }, () => {
  let http: Server;
  let base: string;
  let mode: 'ok' | 'fail' | 'shrunk' = 'ok';
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
        const doc = statusDocument(Date.now() + SKEW_MS);
        if (mode === 'shrunk') doc.servers = doc.servers.slice(0, 2);
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(doc));
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

  it('names every state, most serious first', async () => {
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('[data-server="odd"]');
    assert.equal(await page.title(), 'edge-1 — dashboard');
    assert.equal(await state('hot'), 'up');
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
    assert.equal(await page.textContent('#rg-line-admit'), '1.50 per second');
    assert.match(
      (await page.textContent('#rg-line-calibration')) ?? '',
      /^85% admitted within .* 3\.3 s \(20 waiters\)$/,
    );
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
