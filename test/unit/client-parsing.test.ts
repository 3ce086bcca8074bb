/**
 * The client's pure pieces: reading the reception's answers (CONTRACT §3), Retry-After,
 * Repr-Digest and Content-Range, the item URL and output file, the command-line values, the
 * throttle, and what the display prints on and off a terminal.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { sha256FromReprDigest } from '../../src/client/digest.js';
import { parseContentRange, throttleDelayMs } from '../../src/client/downloader.js';
import { outputPath, parseRate, parseSeconds } from '../../src/client/get.js';
import { defaultOutputName, parseItemUrl, partPathsOf } from '../../src/client/item-url.js';
import { busyLine, chooseMode, createDisplay, formatBytes } from '../../src/client/progress.js';
import { interpret, preferenceAppliedWait, retryAfterSeconds } from '../../src/client/reception-api.js';
import { UsageError } from '../../src/errors.js';

const ticketBody = {
  orderId: 'o-1',
  status: 'ticketed',
  ticket: {
    id: 't-1',
    url: 'http://127.0.0.1:8081/t/abc/apps/x.bin',
    server: 'a',
    notBefore: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T00:10:00.000Z',
  },
};

test('interpret: a ticket', () => {
  const a = interpret(201, {}, ticketBody);
  assert.equal(a.kind, 'ticketed');
  if (a.kind !== 'ticketed') return;
  assert.equal(a.orderId, 'o-1');
  assert.equal(a.ticket.server, 'a');
  assert.equal(a.ticket.notBefore, Date.parse('2030-01-01T00:00:00.000Z'));
  assert.equal(interpret(200, {}, ticketBody).kind, 'ticketed');
});

test('interpret: busy takes Retry-After from the header, the body only when the header is missing', () => {
  const body = {
    status: 'busy',
    position: 3,
    estimatedWaitSeconds: 40,
    retryAfterSeconds: 9,
    queueToken: 'q',
  };
  assert.deepEqual(interpret(503, { 'retry-after': '7' }, body), {
    kind: 'busy',
    position: 3,
    estimatedWaitSeconds: 40,
    retryAfterSeconds: 7,
    queueToken: 'q',
  });
  const a = interpret(503, {}, body);
  assert.equal(a.kind === 'busy' && a.retryAfterSeconds, 9);
});

test('interpret: a busy fresh-ticket answer (queueToken null) is busy, not a reception down', () => {
  // The 10,000-buyer rehearsal lost hundreds of buyers to this: read as unreachable, their
  // retries for a fresh ticket gave up after a minute.
  const body = {
    status: 'busy',
    position: 6505,
    estimatedWaitSeconds: 126,
    retryAfterSeconds: 30,
    queueToken: null,
  };
  assert.deepEqual(interpret(503, { 'retry-after': '30' }, body), {
    kind: 'busy',
    position: 6505,
    estimatedWaitSeconds: 126,
    retryAfterSeconds: 30,
  });
});

test('interpret: a 503 with a body the contract does not know says what came', () => {
  const a = interpret(503, {}, { status: 'odd' });
  assert.equal(a.kind, 'unreachable');
  assert.match(a.kind === 'unreachable' ? a.message : '', /unexpected body: \{"status":"odd"\}/);
});

test('interpret: a busy answer to a held request carries Preference-Applied and the range', () => {
  const body = {
    status: 'busy',
    position: 3,
    estimatedWaitSeconds: 40,
    estimatedWaitRangeSeconds: [25, 70],
    retryAfterSeconds: 9,
    queueToken: 'q',
  };
  assert.deepEqual(interpret(503, { 'retry-after': '9', 'preference-applied': 'wait=20' }, body), {
    kind: 'busy',
    position: 3,
    estimatedWaitSeconds: 40,
    estimatedWaitRangeSeconds: [25, 70],
    retryAfterSeconds: 9,
    queueToken: 'q',
    waitAppliedSeconds: 20,
  });
  // A malformed range is no range; the answer is still busy.
  for (const bad of [[70, 25], [1], 'soon', [-1, 3]]) {
    const a = interpret(503, {}, { ...body, estimatedWaitRangeSeconds: bad });
    assert.equal(a.kind, 'busy');
    assert.equal(a.kind === 'busy' && a.estimatedWaitRangeSeconds, undefined);
  }
  assert.equal(preferenceAppliedWait('respond-async, wait="15"'), 15);
  assert.equal(preferenceAppliedWait(['return=minimal', 'Wait=5']), 5);
  assert.equal(preferenceAppliedWait('return=minimal'), undefined);
  assert.equal(preferenceAppliedWait(undefined), undefined);
});

test('display: the range and a held-open wait are shown', () => {
  const line = busyLine(
    '/x',
    { position: 4, estimatedWaitSeconds: 12, estimatedWaitRangeSeconds: [8, 20], retryAt: 0, heldOpen: true },
    0,
  );
  assert.match(line, /position 4, estimated wait 12 s \(likely 8–20 s\), waiting for a free slot/);
});

test('interpret: errors, rate limits, not-ready and garbage', () => {
  assert.deepEqual(interpret(404, {}, { error: { code: 'unknown_item', message: 'No.' } }), {
    kind: 'error',
    status: 404,
    code: 'unknown_item',
    message: 'No.',
  });
  assert.deepEqual(interpret(429, { 'retry-after': '2' }, { error: { code: 'rate_limited', message: '' } }), {
    kind: 'rate_limited',
    retryAfterSeconds: 2,
  });
  // A live ticket on a server the reception still believes up: wait, not a refusal.
  assert.deepEqual(interpret(409, { 'retry-after': '3' }, { error: { code: 'ticket_live', message: '' } }), {
    kind: 'not_yet',
    code: 'ticket_live',
    retryAfterSeconds: 3,
  });
  assert.equal(interpret(409, {}, { error: { code: 'order_closed', message: '' } }).kind, 'error');
  assert.equal(interpret(503, {}, { error: { code: 'unavailable', message: 'x' } }).kind, 'unreachable');
  assert.equal(interpret(502, {}, undefined).kind, 'unreachable');
  const busyNoLine = interpret(503, { 'retry-after': '4' }, { error: { code: 'busy', message: 'x' } });
  assert.equal(busyNoLine.kind === 'busy' && busyNoLine.retryAfterSeconds, 4);
  const bad = interpret(201, {}, { orderId: 'o' });
  assert.equal(bad.kind === 'error' && bad.code, 'bad_answer');
});

test('Retry-After: seconds or an HTTP date, at least 1', () => {
  assert.equal(retryAfterSeconds('5'), 5);
  assert.equal(retryAfterSeconds('0'), 1);
  assert.equal(retryAfterSeconds(undefined), undefined);
  assert.equal(retryAfterSeconds('soon'), undefined);
  const now = Date.parse('2030-01-01T00:00:00Z');
  assert.equal(retryAfterSeconds('Tue, 01 Jan 2030 00:00:10 GMT', now), 10);
});

test('Repr-Digest: sha-256 among other members, as hex', () => {
  const hex = 'ab'.repeat(32);
  const b64 = Buffer.from(hex, 'hex').toString('base64');
  assert.equal(sha256FromReprDigest(`sha-256=:${b64}:`), hex);
  assert.equal(sha256FromReprDigest(`sha-512=:AAAA:, sha-256=:${b64}:`), hex);
  assert.equal(sha256FromReprDigest('sha-256=:AAAA:'), undefined, 'wrong length');
  assert.equal(sha256FromReprDigest(undefined), undefined);
  assert.equal(sha256FromReprDigest('md5=:AAAA:'), undefined);
});

test('Content-Range', () => {
  assert.deepEqual(parseContentRange('bytes 10-99/100'), { start: 10, end: 99, size: 100 });
  assert.deepEqual(parseContentRange('bytes */100'), { size: 100 });
  assert.equal(parseContentRange('items 1-2/3'), undefined);
  assert.equal(parseContentRange(undefined), undefined);
});

