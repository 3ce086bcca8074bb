/**
 * An attacked rush (issue 10): one `rushgate up` deployment, the same honest rush (`rushgate
 * rush`, every buyer on its own 127.x address) run twice in the same process lifetime — once
 * alone, once while four attackers run here, each from its own 127.2xx address:
 * - a flooder: orders as fast as 8 loops can send them, trying to take many tickets and places
 *   (expected: `429 rate_limited` / `client_limit`, at most `limits.ticketsPerClient` tickets and
 *   `limits.placesPerClient` places);
 * - a respeller: takes one place, then orders with every respelling of its queue token
 *   (test/helpers/respell.ts; expected: none skips the line or gets a place of its own);
 * - a ticket-URL sharer: gets one ticket and opens 50 connections on it at once, in waves
 *   (expected: at most `connectionsPerTicket` served, the rest `429 too_many_connections`);
 * - a slowloris: 300 sockets sending a request's headers a byte at a time to the reception's
 *   public port, reconnecting when cut off.
 * First, though, the attack alone: one hostile prefix sending 1,000 requests a second with
 * respelled tokens, trying to hold 500 orders, against 50 honest buyers.
 * Printed: the honest rush's completion and admission p50/p99 and slot use while anyone waited,
 * alone and attacked, with their ratios (the goal, for the attack: admission p99 ≤ 1.2 ×
 * alone; the attacker never holds more than its caps); what each
 * attacker obtained; and the refusals by code. Ratios, not absolute numbers: the machine is shared.
 * Run with `npm run bench -- attacked` or `node --import tsx bench/attacked-rush.ts` after a build.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { Agent, Pool, request } from 'undici';
import type { RushReport } from '../src/client/rush-report.js';
import { statusViewSchema } from '../src/reception/status-view.js';
import { respellings } from '../test/helpers/respell.js';
import { runRushReport, startUpDeployment } from './rush-deployment.js';

const BUYERS = 50;
const CAPACITY = 8;
/** The attacker: one prefix, this many requests a second, trying to hold this many orders. */
const HOSTILE_RPS = 1000;
const HOSTILE_ORDERS = 500;
// Larger than loopback socket buffers absorb, so a slot is held for most of a download.
const ITEM_BYTES = 8 * 1024 * 1024;
const RATE = 2 * 1024 * 1024;
const LIMITS = { ticketsPerClient: 2, placesPerClient: 2 };
const CONNECTIONS_PER_TICKET = 8;
const SLOWLORIS_SOCKETS = 300;
const MAX_SECONDS = 90;
/** Alone/attacked pairs of the attack. */
const PAIRS = 5;
/** Longest wait for the line to empty and tickets to end between runs (abandonSeconds + claimSeconds, and some). */
const QUIET_MS = 45_000;

/** Counts of answers by `status code` (e.g. `429 rate_limited`). */
type Tally = Record<string, number>;
const bump = (t: Tally, k: string) => {
  t[k] = (t[k] ?? 0) + 1;
};

interface Answer {
  status: number;
  code: string;
  json: Record<string, unknown> | null;
}

/** One `POST /api/orders` from `agent`'s address. */
async function order(
  base: string,
  agent: Agent,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  try {
    const res = await request(`${base}/api/orders`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {}
    const err = (json?.error as { code?: string } | undefined)?.code;
    const code = err ?? (typeof json?.status === 'string' ? json.status : '');
    return { status: res.statusCode, code, json };
  } catch (e) {
    return { status: 0, code: (e as { code?: string }).code ?? 'error', json: null };
  }
}

/** A pool of sockets from `localAddress` (undici takes it per pool, as rush.ts does). */
const agentAt = (localAddress: string) =>
  new Agent({ connections: 16, factory: (origin, opts) => new Pool(origin, { ...opts, localAddress }) });

interface Holdings {
  tickets: Set<string>;
  /** Every ticket URL it was given, to count at the end how many it could still use. */
  urls: string[];
  places: Set<string>;
  tally: Tally;
  requests: number;
}
const holdings = (): Holdings => ({
  tickets: new Set(),
  urls: [],
  places: new Set(),
  tally: {},
  requests: 0,
});

/**
 * How many of these ticket URLs would still be served: a one-byte range of each, at once. A
 * ticket freed while others waited is revoked (`410`), so this is what the client holds, against
 * `limits.ticketsPerClient`, however many tickets it was given over the run.
 */
async function usable(urls: readonly string[]): Promise<number> {
  const served = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await request(url, { headers: { range: 'bytes=0-0' } });
        await res.body.dump();
        return res.statusCode === 206 || res.statusCode === 200;
      } catch {
        return false;
      }
    }),
  );
  return served.filter(Boolean).length;
}

