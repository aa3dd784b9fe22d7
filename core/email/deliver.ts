/**
 * Email deliveries from the notification outbox. Flow of one item:
 *
 *   claimNext('email') -> look up the address -> render (core/email/render.ts)
 *   -> attach the invoice PDF (payment_confirmed) -> Mailer.send -> markSent
 *
 * Claims are atomic (core/notifications.ts), so several jobs processes never
 * send the same slot while its lease holds. How a failed send is settled:
 *
 * - SMTP 5xx refusing the recipient (550 no such mailbox): the slot fails for
 *   good and the account's email is marked failing, so notify() leaves email
 *   out until the customer verifies an email again (core/accounts/email.ts).
 * - SMTP 5xx refusing the message itself (after DATA): the slot fails for good.
 * - Anything else (4xx, refused or dropped connections, timeouts, our own
 *   login failing): retried with the outbox's backoff, up to its attempts.
 *
 * Admin alerts go to `adminEmails` (none by default: the slot is skipped).
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { MailAttachment, Mailer } from '../../lib/mailer.js';
import { Account } from '../../models/account.js';
import { getInvoiceByPaymentReference } from '../invoices.js';
import { renderInvoicePdf } from '../invoice-pdf.js';
import {
  claimNext,
  markFailed,
  markSent,
  markSkipped,
  type ClaimedDelivery,
  type RetryPolicy,
} from '../notifications.js';
import { renderEmail, type EmailRenderOptions } from './render.js';
import { canUnsubscribe, type UnsubscribeLinks } from './unsubscribe.js';

export interface EmailDelivererOptions {
  mailer: Mailer;
  clock: Clock;
  logger: Logger;
  /** Names this worker in claimed slots; unique per process and loop. */
  workerId: string;
  /** Links in the mails (PUBLIC_URL, TELEGRAM_BOT_USERNAME). */
  render?: EmailRenderOptions;
  /**
   * Signs one-click unsubscribe links (core/email/unsubscribe.ts), served at
   * `${render.publicUrl}/account/unsubscribe`; without it mails carry none.
   */
  unsubscribe?: UnsubscribeLinks;
  /** Where admin alerts go. Default none: admin alerts are skipped on email. */
  adminEmails?: readonly string[];
  /** How long a claim holds before another worker may take it (default 2 min, above the SMTP timeouts). */
  leaseMs?: number;
  /** Attempts and backoff; default DEFAULT_RETRY_POLICY. */
  policy?: RetryPolicy;
}

/** What a failed send means for the slot and the address. */
export type SmtpFailure = 'address_refused' | 'message_refused' | 'temporary';

interface SmtpErrorFields {
  code?: unknown;
  responseCode?: unknown;
  command?: unknown;
  rejected?: unknown;
}

/**
 * Reads nodemailer's error: `responseCode` is the SMTP reply code; a refused
 * recipient comes as `code: 'EENVELOPE'` with the address in `rejected`.
 * See https://nodemailer.com/smtp/#errors and RFC 5321 section 4.2.1 (5yz is
 * permanent, 4yz transient).
 */
export function classifySmtpError(error: unknown): SmtpFailure {
  if (typeof error !== 'object' || error === null) return 'temporary';
  const { code, responseCode, command, rejected } = error as SmtpErrorFields;
  if (typeof responseCode !== 'number' || responseCode < 500 || responseCode >= 600) {
    return 'temporary';
  }
  if (code === 'EENVELOPE' && Array.isArray(rejected) && rejected.length > 0) {
    return 'address_refused';
  }
  if (code === 'EMESSAGE' || (typeof command === 'string' && /^DATA\b/i.test(command))) {
    return 'message_refused';
  }
  // A 5xx for MAIL FROM or AUTH is our configuration, not this message: retry (bounded).
  return 'temporary';
}

/**
 * The account's address was refused for good: later notifications skip email
 * until an email is verified again. Only the address that was refused is
 * marked, so a change made meanwhile is not.
 */
export async function markEmailFailing(
  accountId: string,
  address: string,
  reason: string,
  { clock }: { clock: Clock },
): Promise<boolean> {
  const result = await Account.updateOne(
    { _id: accountId, email: address, emailFailingSince: { $exists: false } },
    { $set: { emailFailingSince: clock.now(), emailFailingReason: reason.slice(0, 500) } },
  );
  return result.modifiedCount === 1;
}

export class EmailDeliverer {
  private readonly log: Logger;

  constructor(private readonly options: EmailDelivererOptions) {
    this.log = options.logger.child({ channel: 'email', workerId: options.workerId });
  }