test('throttle: pause just long enough to keep the rate', () => {
  assert.equal(throttleDelayMs(1000, 0, 1000), 1000);
  assert.equal(throttleDelayMs(1000, 1500, 1000), 0);
  assert.equal(throttleDelayMs(500, 100, 1000), 400);
  assert.equal(throttleDelayMs(500, 100, 0), 0);
});

test('item URL: origin and decoded item path; bad URLs are usage errors', () => {
  assert.deepEqual(parseItemUrl('http://127.0.0.1:8080/apps/editor%202.dmg'), {
    origin: 'http://127.0.0.1:8080',
    item: '/apps/editor 2.dmg',
  });
  for (const bad of [
    'not a url',
    'ftp://x/y',
    'http://127.0.0.1:8080/',
    'http://h/a%5Cb',
    'http://h/a%00b',
    'http://u:p@h/x',
  ]) {
    assert.throws(() => parseItemUrl(bad), UsageError, bad);
  }
});

test('output file: the item name, -o FILE, or -o DIR/', () => {
  assert.equal(defaultOutputName('/apps/editor 2.dmg'), 'editor 2.dmg');
  assert.equal(outputPath(undefined, '/apps/x.bin', '/tmp/w'), '/tmp/w/x.bin');
  assert.equal(outputPath('y.bin', '/apps/x.bin', '/tmp/w'), '/tmp/w/y.bin');
  assert.equal(outputPath('out/', '/apps/x.bin', '/tmp/w'), '/tmp/w/out/x.bin');
  assert.deepEqual(partPathsOf('/tmp/w/x.bin'), {
    part: '/tmp/w/x.bin.part',
    sidecar: '/tmp/w/x.bin.part.json',
  });
});

