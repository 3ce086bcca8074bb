/**
 * A self-signed certificate for the example deployment (`rushgate up --tls`, `npm start -- --tls`):
 * made once with the `openssl` command under `{dataDir}/tls/` and reused on every later start, so
 * a browser or `rushgate get --cacert` that was told to trust it keeps trusting it. Valid for
 * 127.0.0.1 and localhost, a year. Not for production: there, use a real certificate (a self-signed
 * one is its own CA, which is why the same file works as `--cacert`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';

export interface SelfSigned {
  cert: string;
  key: string;
  /** True when this call made them. */
  created: boolean;
}

export function ensureSelfSigned(dataDir: string): SelfSigned {
  const dir = path.join(dataDir, 'tls');
  const cert = path.join(dir, 'self-signed.crt');
  const key = path.join(dir, 'self-signed.key');
  if (existsSync(cert) && existsSync(key)) return { cert, key, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', key, '-out', cert, '-days', '365', '-subj', '/CN=rushgate example'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const why =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the openssl command is not installed' : String(err);
    throw new UsageError(`--tls: cannot make a self-signed certificate in ${dir}: ${why}`);
  }
  return { cert, key, created: true };
}
