/**
 * Range answers (src/content/range-plan.ts): single and multiple ranges, suffix and open ranges,
 * malformed and unsatisfiable headers, If-Range with entity tags and dates, and the exact
 * Content-Length of a multipart body.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ifRangeAllows, MAX_RANGES, planRange, type Validators } from '../../src/content/range-plan.js';

const v: Validators = { etag: '"abc"', lastModifiedMs: Date.UTC(2024, 0, 2, 3, 4, 5, 678) };
const plan = (range?: string, ifRange?: string, size = 1000) =>
  planRange(size, { range, ifRange }, v, 'BOUND');

describe('planRange', () => {
  test('no Range: the whole item', () => {
    assert.deepEqual(plan(), { status: 200, kind: 'full', contentLength: 1000 });
  });

  test('one range, open range and suffix range', () => {
    assert.deepEqual(plan('bytes=0-99'), {
      status: 206,
      kind: 'single',
      range: { start: 0, end: 99 },
      contentLength: 100,
      contentRange: 'bytes 0-99/1000',
    });
    const open = plan('bytes=900-');
    assert.equal(open.kind === 'single' && open.contentRange, 'bytes 900-999/1000');
    const suffix = plan('bytes=-10');
    assert.equal(suffix.kind === 'single' && suffix.contentRange, 'bytes 990-999/1000');
    const past = plan('bytes=990-5000');
    assert.equal(past.kind === 'single' && past.contentLength, 10);
  });

  test('overlapping ranges combine into one', () => {
    const p = plan('bytes=0-10,5-20');
    assert.equal(p.kind, 'single');
    assert.equal(p.kind === 'single' && p.contentRange, 'bytes 0-20/1000');
  });

  test('several ranges: multipart framing whose length adds up', () => {
    const p = plan('bytes=0-9,100-109,-5');
    assert.equal(p.kind, 'multi');
    if (p.kind !== 'multi') return;
    assert.equal(p.contentType, 'multipart/byteranges; boundary=BOUND');
    assert.deepEqual(
      p.parts.map((x) => x.range),
      [
        { start: 0, end: 9 },
        { start: 100, end: 109 },
        { start: 995, end: 999 },
      ],
    );
    assert.ok(p.parts[0]?.header.startsWith('--BOUND\r\n'));
    assert.ok(p.parts[1]?.header.startsWith('\r\n--BOUND\r\n'));
    assert.match(p.parts[2]?.header ?? '', /Content-Range: bytes 995-999\/1000\r\n\r\n$/);
    assert.equal(p.trailer, '\r\n--BOUND--\r\n');
    const body =
      p.parts.map((x) => x.header + 'x'.repeat(x.range.end - x.range.start + 1)).join('') + p.trailer;
    assert.equal(p.contentLength, Buffer.byteLength(body));
  });

  test('unsatisfiable: 416 with the size; malformed or other units: ignored', () => {
    assert.deepEqual(plan('bytes=5000-6000'), {
      status: 416,
      kind: 'unsatisfiable',
      contentRange: 'bytes */1000',
    });
    assert.equal(plan('bytes=0-0', undefined, 0).status, 416, 'an empty item has no satisfiable range');
    assert.equal(plan('bytes=abc').status, 200);
    assert.equal(plan('garbage').status, 200);
    assert.equal(plan('items=0-5').status, 200);
  });

  test(`more than ${MAX_RANGES} ranges: the whole item`, () => {
    const many = Array.from({ length: MAX_RANGES + 1 }, (_, i) => `${i * 5}-${i * 5 + 1}`).join(',');
    assert.equal(plan(`bytes=${many}`).status, 200);
  });

  test('If-Range gates the Range header', () => {
    assert.equal(plan('bytes=0-9', '"abc"').status, 206);
    assert.equal(plan('bytes=0-9', '"other"').status, 200);
    assert.equal(plan('bytes=0-9', 'W/"abc"').status, 200, 'weak tags never match');
    assert.equal(plan('bytes=0-9', new Date(v.lastModifiedMs).toUTCString()).status, 206);
    assert.equal(plan('bytes=0-9', new Date(v.lastModifiedMs + 1000).toUTCString()).status, 200);
    assert.equal(plan('bytes=0-9', 'not a date').status, 200);
  });
});

describe('ifRangeAllows', () => {
  test('absent allows; dates compare to the second', () => {
    assert.equal(ifRangeAllows(undefined, v), true);
    assert.equal(ifRangeAllows(' "abc" ', v), true);
    assert.equal(ifRangeAllows('Tue, 02 Jan 2024 03:04:05 GMT', v), true);
  });
});
