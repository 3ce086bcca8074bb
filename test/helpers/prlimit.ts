/**
 * `prlimit` (util-linux) for the tests that make SQLite's writes fail for real: a process's file
 * size limit (RLIMIT_FSIZE) lowered so that every write past it fails, then raised again.
 */
import { execFileSync } from 'node:child_process';

export function hasPrlimit(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Sets the soft file size limit of process `pid`, in bytes. */
export function setFsize(pid: number, soft: number | 'unlimited'): void {
  execFileSync('prlimit', ['--pid', String(pid), `--fsize=${soft}:`]);
}