function record(h: Holdings, a: Answer): void {
  h.requests += 1;
  bump(h.tally, `${a.status} ${a.code}`);
  const ticket = a.json?.ticket as { id?: string; url?: string } | undefined;
  if (a.status === 201 && ticket?.id) {
    h.tickets.add(ticket.id);
    if (ticket.url) h.urls.push(ticket.url);
  }
  if (a.status === 503 && typeof a.json?.queueToken === 'string') h.places.add(a.json.queueToken);
}

/** (a) Orders as fast as 8 loops can, never downloading, to hold as many tickets and places as it can. */
async function flooder(base: string, item: string, stop: () => boolean): Promise<Holdings> {
  const h = holdings();
  const agent = agentAt('127.201.0.1');
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (!stop() && h.requests < 200_000) record(h, await order(base, agent, { item }));
    }),
  );
  await agent.close();
  return h;
}

/**
 * The attacker: one hostile prefix (127.200.0.1) sending 1,000 requests a second, paced,
 * trying to hold 500 orders: new orders, and retries with every respelling of each queue token it
 * got (each respelling would be a new place if the token check were lenient).
 */
async function hostilePrefix(
  base: string,
  item: string,
  stop: () => boolean,
): Promise<Holdings & { respelled: number; admittedByRespelling: number; usableAtEnd: number }> {
  const h = { ...holdings(), respelled: 0, admittedByRespelling: 0, usableAtEnd: 0 };
  const agent = agentAt('127.200.0.1');
  const started = performance.now();
  let sent = 0;
  const tokens: string[] = [];
  let spellings: string[] = [];
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (!stop()) {
        const due = started + (sent * 1000) / HOSTILE_RPS;
        sent += 1;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (stop()) break;
        const useRespelling = spellings.length > 0 && sent % 2 === 0;
        if (useRespelling) {
          const v = spellings.pop()!;
          h.respelled += 1;
          const a = await order(base, agent, { item, queueToken: v });
          record(h, a);
          if (a.status === 201) h.admittedByRespelling += 1;
          continue;
        }
        if (h.tickets.size + h.places.size >= HOSTILE_ORDERS) continue;
        const a = await order(base, agent, { item });
        record(h, a);
        const token = a.json?.queueToken;
        if (typeof token === 'string' && !tokens.includes(token)) {
          tokens.push(token);
          spellings = spellings.concat(respellings(token));
        }
      }
    }),
  );
  await agent.close();
  h.usableAtEnd = await usable(h.urls);
  return h;
}