  /** Claims and settles one due email slot; false when nothing was due. */
  async deliverOnce(): Promise<boolean> {
    const { clock, workerId } = this.options;
    const claimed = await claimNext('email', {
      workerId,
      clock,
      leaseMs: this.options.leaseMs ?? 120_000,
      ...(this.options.policy ? { policy: this.options.policy } : {}),
    });
    if (!claimed) return false;
    let to: string | null = null;
    try {
      to = await this.recipientOf(claimed);
      if (to === null) return true;
      await this.send(claimed, to);
      await markSent(claimed.itemId, 'email', { clock, workerId });
      this.log.info({ itemId: claimed.itemId, event: claimed.event }, 'email.sent');
    } catch (error) {
      await this.failed(claimed, to, error);
    }
    return true;
  }

  /** The address to send to, or null after skipping the slot (with the reason). */
  private async recipientOf(claimed: ClaimedDelivery): Promise<string | null> {
    if (claimed.audience === 'admins') {
      const admins = (this.options.adminEmails ?? []).filter((address) => address.trim() !== '');
      if (admins.length > 0) return admins.join(', ');
      return this.skip(claimed, 'no admin email configured');
    }
    const account = claimed.accountId
      ? await Account.findById(claimed.accountId, {
          email: 1,
          status: 1,
          emailFailingSince: 1,
        }).lean()
      : null;
    if (!account || account.status === 'deleted') return this.skip(claimed, 'account deleted');
    if (!account.email) return this.skip(claimed, 'the account has no email');
    if (account.emailFailingSince) {
      return this.skip(claimed, 'the mail server refused this address; waiting for a new one');
    }
    return account.email;
  }

  private async skip(claimed: ClaimedDelivery, reason: string): Promise<null> {
    await markSkipped(claimed.itemId, 'email', reason, {
      clock: this.options.clock,
      workerId: this.options.workerId,
    });
    this.log.info({ itemId: claimed.itemId, event: claimed.event, reason }, 'email.skipped');
    return null;
  }

  private async send(claimed: ClaimedDelivery, to: string): Promise<void> {
    const { invoiceNumber, attachments } = await this.invoiceOf(claimed);
    const unsubscribeUrl = this.unsubscribeUrlOf(claimed);
    const mail = renderEmail(
      { event: claimed.event, data: claimed.data, invoiceNumber, unsubscribeUrl },
      this.options.render,
    );
    await this.options.mailer.send({
      to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      ...(attachments.length > 0 ? { attachments } : {}),
      // RFC 8058: mail clients show "Unsubscribe" and POST to the link.
      ...(unsubscribeUrl
        ? {
            headers: {
              'List-Unsubscribe': `<${unsubscribeUrl}>`,
              'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
            },
          }
        : {}),
    });
  }

  private unsubscribeUrlOf(claimed: ClaimedDelivery): string | undefined {
    const links = this.options.unsubscribe;
    const base = this.options.render?.publicUrl?.trim().replace(/\/$/, '');
    if (!links || !base || claimed.audience !== 'customer' || !claimed.accountId) return undefined;
    if (!canUnsubscribe(claimed.event)) return undefined;
    const token = links.token(claimed.accountId, claimed.event);
    return `${base}/account/unsubscribe?token=${encodeURIComponent(token)}`;
  }

  /** A confirmed payment comes with its invoice, once the invoice is issued. */
  private async invoiceOf(
    claimed: ClaimedDelivery,
  ): Promise<{ invoiceNumber?: string; attachments: MailAttachment[] }> {
    const reference = claimed.data.reference;
    if (claimed.event !== 'payment_confirmed' || typeof reference !== 'string') {
      return { attachments: [] };
    }
    const invoice = await getInvoiceByPaymentReference(reference);
    if (!invoice) return { attachments: [] };
    return {
      invoiceNumber: invoice.number,
      attachments: [
        {
          filename: `${invoice.number}.pdf`,
          content: await renderInvoicePdf(invoice),
          contentType: 'application/pdf',
        },
      ],
    };
  }

  private async failed(claimed: ClaimedDelivery, to: string | null, error: unknown): Promise<void> {
    const { clock, workerId } = this.options;
    const failure = classifySmtpError(error);
    if (failure === 'address_refused' && claimed.audience === 'customer' && claimed.accountId) {
      const reason = error instanceof Error ? error.message : String(error);
      if (to !== null) await markEmailFailing(claimed.accountId, to, reason, { clock });
    }
    const status = await markFailed(claimed.itemId, 'email', error, {
      clock,
      workerId,
      retryable: failure === 'temporary',
      ...(this.options.policy ? { policy: this.options.policy } : {}),
    });
    this.log.warn(
      { err: error, itemId: claimed.itemId, event: claimed.event, failure, status },
      failure === 'address_refused' ? 'email.address_refused' : 'email.delivery_failed',
    );
  }
}
