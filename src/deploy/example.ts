/**
 * The built-in example deployment of `npm start` (`rushgate up` without `--config`, CONTRACT
 * §1): a reception on 127.0.0.1:8080 (internal 9080) and three content servers a/b/c on
 * 8081–8083 (internal 9081–9083) sharing one item root, all under a data folder (`./data`, or
 * `RUSHGATE_DATA_DIR`). The first start generates the ticket key and internal token
 * (`secrets.yaml`, reused afterwards so tickets survive restarts) and the sample items: a small
 * text file and a 256 MiB file of deterministic pseudo-random bytes written in large blocks (a
 * few seconds, not sparse, so its digest means something). Capacities are 2 per server, so even a
 * small `rushgate rush` shows the waiting line. Writes the resolved deployment file
 * (`deployment.yaml`) that the child processes run from.
 */

import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { newInternalToken, newTicketKey } from '../config/keys.js';
import { parseConfig } from '../config/load.js';
import type { Config, DeploymentInput } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { ensureSelfSigned } from './self-signed.js';

export const EXAMPLE_BASE_PORT = 8080;
/** Internal ports sit this far above the public ones (8080 → 9080). */
export const INTERNAL_OFFSET = 1000;
export const EXAMPLE_SERVERS = ['a', 'b', 'c'] as const;
export const EXAMPLE_CAPACITY = 2;
export const LARGE_ITEM_BYTES = 256 * 1024 * 1024;

export const EXAMPLE_ITEMS = {
  small: '/sample/hello.txt',
  large: '/sample/big.bin',
  /** Sold, not free: needs a purchase grant from the demo shop (CONTRACT §7). */
  paid: '/paid/soundtrack.txt',
} as const;

/** The demo shop's grant issuer (HS256, secret in `shop-secret.txt`). */
export const DEMO_SHOP_ISS = 'http://demo-shop.localhost';

const SOUNDTRACK = `You bought this! The reception checked your purchase grant before it gave you a place.

Without a grant this item is refused (401 grant_required); a refunded purchase is revoked with
  npx rushgate revoke --config data/deployment.yaml --purchase <purchase id>
`;

const HELLO = `Hello from rushgate!

This small file is served by the example deployment's content servers. The reception
(http://127.0.0.1:8080) handed your client a permission ticket for the least-loaded of them.
Try the large item next, and a rehearsal rush:

  npx rushgate get http://127.0.0.1:8080/sample/big.bin
  npx rushgate rush http://127.0.0.1:8080/sample/big.bin --clients 20 --concurrency 20
`;

export interface ExamplePorts {
  reception: { listen: number; internal: number };
  servers: { id: string; listen: number; internal: number }[];
}

/** Base 8080: reception 8080/9080, a 8081/9081, b 8082/9082, c 8083/9083. Pure. */
export function examplePorts(base: number): ExamplePorts {
  if (!Number.isInteger(base) || base < 1 || base + INTERNAL_OFFSET + EXAMPLE_SERVERS.length > 65535) {
    throw new UsageError(
      `the example's base port must be between 1 and ${65535 - INTERNAL_OFFSET - EXAMPLE_SERVERS.length}, got ${base}`,
    );
  }
  return {
    reception: { listen: base, internal: base + INTERNAL_OFFSET },
    servers: EXAMPLE_SERVERS.map((id, i) => ({
      id,
      listen: base + 1 + i,
      internal: base + 1 + i + INTERNAL_OFFSET,
    })),
  };
}

const secretsSchema = z.object({
  ticketKeys: z.array(z.object({ id: z.string(), key: z.string() })).min(1),
  internalToken: z.string().min(16),
});
export type ExampleSecrets = z.infer<typeof secretsSchema>;

/** The example's deployment file as data. Pure. */
export function exampleDeployment(
  secrets: ExampleSecrets,
  dataDir: string,
  base: number,
  shopSecret?: string,
  /** HTTPS on the public listeners (`up --tls`): the certificate every one of them serves. */
  tls?: { cert: string; key: string },
): DeploymentInput {
  const ports = examplePorts(base);
  const host = '127.0.0.1';
  const scheme = tls ? 'https' : 'http';
  const root = path.join(dataDir, 'content');
  return {
    secrets,
    reception: {
      listen: `${host}:${ports.reception.listen}`,
      internalListen: `${host}:${ports.reception.internal}`,
      publicUrl: `${scheme}://${host}:${ports.reception.listen}`,
      store: `sqlite:${path.join(dataDir, 'reception.db')}`,
      // Everyone on one machine shares one address: the per-address limit would throttle a demo rush.
      rateLimit: null,
      ...(shopSecret !== undefined
        ? { grants: { required: ['/paid/**'], issuers: [{ iss: DEMO_SHOP_ISS, secret: shopSecret }] } }
        : {}),
      ...(tls ? { tls } : {}),
    },
    contentServers: ports.servers.map((s) => ({
      id: s.id,
      publicUrl: `${scheme}://${host}:${s.listen}`,
      internalUrl: `http://${host}:${s.internal}`,
      listen: `${host}:${s.listen}`,
      internalListen: `${host}:${s.internal}`,
      root,
      capacity: EXAMPLE_CAPACITY,
      ...(tls ? { tls } : {}),
    })),
  };
}