/** (b) Takes a place, then orders with every respelling of its token, in the body and the header. */
async function respeller(
  base: string,
  item: string,
  stop: () => boolean,
): Promise<Holdings & { variants: number; admittedByVariant: number }> {
  const h = { ...holdings(), variants: 0, admittedByVariant: 0 };
  const agent = agentAt('127.202.0.1');
  let token: string | null = null;
  while (!stop() && h.requests < 100_000) {
    if (token === null) {
      const a = await order(base, agent, { item });
      record(h, a);
      if (typeof a.json?.queueToken === 'string') token = a.json.queueToken;
      else await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const variants = respellings(token);
    h.variants = Math.max(h.variants, variants.length);
    for (const v of variants) {
      if (stop()) break;
      for (const a of [
        await order(base, agent, { item, queueToken: v }),
        await order(base, agent, { item }, { 'rushgate-queue-token': v }),
      ]) {
        record(h, a);
        if (a.status === 201) h.admittedByVariant += 1;
      }
    }
    // The real token keeps the place alive (and is the one spelling that may be admitted).
    const real = await order(base, agent, { item, queueToken: token });
    record(h, real);
    if (real.status !== 503) token = null;
  }
  await agent.close();
  return h;
}

/** (c) Waits in line for one ticket like a buyer would, then opens 50 connections on it at once, in waves. */
async function sharer(
  base: string,
  item: string,
  stop: () => boolean,
): Promise<Holdings & { waves: number; maxServedAtOnce: number; connections: Tally }> {
  const h = { ...holdings(), waves: 0, maxServedAtOnce: 0, connections: {} as Tally };
  const agent = agentAt('127.203.0.1');
  let url: string | null = null;
  let token: string | undefined;
  while (!stop() && url === null) {
    const a = await order(base, agent, token ? { item, queueToken: token } : { item }, { prefer: 'wait=10' });
    record(h, a);
    const t = a.json?.ticket as { url?: string } | undefined;
    if (a.status === 201 && t?.url) url = t.url;
    else if (typeof a.json?.queueToken === 'string') token = a.json.queueToken;
    else await new Promise((r) => setTimeout(r, 500));
  }
  await agent.close();
  while (url !== null && !stop() && h.waves < 10) {
    h.waves += 1;
    const held: http.ClientRequest[] = [];
    const outcomes = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<string>((resolve) => {
            const req = http.get(url as string, { agent: false, localAddress: '127.203.0.1' }, (res) => {
              if (res.statusCode === 200 || res.statusCode === 206) {
                // Stops reading: the transfer stays in flight while later connections arrive.
                res.pause();
                resolve(String(res.statusCode));
                return;
              }
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => {
                let code = '';
                try {
                  code = JSON.parse(Buffer.concat(chunks).toString()).error?.code ?? '';
                } catch {}
                resolve(`${res.statusCode} ${code}`);
              });
            });
            req.on('error', (e) => resolve(`error ${(e as { code?: string }).code ?? ''}`));
            held.push(req);
          }),
      ),
    );
    for (const o of outcomes) bump(h.connections, o);
    h.maxServedAtOnce = Math.max(
      h.maxServedAtOnce,
      outcomes.filter((o) => o === '200' || o === '206').length,
    );
    await new Promise((r) => setTimeout(r, 2000));
    for (const r of held) r.destroy();
    await new Promise((r) => setTimeout(r, 500));
  }
  return h;
}

/** (d) Sockets to the reception's public port that send a request's headers a byte every 250 ms. */
async function slowloris(
  base: string,
  stop: () => boolean,
): Promise<{ sockets: number; connects: number; cutOff: number; answered: number }> {
  const u = new URL(base);
  const head = `GET /rush/item.bin HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: slow\r\nAccept: */*\r\nX-Padding: ${'a'.repeat(200)}\r\n`;
  const s = { sockets: SLOWLORIS_SOCKETS, connects: 0, cutOff: 0, answered: 0 };
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      s.connects += 1;
      const socket = net.connect({
        host: u.hostname,
        port: Number(u.port),
        localAddress: `127.204.0.${1 + (i % 4)}`,
      });
      let sent = 0;
      socket.on('data', () => {
        s.answered += 1;
      });
      socket.on('error', () => {});
      const timer = setInterval(() => {
        if (stop()) {
          socket.destroy();
          return;
        }
        if (socket.writable) socket.write(head[sent++ % head.length] as string);
      }, 250);
      socket.on('close', () => {
        clearInterval(timer);
        if (!stop()) s.cutOff += 1;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: SLOWLORIS_SOCKETS }, async (_, i) => {
      while (!stop()) await one(i);
    }),
  );
  return s;
}

type HostileHoldings = Awaited<ReturnType<typeof hostilePrefix>>;

