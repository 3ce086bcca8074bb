/**
 * The process supervisor of `rushgate up`: one child process per role (`rushgate reception`,
 * `rushgate content --id X`), so that a crash stays contained; a child that exits on its own is
 * restarted after a backoff that grows with repeated crashes and resets after a healthy run. Each
 * line a child prints is passed on prefixed by its role. `stop()` is the graceful shutdown:
 * SIGTERM to every child (each drains on its own), SIGKILL for any still running after the grace
 * period. `restartDelayMs` is the pure backoff rule.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface RoleSpec {
  /** Shown as the log prefix, e.g. `reception`, `content a`. */
  name: string;
  /** Arguments after the CLI path, e.g. `['content', '--config', F, '--id', 'a']`. */
  args: string[];
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** A child that ran this long before crashing starts the backoff over. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

/** Delay before the `crashes`-th restart in a row (1-based): initial, ×2 each time, capped. Pure. */
export function restartDelayMs(crashes: number, backoff: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, crashes - 1));
}

export interface SupervisorOptions {
  roles: RoleSpec[];
  /** The program and leading arguments that run the CLI: `[process.execPath, ...execArgv, cliPath]`. */
  command: string[];
  /** A child's output line, already prefixed. */
  out: (line: string) => void;
  err: (line: string) => void;
  /** The supervisor's own messages. */
  say: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  backoff?: Backoff;
  now?: () => number;
}

interface Slot {
  role: RoleSpec;
  child?: ChildProcess;
  startedAt: number;
  crashes: number;
  restarts: number;
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

export interface RoleStatus {
  name: string;
  pid: number | undefined;
  restarts: number;
}

export interface Supervisor {
  start(): void;
  /** Graceful shutdown; resolves when every child has exited. */
  stop(graceMs: number): Promise<void>;
  status(): RoleStatus[];
}

export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const now = opts.now ?? Date.now;
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  const width = Math.max(...opts.roles.map((r) => r.name.length));
  const slots: Slot[] = opts.roles.map((role) => ({ role, startedAt: 0, crashes: 0, restarts: 0 }));
  let stopping = false;

  const [program, ...leading] = opts.command;
  if (!program) throw new Error('supervisor: empty command');

  function launch(slot: Slot): void {
    const prefix = `[${slot.role.name.padEnd(width)}]`;
    const child = spawn(program!, [...leading, ...slot.role.args], {
      env: opts.env ?? process.env,
      // The IPC channel is only a lifeline: `orphan-guard.ts` stops the child when it closes.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // A process group of its own: a terminal's Ctrl-C (sent to the whole foreground group) then
      // reaches only the supervisor, which stops each child with ONE SIGTERM. Without it every
      // child got the SIGINT and then the supervisor's SIGTERM, took that as a second signal, and
      // cut its graceful shutdown short.
      detached: true,
    });
    slot.child = child;
    slot.startedAt = now();
    createInterface({ input: child.stdout! }).on('line', (line) => opts.out(`${prefix} ${line}`));
    createInterface({ input: child.stderr! }).on('line', (line) => opts.err(`${prefix} ${line}`));
    slot.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        opts.say(`${slot.role.name} could not start: ${err.message}`);
      });
      child.once('close', (code, signal) => {
        slot.child = undefined;
        resolve();
        if (stopping) return;
        // A restart is decided later than the exit itself, so a Ctrl-C that reached the children
        // and the supervisor together never restarts a child that was meant to stop.
        if (now() - slot.startedAt >= backoff.resetAfterMs) slot.crashes = 0;
        slot.crashes++;
        const delay = restartDelayMs(slot.crashes, backoff);
        opts.say(
          `${slot.role.name} exited (${signal ?? `code ${code}`}); restarting in ${(delay / 1000).toFixed(1)} s`,
        );
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          if (stopping) return;
          slot.restarts++;
          launch(slot);
        }, delay);
      });
    });
  }

  return {
    start() {
      for (const slot of slots) launch(slot);
    },
    async stop(graceMs) {
      stopping = true;
      for (const slot of slots) {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.child?.kill('SIGTERM');
      }
      const all = Promise.all(slots.map((s) => (s.child ? s.exited : undefined)));
      let killTimer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        killTimer = setTimeout(() => resolve('late'), graceMs);
      });
      if ((await Promise.race([all, late])) === 'late') {
        for (const slot of slots) {
          if (slot.child) {
            opts.say(`${slot.role.name} did not stop within ${Math.round(graceMs / 1000)} s; killing it`);
            slot.child.kill('SIGKILL');
          }
        }
        await all;
      }
      clearTimeout(killTimer);
    },
    status() {
      return slots.map((s) => ({ name: s.role.name, pid: s.child?.pid, restarts: s.restarts }));
    },
  };
}
