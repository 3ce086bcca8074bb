/**
 * Ports for tests, without the race of "pick a free port, close it, let another process bind it
 * later" (another test can take it in between; issue 8). In-process servers listen on port 0 and
 * read the port back; processes are started with port 0 and report theirs in a ready file
 * (`--ready-file`); a test that needs a port nobody answers on holds one itself (`holdDeadPort`).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { ReadyDocument } from '../../src/util/ready-file.js';
import { waitUntil } from './wait.js';

export interface HeldPort {
  port: number;
  close(): Promise<void>;
}

/**
 * A loopback port held by this test for as long as it needs: it listens, so nobody else can take
 * it, and resets every connection at once, so a client sees a dead peer (connection reset).
 */
export function holdDeadPort(host = '127.0.0.1'): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const srv: Server = createServer((socket) => socket.resetAndDestroy());
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (!addr || typeof addr !== 'object') return reject(new Error('no port'));
      resolve({ port: addr.port, close: () => new Promise<void>((r) => srv.close(() => r())) });
    });
  });
}

/** Waits for a process's ready file and returns it. */
export async function readReadyFile(file: string, timeoutMs = 30_000): Promise<ReadyDocument> {
  let doc: ReadyDocument | undefined;
  await waitUntil(
    () => {
      try {
        doc = JSON.parse(readFileSync(file, 'utf8')) as ReadyDocument;
        return true;
      } catch {
        return false;
      }
    },
    timeoutMs,
    `ready file ${file}`,
  );
  return doc!;
}

/** Whether an error says a port was taken (a clash the harness answers with new ports). */
export function isPortClash(err: unknown): boolean {
  return /already in use|EADDRINUSE|is in use/.test(String((err as Error)?.message ?? err));
}
