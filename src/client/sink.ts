/**
 * Where downloaded bytes go, and the running SHA-256 over all of them. `FileSink` is the `.part`
 * file of `rushgate get`: opening an existing one hashes what it already holds, so a resumed
 * download (a rerun after Ctrl-C or a kill) is checked over every byte, not only the new ones.
 * `DiscardSink` keeps only the count and the hash (`rushgate rush`).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

export interface Sink {
  /** Bytes held; a download resumes from here. */
  readonly length: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Drops every byte held (the item changed, or the server ignored the range). */
  truncate(): Promise<void>;
  /** SHA-256 of the bytes held, lowercase hex. */
  sha256(): string;
  close(): Promise<void>;
}

export class DiscardSink implements Sink {
  #length = 0;
  #hash: Hash = createHash('sha256');
  get length(): number {
    return this.#length;
  }
  async write(chunk: Uint8Array): Promise<void> {
    this.#hash.update(chunk);
    this.#length += chunk.length;
  }
  async truncate(): Promise<void> {
    this.#hash = createHash('sha256');
    this.#length = 0;
  }
  sha256(): string {
    return this.#hash.copy().digest('hex');
  }
  async close(): Promise<void> {}
}

export class FileSink implements Sink {
  #length: number;
  #hash: Hash;
  #handle: FileHandle | undefined;
  readonly path: string;

  private constructor(path: string, handle: FileHandle | undefined, length: number, hash: Hash) {
    this.path = path;
    this.#handle = handle;
    this.#length = length;
    this.#hash = hash;
  }

  /**
   * Continues the file at `path` when it exists, hashing what it already holds; otherwise the file
   * is created by the first write, so that a download that never gets a byte leaves no file.
   */
  static async open(path: string): Promise<FileSink> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return new FileSink(path, undefined, 0, createHash('sha256'));
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const hash = createHash('sha256');
      if (size > 0) {
        for await (const chunk of createReadStream(path, {
          start: 0,
          end: size - 1,
          highWaterMark: 1 << 20,
        })) {
          hash.update(chunk as Buffer);
        }
      }
      return new FileSink(path, handle, size, hash);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  get length(): number {
    return this.#length;
  }

  /** Whether the file exists on disk (it does once a byte was written, or it was continued). */
  get created(): boolean {
    return this.#handle !== undefined;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#handle ??= await open(this.path, 'w+');
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.#handle.write(
        chunk,
        done,
        chunk.length - done,
        this.#length + done,
      );
      done += bytesWritten;
    }
    this.#hash.update(chunk);
    this.#length += chunk.length;
  }

  async truncate(): Promise<void> {
    await this.#handle?.truncate(0);
    this.#hash = createHash('sha256');
    this.#length = 0;
  }

  sha256(): string {
    return this.#hash.copy().digest('hex');
  }

  /** Makes sure the file exists (an empty item still yields a file). */
  async ensureCreated(): Promise<void> {
    this.#handle ??= await open(this.path, 'w+');
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }
}
