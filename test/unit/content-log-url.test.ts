/** Content-server log lines never carry a ticket. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loggableUrl } from '../../src/content/log-url.js';

test('the ticket and the query are cut from a logged URL', () => {
  assert.equal(loggableUrl('/t/eyJhbGciOiJkaXIifQ..abc.def.ghi/apps/x.bin?a=1'), '/t/…/apps/x.bin');
  assert.equal(loggableUrl('/apps/x.bin'), '/apps/x.bin');
  assert.equal(loggableUrl(undefined), '/');
});
