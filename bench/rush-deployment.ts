/**
 * What the rush benches (rehearsal.ts, attacked-rush.ts) share: a `rushgate up` deployment that
 * is ready only once every content server is up in the reception's /status (a rush started
 * before that would measure the monitor, not the line), and `rushgate rush --json` run as its own
 * process, as a user would, read back from its last output line.
 * `RUSHGATE_BENCH_PROFILE=DIR`: every process (the reception, the content servers and the rush
 * client) runs with `node --cpu-prof` and writes its profile into DIR when it exits.
 */
import { spawn } from 'node:child_process';
import type { RushReport } from '../src/client/rush-report.js';
import {
  type DeploymentOptions,
  makeDeployment,
  type TestDeployment,
  withPortRetry,
} from '../test/helpers/deployment.js';
import { CLI, type Proc, startRushgate, waitForHttp } from '../test/helpers/proc.js';
import { waitUntil } from '../test/helpers/wait.js';

const PROFILE_DIR = process.env.RUSHGATE_BENCH_PROFILE;
// `up` hands its own node flags to the processes it starts, so one flag profiles them all.
const NODE_ARGS = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];

export interface UpDeployment {
  d: TestDeployment;
  up: Proc;
  /** Stops `rushgate up` and removes the deployment's folder. */
  stop(): Promise<void>;
}

/**
 * Makes a deployment, writes `items` (path → content, into every server's root) and starts
 * `rushgate up` on it, again on new ports when one was taken meanwhile.
 */
export async function startUpDeployment(opts: {
  deployment: DeploymentOptions;
  items: Record<string, Buffer>;
}): Promise<UpDeployment> {
  return withPortRetry(async () => {
    const d = await makeDeployment(opts.deployment);
    for (const [itemPath, content] of Object.entries(opts.items)) d.writeItem(itemPath, content);
    const up = startRushgate(['up', '--config', d.configPath], {
      env: { LOG_LEVEL: 'warn' },
      nodeArgs: NODE_ARGS,
    });
    const stop = async () => {
      await up.kill();
      d.cleanup();
    };
    try {
      await waitForHttp(`${d.config.reception.publicUrl}/healthz`, { proc: up, timeoutMs: 60_000 });
      await everyServerUp(d.config.reception.internalUrl, 60_000);
    } catch (err) {
      // withPortRetry starts again from nothing, so what this attempt started must go first.
      await stop();
      throw err;
    }
    return { d, up, stop };
  });
}

/** Runs `rushgate rush ARGS --json`, killed after `timeoutMs`; resolves with its report. */
export function runRushReport(args: string[], timeoutMs: number): Promise<RushReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, CLI, 'rush', ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      // Only the tail is kept: it is shown when no report came, and a long rush logs a lot.
      err = (err + d.toString()).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      // `--json` promises the report as one object on the last line of stdout.
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as RushReport);
      } catch {
        reject(new Error(`rush exited ${code} without a JSON report:\n${out.slice(-2000)}\n${err}`));
      }
    });
  });
}

/** Waits until the reception at `internalUrl` reports every content server up (throws after `timeoutMs`). */
export function everyServerUp(internalUrl: string, timeoutMs: number): Promise<void> {
  return waitUntil(
    async () => {
      const s = (await (await fetch(`${internalUrl}/status`)).json()) as { servers: { health: string }[] };
      return s.servers.every((x) => x.health === 'up');
    },
    timeoutMs,
    'every content server up',
  );
}
