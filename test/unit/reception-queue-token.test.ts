/**
 * Queue tokens take exactly one spelling: respellings that Node's lenient base64url decoder
 * would map onto the same MAC (junk characters, padding, the last character's spare bits, the
 * standard alphabet) are not the token; another deployment's keys do not verify it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createQueueTokens } from '../../src/reception/queue-token.js';
import { respellings } from '../helpers/respell.js';

const ring = [{ id: 'k1', key: randomBytes(32) }];

describe('queue tokens', () => {
  const tokens = createQueueTokens(ring);

  it('reads a token as issued', () => {
    const t = tokens.mint('/f.bin', 1000);
    assert.deepEqual(tokens.read(t), { item: '/f.bin', issuedAt: 1000 });
  });

  it('refuses every respelling, though each decodes to the same MAC', () => {
    for (let n = 0; n < 20; n++) {
      const t = tokens.mint('/f.bin', n);
      const variants = respellings(t);
      assert.ok(variants.length >= 20, `${variants.length} variants`);
      for (const v of variants) assert.equal(tokens.read(v), undefined, JSON.stringify(v));
    }
  });

  it('refuses a token of another deployment', () => {
    const other = createQueueTokens([{ id: 'k1', key: randomBytes(32) }]);
    assert.equal(tokens.read(other.mint('/f.bin', 1)), undefined);
  });
});
