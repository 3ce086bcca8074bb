/**
 * Structured logging (pino). One logger per process, created by the CLI command and passed down;
 * no module creates its own. `LOG_LEVEL` overrides the level; tests pass `silent`.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { role: name } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
