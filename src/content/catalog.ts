/**
 * The catalog: which items this content server holds — every regular file under its root — with
 * each item's size and SHA-256 (for `Repr-Digest` and the reception's load report) and the
 * response headers that never change between requests, computed once here rather than per
 * request. Scanned at start, again whenever `fs.watch` reports a change under the root (debounced)
 * and periodically (a safety net: recursive watching can miss events, e.g. on network file
 * systems), so a new item becomes available without a restart.
 *
 * What is an item (documented in docs/PROTOCOL.md too):
 * - regular files only; sockets, FIFOs and devices are skipped (a FIFO would block a reader);
 * - names starting with "." are skipped, files and folders alike: they are hidden files, editor
 *   and rsync temporaries, and the conventional way to publish atomically is to write `.x.part`
 *   and rename it;
 * - symlinks are followed only when their real path stays inside the root (files and folders;
 *   a folder reached twice is walked once); every item keeps its real path, so the file system is
 *   only ever asked for paths already proven to be inside the root;
 * - a name the item-path rules refuse (backslash, control characters, `..`) is skipped;
 * - after the first scan, a changed file modified less than `settleMs` ago is left for a later
 *   scan: it is probably still being written, and hashing a growing file is wasted work.
 *
 * Hashes are cached by real path + size + mtime + inode, so a rescan only hashes what changed.
 * Small items (≤ `memoryItemBytes`, within `memoryBudgetBytes` in total) are kept in memory, read
 * in the same pass that hashes them: serving them needs no file system call at all, and the bytes
 * served are exactly the bytes hashed.
 */
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { create as contentDisposition } from 'content-disposition';
import { checkItemPath } from '../items/item-path.js';
import type { CatalogEntry } from '../protocol/internal.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';

export interface CatalogItem {
  /** Item path, e.g. `/apps/editor-2.1.dmg`. */
  path: string;
  /** Real absolute path of the file, inside the real root. */
  file: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  /** Lowercase hex. */
  sha256: string;
  /** Strong entity tag derived from the content hash, so it is the same on every content server. */
  etag: string;
  lastModified: string;
  /** `sha-256=:<base64>:` (RFC 9530). */
  reprDigest: string;
  contentDisposition: string;
  /** The whole content, for small items; null when served from disk. */
  body: Buffer | null;
}

export interface CatalogOptions {
  root: string;
  logger: Logger;
  clock: Clock;
  /** Periodic rescan; 0 turns it off. */
  rescanIntervalMs?: number;
  /** Watch the root for changes. */
  watch?: boolean;
  debounceMs?: number;
  settleMs?: number;
  memoryItemBytes?: number;
  memoryBudgetBytes?: number;
  /** Called after every scan, for metrics. */
  onScan?: (info: { items: number; hashedBytes: number; durationMs: number }) => void;
}

export interface Catalog {
  /** Runs the first scan; resolves when it is done. */
  start(): Promise<void>;
  stop(): void;
  readonly ready: boolean;
  lookup(itemPath: string): CatalogItem | undefined;
  /** Changes whenever the set of items or any item's content changes. */
  version(): string;
  /** path, size and sha256 of every item, sorted by path. */
  entries(): CatalogEntry[];
  size(): number;
  /** Requests a scan and resolves once a scan that started after this call has finished. */
  rescan(): Promise<void>;
}

interface Hashed {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  sha256: Buffer;
  body: Buffer | null;
}

interface Found {
  itemPath: string;
  file: string;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
}

const HASH_CHUNK = 1 << 20;
const MAX_DEPTH = 64;

