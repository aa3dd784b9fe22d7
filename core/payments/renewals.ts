/**
 * Renewals and dunning, one pass over the subscriptions that need it (the
 * jobs role runs it every few minutes; every step is safe to repeat):
 *
 *   active, period over, not set to cancel
 *     -> attempt 0: charge the saved card for the next period (card-or-link.ts)
 *        paid        -> fulfilment renews (renewPeriod): the next period and,
 *                       at the gateway's next connection, a new quota window
 *        not paid    -> past_due with a grace period (settings.graceDays), a
 *                       payment link, and a `payment_failed` notice with it
 *   past_due, grace running
 *     -> attempt n at each dunning offset (settings.dunningOffsetsHours after
 *        the period end): the card again, else a fresh link and notice
 *   past_due, grace over -> expired (access stops)
 *   active and set to cancel, period over -> cancelled
 *   account suspended -> held: no charge, no link, no notice (the service is
 *     off); unsuspending moves a passed period end to that moment
 *     (core/admin/suspension.ts), so the suspended time is not billed
 *
 * Exactly once: each attempt is keyed by (subscription, period end, attempt),
 * in its payment references `ren-<subscription>-<period end ms>-<n>-card|link`;
 * an attempt that has a payment already is not made again. A payment for a
 * period that was renewed meanwhile (a link paid after the card went through
 * on a later attempt) goes to the wallet in fulfilment, never renews twice.
 */
