/**
 * Changing plan: quote (core/proration.ts's arithmetic, stored for 15
 * minutes), then confirm, once.
 *
 *   quotePlanChange    -> stored quote + the customer's wording
 *   confirmPlanChange  -> period end: the renewal will move to the new plan
 *                         now, nothing to pay: applied at once
 *                         now, something to pay: card-or-link.ts (the
 *                           saved card, `chg-<quote>-card`; or a link,
 *                           `chg-<quote>-link`), applied by fulfilment when paid
 *   applyPlanChange    -> the subscription moves to the new plan for the rest
 *                         of its period (switchPlan), the quota window
 *                         switches with the used bytes carried over
 *                         (switchQuotaWindow), an excess credit goes to the
 *                         wallet. The gateway sees it at its next refresh.
 *
 * Exactly once: the quote is claimed by one conditional update; each payment
 * has a reference of its own, fulfilled exactly once by fulfilment.ts; apply
 * ends by marking the quote `done`, and every step before it is idempotent
 * (switchPlan repeats as a no-op, the window switch is keyed by the confirm
 * time, the wallet credit by the quote). A second payment for a quote already
 * applied (the link paid after the card went through) is credited to the
 * wallet, never applied twice. A quote whose subscription changed before its
 * payment arrived is not applied: the money goes to the wallet.
 *
 * From a trial or pay as you go the new plan is a purchase (a fresh period):
 * the quote says so and confirming answers with `use_checkout`.
 */
import { TeamSeat } from '../../models/team-seat.js';
import { BillingQuote, type BillingQuoteRecord } from '../../models/billing-quote.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { claimQuote, markQuoteDone, QUOTE_TTL_MS } from '../billing-quotes.js';
import { getPlan, getPlanForSale } from '../plans.js';
import { quotePlanChange as priceChange, type PlanChangeQuote } from '../proration.js';
import { getQuotaUsage, switchQuotaWindow } from '../quota.js';
import {
  cancel,
  currentQuotaWindow,
  getLiveSubscription,
  getSubscription,
  schedulePlanChange,
  startPayg,
  switchPlan,
} from '../subscriptions.js';
import { credit } from '../wallet.js';
import { notify } from '../notifications.js';
import { DomainError } from '../../lib/errors.js';
import type { PaymentsContext } from './context.js';
import { chargeCardOrLink } from './card-or-link.js';

export interface PlanChangeOffer extends PlanChangeQuote {
  quoteId: string;
  expiresAt: Date;
  /** Team members whose proxy access stops when the change takes effect (the new plan has no seats). */
  membersLosingAccess: number;
}

export type PlanChangeOutcome =
  | { state: 'applied'; quoteId: string; toPlanCode: string; walletCreditMinor: number }
  | { state: 'scheduled'; quoteId: string; toPlanCode: string; at: Date }
  | {
      state: 'payment_link';
      quoteId: string;
      reference: string;
      authorizationUrl: string;
      amountMinor: number;
    }
  /** The card charge's fate is not known yet (Paystack timed out); re-verification settles it. */
  | { state: 'processing'; quoteId: string; reference: string }
  | { state: 'use_checkout'; quoteId: string; toPlanCode: string };