export interface PreparedExample {
  config: Config;
  /** The generated deployment file the roles run from. */
  configPath: string;
  dataDir: string;
  /** What this start had to make (first start: everything). */
  created: string[];
}

/** Makes the data folder ready: secrets, sample items, deployment file. Idempotent. */
export function prepareExample(opts: { dataDir: string; basePort: number; tls?: boolean }): PreparedExample {
  const dataDir = path.resolve(opts.dataDir);
  const created: string[] = [];
  mkdirSync(path.join(dataDir, 'content', 'sample'), { recursive: true });
  mkdirSync(path.join(dataDir, 'content', 'paid'), { recursive: true });

  const secretsFile = path.join(dataDir, 'secrets.yaml');
  let secrets: ExampleSecrets;
  if (existsSync(secretsFile)) {
    const parsed = secretsSchema.safeParse(parse(readFileSync(secretsFile, 'utf8')));
    if (!parsed.success)
      throw new UsageError(`${secretsFile} is not a valid secrets file; delete it to make a new one`);
    secrets = parsed.data;
  } else {
    secrets = { ticketKeys: [{ id: 'k1', key: newTicketKey() }], internalToken: newInternalToken() };
    writePrivate(
      secretsFile,
      `# Generated by rushgate up on first start; reused on every start.\n${stringify(secrets)}`,
    );
    created.push(secretsFile);
  }

  const hello = path.join(dataDir, 'content', ...EXAMPLE_ITEMS.small.split('/').filter(Boolean));
  if (!existsSync(hello)) {
    writeFileSync(hello, HELLO);
    created.push(hello);
  }
  const large = path.join(dataDir, 'content', ...EXAMPLE_ITEMS.large.split('/').filter(Boolean));
  if (!existsSync(large) || statSync(large).size !== LARGE_ITEM_BYTES) {
    writeSampleFile(large, LARGE_ITEM_BYTES);
    created.push(large);
  }

  const paid = path.join(dataDir, 'content', ...EXAMPLE_ITEMS.paid.split('/').filter(Boolean));
  if (!existsSync(paid)) {
    writeFileSync(paid, SOUNDTRACK);
    created.push(paid);
  }
  // The demo shop's HS256 secret, apart from secrets.yaml (whose shape the ticket keys own).
  const shopSecretFile = path.join(dataDir, 'shop-secret.txt');
  if (!existsSync(shopSecretFile)) {
    writePrivate(shopSecretFile, `${newTicketKey()}\n`);
    created.push(shopSecretFile);
  }
  const shopSecret = readFileSync(shopSecretFile, 'utf8').trim();

  let tls: { cert: string; key: string } | undefined;
  if (opts.tls) {
    const made = ensureSelfSigned(dataDir);
    if (made.created) created.push(made.cert);
    tls = { cert: made.cert, key: made.key };
  }
  const deployment = exampleDeployment(secrets, dataDir, opts.basePort, shopSecret, tls);
  const configPath = path.join(dataDir, 'deployment.yaml');
  writePrivate(
    configPath,
    `# The example deployment, regenerated by \`rushgate up\` on every start (edit a copy, not this file).\n${stringify(deployment)}`,
  );
  const config = parseConfig(deployment, { baseDir: dataDir, checkRoots: 'all' });
  return { config, configPath, dataDir, created };
}

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

const BLOCK = 1024 * 1024;
const BLOCKS_PER_WRITE = 8;

/**
 * `size` bytes of deterministic pseudo-random data: one 1 MiB block from SHA-256 in counter mode,
 * repeated with each MiB's index stamped into its first bytes so no two MiB are alike. Written in
 * 8 MiB writes to a hidden temporary name (the catalog skips dot files) and renamed when whole.
 */
export function writeSampleFile(file: string, size: number): void {
  const block = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK / 32; i++) {
    createHash('sha256')
      .update(`rushgate-sample-${i}`)
      .digest()
      .copy(block, i * 32);
  }
  const chunk = Buffer.alloc(BLOCK * BLOCKS_PER_WRITE);
  for (let i = 0; i < BLOCKS_PER_WRITE; i++) block.copy(chunk, i * BLOCK);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    let written = 0;
    let mib = 0;
    while (written < size) {
      const n = Math.min(chunk.length, size - written);
      for (let off = 0; off < n; off += BLOCK) chunk.writeBigUInt64BE(BigInt(mib++), off);
      let done = 0;
      while (done < n) done += writeSync(fd, chunk, done, n - done);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