import type { Types } from 'mongoose';
import { isDomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { Payment } from '../../models/payment.js';
import { Subscription, type SubscriptionRecord } from '../../models/subscription.js';
import { notify } from '../notifications.js';
import { priceForRenewal } from '../plans.js';
import {
  cancel,
  expire,
  getLiveSubscription,
  getSubscription,
  listDueForExpiry,
  listDueForRenewal,
  markPastDue,
  startPayg,
} from '../subscriptions.js';
import { chargeCardOrLink } from './card-or-link.js';
import type { PaymentsContext } from './context.js';

export type RenewalOutcome =
  | { subscriptionId: string; state: 'renewed'; reference: string }
  | { subscriptionId: string; state: 'payment_link'; reference: string; attempt: number }
  | { subscriptionId: string; state: 'processing'; reference: string }
  | { subscriptionId: string; state: 'waiting'; attempt: number }
  | { subscriptionId: string; state: 'held'; reason: 'account_suspended' }
  | { subscriptionId: string; state: 'ended'; status: 'expired' | 'cancelled' }
  | { subscriptionId: string; state: 'moved_to_payg'; paygSubscriptionId: string };

/** The history reason that marks a plan ended by its scheduled move to pay as you go. */
export const MOVED_TO_PAYG = 'moved to pay as you go at period end';

const HOUR = 3_600_000;

/** One pass: renew what is due, chase what is past due, end what ran out. */
export async function runRenewals(ctx: PaymentsContext): Promise<RenewalOutcome[]> {
  const now = ctx.clock.now();
  const outcomes: RenewalOutcome[] = [];
  // A move to PAYG that ended the plan but died before PAYG started finishes here.
  for (const sub of await Subscription.find({
    status: 'cancelled',
    scheduledPlanCode: 'payg',
    'history.reason': MOVED_TO_PAYG,
    endedAt: { $gt: new Date(now.getTime() - 7 * 24 * HOUR) },
  }).lean<SubscriptionRecord[]>()) {
    if (await getLiveSubscription(sub.accountId)) continue;
    outcomes.push(await moveToPayg(ctx, sub));
  }
  for (const sub of await listDueForExpiry(now)) {
    const ended = await expire(sub._id, { clock: ctx.clock });
    const status = ended.subscription.status === 'cancelled' ? 'cancelled' : 'expired';
    if (status === 'expired') {
      await notify(
        {
          accountId: String(sub.accountId),
          event: 'expired',
          period: `${String(sub._id)}:${sub.periodEnd?.toISOString() ?? ''}`,
          data: { planCode: sub.planCode, graceEndsAt: sub.graceEndsAt?.toISOString() },
        },
        { clock: ctx.clock },
      );
    }
    outcomes.push({ subscriptionId: String(sub._id), state: 'ended', status });
  }
  const due = [
    ...(await listDueForRenewal(now)),
    ...(await Subscription.find({
      status: 'past_due',
      planKind: 'recurring',
      graceEndsAt: { $gt: now },
    }).lean<SubscriptionRecord[]>()),
  ];
  for (const sub of due) {
    try {
      outcomes.push(await renewOne(ctx, sub._id));
    } catch (error) {
      // One customer's failure (Paystack down, a bad card record) must not stop the others.
      if (!isDomainError(error)) throw error;
      ctx.logger.warn({ err: error, subscriptionId: String(sub._id) }, 'renewal.failed');
    }
  }
  return outcomes;
}

/** The renewal step due now for one subscription (see the file comment). */
export async function renewOne(
  ctx: PaymentsContext,
  subscriptionId: Types.ObjectId | string,
): Promise<RenewalOutcome> {
  const sub = await getSubscription(subscriptionId);
  const id = String(sub._id);
  const now = ctx.clock.now();
  const periodEnd = sub.periodEnd;
  if (!periodEnd || periodEnd.getTime() > now.getTime()) {
    return { subscriptionId: id, state: 'waiting', attempt: 0 };
  }
  if (sub.scheduledPlanCode === 'payg' && sub.status === 'active') return moveToPayg(ctx, sub);
  // A suspended customer is not charged for a service that is switched off.
  const account = await Account.findById(sub.accountId, { status: 1 }).lean<{ status: string }>();
  if (account?.status === 'suspended') {
    return { subscriptionId: id, state: 'held', reason: 'account_suspended' };
  }
  const settings = await ctx.settings.get();
  const elapsedHours = (now.getTime() - periodEnd.getTime()) / HOUR;
  const attempt = settings.dunningOffsetsHours.filter((hours) => hours <= elapsedHours).length;
  const base = `ren-${id}-${periodEnd.getTime()}-${attempt}`;
  const tried = await Payment.findOne({ reference: { $in: [`${base}-card`, `${base}-link`] } })
    .sort({ createdAt: -1 })
    .lean<{ reference: string; status: string }>();
  if (tried && sub.status === 'past_due') {
    // This attempt was made (a link is out, or the card is being verified): wait for the next.
    return { subscriptionId: id, state: 'waiting', attempt };
  }

  const price = await priceForRenewal({
    planCode: sub.scheduledPlanCode ?? sub.planCode,
    currency: sub.currency,
  });
  const charged = await chargeCardOrLink(ctx, {
    accountId: sub.accountId,
    amountMinor: price.priceMinor,
    currency: price.currency,
    referenceBase: base,
    purpose: 'renewal',
    planCode: sub.scheduledPlanCode ?? sub.planCode,
    metadata: { subscriptionId: id, periodEnd: periodEnd.toISOString() },
    faultPrefix: 'renewal',
  });
  if (charged.state === 'paid') {
    return charged.fulfilled
      ? { subscriptionId: id, state: 'renewed', reference: charged.reference }
      : { subscriptionId: id, state: 'processing', reference: charged.reference };
  }
  if (charged.state === 'processing') {
    return { subscriptionId: id, state: 'processing', reference: charged.reference };
  }
  // Not paid by the card: past due (with its grace) and the customer gets the link.
  await markPastDue(sub._id, { clock: ctx.clock, grace: { days: settings.graceDays } });
  const current = await getSubscription(sub._id);
  await notify(
    {
      accountId: String(sub.accountId),
      event: 'payment_failed',
      period: charged.reference,
      data: {
        reference: charged.reference,
        purpose: 'renewal',
        planCode: sub.scheduledPlanCode ?? sub.planCode,
        amountMinor: price.priceMinor,
        currency: price.currency,
        authorizationUrl: charged.authorizationUrl,
        cardDeclined: charged.cardDeclined,
        graceEndsAt: current.graceEndsAt?.toISOString(),
        attempt,
      },
    },
    { clock: ctx.clock },
  );
  return { subscriptionId: id, state: 'payment_link', reference: charged.reference, attempt };
}

/**
 * A downgrade to pay as you go confirmed for the period end: nothing is
 * charged; the plan ends and PAYG starts (billed from the wallet by the
 * hour). Ending first and starting second, each a repeatable step: a run that
 * died in between is finished by the next pass (runRenewals looks for it).
 */
async function moveToPayg(ctx: PaymentsContext, sub: SubscriptionRecord): Promise<RenewalOutcome> {
  await cancel(sub._id, { atPeriodEnd: false, clock: ctx.clock, reason: MOVED_TO_PAYG });
  ctx.faults.reach('renewal.moved_to_payg_ended');
  const payg = await startPayg({
    accountId: sub.accountId,
    clock: ctx.clock,
    currency: sub.currency,
  });
  return {
    subscriptionId: String(sub._id),
    state: 'moved_to_payg',
    paygSubscriptionId: String(payg._id),
  };
}
