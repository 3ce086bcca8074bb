import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { createMailer } from '../../src/reception/mailer.js';
import { silentLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/ports.js';

const received: { to: string[]; body: string }[] = [];
let server: SMTPServer;
let port: number;

before(async () => {
  port = await freePort();
  server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      let body = '';
      stream.on('data', (d: Buffer) => {
        body += d.toString();
      });
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), body });
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('sends the ticket link to a real SMTP listener', async () => {
  const mailer = createMailer(
    { smtp: `smtp://127.0.0.1:${port}`, from: 'downloads@example.com' },
    silentLogger,
  );
  await mailer.sendTicketLink({
    to: 'buyer@example.com',
    item: '/apps/x.bin',
    url: 'http://127.0.0.1:1/t/abc/apps/x.bin',
    orderId: 'o1',
  });
  mailer.close();
  assert.equal(mailer.stats.sent, 1);
  const mail = received.at(-1);
  assert.deepEqual(mail?.to, ['buyer@example.com']);
  assert.match(mail?.body ?? '', /http:\/\/127\.0\.0\.1:1\/t\/abc\/apps\/x\.bin/);
});

test('a mail failure resolves, is counted, and never throws', async () => {
  const dead = await freePort();
  const mailer = createMailer(
    { smtp: `smtp://127.0.0.1:${dead}`, from: 'downloads@example.com' },
    silentLogger,
  );
  await mailer.sendTicketLink({ to: 'buyer@example.com', item: '/x', url: 'http://x/', orderId: 'o2' });
  mailer.close();
  assert.equal(mailer.stats.failed, 1);
});

test('without mail configured it does nothing', async () => {
  const mailer = createMailer(undefined, silentLogger);
  await mailer.sendTicketLink({ to: 'a@b.c', item: '/x', url: 'http://x/', orderId: 'o3' });
  assert.deepEqual(mailer.stats, { sent: 0, failed: 0 });
});
