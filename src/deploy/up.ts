/**
 * `rushgate up` (CONTRACT §1): runs a whole deployment on this machine — the reception and every
 * content server of the deployment file, or of the built-in example (`npm start`) — as supervised
 * child processes. Checks every listen port first (a taken one is named, exit 2), prints where
 * everything is and a ready-to-paste `rushgate get` line, says when the reception is ready, and on
 * Ctrl-C / SIGTERM shuts everything down gracefully and resolves (exit 0).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { type Config, urlOfListen } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { hs256Grant } from '../grants/hs256.js';
import { type ReadyDocument, writeReadyFile } from '../util/ready-file.js';
import { DEMO_SHOP_ISS, EXAMPLE_BASE_PORT, EXAMPLE_ITEMS, examplePorts, prepareExample } from './example.js';
import { type ListenSpec, listenSpecs, unavailableListens } from './ports.js';
import { createSupervisor, type RoleSpec } from './supervisor.js';

export interface UpOptions {
  /** A deployment file; without it, the built-in example. */
  config?: string;
  /** The example's data folder (default `RUSHGATE_DATA_DIR` or `./data`). */
  dataDir?: string;
  /** The example's first port (default `RUSHGATE_EXAMPLE_BASE_PORT` or 8080). */
  basePort?: number;
  /** The example over HTTPS, with a self-signed certificate made under the data folder. */
  tls?: boolean;
  /** How long children get to finish transfers on shutdown. */
  graceSeconds: number;
  /** Once every role is ready, write the bound addresses of all of them there (JSON). */
  readyFile?: string;
}

export interface UpDeps {
  /** `[process.execPath, ...execArgv, cliPath]`. */
  command: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Resolves when a shutdown is asked for (first Ctrl-C / SIGTERM). */
  shutdownRequested: Promise<string>;
  /** Resolves on a second Ctrl-C: stop waiting for children. */
  forceRequested: Promise<string>;
}

export async function runUp(opts: UpOptions, deps: UpDeps): Promise<void> {
  const say = (line: string) => deps.stdout(`[up] ${line}`);
  let config: Config;
  let configPath: string;
  let example: { dataDir: string } | undefined;

  if (opts.config) {
    configPath = path.resolve(deps.cwd, opts.config);
    config = loadConfigFile(configPath, { checkRoots: 'all' });
    await refuseTakenPorts(listenSpecs(config));
  } else {
    const dataDir = path.resolve(deps.cwd, opts.dataDir ?? deps.env.RUSHGATE_DATA_DIR ?? './data');
    const basePort = opts.basePort ?? envPort(deps.env.RUSHGATE_EXAMPLE_BASE_PORT) ?? EXAMPLE_BASE_PORT;
    await refuseTakenPorts(exampleListenSpecs(basePort));
    say(`preparing the example deployment in ${dataDir} …`);
    const prepared = prepareExample({ dataDir, basePort, ...(opts.tls ? { tls: true } : {}) });
    for (const file of prepared.created) say(`created ${file}`);
    if (opts.tls) {
      const cert = prepared.config.reception.tls?.cert ?? '';
      say(`HTTPS with a self-signed certificate: rushgate get --cacert ${cert} URL (or --insecure)`);
    }
    config = prepared.config;
    configPath = prepared.configPath;
    example = { dataDir };
  }

  // Each child writes its own ready file; up merges them into `readyFile` once all are there.
  const readyFile = opts.readyFile ? path.resolve(deps.cwd, opts.readyFile) : undefined;
  const childReady = (name: string) => (readyFile ? [`${readyFile}.${name}`] : []);
  for (const f of [...childReady('reception'), ...config.contentServers.flatMap((s) => childReady(s.id))])
    rmSync(f, { force: true });
  const readyArgs = (name: string) => childReady(name).flatMap((f) => ['--ready-file', f]);
  const roles: RoleSpec[] = [
    { name: 'reception', args: ['reception', '--config', configPath, ...readyArgs('reception')] },
    ...config.contentServers.map((s) => ({
      name: `content ${s.id}`,
      args: ['content', '--config', configPath, '--id', s.id, ...readyArgs(s.id)],
    })),
  ];
  const supervisor = createSupervisor({
    roles,
    command: withOrphanGuard(deps.command),
    env: deps.env,
    out: deps.stdout,
    err: deps.stderr,
    say,
  });

  for (const line of banner(config, example)) deps.stdout(line);
  supervisor.start();

  const stopWatching = new AbortController();
  void announceReady(config, stopWatching.signal, say).then(async () => {
    if (readyFile) await mergeReadyFiles(readyFile, config, stopWatching.signal);
  });

  const why = await deps.shutdownRequested;
  stopWatching.abort();
  say(
    `${why}: stopping (transfers in flight get up to ${opts.graceSeconds} s; Ctrl-C again to stop at once) …`,
  );
  const graceful = supervisor.stop(opts.graceSeconds * 1000 + 5000);
  const forced = deps.forceRequested.then(() => supervisor.stop(0));
  await Promise.race([graceful, forced]);
  say('stopped');
}

/** Adds `--import orphan-guard.js` right after the node binary, so children die with the supervisor. */
function withOrphanGuard(command: string[]): string[] {
  const [program, ...rest] = command;
  if (!program) return command;
  return [program, '--import', new URL('./orphan-guard.js', import.meta.url).href, ...rest];
}

