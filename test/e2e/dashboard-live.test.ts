/**
 * The operators' live dashboard in a real browser (CONTRACT §6): a reception and three content
 * servers run as real processes (the built CLI) on loopback, and headless Chromium opens
 * `GET /dashboard` on the reception's internal port. The page shows the three servers up with
 * their capacities and the copy that disagrees with the majority; an order placed on the public
 * port shows up in its server's outstanding tickets and verdict; a content server killed turns
 * its card "down" within its failure window; a reception that goes away turns the page
 * "offline". With every slot taken and a client in line, the page shows the slot use while anyone
 * waits. The real `GET /status` is validated against the schema the page is typed by.
 * Screenshots go to test-artifacts/ for a human to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { statusViewSchema } from '../../src/reception/status-view.js';
import { launchChromium } from '../helpers/browser.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { CLI, type Proc, REPO_ROOT, startRushgate, waitForHttp } from '../helpers/proc.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const CAPACITIES = [4, 6, 8] as const;
const ITEM = '/apps/editor-2.1.bin';
const ODD_ITEM = '/docs/notes.txt';
/** Failure guard for every wait below; on this shared machine the conditions come in ~1 s. */
const GUARD_MS = 15_000;

const card = (id: string) => `[data-server="${id}"]`;

describe('live dashboard', { timeout: 90_000 }, () => {
  let d: TestDeployment;
  let reception: Proc;
  const content = new Map<string, Proc>();
  let browser: Browser | undefined;
  let page: Page;
  let internal: string;
  let publicUrl: string;

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` before the e2e tests`);
    d = await makeDeployment({
      servers: 3,
      reception: {
        monitor: { intervalMs: 100, timeoutMs: 1000, failuresBeforeDown: 2 },
        rateLimit: null,
        // Many orders from one address: this test is not about fair shares.
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        // Unused tickets stand for slots in use: they keep them while a client waits, too.
        tickets: { claimSecondsWhileWaiting: 30 },
      },
      server: (i) => ({ capacity: CAPACITIES[i] }),
    });
    d.writeItem(ITEM, Buffer.alloc(64 * 1024, 7));
    d.writeItem(ODD_ITEM, 'version 1\n');
    d.writeItem(ODD_ITEM, 'version 2, half synced\n', 'c');
    internal = `http://${d.config.reception.internalListen}`;
    publicUrl = d.config.reception.publicUrl;
    reception = startRushgate(['reception', '--config', d.configPath]);
    for (const s of d.config.contentServers) {
      content.set(s.id, startRushgate(['content', '--config', d.configPath, '--id', s.id]));
    }
    await waitForHttp(`${internal}/healthz`, { proc: reception, timeoutMs: GUARD_MS });
    for (const s of d.config.contentServers) {
      await waitForHttp(`${s.internalUrl}/healthz`, { proc: content.get(s.id), timeoutMs: GUARD_MS });
    }
    browser = await launchChromium();
    // A laptop screen.
    page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
    page.setDefaultTimeout(GUARD_MS);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await Promise.all([reception, ...content.values()].filter(Boolean).map((p) => p.kill('SIGKILL')));
    d?.cleanup();
  });

  it('is served read-only, uncached, as HTML', async () => {
    const res = await fetch(`${internal}/dashboard`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(await res.text(), /^<!doctype html>/);
  });

  it('shows the three content servers up, with their capacities', async () => {
    await page.goto(`${internal}/dashboard`);
    for (const [i, s] of d.config.contentServers.entries()) {
      await page.waitForSelector(`${card(s.id)}[data-state="up"]`);
      assert.equal(await page.textContent(`${card(s.id)} [data-field="state"]`), 'up');
      assert.equal(await page.textContent(`${card(s.id)} [data-field="capacity"]`), String(CAPACITIES[i]));
      assert.equal(await page.textContent(`${card(s.id)} [data-field="outstanding"]`), '0');
    }
    assert.equal(await page.getAttribute('#rg-conn', 'data-connection'), 'live');
    assert.equal(await page.textContent('#rg-sum-up'), '3 / 3');
    // How long each has been up, on the reception's clock (healthSince is an ISO instant).
    for (const s of d.config.contentServers) {
      assert.match(
        (await page.textContent(`${card(s.id)} .state-detail`)) ?? '',
        /^up for \d+(\.\d)? s, taking new tickets$/,
      );
    }
    assert.equal(await page.textContent('#rg-line-slot-use'), 'nobody has waited yet');
    assert.equal(await page.textContent('#rg-line-held'), '0');
  });

  it('is fed a GET /status that matches the schema the page is typed by', async () => {
    const json = await (await fetch(`${internal}/status`)).json();
    assert.deepEqual(statusViewSchema.parse(json), json, 'nothing outside the schema either');
  });

  it('lists the copy that disagrees with the majority, with the reason', async () => {
    const row = page.locator(`[data-exclusion="c ${ODD_ITEM}"]`);
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /differs from the majority's/);
  });

  let chosen = '';
  it('counts a placed order in its server’s outstanding tickets and shows the verdict', async () => {
    const res = await fetch(`${publicUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: ITEM }),
    });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { ticket: { server: string } };
    chosen = body.ticket.server;
    // Unused, the ticket holds its slot for claimSeconds (30 s): long enough to be seen.
    await page
      .locator(`${card(chosen)} [data-field="outstanding"]`, { hasText: /^1$/ })
      .waitFor({ timeout: GUARD_MS });
    const verdict = await page.textContent(`${card(chosen)} [data-field="verdict"]`);
    assert.ok(verdict?.startsWith(`latest allocation, ${ITEM}, `), verdict ?? '');
    assert.match(verdict ?? '', /ago: Chosen load 0\.00/);
    assert.match((await page.textContent('#rg-allocation')) ?? '', new RegExp(`→ server ${chosen}`));
  });

  it('shows the slot use while anyone waits once every slot is taken and a client is in line', async () => {
    const order = () =>
      fetch(`${publicUrl}/api/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: ITEM }),
      });
    // One ticket is out already; unused, each holds its slot for claimSeconds (30 s).
    const total = CAPACITIES.reduce((a, b) => a + b, 0);
    for (let i = 1; i < total; i++) assert.equal((await order()).status, 201, `order ${i + 1}`);
    assert.equal((await order()).status, 503, 'every slot taken: the next one waits');
    await page.locator('#rg-line-length', { hasText: /^1$/ }).waitFor();
    await page
      .locator('#rg-line-slot-use', { hasText: /^100% over the last 60 s; 100% since start$/ })
      .waitFor();
    assert.equal(await page.textContent('#rg-sum-slot-use'), '100%');
    assert.equal(await page.textContent('#rg-sum-tickets'), `${total} / ${total}`);
  });

  it('turns a killed content server’s card down within its failure window', async (t) => {
    const victim = d.config.contentServers.map((s) => s.id).find((id) => id !== chosen) ?? 'c';
    const killedAt = Date.now();
    await content.get(victim)?.kill('SIGKILL');
    await page.waitForSelector(`${card(victim)}[data-state="down"]`);
    t.diagnostic(
      `card of ${victim} down ${Date.now() - killedAt} ms after SIGKILL (failure window: 2 refused polls 100 ms apart; the page polls every 1 s)`,
    );
    assert.equal(await page.textContent(`${card(victim)} [data-field="state"]`), 'down');
    assert.ok(await page.isVisible(`${card(victim)} [data-field="error"]`), 'the last error is shown');
    assert.equal(await page.textContent('#rg-sum-up'), '2 / 3');
    for (const s of d.config.contentServers) {
      if (s.id !== victim) assert.equal(await page.getAttribute(card(s.id), 'data-state'), 'up');
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it('says it is offline, and keeps the last picture greyed out, when the reception goes away', async () => {
    await reception.kill('SIGTERM');
    await page.waitForSelector('#rg-conn[data-connection="offline"]');
    assert.ok(await page.isVisible('#rg-banner'));
    assert.match((await page.textContent('#rg-banner')) ?? '', /Cannot reach/);
    assert.ok(await page.locator('#rg-main.stale').count(), 'the old picture is marked stale');
    assert.equal(await page.getAttribute(card(chosen), 'data-state'), 'up', 'the last picture stays');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-offline.png'), fullPage: true });
  });
});
