/**
 * Builds a throw-away deployment for end-to-end tests: a temp folder, item roots with real files,
 * OS-chosen loopback ports, fresh keys, and a deployment file on disk. Returns the path of the
 * file and the parsed, resolved config, so tests can mint tickets with the same key ring.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import type { Config, DeploymentInput } from '../../src/config/schema.js';
import { isPortClash } from './ports.js';

export interface TestDeployment {
  dir: string;
  configPath: string;
  config: Config;
  /** Writes an item into one server's root (or every root when `serverId` is omitted). */
  writeItem(itemPath: string, content: Buffer | string, serverId?: string): void;
  cleanup(): void;
}

export interface DeploymentOptions {
  servers?: number;
  /** Merged over the generated `reception` section. */
  reception?: Record<string, unknown>;
  /** Merged over each generated content server (by index). */
  server?: (index: number) => Record<string, unknown>;
  /** One root shared by every server instead of one each. */
  sharedRoot?: boolean;
}

/**
 * Ports for a multi-process deployment. The reception and the content servers each need the
 * other's address in one deployment file, so not all of them can start on port 0; these are held
 * together (so they are distinct) and released just before the processes start. Another process
 * may still take one in between: `withPortRetry` then starts the whole deployment again on new
 * ones. Tests of one process use port 0 and the ready file instead.
 */
export async function candidatePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * Runs `setup` (which makes a deployment and starts its processes) again, on new ports, when it
 * failed because a port was taken; `setup` must stop what it started before it throws.
 */
export async function withPortRetry<T>(setup: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await setup();
    } catch (err) {
      if (i >= attempts || !isPortClash(err)) throw err;
    }
  }
}

export async function makeDeployment(options: DeploymentOptions = {}): Promise<TestDeployment> {
  const n = options.servers ?? 3;
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-test-'));
  const ports = await candidatePorts(2 + 2 * n);
  const [recPublic, recInternal] = ports as [number, number];
  const ids = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  const roots = ids.map((id) =>
    options.sharedRoot ? path.join(dir, 'content') : path.join(dir, `content-${id}`),
  );
  for (const r of roots) mkdirSync(r, { recursive: true });
  const deployment: DeploymentInput = {
    secrets: {
      ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
      internalToken: randomBytes(24).toString('base64url'),
    },
    reception: {
      listen: `127.0.0.1:${recPublic}`,
      internalListen: `127.0.0.1:${recInternal}`,
      publicUrl: `http://127.0.0.1:${recPublic}`,
      store: `sqlite:${path.join(dir, 'reception.db')}`,
      ...(options.reception ?? {}),
    } as DeploymentInput['reception'],
    contentServers: ids.map((id, i) => {
      const pub = ports[2 + 2 * i]!;
      const int = ports[3 + 2 * i]!;
      return {
        id,
        publicUrl: `http://127.0.0.1:${pub}`,
        internalUrl: `http://127.0.0.1:${int}`,
        listen: `127.0.0.1:${pub}`,
        internalListen: `127.0.0.1:${int}`,
        root: roots[i]!,
        capacity: 10,
        ...(options.server?.(i) ?? {}),
      };
    }),
  };
  const configPath = path.join(dir, 'deployment.yaml');
  writeFileSync(configPath, stringify(deployment));
  const config = loadConfigFile(configPath);
  return {
    dir,
    configPath,
    config,
    writeItem(itemPath, content, serverId) {
      config.contentServers.forEach((s, i) => {
        if (serverId !== undefined && s.id !== serverId) return;
        if (options.sharedRoot && i > 0) return;
        const file = path.join(s.root, ...itemPath.split('/').filter(Boolean));
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, content);
      });
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
