/**
 * A running deployment for the people's-side end-to-end tests (`get-*`, `browser-*`, `rush-*`):
 * the deployment from `test/helpers/deployment.ts`, its items written (with an mtime in the past,
 * so the content servers' catalogs take them at once), one real `rushgate content` process per
 * server and one `rushgate reception`, and waits until the reception takes orders for every item
 * on every server that holds it. `stop()` ends every process and removes the folder.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import {
  type DeploymentOptions,
  makeDeployment,
  type TestDeployment,
  withPortRetry,
} from '../helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../helpers/proc.js';
import { waitUntil } from '../helpers/wait.js';

export interface StackOptions extends DeploymentOptions {
  /** Item path → content, written to every server, or to the servers listed in `on`. */
  items: Record<string, { content: Buffer | string; on?: string[] }>;
}

export interface Stack {
  dep: TestDeployment;
  reception: Proc;
  contents: Map<string, Proc>;
  /** The reception URL of an item. */
  url(item: string): string;
  internalUrl: string;
  /** The file of an item on one server. */
  fileOf(item: string, serverId: string): string;
  /** Prometheus text of the reception. */
  metrics(): Promise<string>;
  /** Every process's output, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

const PAST = new Date(Date.now() - 3600_000);

export function startStack(opts: StackOptions): Promise<Stack> {
  return withPortRetry(() => startStackOnce(opts));
}

async function startStackOnce(opts: StackOptions): Promise<Stack> {
  const dep = await makeDeployment({
    ...opts,
    reception: {
      // Lenient health checks: on a busy CI machine a slow load report must not mark a server down.
      monitor: { intervalMs: 200, timeoutMs: 3000, failuresBeforeDown: 5 },
      rateLimit: null,
      ...(opts.reception ?? {}),
    },
  });
  const fileOf = (item: string, serverId: string) => {
    const server = dep.config.contentServers.find((s) => s.id === serverId);
    if (!server) throw new Error(`no server ${serverId}`);
    return path.join(server.root, ...item.split('/').filter(Boolean));
  };
  for (const [item, spec] of Object.entries(opts.items)) {
    const on = spec.on ?? dep.config.contentServers.map((s) => s.id);
    for (const id of on) {
      dep.writeItem(item, spec.content, id);
      utimesSync(fileOf(item, id), PAST, PAST);
    }
  }
  const contents = new Map<string, Proc>();
  for (const s of dep.config.contentServers) {
    contents.set(
      s.id,
      startRushgate(['content', '--config', dep.configPath, '--id', s.id, '--grace-seconds', '1']),
    );
  }
  const reception = startRushgate(['reception', '--config', dep.configPath]);
  const publicUrl = dep.config.reception.publicUrl;
  const internalUrl = dep.config.reception.internalUrl;
  const logs = () =>
    [
      `--- reception\n${reception.output()}`,
      ...[...contents].map(([id, p]) => `--- content ${id}\n${p.output()}`),
    ].join('\n');
  const stack: Stack = {
    dep,
    reception,
    contents,
    url: (item) => `${publicUrl}${item}`,
    internalUrl,
    fileOf,
    async metrics() {
      const res = await fetch(`${internalUrl}/metrics`);
      return res.text();
    },
    logs,
    async stop() {
      await Promise.all([reception.kill(), ...[...contents.values()].map((p) => p.kill())]);
      dep.cleanup();
    },
  };
  try {
    await waitForHttp(`${publicUrl}/healthz`, { proc: reception, timeoutMs: 30_000 });
    const ids = dep.config.contentServers.map((s) => s.id);
    await waitUntil(
      async () => {
        const text = await stack.metrics();
        return ids.every((id) => new RegExp(`rushgate_reception_server_up\\{server="${id}"\\} 1`).test(text));
      },
      30_000,
      'every content server up',
    );
    for (const item of Object.keys(opts.items)) await waitForItem(`${publicUrl}${item}`);
  } catch (err) {
    const out = logs();
    await stack.stop();
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  return stack;
}

/** Polls with `HEAD` until the reception knows an item: a `GET` would take a ticket. */
export function waitForItem(url: string, timeoutMs = 30_000): Promise<void> {
  return waitUntil(
    async () => (await fetch(url, { method: 'HEAD', redirect: 'manual' })).status === 200,
    timeoutMs,
    `HEAD ${url} → 200`,
  );
}

export { waitUntil };

/** Changes bytes of an item in place, keeping its size, inode and mtime: disk corruption the catalog cannot see. */
export function corruptInPlace(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    const junk = Buffer.alloc(4096, 0x5a);
    writeSync(fd, junk, 0, junk.length, 1000);
  } finally {
    closeSync(fd);
  }
  utimesSync(file, PAST, PAST);
}

/** A metric's value from Prometheus text, or 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[3] ?? '').split(',');
    if (want.every((w) => have.includes(w))) {
      total += Number(m[4]);
      found = true;
    }
  }
  return found ? total : 0;
}

export function readJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '') as Record<string, unknown>;
}

export function readSidecarOf(file: string): { orderId: string; ticket?: { server: string } } {
  return JSON.parse(readFileSync(`${file}.part.json`, 'utf8')) as {
    orderId: string;
    ticket?: { server: string };
  };
}

export interface HeldSlot {
  holder: Proc;
  /** Lets the holder finish its download; resolves with its exit code. */
  release(): Promise<number | string>;
}

/**
 * Takes a content server slot with a real `rushgate get` of `item` and freezes it (SIGSTOP) once its
 * transfer has begun: the slot stays taken, with no timing involved, until `release()`. The item
 * must be much larger than loopback socket buffers hold (tens of MiB): a server counts a byte as
 * delivered once written to the connection, so a small item would free the slot at once.
 */
export async function holdSlot(stack: Stack, item: string, cwd: string): Promise<HeldSlot> {
  mkdirSync(cwd, { recursive: true });
  const holder = startRushgate(['get', stack.url(item), '--limit-rate', '16M', '-o', 'held.bin'], { cwd });
  const part = path.join(cwd, 'held.bin.part');
  await waitUntil(
    () => existsSync(part) && statSync(part).size > 0,
    30_000,
    'the holder to start its transfer',
  );
  holder.child.kill('SIGSTOP');
  return {
    holder,
    release() {
      holder.child.kill('SIGCONT');
      return holder.exited;
    },
  };
}

/** The command lines of a process's children, by pid. */
export function childrenOf(pid: number): Map<number, string> {
  let text = '';
  try {
    text = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    // ps exits 1 when there are none.
  }
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

/** Whether a process is still alive (a zombie of an exited child counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return state !== '' && !state.startsWith('Z');
  } catch {
    return false;
  }
}
