/**
 * HTTPS on a public listener (CONTRACT §2 `tls`): the certificate and key files are read and
 * checked at start (a bad or missing file is an error naming the key path, so the CLI exits 2),
 * then watched; when either changes the pair is re-read and swapped in with `setSecureContext`,
 * so a renewal (certbot, cert-manager) needs no restart. A pair that does not load at reload —
 * a half-written file, a key that does not match — is logged and the old certificate kept: a
 * botched renewal must not take the shop offline.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { UsageError } from '../errors.js';
import type { Logger } from './log.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** What `https.createServer` needs beside its own options: the pair and the protocol floor. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** TLS 1.2 and 1.3; Node's default ciphers. */
  minVersion: 'TLSv1.2';
}

/**
 * A certificate or key that cannot be used; `key` is the deployment-file path, e.g.
 * `reception.tls.cert`. A UsageError, so every command that meets it at start exits 2.
 */
export class TlsFileError extends UsageError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'TlsFileError';
  }
}

/**
 * Reads the pair and proves it loads (PEM parses, key matches certificate) by building a secure
 * context from it. `keyPath` names the deployment-file entry, e.g. `contentServers[0].tls`.
 */
export function readTls(files: TlsFiles, keyPath: string): TlsMaterial {
  const read = (which: 'cert' | 'key'): Buffer => {
    try {
      return readFileSync(files[which]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new TlsFileError(`${keyPath}.${which}`, `cannot read ${files[which]} (${code})`);
    }
  };
  const material: TlsMaterial = { cert: read('cert'), key: read('key'), minVersion: 'TLSv1.2' };
  try {
    createSecureContext(material);
  } catch (err) {
    // OpenSSL's messages say which half is wrong ("no start line" for a non-PEM key, "key values
    // mismatch" for a key of another certificate); name both files so the operator can check.
    throw new TlsFileError(
      keyPath,
      `${files.cert} / ${files.key} do not make a certificate and its key: ${(err as Error).message}`,
    );
  }
  return material;
}

/** Anything that can swap its certificate: `https.Server` and `tls.Server`. */
export interface SecureContextHolder {
  setSecureContext(options: SecureContextOptions): void;
}

export interface TlsWatcher {
  /** Re-reads now (also what a file change triggers); true when the new pair was taken. */
  reload(): boolean;
  close(): void;
}

/**
 * Watches both files (polling, so a file replaced by rename — how renewals are written — is seen
 * too) and swaps the pair into `server` when they change. A renewal writes two files one after
 * the other; a reload that catches them half-way fails, is logged and retried on the next change,
 * so the pair settles once both are written.
 */
export function watchTls(
  server: SecureContextHolder,
  files: TlsFiles,
  keyPath: string,
  logger: Logger,
  intervalMs = 1000,
): TlsWatcher {
  const reload = (): boolean => {
    try {
      server.setSecureContext(readTls(files, keyPath));
      logger.info({ cert: files.cert }, 'TLS certificate reloaded');
      return true;
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'TLS reload failed; keeping the old certificate');
      return false;
    }
  };
  // watchFile calls back only when the file's stat changed (written, replaced, removed).
  const onChange = () => {
    reload();
  };
  const opts = { persistent: false, interval: intervalMs };
  watchFile(files.cert, opts, onChange);
  watchFile(files.key, opts, onChange);
  return {
    reload,
    close() {
      unwatchFile(files.cert, onChange);
      unwatchFile(files.key, onChange);
    },
  };
}