/** Until the reception's line is empty and no ticket is outstanding (bounded by QUIET_MS). */
async function quiet(statusUrl: string): Promise<void> {
  const until = performance.now() + QUIET_MS;
  while (performance.now() < until) {
    try {
      const res = await request(statusUrl);
      const s = statusViewSchema.parse(await res.body.json());
      const outstanding = s.servers.reduce((n, x) => n + x.outstanding, 0);
      if (s.queue.length === 0 && outstanding === 0) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log('  (the line or the tickets did not clear between runs; carrying on)');
}

const ratioOf = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || a === 0 ? null : b / a;
const medianOf = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
};

const num = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || a === 0
    ? 'n/a'
    : `${(b / a).toFixed(2)} ×`;
const tally = (t: Tally) =>
  Object.entries(t)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');

export async function runAttackedRushBench(): Promise<void> {
  console.log(
    `attacked rush: rushgate up (3 × ${CAPACITY} slots, expiring, ticketsPerClient ${LIMITS.ticketsPerClient}, placesPerClient ${LIMITS.placesPerClient}); ` +
      `${BUYERS} honest buyers (rushgate rush), ${ITEM_BYTES / 1024} KiB at ${RATE / 1024} KiB/s, alone then attacked`,
  );
  const { d, stop: stopDeployment } = await startUpDeployment({
    deployment: {
      servers: 3,
      server: () => ({ capacity: CAPACITY, connectionsPerTicket: CONNECTIONS_PER_TICKET }),
      reception: {
        // abandonSeconds short enough that the attacker's places are gone between runs (quiet()).
        queue: { holdSeconds: 5, maxRetryAfterSeconds: 10, abandonSeconds: 20 },
        // `expiring`: a ticket URL is a bearer key, which is what the sharer abuses.
        tickets: { policy: 'expiring', claimSeconds: 10 },
        limits: LIMITS,
        monitor: { intervalMs: 250, timeoutMs: 2000, failuresBeforeDown: 3 },
      },
    },
    items: {
      '/rush/item.bin': randomBytes(ITEM_BYTES),
      // Large enough that a paused transfer cannot be absorbed by loopback socket buffers.
      '/rush/big.bin': Buffer.alloc(48 * 1024 * 1024, 7),
    },
  });
  try {
    const base = d.config.reception.publicUrl;
    const rushArgs = [
      `${base}/rush/item.bin`,
      '--clients',
      String(BUYERS),
      '--rate',
      String(RATE),
      '--status',
      `${d.config.reception.internalUrl}/status`,
      '--fifo-tolerance',
      '5',
      '--ramp',
      '2',
      '--max-seconds',
      String(MAX_SECONDS),
    ];
    const rush = () => runRushReport(rushArgs, (MAX_SECONDS + 30) * 1000);
    const statusUrl = `${d.config.reception.internalUrl}/status`;

    // The shape: one hostile prefix at 1,000 requests/s with respelled tokens. The p99 of
    // 50 buyers is nearly their slowest, and whether a line forms at all in a run alone is close
    // to a coin toss at this load, so one pair of runs says little on a shared machine: PAIRS
    // pairs, each side by side, alone first in even pairs and attacked first in odd ones (so a
    // drift of the machine does not favour one side), and the median of their ratios.
    const pairs: { alone: RushReport; attacked: RushReport; hostile: HostileHoldings }[] = [];
    const attackedRun = async () => {
      let hostileStopped = false;
      const hostileRun = hostilePrefix(base, '/rush/item.bin', () => hostileStopped);
      await new Promise((r) => setTimeout(r, 1000));
      try {
        return { report: await rush(), hostileRun };
      } finally {
        hostileStopped = true;
      }
    };
    for (let i = 0; i < PAIRS; i++) {
      // Each run starts from an empty line with no live ticket: the attacker's leftovers (places
      // it never came back to, tickets it never used) must not weigh on the next run alone.
      await quiet(statusUrl);
      let alone: RushReport;
      let attacked: Awaited<ReturnType<typeof attackedRun>>;
      if (i % 2 === 0) {
        alone = await rush();
        await quiet(statusUrl);
        attacked = await attackedRun();
      } else {
        attacked = await attackedRun();
        await attacked.hostileRun;
        await quiet(statusUrl);
        alone = await rush();
      }
      pairs.push({ alone, attacked: attacked.report, hostile: await attacked.hostileRun });
    }
    const p99Ratios = pairs.map((p) =>
      ratioOf(p.alone.admissionSeconds.p99, p.attacked.admissionSeconds.p99),
    );
    console.log(`  ${''.padEnd(34)} ${'alone'.padStart(8)} ${'attacked'.padStart(10)}   ratio`);
    const row0 = (name: string, a: number | null | undefined, b: number | null | undefined, d = 2) =>
      console.log(`  ${name.padEnd(34)} ${num(a, d).padStart(8)} ${num(b, d).padStart(10)}   ${ratio(a, b)}`);
    console.log(`  one hostile prefix, the issue's attack (${PAIRS} pairs of runs):`);
    pairs.forEach((p, i) => {
      row0(`pair ${i + 1}: admission p99 (s)`, p.alone.admissionSeconds.p99, p.attacked.admissionSeconds.p99);
      row0(`pair ${i + 1}: admission p50 (s)`, p.alone.admissionSeconds.p50, p.attacked.admissionSeconds.p50);
      row0(
        `pair ${i + 1}: completion p99 (s)`,
        p.alone.completionSeconds.p99,
        p.attacked.completionSeconds.p99,
      );
    });
    console.log(
      `  median admission p99 ratio (goal ≤ 1.2 ×): ${num(medianOf(p99Ratios))} × (pairs: ${p99Ratios.map((r) => num(r)).join(', ')})`,
    );
    pairs.forEach((p, i) => {
      const h = p.hostile;
      const seconds = p.attacked.durationSeconds + 1;
      console.log(
        `  pair ${i + 1}, hostile prefix (127.200.0.1): ${h.requests} requests (${(h.requests / seconds).toFixed(0)}/s), ` +
          `${h.respelled} with respelled tokens (ticketed while carrying one, as a newcomer: ${h.admittedByRespelling}); ` +
          `got ${h.tickets.size} tickets (${h.usableAtEnd} still usable at the end) and ${h.places.size} places of the ${HOSTILE_ORDERS} it tried to hold ` +
          `(caps ${LIMITS.ticketsPerClient} live tickets, ${LIMITS.placesPerClient} places); intact honest ${p.attacked.integrity.intact}/${BUYERS}`,
      );
      console.log(`    answers: ${tally(h.tally)}`);
    });
    const alone = pairs[pairs.length - 1]!.alone;
    await quiet(statusUrl);

    // Then every kind of attacker at once, beyond the shape.
    console.log('  four attackers at once (a flood, respelled tokens, a shared ticket URL, a slowloris):');
    let stopped = false;
    const stop = () => stopped;
    const attacks = Promise.all([
      flooder(base, '/rush/item.bin', stop),
      respeller(base, '/rush/item.bin', stop),
      sharer(base, '/rush/big.bin', stop),
      slowloris(base, stop),
    ]);
    // The attackers get a head start, so the honest rush meets them at full strength.
    await new Promise((r) => setTimeout(r, 1000));
    let attacked: RushReport;
    try {
      attacked = await runRushReport(rushArgs, (MAX_SECONDS + 30) * 1000);
    } finally {
      stopped = true;
    }
    const [flood, respell, share, slow] = await attacks;

    const row = row0;
    row('duration (s)', alone.durationSeconds, attacked.durationSeconds, 1);
    row('admission p50 (s)', alone.admissionSeconds.p50, attacked.admissionSeconds.p50);
    row('admission p99 (s)', alone.admissionSeconds.p99, attacked.admissionSeconds.p99);
    row('completion p50 (s)', alone.completionSeconds.p50, attacked.completionSeconds.p50);
    row('completion p99 (s)', alone.completionSeconds.p99, attacked.completionSeconds.p99);
    row('slot use while anyone waited', alone.slotUse?.whileWaiting, attacked.slotUse?.whileWaiting);
    console.log(
      `  outcomes alone ${JSON.stringify(alone.outcomes)}; attacked ${JSON.stringify(attacked.outcomes)}`,
    );
    console.log(
      `  intact alone ${alone.integrity.intact}, attacked ${attacked.integrity.intact}; errors attacked ${JSON.stringify(attacked.errors)}`,
    );
    console.log(
      `  flooder (127.201.0.1): ${flood.requests} orders; got ${flood.tickets.size} tickets and ${flood.places.size} places ` +
        `(caps ${LIMITS.ticketsPerClient} live tickets, ${LIMITS.placesPerClient} places, claimSeconds 10 lets unused tickets lapse and be retaken)`,
    );
    console.log(`    answers: ${tally(flood.tally)}`);
    console.log(
      `  respeller (127.202.0.1): ${respell.requests} orders with ${respell.variants} respellings of its token; ` +
        // A respelling is no token (order-desk.ts reads only the exact string), so an order that
        // carries one is a newcomer's: ticketed only when a slot is free with nobody ahead of it.
        `ticketed while carrying a respelling (as a newcomer) ${respell.admittedByVariant}; distinct places over the run ${respell.places.size}; tickets over the run ${respell.tickets.size}`,
    );
    console.log(`    answers: ${tally(respell.tally)}`);
    console.log(
      `  sharer (127.203.0.1): ${share.tickets.size} ticket, ${share.waves} waves of 50 connections; most served at once ${share.maxServedAtOnce} (cap ${CONNECTIONS_PER_TICKET})`,
    );
    console.log(`    connections: ${tally(share.connections)}; orders: ${tally(share.tally)}`);
    console.log(
      `  slowloris (127.204.0.1–4): ${slow.sockets} sockets, ${slow.connects} connections, ${slow.cutOff} cut off by the reception, ${slow.answered} answered with bytes`,
    );
  } finally {
    await stopDeployment();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runAttackedRushBench();
}
