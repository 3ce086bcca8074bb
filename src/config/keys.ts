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
      store: config.reception.store.replace(/\/\/([^@/]*)@/, `//${MASK}@`),
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
              smtp: config.reception.mail.smtp.replace(/\/\/([^@/]*)@/, `//${MASK}@`),
            },
          }
        : {}),
    },
  };
}
