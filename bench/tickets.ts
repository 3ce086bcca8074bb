/**
 * Ticket throughput, measured side by side in one run: our issue and verify against the floor
 * they are built on (bare node:crypto AES-256-GCM on the same plaintext) and against `jose`, the
 * library we chose not to use for tickets (see src/tickets/jwe.ts). A content server verifies on
 * every range request of a rush, so the number that matters is verify/s; the goal is at least
 * half of raw decrypt/s. Run with `node --import tsx bench/tickets.ts`, or import
 * `runTicketBench()`. Takes about ten seconds; numbers only, no pass/fail.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { CompactEncrypt, compactDecrypt } from 'jose';
import {
  type IssueRequest,
  type IssueSettings,
  issueTicket,
  type KeyRing,
  type RequestFacts,
  type TicketState,
  verifyTicket,
} from '../src/tickets/index.js';

const ROUNDS = 3;
const ROUND_MS = 300;

/** Ops per second of a synchronous function: best of ROUNDS timed rounds, after a warm-up. */
function measure(fn: () => unknown): number {
  for (let i = 0; i < 2000; i++) fn();
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(ROUND_MS) * 1_000_000n;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 256; i++) fn();
      ops += 256;
      now = process.hrtime.bigint();
    }
    best = Math.max(best, ops / (Number(now - start) / 1e9));
  }
  return best;
}

async function measureAsync(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(ROUND_MS) * 1_000_000n;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 32; i++) await fn();
      ops += 32;
      now = process.hrtime.bigint();
    }
    best = Math.max(best, ops / (Number(now - start) / 1e9));
  }
  return best;
}

/**
 * Runs the ticket benchmark and returns ops/s per operation plus the ratios. Prints its table
 * unless `print: false`, because bench/index.ts runs every bench and expects each to report.
 */
export async function runTicketBench(options: { print?: boolean } = {}): Promise<Record<string, number>> {
  const key = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
  const ring: KeyRing = [key];
  const T0 = 1_700_000_000;
  const req: IssueRequest = {
    ticketId: 'tkt_01HZY3J6Q8W5XK2M',
    orderId: 'ord_01HZY3J6Q8W4ZR7N',
    serverId: 'content-a',
    path: '/apps/editor-2.1.dmg',
    clientAddress: '203.0.113.7',
    nowMs: T0 * 1000,
  };
  const strict: IssueSettings = {
    policy: 'strict',
    ttlSeconds: 600,
    startDelaySeconds: 0,
    bindClientAddress: true,
    bindPrefix: { ipv4: 32, ipv6: 64 },
  };
  const facts: RequestFacts = {
    serverId: 'content-a',
    path: req.path,
    clientAddress: '203.0.113.7',
    nowMs: (T0 + 1) * 1000,
  };
  const state: TicketState = { hasNotice: () => true, isRevoked: () => false };
  const { token, claims } = issueTicket(req, strict, ring);
  const check = verifyTicket(token, facts, { policy: 'strict', clockSkewSeconds: 30, ring }, state);
  if (!check.ok) throw new Error(`bench ticket refused: ${check.code}`);

  // The raw baseline: the same plaintext, key form and AAD, but no IV generation, JSON or base64.
  const plaintext = Buffer.from(JSON.stringify(claims));
  const secret = createSecretKey(key.key);
  const iv = randomBytes(12);
  const aad = Buffer.from(token.split('.')[0] ?? '', 'latin1');
  const rawEncrypt = () => {
    const c = createCipheriv('aes-256-gcm', secret, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return [ct, c.getAuthTag()] as const;
  };
  const [rawCt, rawTag] = rawEncrypt();
  const rawDecrypt = () => {
    const d = createDecipheriv('aes-256-gcm', secret, iv, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(rawTag);
    return Buffer.concat([d.update(rawCt), d.final()]);
  };

  const results: Record<string, number> = {};
  results.issue = measure(() => issueTicket(req, strict, ring));
  results.rawEncrypt = measure(rawEncrypt);
  results.verifyStrict = measure(() =>
    verifyTicket(token, facts, { policy: 'strict', clockSkewSeconds: 30, ring }, state),
  );
  results.verifyExpiring = measure(() =>
    verifyTicket(token, facts, { policy: 'expiring', clockSkewSeconds: 30, ring }, state),
  );
  results.rawDecrypt = measure(rawDecrypt);
  results.joseEncrypt = await measureAsync(() =>
    new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' })
      .encrypt(key.key),
  );
  results.joseDecrypt = await measureAsync(() => compactDecrypt(token, key.key));

  results.verifyOverRawDecrypt = results.verifyStrict / results.rawDecrypt;
  results.issueOverRawEncrypt = results.issue / results.rawEncrypt;
  results.verifyOverJoseDecrypt = results.verifyStrict / results.joseDecrypt;
  if (options.print !== false) print(results);
  return results;
}

function print(r: Record<string, number>): void {
  const n = (k: string) => Math.round(r[k] ?? 0).toLocaleString('en-US');
  const x = (k: string) => (r[k] ?? 0).toFixed(2);
  const rows: Array<[string, string]> = [
    ['issue (ours)', n('issue')],
    ['raw AES-256-GCM encrypt', n('rawEncrypt')],
    ['verify, strict (ours)', n('verifyStrict')],
    ['verify, expiring (ours)', n('verifyExpiring')],
    ['raw AES-256-GCM decrypt', n('rawDecrypt')],
    ['jose CompactEncrypt', n('joseEncrypt')],
    ['jose compactDecrypt', n('joseDecrypt')],
  ];
  const width = Math.max(...rows.map(([a]) => a.length));
  console.log(`${'operation'.padEnd(width)}  ops/s`);
  for (const [a, b] of rows) console.log(`${a.padEnd(width)}  ${b.padStart(10)}`);
  console.log('');
  console.log(`verify / raw decrypt   ${x('verifyOverRawDecrypt')}  (goal ≥ 0.50)`);
  console.log(`issue / raw encrypt    ${x('issueOverRawEncrypt')}`);
  console.log(`verify / jose decrypt  ${x('verifyOverJoseDecrypt')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runTicketBench();
}
