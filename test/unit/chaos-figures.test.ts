/**
 * The pure parts of the chaos rehearsal (bench/chaos-figures.ts) and the high-water mark it reads
 * (`DeliveryLedger.servingMax`, exported as `rushgate_content_serving_max`): reading a gauge from
 * a Prometheus page, which reception answers are allowed under faults, and the verdict.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  badAnswerCount,
  type ChaosFigures,
  formatChaosTable,
  isAllowedAnswer,
  promValue,
  tallyAnswer,
  verdictOf,
} from '../../bench/chaos-figures.js';
import { DeliveryLedger } from '../../src/content/delivery-ledger.js';

test('promValue reads a labelled or bare sample, not a longer name', () => {
  const page = [
    '# HELP rushgate_content_serving Clients being served',
    'rushgate_content_serving{server="a"} 1',
    'rushgate_content_serving_max{server="a"} 4',
    'rushgate_content_capacity 5',
  ].join('\n');
  assert.equal(promValue(page, 'rushgate_content_serving'), 1);
  assert.equal(promValue(page, 'rushgate_content_serving_max'), 4);
  assert.equal(promValue(page, 'rushgate_content_capacity'), 5);
  assert.equal(promValue(page, 'rushgate_content_transfers'), undefined);
});

test('only 503 busy and store_unavailable are allowed among 5xx', () => {
  assert.ok(isAllowedAnswer(201, undefined));
  assert.ok(isAllowedAnswer(429, undefined));
  assert.ok(isAllowedAnswer(503, 'busy'));
  assert.ok(isAllowedAnswer(503, 'store_unavailable'));
  assert.ok(!isAllowedAnswer(503, 'shutting_down'));
  assert.ok(!isAllowedAnswer(500, 'internal'));
  assert.ok(!isAllowedAnswer(502, undefined));
  const answers: Record<string, number> = {};
  tallyAnswer(answers, 201, undefined);
  tallyAnswer(answers, 503, 'busy');
  tallyAnswer(answers, 500, 'internal');
  tallyAnswer(answers, 500, 'internal');
  assert.deepEqual(answers, { '201 -': 1, '503 busy': 1, '500 internal': 2 });
  assert.equal(badAnswerCount(answers), 2);
});

test('the verdict fails on each of the three outcomes, and on a server never scraped', () => {
  const good: ChaosFigures = {
    seconds: 60,
    buyers: { total: 2, verified: 2, wrongDigest: 0, missing: 0, reruns: 0 },
    servers: [{ id: 'a', capacity: 2, maxServing: 2, scrapes: 10, kills: 1 }],
    receptionKills: 1,
    answers: { '201 -': 2 },
    badAnswers: 0,
  };
  assert.ok(verdictOf(good).ok);
  assert.match(formatChaosTable(good), /ok {3}every buyer holds its file/);
  const wrong = { ...good, buyers: { ...good.buyers, verified: 1, wrongDigest: 1 } };
  assert.equal(verdictOf(wrong).everyBuyerVerified, false);
  const over = { ...good, servers: [{ ...good.servers[0]!, maxServing: 3 }] };
  assert.equal(verdictOf(over).capacityHeld, false);
  assert.match(formatChaosTable(over), /FAIL no content server/);
  const blind = { ...good, servers: [{ ...good.servers[0]!, scrapes: 0 }] };
  assert.equal(verdictOf(blind).capacityHeld, false);
  const stray = { ...good, badAnswers: 1 };
  assert.equal(verdictOf(stray).no5xxBeyond503, false);
});

test('servingMax keeps the highest number of clients served at once', () => {
  const ledger = new DeliveryLedger();
  const t = (jti: string) => ({ jti, oid: `o-${jti}`, path: '/x.bin', size: 10, exp: 2_000_000_000 });
  ledger.beginTransfer(t('1'), 0);
  ledger.beginTransfer(t('2'), 0);
  ledger.beginTransfer(t('2'), 0); // a second range of the same ticket is the same client
  ledger.beginUntracked();
  assert.equal(ledger.servingMax, 3);
  ledger.endTransfer('1', 1);
  ledger.endUntracked();
  assert.equal(ledger.serving, 1);
  assert.equal(ledger.servingMax, 3);
});
