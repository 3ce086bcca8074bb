/**
 * Purchase grants end to end (CONTRACT §7, §1, §5) with real processes: a shop key pair from
 * `rushgate keys new --grant-issuer`, grants from `rushgate grant`, `rushgate get` with `--grant`
 * and with `?grant=` (exit 5 when refused), and a refund with `rushgate revoke --purchase`: the
 * order's ticket is then `410` on its content server and new orders with the grant are `403`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runRushgate } from '../helpers/proc.js';
import { type SmtpListener, startSmtpListener } from '../helpers/smtp.js';
import { type Stack, startStack, waitUntil } from './get-harness.js';

const SHOP = 'https://shop.example.com';
const PAID = randomBytes(256 * 1024);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let stack: Stack;
let keysDir: string;
let privateKey: string;
let smtp: SmtpListener;

before(async () => {
  keysDir = mkdtempSync(path.join(tmpdir(), 'rushgate-shop-'));
  const made = await runRushgate(['keys', 'new', '--grant-issuer', SHOP, '--id', 'shop1', '--out', keysDir]);
  assert.equal(made.code, 0, made.stderr);
  const files = readdirSync(keysDir);
  const priv = files.find((f) => f.endsWith('.private.jwk.json'));
  const pub = files.find((f) => f.endsWith('-jwks.json'));
  assert.ok(priv && pub, files.join(','));
  privateKey = path.join(keysDir, priv);
  assert.equal(statSync(privateKey).mode & 0o777, 0o600);
  assert.match(made.stdout, /jwks:/);
  smtp = await startSmtpListener();
  stack = await startStack({
    servers: 2,
    reception: {
      mail: { smtp: smtp.url, from: 'downloads@example.com' },
      grants: { required: ['/paid/**'], issuers: [{ iss: SHOP, jwks: path.join(keysDir, pub) }] },
    },
    items: { '/free.txt': { content: 'free\n' }, '/paid/game.bin': { content: PAID } },
  });
});

after(async () => {
  await stack?.stop();
  await smtp?.close();
  rmSync(keysDir, { recursive: true, force: true });
});

async function mint(purchase: string, extra: string[] = []): Promise<string> {
  const r = await runRushgate([
    'grant',
    '--config',
    stack.dep.configPath,
    '--item',
    '/paid/game.bin',
    '--purchase',
    purchase,
    '--key',
    privateKey,
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

function dirFor(name: string): string {
  const d = path.join(stack.dep.dir, 'work', name);
  mkdirSync(d, { recursive: true });
  return d;
}

test('free item without a grant; paid item exit 5 without, served with --grant and with ?grant=', {
  timeout: 120_000,
}, async () => {
  const free = await runRushgate(['get', stack.url('/free.txt'), '-q'], { cwd: dirFor('free') });
  assert.equal(free.code, 0, free.stderr);
  const refused = await runRushgate(['get', stack.url('/paid/game.bin'), '-q'], { cwd: dirFor('none') });
  assert.equal(refused.code, 5, refused.stderr);
  assert.match(refused.stderr, /grant/i);
  const bad = await runRushgate(['get', stack.url('/paid/game.bin'), '--grant', 'x.y.z', '-q'], {
    cwd: dirFor('bad'),
  });
  assert.equal(bad.code, 5, bad.stderr);

  const withFlag = dirFor('flag');
  const ok = await runRushgate(
    ['get', stack.url('/paid/game.bin'), '--grant', await mint('p-flag'), '--json'],
    {
      cwd: withFlag,
    },
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(sha(readFileSync(path.join(withFlag, 'game.bin'))), sha(PAID));

  const withQuery = dirFor('query');
  const g = await mint('p-query');
  const viaUrl = await runRushgate(['get', `${stack.url('/paid/game.bin')}?grant=${g}`, '-q'], {
    cwd: withQuery,
  });
  assert.equal(viaUrl.code, 0, viaUrl.stderr);
  assert.equal(sha(readFileSync(path.join(withQuery, 'game.bin'))), sha(PAID));
  // The grant made one order and it is fulfilled: max 1, so a second download is refused (409).
  const again = await runRushgate(['get', `${stack.url('/paid/game.bin')}?grant=${g}`, '-q'], {
    cwd: dirFor('again'),
  });
  assert.equal(again.code, 5, again.stderr);
  assert.doesNotMatch(stack.logs(), new RegExp(g.split('.')[2]!.slice(0, 20)), 'the grant is never logged');
});

test('a refund: rushgate revoke --purchase makes the ticket 410 on its content server, then orders 403', {
  timeout: 120_000,
}, async () => {
  const g = await mint('p-refund');
  const placed = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: '/paid/game.bin', grant: g }),
  });
  assert.equal(placed.status, 201);
  const { ticket } = (await placed.json()) as { ticket: { url: string } };
  const r = await runRushgate(['revoke', '--config', stack.dep.configPath, '--purchase', 'p-refund']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1 order\(s\), 1 ticket\(s\) revoked/);
  await waitUntil(
    async () => (await fetch(ticket.url, { headers: { range: 'bytes=0-0' } })).status === 410,
    20_000,
    'ticket 410 on the content server',
  );
  const after = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: '/paid/game.bin', grant: g }),
  });
  assert.equal(after.status, 403);
  assert.equal(((await after.json()) as { error: { code: string } }).error.code, 'bad_grant');
});

test('a grant with an e-mail: the ticket link is mailed to the buyer', { timeout: 60_000 }, async () => {
  const g = await mint('p-mail', ['--email', 'buyer@example.com']);
  const placed = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: '/paid/game.bin', grant: g }),
  });
  assert.equal(placed.status, 201);
  const { ticket } = (await placed.json()) as { ticket: { url: string } };
  await waitUntil(async () => smtp.mails.some((m) => m.to.includes('buyer@example.com')), 20_000, 'the mail');
  const body = smtp.mails.find((m) => m.to.includes('buyer@example.com'))?.body.replace(/=\r?\n/g, '') ?? '';
  const ticketPart = new URL(ticket.url).pathname.split('/')[2] ?? '';
  assert.ok(body.includes(ticketPart.slice(0, 30)), body);
  assert.ok(!body.includes(g.split('.')[2] ?? 'none'), 'the grant is not in the mail');
});
