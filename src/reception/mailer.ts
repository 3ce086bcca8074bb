/**
 * E-mails the ticket link to a buyer (CONTRACT §3, `email` + `reception.mail`), the seed's remark
 * that the notice dispatcher may answer "via the E-mail system". Delivery is best effort by
 * design: a mail failure is logged and counted, and never fails or delays the order.
 */
import nodemailer from 'nodemailer';
import type { ReceptionConfig } from '../config/schema.js';
import type { Logger } from '../util/log.js';

export interface TicketLinkMail {
  to: string;
  item: string;
  url: string;
  orderId: string;
  expiresAt?: Date;
}

export interface Mailer {
  /** Resolves when the attempt is over; never rejects. */
  sendTicketLink(mail: TicketLinkMail): Promise<void>;
  /** Counts of attempts by outcome, for metrics. */
  readonly stats: { sent: number; failed: number };
  close(): void;
}

export function createMailer(mail: ReceptionConfig['mail'], logger: Logger): Mailer {
  const stats = { sent: 0, failed: 0 };
  if (!mail) {
    return { stats, sendTicketLink: async () => {}, close: () => {} };
  }
  // A pooled transport keeps one SMTP connection warm through a rush instead of one per order.
  const url = new URL(mail.smtp);
  url.searchParams.set('pool', 'true');
  const transport = nodemailer.createTransport(url.toString(), { from: mail.from });
  return {
    stats,
    async sendTicketLink({ to, item, url, orderId, expiresAt }) {
      const until = expiresAt ? `\nThe link is valid until ${expiresAt.toISOString()}.` : '';
      try {
        await transport.sendMail({
          to,
          subject: `Your download: ${item}`,
          text: `Your download of ${item} is ready:\n\n${url}\n${until}\nOrder ${orderId}.\n`,
        });
        stats.sent += 1;
      } catch (err) {
        stats.failed += 1;
        logger.warn({ err: (err as Error).message, orderId }, 'ticket mail failed');
      }
    },
    close() {
      transport.close();
    },
  };
}