export function buildCatalog(options: CatalogOptions): Catalog {
  const { logger, clock } = options;
  const rescanIntervalMs = options.rescanIntervalMs ?? 30_000;
  const debounceMs = options.debounceMs ?? 200;
  const settleMs = options.settleMs ?? 1000;
  const memoryItemBytes = options.memoryItemBytes ?? 64 * 1024;
  const memoryBudgetBytes = options.memoryBudgetBytes ?? 64 * 1024 * 1024;

  let items = new Map<string, CatalogItem>();
  let entryList: CatalogEntry[] = [];
  let currentVersion = 'empty';
  let ready = false;
  let stopped = false;
  let realRoot = '';
  const cache = new Map<string, Hashed>();

  let watcher: FSWatcher | null = null;
  let debounceTimer: NodeJS.Timeout | null = null;
  let periodicTimer: NodeJS.Timeout | null = null;
  let settleTimer: NodeJS.Timeout | null = null;

  /** A scan loop is running; requests made meanwhile are served by its next round. */
  let looping = false;
  let dirty = false;
  let waiters: (() => void)[] = [];

  function rescan(): Promise<void> {
    if (stopped) return Promise.resolve();
    dirty = true;
    const done = new Promise<void>((resolve) => waiters.push(resolve));
    if (!looping) {
      looping = true;
      void runLoop();
    }
    return done;
  }

  async function runLoop(): Promise<void> {
    while (dirty && !stopped) {
      dirty = false;
      const these = waiters;
      waiters = [];
      try {
        await scanOnce();
      } catch (err) {
        logger.error({ err }, 'catalog scan failed');
      }
      for (const w of these) w();
    }
    looping = false;
    if (stopped) {
      for (const w of waiters) w();
      waiters = [];
    }
  }

  function scheduleRescan(delayMs: number): void {
    if (stopped || debounceTimer) return;
    debounceTimer = setTimeout(() => {
      debounceTimer = null;
      void rescan();
    }, delayMs);
    debounceTimer.unref();
  }

  async function scanOnce(): Promise<void> {
    const started = clock.now();
    const found: Found[] = [];
    const visited = new Set<string>([realRoot]);
    await walk(realRoot, [], visited, found, 0);

    let settling = false;
    let hashedBytes = 0;
    let memoryUsed = 0;
    const next = new Map<string, CatalogItem>();
    const seenFiles = new Set<string>();
    for (const f of found) {
      if (stopped) return;
      let h = cache.get(f.file);
      if (!h || h.size !== f.size || h.mtimeMs !== f.mtimeMs || h.ino !== f.ino || h.dev !== f.dev) {
        const age = clock.now() - f.mtimeMs;
        // The first scan takes everything: at start nothing is known, and waiting would only
        // delay the server's first load report.
        if (ready && age >= 0 && age < settleMs) {
          settling = true;
          continue;
        }
        const keepBody = f.size <= memoryItemBytes && memoryUsed + f.size <= memoryBudgetBytes;
        try {
          h = await hashFile(f, keepBody);
        } catch (err) {
          if (stopped) return;
          logger.warn({ err, file: f.file }, 'catalog: cannot read item, skipped');
          cache.delete(f.file);
          continue;
        }
        hashedBytes += f.size;
        cache.set(f.file, h);
      }
      // The file changed while it was read: leave it for the next scan.
      if (h.size !== f.size || h.mtimeMs !== f.mtimeMs) {
        settling = true;
        continue;
      }
      if (h.body) memoryUsed += h.body.length;
      seenFiles.add(f.file);
      next.set(f.itemPath, itemOf(f, h));
    }
    for (const file of cache.keys()) if (!seenFiles.has(file)) cache.delete(file);

    const list = [...next.values()]
      .map((i) => ({ path: i.path, size: i.size, sha256: i.sha256 }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const version = versionOf(list);
    if (version !== currentVersion) {
      logger.info({ items: list.length, version }, 'catalog updated');
    }
    items = next;
    entryList = list;
    currentVersion = version;
    ready = true;
    options.onScan?.({ items: list.length, hashedBytes, durationMs: clock.now() - started });
    if (settling && !stopped && !settleTimer) {
      settleTimer = setTimeout(() => {
        settleTimer = null;
        void rescan();
      }, settleMs);
      settleTimer.unref();
    }
  }

  async function walk(dir: string, segments: string[], visited: Set<string>, out: Found[], depth: number) {
    if (depth > MAX_DEPTH || stopped) return;
    let dirents: import('node:fs').Dirent[];
    try {
      dirents = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      logger.warn({ err, dir }, 'catalog: cannot list folder, skipped');
      return;
    }
    for (const d of dirents) {
      if (d.name.startsWith('.')) continue;
      const segs = [...segments, d.name];
      const itemPath = `/${segs.join('/')}`;
      if (!checkItemPath(itemPath).ok) {
        logger.debug({ name: d.name, dir }, 'catalog: name is not a valid item path, skipped');
        continue;
      }
      let real = path.join(dir, d.name);
      if (d.isSymbolicLink()) {
        try {
          real = await realpath(real);
        } catch {
          continue; // dangling
        }
        if (!isInside(realRoot, real)) {
          logger.warn({ link: path.join(dir, d.name) }, 'catalog: symlink leaves the root, skipped');
          continue;
        }
      } else if (!d.isFile() && !d.isDirectory()) {
        continue;
      }
      let st: import('node:fs').Stats;
      try {
        st = await stat(real);
      } catch {
        continue; // gone since readdir
      }
      if (st.isDirectory()) {
        if (visited.has(real)) continue;
        visited.add(real);
        await walk(real, segs, visited, out, depth + 1);
      } else if (st.isFile()) {
        out.push({ itemPath, file: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev });
      }
    }
  }

  async function hashFile(f: Found, keepBody: boolean): Promise<Hashed> {
    if (keepBody) {
      const body = await readFile(f.file);
      const st = await stat(f.file);
      // Size from the bytes read: a file that changed meanwhile fails the check in scanOnce.
      return {
        size: body.length,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        dev: st.dev,
        sha256: createHash('sha256').update(body).digest(),
        body,
      };
    }
    const fh = await open(f.file, 'r');
    try {
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(HASH_CHUNK);
      let pos = 0;
      for (;;) {
        if (stopped) throw new Error('catalog stopped');
        const { bytesRead } = await fh.read(buf, 0, HASH_CHUNK, pos);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      const st = await fh.stat();
      // Size from the bytes actually hashed: if the file grew meanwhile, the size check in
      // scanOnce sees the difference.
      return { size: pos, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, sha256: hash.digest(), body: null };
    } finally {
      await fh.close();
    }
  }

  function startWatching(): void {
    if (options.watch === false) return;
    try {
      watcher = watch(realRoot, { recursive: true, persistent: false }, () => scheduleRescan(debounceMs));
      watcher.on('error', (err) => {
        logger.warn({ err }, 'catalog: watching the root failed; relying on periodic rescans');
        watcher?.close();
        watcher = null;
      });
    } catch (err) {
      logger.warn({ err }, 'catalog: cannot watch the root; relying on periodic rescans');
    }
  }

  return {
    async start() {
      realRoot = await realpath(options.root);
      await rescan();
      startWatching();
      if (rescanIntervalMs > 0) {
        periodicTimer = setInterval(() => void rescan(), rescanIntervalMs);
        periodicTimer.unref();
      }
    },
    stop() {
      stopped = true;
      watcher?.close();
      watcher = null;
      for (const t of [debounceTimer, periodicTimer, settleTimer]) if (t) clearTimeout(t);
      debounceTimer = periodicTimer = settleTimer = null;
      for (const w of waiters) w();
      waiters = [];
    },
    get ready() {
      return ready;
    },
    lookup(itemPath) {
      return items.get(itemPath);
    },
    version() {
      return currentVersion;
    },
    entries() {
      return entryList;
    },
    size() {
      return items.size;
    },
    rescan,
  };
}

function isInside(root: string, candidate: string): boolean {
  return candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function itemOf(f: Found, h: Hashed): CatalogItem {
  return {
    path: f.itemPath,
    file: f.file,
    size: h.size,
    mtimeMs: h.mtimeMs,
    dev: h.dev,
    ino: h.ino,
    sha256: h.sha256.toString('hex'),
    etag: `"${h.sha256.toString('base64url')}"`,
    lastModified: new Date(h.mtimeMs).toUTCString(),
    reprDigest: `sha-256=:${h.sha256.toString('base64')}:`,
    contentDisposition: contentDisposition(path.posix.basename(f.itemPath)),
    body: h.body,
  };
}

/** A short, stable fingerprint of the catalog: the same files give the same version everywhere. */
function versionOf(list: readonly CatalogEntry[]): string {
  const hash = createHash('sha256');
  for (const e of list) hash.update(`${e.path}\0${e.size}\0${e.sha256}\n`);
  return hash.digest('hex').slice(0, 16);
}
