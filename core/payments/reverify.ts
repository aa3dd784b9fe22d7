/**
 * The safety net under webhooks and the callback page: payments still pending a
 * few minutes after checkout are verified with Paystack again, so a customer who
 * paid while the webhook was lost and who never came back to the callback page
 * is still served. Payments that are paid but whose effects did not all finish
 * (a process died half-way) are resumed. The jobs issue schedules it.
 */
import { Payment } from '../../models/payment.js';
import { fulfilPayment, type FulfilmentOutcome } from './fulfilment.js';
import { resumeRefunds } from './refunds.js';
import type { PaymentsContext } from './context.js';

export interface ReverifyOptions {
  /** Leave payments younger than this to the webhook and the callback. Default: the settings value. */
  olderThanMinutes?: number;
  /** Checkouts older than this are not asked about any more and become `abandoned`. Default 48 h. */
  giveUpAfterHours?: number;
  limit?: number;
}

export interface ReverifyReport {
  checked: number;
  outcomes: Record<FulfilmentOutcome['state'], number>;
  abandoned: number;
  refundsResumed: number;
}

export async function reverifyPendingPayments(
  ctx: PaymentsContext,
  options: ReverifyOptions = {},
): Promise<ReverifyReport> {
  const settings = await ctx.settings.get();
  const now = ctx.clock.now().getTime();
  const olderThanMs =
    (options.olderThanMinutes ?? settings.pendingPaymentReverifyAfterMinutes) * 60_000;
  const giveUpMs = (options.giveUpAfterHours ?? 48) * 3_600_000;
  const report: ReverifyReport = {
    checked: 0,
    outcomes: {
      fulfilled: 0,
      pending: 0,
      failed: 0,
      flagged: 0,
      retry_later: 0,
      unknown_reference: 0,
    },
    abandoned: 0,
    refundsResumed: 0,
  };

  const due = await Payment.find(
    {
      $or: [
        { status: 'pending', openedAt: { $lte: new Date(now - olderThanMs) } },
        { status: 'paid', fulfilledAt: { $exists: false }, needsReviewAt: { $exists: false } },
      ],
    },
    { reference: 1, status: 1, openedAt: 1 },
  )
    .sort({ openedAt: 1 })
    .limit(options.limit ?? 200);

  for (const payment of due) {
    const outcome = await fulfilPayment(ctx, payment.reference);
    report.checked += 1;
    report.outcomes[outcome.state] += 1;
    if (outcome.state === 'pending' && now - payment.openedAt.getTime() > giveUpMs) {
      const changed = await Payment.updateOne(
        { _id: payment._id, status: 'pending' },
        { $set: { status: 'abandoned' }, $unset: { openCheckoutKey: 1 } },
      );
      report.abandoned += changed.modifiedCount;
    }
  }
  report.refundsResumed = await resumeRefunds(ctx);
  return report;
}
