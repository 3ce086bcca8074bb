/**
 * The deployment file's schema (CONTRACT §2): every key, its type, its bounds and its default.
 * Pure: no file system, no environment. `load.ts` feeds it parsed YAML after `${NAME}` expansion;
 * the resolved `Config` it produces is the one typed object every role (reception, content
 * server, client tools) works from.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

const TICKET_KEY_BYTES = 32;

/** `host:port` or `[v6]:port`; port 0 lets the OS choose (tests). */
export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(value: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  if (m[2] !== undefined && isIP(host) !== 4 && !/^[A-Za-z0-9.-]+$/.test(host)) return undefined;
  return { host, port };
}

const listen = z.string().transform((value, ctx) => {
  const parsed = parseListen(value);
  if (!parsed) {
    ctx.addIssue({
      code: 'custom',
      message: `must be "host:port" or "[ipv6]:port", got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return value;
});

const httpUrl = z.string().refine(
  (value) => {
    try {
      const u = new URL(value);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '';
    } catch {
      return false;
    }
  },
  { message: 'must be an absolute http:// or https:// URL without query or fragment' },
);

/** Strips a trailing slash so that `${publicUrl}/t/...` never doubles it. */
const baseUrl = httpUrl.transform((value) => value.replace(/\/+$/, ''));

const ticketKey = z
  .string()
  .refine(
    (value) => /^[A-Za-z0-9_-]+$/.test(value) && Buffer.from(value, 'base64url').length === TICKET_KEY_BYTES,
    {
      message: `must be the base64url encoding of exactly ${TICKET_KEY_BYTES} bytes (make one with \`rushgate keys new\`)`,
    },
  );

const cidrOrAddress = z.string().refine(
  (value) => {
    try {
      if (value.includes('/')) ipaddr.parseCIDR(value);
      else ipaddr.parse(value);
      return ipaddr.isValid(value.split('/')[0] ?? '');
    } catch {
      return false;
    }
  },
  { message: 'must be an IP address or a CIDR such as 10.0.0.0/8' },
);

/** `tls: {cert, key}` on a public listener (HTTPS); null or absent is plain HTTP. */
const tlsFiles = z
  .strictObject({ cert: z.string().min(1), key: z.string().min(1) })
  .nullable()
  .default(null);

const store = z
  .string()
  .refine((value) => value === 'memory:' || /^sqlite:.+/.test(value) || /^redis:\/\/.+/.test(value), {
    message: 'must be "memory:", "sqlite:PATH" or "redis://host:port/db"',
  });

const seconds = (min: number) => z.number().int().min(min);

const DURATION_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration: a whole number of seconds, or a string such as "90s", "30m", "12h", "7d".
 * Resolves to milliseconds.
 */
const duration = (minMs: number) =>
  z.union([z.number().int(), z.string()]).transform((value, ctx) => {
    let ms: number | undefined;
    if (typeof value === 'number') ms = value * 1000;
    else {
      const m = /^(\d{1,9})\s*([smhd])$/.exec(value.trim());
      if (m) ms = Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    }
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be seconds or a duration such as "90s", "30m", "12h", "7d", got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${minMs / 1000} s` });
      return z.NEVER;
    }
    return ms;
  });

const monitor = z.strictObject({
  intervalMs: z.number().int().min(50).default(500),
  timeoutMs: z.number().int().min(50).default(1000),
  failuresBeforeDown: z.number().int().min(1).default(3),
});

const tickets = z
  .strictObject({
    policy: z.enum(['strict', 'window', 'expiring', 'open']).default('strict'),
    ttlSeconds: seconds(1).default(600),
    startDelaySeconds: seconds(0).default(0),
    // Resolved below: its default depends on the policy.
    bindClientAddress: z.boolean().optional(),
    bindPrefix: z
      .strictObject({
        ipv4: z.number().int().min(0).max(32).default(32),
        ipv6: z.number().int().min(0).max(128).default(64),
      })
      .prefault({}),
    claimSeconds: seconds(1).default(30),
    // While anyone waits in line an unused ticket holds a slot someone is waiting for: it frees
    // its slot after this instead (the lesser of the two counts).
    claimSecondsWhileWaiting: seconds(1).default(2),
    maxTicketsPerOrder: z.number().int().min(1).default(5),
    clockSkewSeconds: seconds(0).default(30),
  })
  .transform(({ bindClientAddress, ...rest }) => ({
    ...rest,
    bindClientAddress: bindClientAddress ?? rest.policy === 'strict',
  }));

const queue = z.strictObject({
  enabled: z.boolean().default(true),
  holdSeconds: seconds(1).default(15),
  maxRetryAfterSeconds: seconds(1).default(30),
  abandonSeconds: seconds(1).default(120),
  // CONTRACT §3: past this many places a newcomer gets 503 `line_full`.
  maxLength: z.number().int().min(1).default(1_000_000),
});

const mail = z.strictObject({
  smtp: z.string().refine((v) => /^smtps?:\/\/.+/.test(v), { message: 'must be an smtp:// or smtps:// URL' }),
  from: z.email({ message: 'must be an e-mail address' }),
});

/** Purchase grants (CONTRACT §7): which items need one, and each issuer's keys. */
const grants = z.strictObject({
  required: z
    .array(z.string().regex(/^\/|^\*\*$/, { message: 'must be an item path glob such as "/paid/**"' }))
    .default(['/paid/**']),
  issuers: z
    .array(
      z
        .strictObject({
          iss: z.string().min(1).max(512),
          jwks: z.string().min(1).optional(),
          secret: z
            .string()
            .refine((v) => Buffer.byteLength(v) >= 32, { message: 'must be at least 32 bytes' })
            .optional(),
        })
        .refine((i) => (i.jwks === undefined) !== (i.secret === undefined), {
          message: 'needs exactly one of "jwks" (a JWK Set file) or "secret" (HS256)',
        }),
    )
    .min(1, { message: 'needs at least one issuer' }),
});

const reception = z
  .strictObject({
    listen: listen.default('127.0.0.1:8080'),
    internalListen: listen.default('127.0.0.1:9080'),
    publicUrl: baseUrl.default('http://127.0.0.1:8080'),
    // Extension (docs/PROTOCOL.md): where content servers send transfer events and `rushgate revoke`
    // calls. Defaults to http:// + internalListen (a wildcard host becomes loopback).
    internalUrl: baseUrl.optional(),
    store: store.default('sqlite:./data/reception.db'),
    trustProxy: z.array(cidrOrAddress).default([]),
    tls: tlsFiles,
    rateLimit: z
      .strictObject({
        perSecond: z.number().positive().default(20),
        burst: z.number().int().min(1).default(60),
      })
      .nullable()
      .prefault({}),
    monitor: monitor.prefault({}),
    allocation: z.strictObject({ tieTolerance: z.number().min(0).max(1).default(0.05) }).prefault({}),
    tickets: tickets.prefault({}),
    queue: queue.prefault({}),
    // Per client address prefix (tickets.bindPrefix), CONTRACT §3 "Fair shares".
    limits: z
      .strictObject({
        ticketsPerClient: z.number().int().min(1).default(8),
        placesPerClient: z.number().int().min(1).default(8),
      })
      .prefault({}),
    // Extension: orders (with their tickets, idempotency keys and e-mail addresses) are purged
    // this long after their last activity; resolved to milliseconds.
    retention: duration(60_000).prefault('7d'),
    mail: mail.optional(),
    grants: grants.optional(),
  })
  .transform(({ internalUrl, ...rest }) => ({
    ...rest,
    internalUrl: internalUrl ?? urlOfListen(rest.internalListen),
  }));

/** The URL that reaches a listen address from this machine: wildcard hosts become loopback. */
export function urlOfListen(value: string): string {
  const parsed = parseListen(value);
  if (!parsed) throw new Error(`bad listen address ${value}`);
  let host = parsed.host;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${parsed.port}`;
}

const contentServer = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'must be 1–64 letters, digits, "_" or "-"' }),
  publicUrl: baseUrl,
  internalUrl: baseUrl,
  listen,
  internalListen: listen,
  root: z.string().min(1).default('./data/content'),
  capacity: z.number().int().min(1).default(50),
  memoryLimitMb: z.number().positive().nullable().default(null),
  distance: z.number().min(0).nullable().default(null),
  connectionsPerTicket: z.number().int().min(1).default(8),
  // Extension (issue 10): most TCP connections the public listener holds at once; null =
  // capacity × connectionsPerTicket + 64 (every client at its cap, and room for refusals).
  maxConnections: z.number().int().min(1).nullable().default(null),
  tls: tlsFiles,
  trustProxy: z.array(cidrOrAddress).default([]),
});

export const deploymentSchema = z
  .strictObject({
    secrets: z.strictObject({
      ticketKeys: z
        .array(z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), key: ticketKey }))
        .min(1, { message: 'needs at least one key' }),
      internalToken: z.string().min(16, { message: 'must be at least 16 characters' }),
    }),
    reception: reception.prefault({}),
    contentServers: z.array(contentServer).min(1, { message: 'needs at least one content server' }),
  })
  .superRefine((cfg, ctx) => {
    const dup = <T>(values: T[], name: (i: number) => (string | number)[], what: string) => {
      const seen = new Map<T, number>();
      values.forEach((v, i) => {
        const first = seen.get(v);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: name(i),
            message: `duplicate ${what} (also at index ${first})`,
          });
        else seen.set(v, i);
      });
    };
    dup(
      cfg.contentServers.map((s) => s.id),
      (i) => ['contentServers', i, 'id'],
      'content server id',
    );
    dup(
      cfg.secrets.ticketKeys.map((k) => k.id),
      (i) => ['secrets', 'ticketKeys', i, 'id'],
      'key id',
    );
  });

export type DeploymentInput = z.input<typeof deploymentSchema>;
export type Config = z.output<typeof deploymentSchema>;
export type ReceptionConfig = Config['reception'];
export type ContentServerConfig = Config['contentServers'][number];
export type TicketSettings = ReceptionConfig['tickets'];
export type TicketPolicy = TicketSettings['policy'];
