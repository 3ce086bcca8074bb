/**
 * A real deployment for the reception's end-to-end tests: one `rushgate reception` and N
 * `rushgate content` processes (the built CLI) on OS-chosen loopback ports, with real files and
 * the store of the deployment file. `ready()` waits until the reception reports every running
 * content server up, so allocation tests start from a known state. Not a test file itself.
 */
import { request } from 'node:http';
import {
  type DeploymentOptions,
  makeDeployment,
  type TestDeployment,
  withPortRetry,
} from '../helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../helpers/proc.js';
import { waitUntil } from '../helpers/wait.js';

export interface Cluster {
  d: TestDeployment;
  pub: string;
  internal: string;
  token: string;
  reception: Proc;
  content: Map<string, Proc>;
  startReception(): Promise<void>;
  /** Waits until the reception sees these servers (default: all running) up. */
  ready(servers?: string[]): Promise<void>;
  status(): Promise<StatusServer[]>;
  stop(): Promise<void>;
}

export interface StatusServer {
  id: string;
  health: string;
  outstanding: number;
  capacity: number;
}

type ClusterOptions = DeploymentOptions & {
  items: Record<string, Buffer | string>;
  only?: Record<string, string[]>;
};

export function startCluster(options: ClusterOptions): Promise<Cluster> {
  return withPortRetry(() => startClusterOnce(options));
}

async function startClusterOnce(options: ClusterOptions): Promise<Cluster> {
  const d = await makeDeployment(options);
  for (const [path, content] of Object.entries(options.items)) {
    const only = options.only?.[path];
    if (only) for (const id of only) d.writeItem(path, content, id);
    else d.writeItem(path, content);
  }
  const content = new Map<string, Proc>();
  for (const s of d.config.contentServers) {
    content.set(s.id, startRushgate(['content', '--config', d.configPath, '--id', s.id]));
  }
  const cluster: Cluster = {
    d,
    pub: d.config.reception.publicUrl,
    internal: d.config.reception.internalUrl,
    token: d.config.secrets.internalToken,
    reception: startRushgate(['reception', '--config', d.configPath]),
    content,
    async startReception() {
      cluster.reception = startRushgate(['reception', '--config', d.configPath]);
      await cluster.ready();
    },
    async ready(servers) {
      await waitForHttp(`${cluster.pub}/healthz`, { proc: cluster.reception, timeoutMs: 60_000 });
      const want =
        servers ??
        [...content.entries()]
          .filter(([, p]) => p.child.exitCode === null && p.child.signalCode === null)
          .map(([id]) => id);
      await waitUntil(
        async () => {
          const s = await cluster.status();
          return want.every((id) => s.find((x) => x.id === id)?.health === 'up');
        },
        60_000,
        `servers ${want.join(', ')} up`,
      );
    },
    async status() {
      const res = await fetch(`${cluster.internal}/status`);
      return ((await res.json()) as { servers: StatusServer[] }).servers;
    },
    async stop() {
      await Promise.all([cluster.reception.kill(), ...[...content.values()].map((p) => p.kill())]);
      d.cleanup();
    },
  };
  try {
    await cluster.ready();
    // Up is not enough: a server reports its catalog once it has read its items, and an order
    // for an item no report has named yet is 404.
    for (const item of Object.keys(options.items)) {
      await waitUntil(
        async () => (await fetch(`${cluster.pub}${encodeURI(item)}`, { method: 'HEAD' })).status === 200,
        60_000,
        `the reception to know ${item}`,
      );
    }
  } catch (err) {
    const logs = [...content.entries()].map(([id, p]) => `--- content ${id}\n${p.output()}`).join('\n');
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n--- reception\n${cluster.reception.output()}\n${logs}`);
  }
  return cluster;
}

/** The fields of the reception's JSON answers that tests read (a loose union of them). */
export interface ApiJson {
  orderId: string;
  status: string;
  item: string;
  createdAt: string;
  ticket: { id: string; url: string; server: string; notBefore: string; expiresAt: string };
  tickets: { id: string; url: string; server: string; status: string }[];
  position: number;
  estimatedWaitSeconds: number;
  retryAfterSeconds: number;
  queueToken: string;
  error: { code: string; message: string };
  revokedTickets: number;
}

export async function postOrder(
  pub: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: ApiJson; headers: Headers }> {
  const res = await fetch(`${pub}/api/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** A request with the path sent byte for byte (fetch would normalise "/../"). */
export function rawGet(
  base: string,
  rawPath: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
