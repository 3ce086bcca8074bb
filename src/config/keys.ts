/**
 * Turns the configured secrets into what the rest of the code uses: the ticket key ring (first key
 * issues, every key verifies) and a masked copy of the config for printing. Pure.
 */
import { randomBytes } from 'node:crypto';
import type { TicketKey } from '../tickets/types.js';
import type { Config } from './schema.js';

export function keyRingOf(config: Config): TicketKey[] {
  return config.secrets.ticketKeys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64url') }));
}

export function newTicketKey(): string {
  return randomBytes(32).toString('base64url');
}

export function newInternalToken(): string {
  return randomBytes(24).toString('base64url');
}

const MASK = '********';

/** Query parameters whose values are secrets wherever they appear in a URL. */
const SECRET_PARAMS = /([?&](?:password|pass|passwd|pwd|secret|token|auth|key|apikey|api_key)=)[^&#]*/gi;

/**
 * A URL safe to print or log: the user-info (`user:pw@`) and secret-looking query parameters
 * (`?password=…`) masked. A string that is no URL is masked the same way, textually.
 */
export function maskUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, `//${MASK}@`).replace(SECRET_PARAMS, `$1${MASK}`);
}

/** A copy safe to print: secret values replaced, key ids kept so rotation can be checked. */
export function maskSecrets(config: Config): Config {
  return {
    ...config,
    secrets: {
      ticketKeys: config.secrets.ticketKeys.map((k) => ({ id: k.id, key: MASK })),
      internalToken: MASK,
    },
    reception: {
      ...config.reception,
      store: maskUrl(config.reception.store),
      ...(config.reception.grants
        ? {
            grants: {
              ...config.reception.grants,
              issuers: config.reception.grants.issuers.map((i) =>
                i.secret !== undefined ? { ...i, secret: MASK } : i,
              ),
            },
          }
        : {}),
      ...(config.reception.mail
        ? {
            mail: {
              ...config.reception.mail,
              smtp: maskUrl(config.reception.mail.smtp),
            },
          }
        : {}),
    },
  };
}