/** Quotes moving the account's running plan to `toPlanCode`. */
export async function quotePlanChange(
  ctx: PaymentsContext,
  input: { accountId: AccountId; toPlanCode: string },
): Promise<PlanChangeOffer> {
  const accountId = toAccountId(input.accountId);
  const now = ctx.clock.now();
  const sub = await getLiveSubscription(accountId);
  if (!sub || sub.status === 'pending_payment') {
    throw new DomainError('NOT_FOUND', 'You have no running plan to change; choose one to buy.');
  }
  const [current, target, settings, counter, members] = await Promise.all([
    getPlan(sub.planCode),
    getPlanForSale(input.toPlanCode),
    ctx.settings.get(),
    getQuotaUsage(accountId, now),
    TeamSeat.countDocuments({ ownerAccountId: accountId }),
  ]);
  const quote = priceChange({
    current: {
      planCode: sub.planCode,
      planName: current.name,
      planKind: sub.planKind,
      status: sub.status,
      pricePaidMinor: sub.priceMinor,
      currency: sub.currency,
      periodStart: sub.periodStart ?? null,
      periodEnd: sub.periodEnd ?? null,
      quota: counter ? { limitBytes: counter.limitBytes, usedBytes: counter.usedBytes } : null,
    },
    target,
    now,
    policy: { downgrades: settings.downgradeTiming },
  });
  // Seats follow the owner's plan (core/entitlements.ts): a plan without
  // seats stops every member's access, so the owner is told before confirming.
  const membersLosingAccess = (target.seats ?? 1) > 1 ? 0 : members;
  if (membersLosingAccess > 0) {
    const when =
      quote.effective === 'now' ? 'at once' : `on ${quote.effectiveAt.toISOString().slice(0, 10)}`;
    const who =
      membersLosingAccess === 1
        ? 'Your team member loses'
        : `Your ${membersLosingAccess} team members lose`;
    quote.lines.push(
      `${who} proxy access ${when}: the ${target.name} plan has no seats for members. Their accounts stay; add them again on a plan with seats.`,
    );
  }
  const expiresAt = new Date(now.getTime() + QUOTE_TTL_MS);
  const stored = await BillingQuote.create({
    accountId,
    subscriptionId: sub._id,
    subscriptionRevision: sub.revision,
    kind: 'plan_change',
    currency: quote.currency,
    refundMinor: quote.walletCreditMinor,
    refundTo: quote.walletCreditMinor > 0 ? 'wallet' : 'none',
    endsAt: quote.effectiveAt,
    toPlanCode: quote.toPlanCode,
    effective: quote.effective,
    dueNowMinor: quote.dueNowMinor,
    ...(quote.renewalPriceMinor === null ? {} : { newPriceMinor: quote.renewalPriceMinor }),
    lines: quote.lines,
    expiresAt,
  });
  return { ...quote, quoteId: String(stored._id), expiresAt, membersLosingAccess };
}

/** Carries out a plan change the customer confirmed (see the file comment). */
export async function confirmPlanChange(
  ctx: PaymentsContext,
  input: { accountId: AccountId; quoteId: string },
): Promise<PlanChangeOutcome> {
  const accountId = toAccountId(input.accountId);
  const quote = await claimQuote(accountId, input.quoteId, ctx.clock.now(), 'plan_change');
  const quoteId = String(quote._id);
  const toPlanCode = quote.toPlanCode ?? '';
  if (quote.status === 'done') return doneOutcome(quote);

  const sub = await getSubscription(quote.subscriptionId);
  if (sub.planKind !== 'recurring') {
    // A fresh period is a purchase: the plan checkout ends the trial or PAYG when paid.
    await markQuoteDone(quoteId, ctx.clock.now());
    return { state: 'use_checkout', quoteId, toPlanCode };
  }
  if (quote.effective === 'period_end') {
    await schedulePlanChange(sub._id, {
      planCode: toPlanCode,
      changeRef: quoteId,
      clock: ctx.clock,
    });
    await markQuoteDone(quoteId, ctx.clock.now());
    return { state: 'scheduled', quoteId, toPlanCode, at: quote.endsAt };
  }
  if ((quote.dueNowMinor ?? 0) === 0) {
    await applyPlanChange(ctx, quoteId);
    return doneOutcome((await BillingQuote.findById(quoteId).lean<BillingQuoteRecord>()) ?? quote);
  }
  return payForChange(ctx, quote);
}

/** The card first, a link when the card cannot be charged without the customer (card-or-link.ts). */
async function payForChange(
  ctx: PaymentsContext,
  quote: BillingQuoteRecord,
): Promise<PlanChangeOutcome> {
  const quoteId = String(quote._id);
  const amountMinor = quote.dueNowMinor ?? 0;
  const charged = await chargeCardOrLink(ctx, {
    accountId: quote.accountId,
    amountMinor,
    currency: quote.currency,
    referenceBase: `chg-${quoteId}`,
    purpose: 'plan_change',
    ...(quote.toPlanCode ? { planCode: quote.toPlanCode } : {}),
    metadata: { quoteId },
    faultPrefix: 'plan_change',
  });
  switch (charged.state) {
    case 'paid':
      if (!charged.fulfilled) return { state: 'processing', quoteId, reference: charged.reference };
      return doneOutcome(
        (await BillingQuote.findById(quoteId).lean<BillingQuoteRecord>()) ?? quote,
      );
    case 'processing':
      return { state: 'processing', quoteId, reference: charged.reference };
    case 'payment_link':
      return {
        state: 'payment_link',
        quoteId,
        reference: charged.reference,
        authorizationUrl: charged.authorizationUrl,
        amountMinor,
      };
  }
}

