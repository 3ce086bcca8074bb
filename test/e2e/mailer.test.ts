import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createMailer } from '../../src/reception/mailer.js';
import { silentLogger } from '../../src/util/log.js';
import { holdDeadPort } from '../helpers/ports.js';
import { type SmtpListener, startSmtpListener } from '../helpers/smtp.js';

let smtp: SmtpListener;

before(async () => {
  smtp = await startSmtpListener();
});

after(async () => {
  await smtp.close();
});

test('sends the ticket link to a real SMTP listener', async () => {
  const mailer = createMailer({ smtp: smtp.url, from: 'downloads@example.com' }, silentLogger);
  await mailer.sendTicketLink({
    to: 'buyer@example.com',
    item: '/apps/x.bin',
    url: 'http://127.0.0.1:1/t/abc/apps/x.bin',
    orderId: 'o1',
  });
  mailer.close();
  assert.equal(mailer.stats.sent, 1);
  const mail = smtp.mails.at(-1);
  assert.deepEqual(mail?.to, ['buyer@example.com']);
  assert.match(mail?.body ?? '', /http:\/\/127\.0\.0\.1:1\/t\/abc\/apps\/x\.bin/);
});

test('a mail failure resolves, is counted, and never throws', async () => {
  // Held by this test and resetting every connection: nobody else can answer on it.
  const dead = await holdDeadPort();
  const mailer = createMailer(
    { smtp: `smtp://127.0.0.1:${dead.port}`, from: 'downloads@example.com' },
    silentLogger,
  );
  await mailer.sendTicketLink({ to: 'buyer@example.com', item: '/x', url: 'http://x/', orderId: 'o2' });
  mailer.close();
  await dead.close();
  assert.equal(mailer.stats.failed, 1);
});

test('without mail configured it does nothing', async () => {
  const mailer = createMailer(undefined, silentLogger);
  await mailer.sendTicketLink({ to: 'a@b.c', item: '/x', url: 'http://x/', orderId: 'o3' });
  assert.deepEqual(mailer.stats, { sent: 0, failed: 0 });
});