function envPort(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n))
    throw new UsageError(`RUSHGATE_EXAMPLE_BASE_PORT must be a port number, got ${value}`);
  return n;
}

function exampleListenSpecs(base: number): ListenSpec[] {
  const ports = examplePorts(base);
  return [
    { name: 'reception.listen', address: `127.0.0.1:${ports.reception.listen}` },
    { name: 'reception.internalListen', address: `127.0.0.1:${ports.reception.internal}` },
    ...ports.servers.flatMap((s, i) => [
      { name: `contentServers[${i}].listen (${s.id})`, address: `127.0.0.1:${s.listen}` },
      { name: `contentServers[${i}].internalListen (${s.id})`, address: `127.0.0.1:${s.internal}` },
    ]),
  ];
}

async function refuseTakenPorts(specs: ListenSpec[]): Promise<void> {
  const problems = await unavailableListens(specs);
  if (problems.length === 0) return;
  throw new UsageError(
    `cannot start: ${problems.map((p) => `port ${p.address} (${p.name}) is ${p.reason}`).join('; ')}`,
  );
}

/** What `up` prints at start: where everything is and what to try. Pure. */
export function banner(
  config: Config,
  example: { dataDir: string } | undefined,
  now: number = Date.now(),
): string[] {
  const r = config.reception;
  const internal = r.internalUrl;
  const item = example ? EXAMPLE_ITEMS.small : '/<item path>';
  const lines = [
    '',
    example ? `rushgate example deployment (data in ${example.dataDir})` : 'rushgate deployment',
    `  reception        ${r.publicUrl}`,
    `  dashboard        ${internal}/dashboard`,
    `  metrics          ${internal}/metrics`,
    ...config.contentServers.map(
      (s) => `  content ${s.id.padEnd(8)} ${s.publicUrl}  (capacity ${s.capacity})`,
    ),
    '',
    'Try:',
    `  npx rushgate get ${r.publicUrl}${item}`,
  ];
  if (example) {
    lines.push(
      `  npx rushgate get ${r.publicUrl}${EXAMPLE_ITEMS.large}`,
      `  npx rushgate rush ${r.publicUrl}${EXAMPLE_ITEMS.large} --clients 20 --concurrency 20`,
      `  open ${r.publicUrl}${EXAMPLE_ITEMS.large} in a browser during a rush to see the waiting page`,
    );
    const shop = r.grants?.issuers.find((i) => i.iss === DEMO_SHOP_ISS && i.secret !== undefined);
    if (shop?.secret !== undefined) {
      // A grant as the demo shop's checkout would sign it (CONTRACT §7): a week, five downloads.
      const iat = Math.floor(now / 1000);
      const grant = hs256Grant(shop.secret, {
        iss: shop.iss,
        sub: `demo-${iat}`,
        items: [EXAMPLE_ITEMS.paid],
        iat,
        exp: iat + 7 * 86400,
        max: 5,
      });
      lines.push(
        '',
        `A paid item (refused without a grant: npx rushgate get ${r.publicUrl}${EXAMPLE_ITEMS.paid}):`,
        `  npx rushgate get ${r.publicUrl}${EXAMPLE_ITEMS.paid} --grant ${grant}`,
        `  open ${r.publicUrl}${EXAMPLE_ITEMS.paid}?grant=${grant} in a browser`,
      );
    }
  }
  lines.push('Ctrl-C stops everything.', '');
  return lines;
}

/** Polls the reception's `/healthz` until it answers 200, then says so once. */
async function announceReady(
  config: Config,
  signal: AbortSignal,
  say: (line: string) => void,
): Promise<void> {
  // Under `tls` the public port speaks HTTPS (a self-signed certificate fetch would refuse): ask
  // the internal port's `/healthz`, which says the same about taking orders.
  const url = config.reception.tls
    ? `${config.reception.internalUrl}/healthz`
    : `${urlOfListen(config.reception.listen)}/healthz`;
  const started = Date.now();
  let warned = false;
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]) });
      await res.arrayBuffer();
      if (res.status === 200) {
        say(`ready: ${config.reception.publicUrl} is taking orders`);
        return;
      }
    } catch {
      // Not listening yet.
    }
    if (!warned && Date.now() - started > 60_000) {
      say(`the reception is not ready after 60 s; still waiting (see its log lines above)`);
      warned = true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits for every child's ready file, then writes the merged one (`--ready-file` of `up`). */
async function mergeReadyFiles(file: string, config: Config, signal: AbortSignal): Promise<void> {
  const names = ['reception', ...config.contentServers.map((s) => s.id)];
  while (!signal.aborted) {
    if (names.every((n) => existsSync(`${file}.${n}`))) {
      const docs = names.map((n) => JSON.parse(readFileSync(`${file}.${n}`, 'utf8')) as ReadyDocument);
      const merged: ReadyDocument = { role: 'up', pid: process.pid, contentServers: {} };
      for (const d of docs) {
        if (d.reception) merged.reception = d.reception;
        Object.assign(merged.contentServers ?? {}, d.contentServers);
      }
      writeReadyFile(file, merged);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
