/**
 * `rushgate revoke --config FILE ORDER_ID`: revokes every ticket of an order on every content
 * server. `rushgate revoke --config FILE --purchase SUB [--issuer ISS]`: a refund (CONTRACT §7) —
 * every order made with that purchase's grants is revoked and its grants are refused from then on.
 * Both ask the reception's internal API, which knows the orders and fans the revocations out to
 * the content servers (docs/PROTOCOL.md).
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';

export function registerRevokeCommand(program: Command): void {
  program
    .command('revoke')
    .description('revoke every ticket of an order, or (--purchase) every order of a refunded purchase')
    .requiredOption('--config <file>', 'deployment file (YAML or JSON)')
    .option('--purchase <sub>', "a refunded purchase: the grants' `sub`")
    .option('--issuer <iss>', "the grants' `iss` (default: the only issuer in reception.grants)")
    .argument('[orderId]', 'the order to revoke')
    .action(
      async (orderId: string | undefined, opts: { config: string; purchase?: string; issuer?: string }) => {
        const [{ loadConfigFile }, { PATHS }] = await Promise.all([
          import('../../config/load.js'),
          import('../../protocol/internal.js'),
        ]);
        if ((orderId === undefined) === (opts.purchase === undefined))
          throw new UsageError('give either an order id or --purchase SUB');
        const config = loadConfigFile(opts.config);
        let path: string;
        let body: string | undefined;
        if (opts.purchase !== undefined) {
          const issuers = config.reception.grants?.issuers ?? [];
          const iss = opts.issuer ?? (issuers.length === 1 ? issuers[0]?.iss : undefined);
          if (iss === undefined)
            throw new UsageError('--issuer is needed: the deployment file has no single grant issuer');
          path = PATHS.reception.grantRevocations;
          body = JSON.stringify({ iss, sub: opts.purchase });
        } else {
          path = PATHS.reception.revokeOrder(orderId as string);
        }
        const url = `${config.reception.internalUrl}${path}`;
        let res: Response;
        try {
          res = await fetch(url, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${config.secrets.internalToken}`,
              ...(body ? { 'content-type': 'application/json' } : {}),
            },
            ...(body ? { body } : {}),
            signal: AbortSignal.timeout(10_000),
          });
        } catch (err) {
          throw new Error(
            `cannot reach the reception at ${config.reception.internalUrl}: ${(err as Error).message}`,
          );
        }
        const answer = (await res.json().catch(() => ({}))) as {
          revokedTickets?: number;
          orders?: string[];
          error?: { message?: string };
        };
        if (!res.ok)
          throw new Error(`revoke failed (${res.status}): ${answer.error?.message ?? 'no details'}`);
        if (opts.purchase !== undefined) {
          process.stdout.write(
            `purchase ${opts.purchase}: ${answer.orders?.length ?? 0} order(s), ${answer.revokedTickets ?? 0} ticket(s) revoked; its grants are refused from now on\n`,
          );
        } else {
          process.stdout.write(`order ${orderId}: ${answer.revokedTickets ?? 0} ticket(s) revoked\n`);
        }
      },
    );
}
