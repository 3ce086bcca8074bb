/**
 * The pure part of the chaos rehearsal (`bench/chaos.ts`): reading a gauge out of a Prometheus
 * text page, folding what buyers saw and what the servers said into the three outcomes, and the
 * table. No I/O here, so each rule can be tested on its own.
 */

/** A sample's value of `name` (no labels matched: every sample of that name), or undefined. */
export function promValue(page: string, name: string): number | undefined {
  for (const line of page.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) return value;
  }
  return undefined;
}

/** The reception's answers that are allowed under faults: success, 4xx, and the two 503s. */
export function isAllowedAnswer(status: number, code: string | undefined): boolean {
  if (status < 500) return true;
  return status === 503 && (code === 'busy' || code === 'store_unavailable');
}

export interface ServerFigures {
  id: string;
  capacity: number;
  /** Highest `rushgate_content_serving_max` (or `serving`) any scrape saw, over every restart. */
  maxServing: number;
  scrapes: number;
  kills: number;
}

export interface BuyerFigures {
  total: number;
  /** Hold the file, and its sha-256 is the item's. */
  verified: number;
  /** Hold a file whose sha-256 is wrong. */
  wrongDigest: number;
  /** No file at the end. */
  missing: number;
  /** `rushgate get` runs beyond the first (a rerun continues the `.part`, as a user would). */
  reruns: number;
}

export interface ChaosFigures {
  seconds: number;
  buyers: BuyerFigures;
  servers: ServerFigures[];
  receptionKills: number;
  /** The reception's answers by `status code`, as the buyers observed them. */
  answers: Record<string, number>;
  /** Answers that are 5xx other than 503 busy / store_unavailable. */
  badAnswers: number;
}

export interface ChaosVerdict {
  everyBuyerVerified: boolean;
  capacityHeld: boolean;
  no5xxBeyond503: boolean;
  ok: boolean;
}

export function verdictOf(f: ChaosFigures): ChaosVerdict {
  const everyBuyerVerified = f.buyers.verified === f.buyers.total;
  const capacityHeld = f.servers.every((s) => s.scrapes > 0 && s.maxServing <= s.capacity);
  const no5xxBeyond503 = f.badAnswers === 0;
  return {
    everyBuyerVerified,
    capacityHeld,
    no5xxBeyond503,
    ok: everyBuyerVerified && capacityHeld && no5xxBeyond503,
  };
}

/** Counts answers into `status code` keys. */
export function tallyAnswer(answers: Record<string, number>, status: number, code: string | undefined): void {
  const key = `${status} ${code ?? '-'}`;
  answers[key] = (answers[key] ?? 0) + 1;
}

export function badAnswerCount(answers: Record<string, number>): number {
  let n = 0;
  for (const [key, count] of Object.entries(answers)) {
    const [status, code] = key.split(' ');
    if (!isAllowedAnswer(Number(status), code === '-' ? undefined : code)) n += count;
  }
  return n;
}

/** The table `npm run chaos` prints. */
export function formatChaosTable(f: ChaosFigures, v: ChaosVerdict = verdictOf(f)): string {
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');
  const lines = [
    `chaos rehearsal: ${f.buyers.total} buyers, ${f.seconds} s, ${f.servers.length} content servers`,
    '',
    'server  capacity  max serving  scrapes  SIGKILLs',
    ...f.servers.map(
      (s) =>
        `${s.id.padEnd(6)}  ${String(s.capacity).padStart(8)}  ${String(s.maxServing).padStart(11)}  ${String(s.scrapes).padStart(7)}  ${String(s.kills).padStart(8)}`,
    ),
    `reception SIGKILLs: ${f.receptionKills}`,
    '',
    'reception answers seen by buyers (status code: count)',
    ...Object.entries(f.answers)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `  ${k.padEnd(28)} ${n}`),
    '',
    `${mark(v.everyBuyerVerified)} every buyer holds its file with the right sha-256: ${f.buyers.verified}/${f.buyers.total} (wrong ${f.buyers.wrongDigest}, missing ${f.buyers.missing}, reruns ${f.buyers.reruns})`,
    `${mark(v.capacityHeld)} no content server served more clients than its capacity`,
    `${mark(v.no5xxBeyond503)} no reception 5xx other than 503 busy / store_unavailable: ${f.badAnswers} other`,
  ];
  return lines.join('\n');
}
