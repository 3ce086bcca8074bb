/**
 * `rushgate revoke --config FILE ORDER_ID`: revokes every ticket of an order on every content
 * server. It asks the reception's internal API, which knows the order's tickets and fans the
 * revocation out to the content servers (docs/PROTOCOL.md).
 */
import type { Command } from 'commander';

export function registerRevokeCommand(program: Command): void {
  program
    .command('revoke')
    .description('revoke every ticket of an order on every content server')
    .requiredOption('--config <file>', 'deployment file (YAML or JSON)')
    .argument('<orderId>', 'the order to revoke')
    .action(async (orderId: string, opts: { config: string }) => {
      const [{ loadConfigFile }, { PATHS }] = await Promise.all([
        import('../../config/load.js'),
        import('../../protocol/internal.js'),
      ]);
      const config = loadConfigFile(opts.config);
      const url = `${config.reception.internalUrl}${PATHS.reception.revokeOrder(orderId)}`;
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${config.secrets.internalToken}` },
          signal: AbortSignal.timeout(10_000),
        });
      } catch (err) {
        throw new Error(
          `cannot reach the reception at ${config.reception.internalUrl}: ${(err as Error).message}`,
        );
      }
      const body = (await res.json().catch(() => ({}))) as {
        revokedTickets?: number;
        error?: { message?: string };
      };
      if (!res.ok) throw new Error(`revoke failed (${res.status}): ${body.error?.message ?? 'no details'}`);
      process.stdout.write(`order ${orderId}: ${body.revokedTickets ?? 0} ticket(s) revoked\n`);
    });
}