test('command-line values', () => {
  assert.equal(parseSeconds('2.5', '--max-wait'), 2.5);
  assert.throws(() => parseSeconds('-1', '--max-wait'), UsageError);
  assert.throws(() => parseSeconds('', '--max-wait'), UsageError);
  assert.equal(parseRate('123'), 123);
  assert.equal(parseRate('500K'), 500 * 1024);
  assert.equal(parseRate('2M'), 2 * 1024 * 1024);
  assert.equal(parseRate('1.5m'), 1.5 * 1024 * 1024);
  assert.throws(() => parseRate('fast'), UsageError);
});

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

test('display: plain lines without escape codes or bell when not on a terminal', () => {
  const out = capture();
  const d = createDisplay({ mode: 'plain', stream: out.stream, item: '/x.bin', now: () => 0 });
  d.busy?.({ position: 2, estimatedWaitSeconds: 10, retryAt: 3000 });
  d.admitted?.({ server: 'a', afterWaiting: true, fresh: false });
  d.transferStart?.({ server: 'a', offset: 0, size: 2048 });
  d.transferProgress?.(1024);
  d.transferEnd?.();
  d.close();
  assert.match(out.text(), /position 2, estimated wait 10 s, next try in 3 s/);
  assert.match(out.text(), /admitted: ticket for server a/);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
  assert.doesNotMatch(out.text(), /[\u0007\u001b]/);
});

test('display: quiet prints nothing', () => {
  const out = capture();
  const d = createDisplay({ mode: 'quiet', stream: out.stream, item: '/x.bin' });
  d.busy?.({ position: 2, estimatedWaitSeconds: 10, retryAt: 3000 });
  d.line('done');
  assert.equal(out.text(), '');
});

test('display: on a terminal the bell rings when admitted after waiting, not otherwise', () => {
  const waited = capture();
  const d = createDisplay({ mode: 'tty', stream: waited.stream, item: '/x.bin', now: () => 0 });
  d.busy?.({ position: 1, estimatedWaitSeconds: 3, retryAt: 3000 });
  d.admitted?.({ server: 'b', afterWaiting: true, fresh: false });
  d.close();
  assert.ok(waited.text().includes('\u0007'));
  const direct = capture();
  const e = createDisplay({ mode: 'tty', stream: direct.stream, item: '/x.bin', now: () => 0 });
  e.admitted?.({ server: 'b', afterWaiting: false, fresh: false });
  e.close();
  assert.ok(!direct.text().includes('\u0007'));
});

test('display mode: a bar only when both streams are terminals and not quiet', () => {
  assert.equal(chooseMode({ quiet: false, stdoutIsTTY: true, stderrIsTTY: true }), 'tty');
  assert.equal(chooseMode({ quiet: false, stdoutIsTTY: false, stderrIsTTY: true }), 'plain');
  assert.equal(chooseMode({ quiet: true, stdoutIsTTY: true, stderrIsTTY: true }), 'quiet');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(12), '12 B');
  assert.match(busyLine('/x', { position: 0, estimatedWaitSeconds: 2, retryAt: 2000 }, 0), /busy, estimated/);
});
