/**
 * The ready file (`--ready-file PATH` of `rushgate reception`, `content` and `up`): one JSON
 * document with the addresses a server actually bound, written once it listens. A deployment may
 * say port `0` (let the OS choose); a test harness or a supervisor then reads the real ports here
 * instead of guessing a free one beforehand, which another process could take in between. The file
 * is written to a temporary name and renamed, so a reader never sees half of it.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface ServerAddresses {
  /** `http://host:port` of the public listener. */
  public: string;
  /** `http://host:port` of the internal listener. */
  internal: string;
}

export interface ReadyDocument {
  role: 'reception' | 'content' | 'up';
  pid: number;
  /** The reception's addresses (reception and up). */
  reception?: ServerAddresses;
  /** Content servers' addresses by id (content: its own; up: all of them). */
  contentServers?: Record<string, ServerAddresses>;
}

/** `http://host:port` of a bound socket; a wildcard host becomes loopback. */
export function urlOfAddress(addr: AddressInfo | string | null): string {
  if (!addr || typeof addr === 'string') throw new Error('not listening on a TCP port');
  let host = addr.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${addr.family === 'IPv6' || host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}

export function writeReadyFile(file: string, doc: ReadyDocument): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc)}\n`);
  renameSync(tmp, file);
}
