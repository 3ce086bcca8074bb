/**
 * Loads the deployment file (CONTRACT §2): read, parse YAML (JSON is YAML), expand `${NAME}` from
 * the environment, validate against the schema, and resolve relative paths against the file's
 * folder. Every problem becomes a `ConfigError` whose lines name the key path and the reason; the
 * CLI turns it into exit code 2. Nothing here ever lets a stack trace reach the user.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { type Config, deploymentSchema } from './schema.js';

export interface LoadOptions {
  /** Environment for `${NAME}` expansion; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Folder that relative paths resolve against; defaults to the file's folder. */
  baseDir?: string;
  /**
   * Whose item roots must exist: every server's (`config check`, `up`), one server's (`content
   * --id`), or none (a reception alone need not see the content servers' disks).
   */
  checkRoots?: 'all' | 'none' | { serverId: string };
}

export function loadConfigFile(file: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    ]);
  }
  return parseConfig(text, { baseDir: path.dirname(path.resolve(file)), ...options });
}

/** Parses deployment-file text, or an already-parsed object (the built-in example deployment). */
export function parseConfig(source: string | unknown, options: LoadOptions = {}): Config {
  let raw: unknown = source;
  if (typeof source === 'string') {
    const doc = parseDocument(source, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
    }
    raw = doc.toJS();
  }
  const problems: string[] = [];
  const expanded = expandEnv(raw, options.env ?? process.env, [], problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const result = deploymentSchema.safeParse(expanded ?? {});
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues));

  const config = resolvePaths(result.data, options.baseDir ?? process.cwd());
  checkRoots(config, options.checkRoots ?? 'none');
  return config;
}

/** Replaces every `${NAME}` inside string values; an unset variable is an error naming the key. */
function expandEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  at: (string | number)[],
  problems: string[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${formatPath(at)}: environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...at, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, [...at, k], problems)]),
    );
  }
  return value;
}

export function formatPath(at: readonly PropertyKey[]): string {
  if (at.length === 0) return '(top level)';
  let out = '';
  for (const part of at) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${formatPath([...issue.path, key])}: unknown key`);
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type') {
      const received = /received (\w+)/.exec(issue.message)?.[1];
      message =
        received === 'undefined'
          ? `is required (${issue.expected})`
          : `must be ${issue.expected}${received ? `, got ${received}` : ''}`;
    } else if (issue.code === 'too_small' && issue.origin === 'number') {
      message = `must be ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    } else if (issue.code === 'too_big' && issue.origin === 'number') {
      message = `must be ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    } else if (issue.code === 'invalid_value') {
      message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    lines.push(`${formatPath(issue.path)}: ${message}`);
  }
  return lines;
}

function resolvePaths(config: Config, baseDir: string): Config {
  const store = config.reception.store.startsWith('sqlite:')
    ? `sqlite:${path.resolve(baseDir, config.reception.store.slice('sqlite:'.length))}`
    : config.reception.store;
  // TLS files, like the roots, are relative to the deployment file's folder.
  const tls = <T extends { cert: string; key: string } | null>(t: T): T =>
    (t && { cert: path.resolve(baseDir, t.cert), key: path.resolve(baseDir, t.key) }) as T;
  return {
    ...config,
    reception: {
      ...config.reception,
      store,
      tls: tls(config.reception.tls),
      ...(config.reception.grants
        ? {
            grants: {
              ...config.reception.grants,
              issuers: config.reception.grants.issuers.map((i) =>
                i.jwks !== undefined ? { ...i, jwks: path.resolve(baseDir, i.jwks) } : i,
              ),
            },
          }
        : {}),
    },
    contentServers: config.contentServers.map((s) => ({
      ...s,
      root: path.resolve(baseDir, s.root),
      tls: tls(s.tls),
    })),
  };
}

function checkRoots(config: Config, which: LoadOptions['checkRoots']): void {
  if (which === 'none') return;
  const problems: string[] = [];
  config.contentServers.forEach((server, i) => {
    if (typeof which === 'object' && which.serverId !== server.id) return;
    if (!existsSync(server.root)) problems.push(`contentServers[${i}].root: ${server.root} does not exist`);
    else if (!statSync(server.root).isDirectory())
      problems.push(`contentServers[${i}].root: ${server.root} is not a folder`);
  });
  if (typeof which === 'object' && !config.contentServers.some((s) => s.id === which.serverId)) {
    problems.push(`contentServers: no content server has id ${JSON.stringify(which.serverId)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