/**
 * Applies a confirmed quote: fulfilment calls it when a plan-change payment
 * is paid (`paymentRef`), confirm when nothing is due. Returns 'applied', or
 * 'already' / 'stale' when the payment must go to the wallet instead.
 */
export async function applyPlanChange(
  ctx: PaymentsContext,
  quoteId: string,
): Promise<'applied' | 'already' | 'stale'> {
  const quote = await BillingQuote.findById(quoteId).lean<BillingQuoteRecord>().orFail();
  if (quote.status === 'done') return 'already';
  if (quote.status === 'stale') return 'stale';
  const toPlanCode = quote.toPlanCode ?? '';
  const sub = await getSubscription(quote.subscriptionId);
  // To pay as you go the plan ends (and PAYG starts as a subscription of its own).
  const paygReason = `moved to pay as you go (${quoteId})`;
  const resumed =
    sub.planCode === toPlanCode ||
    (sub.status === 'cancelled' && (sub.history ?? []).some((h) => h.reason === paygReason));
  if (!resumed && (sub.revision !== quote.subscriptionRevision || sub.status !== 'active')) {
    await BillingQuote.updateOne(
      { _id: quote._id, status: { $ne: 'done' } },
      { $set: { status: 'stale' } },
    );
    return 'stale';
  }
  const plan = await getPlan(toPlanCode);
  const at = quote.confirmedAt ?? ctx.clock.now();
  let window: { start: Date; end: Date } | null = null;
  if (plan.kind === 'payg') {
    await cancel(sub._id, { atPeriodEnd: false, clock: ctx.clock, reason: paygReason });
    ctx.faults.reach('plan_change.switched');
    await startPayg({ accountId: quote.accountId, clock: ctx.clock, currency: sub.currency });
  } else {
    const switched = await switchPlan(sub._id, {
      planCode: toPlanCode,
      priceMinor: quote.newPriceMinor ?? 0,
      changeRef: quoteId,
      clock: ctx.clock,
    });
    ctx.faults.reach('plan_change.switched');
    window = plan.quota ? currentQuotaWindow(switched.subscription, at) : null;
  }
  if (plan.quota && window) {
    await switchQuotaWindow(String(quote.accountId), {
      at,
      periodEnd: window.end,
      limitBytes: plan.quota.bytes,
    });
  }
  ctx.faults.reach('plan_change.quota_switched');
  if (quote.refundTo === 'wallet' && quote.refundMinor > 0) {
    await credit(
      String(quote.accountId),
      {
        amountMinor: quote.refundMinor,
        currency: quote.currency,
        key: `plan-change:${quoteId}`,
        kind: 'credit',
        reference: quoteId,
        description: `Unused part of your plan, on moving to ${plan.name}`,
      },
      { clock: ctx.clock, faults: ctx.faults },
    );
  }
  await markQuoteDone(quoteId, ctx.clock.now());
  await notify(
    {
      accountId: String(quote.accountId),
      event: 'plan_changed',
      period: quoteId,
      data: {
        fromPlanCode: sub.planCode,
        toPlanCode,
        walletCreditMinor: quote.refundTo === 'wallet' ? quote.refundMinor : 0,
        currency: quote.currency,
      },
    },
    { clock: ctx.clock },
  );
  return 'applied';
}

function doneOutcome(quote: BillingQuoteRecord): PlanChangeOutcome {
  const quoteId = String(quote._id);
  const toPlanCode = quote.toPlanCode ?? '';
  if (quote.effective === 'period_end')
    return { state: 'scheduled', quoteId, toPlanCode, at: quote.endsAt };
  return { state: 'applied', quoteId, toPlanCode, walletCreditMinor: quote.refundMinor };
}
