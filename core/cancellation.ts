/**
 * Cancelling a plan, in two steps so the customer confirms what they saw:
 *
 *   quoteCancellation   -> a stored quote (core's words for the bots, the
 *                          refund if any, valid 15 minutes)
 *   confirmCancellation -> carries that quote out, once
 *
 * At period end: the plan runs to `periodEnd` and stops there; undoCancel
 * (core/subscriptions.ts) takes it back until then. No money moves.
 *
 * At once: access stops now, and the unused part of the period (price paid x
 * the smaller unused share of time and data, rounded down: core/proration.ts)
 * goes where the `cancellationRefund` setting says: `wallet` (the default);
 * `card`: back to the card that paid the current period (the payment that
 * started or last renewed it), as much as that payment can still give back
 * (core/payments/refunds.ts), any rest to the wallet, and all of it to the
 * wallet when no card payment paid the period; or `none`.
 *
 * Confirming is safe to repeat and to resume: the quote is claimed with one
 * conditional update (open and unexpired -> confirming); every step after it
 * is idempotent (the cancel transition repeats as a no-op, the card refund and
 * the wallet credit are keyed by the quote, the notification is deduplicated
 * by the quote), so a
 * process that died half way finishes on the next confirm, and a double tap
 * returns the same outcome without a second refund.
 */
import { DomainError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import { noFaults, type FaultPoints } from '../lib/faults.js';
import type { Logger } from '../lib/logger.js';
import { formatMoney } from '../lib/money.js';
import type { PaymentProvider } from '../lib/payment-provider.js';
import { BillingQuote, type BillingQuoteRecord } from '../models/billing-quote.js';
import { Payment } from '../models/payment.js';
import type { SubscriptionRecord } from '../models/subscription.js';
import { claimQuote, markQuoteDone, QUOTE_TTL_MS } from './billing-quotes.js';
import { toAccountId, type AccountId } from './account-id.js';
import { notify } from './notifications.js';
import { unusedCredit } from './proration.js';
import { getQuotaUsage } from './quota.js';
import type { SettingsStore } from './settings.js';
import { cancel, getLiveSubscription, getSubscription } from './subscriptions.js';
import { credit, getWallet } from './wallet.js';
import { requestRefund } from './payments/refunds.js';

export interface CancellationContext {
  clock: Clock;
  settings: SettingsStore;
  faults?: FaultPoints;
  /**
   * Paystack, for refunds to the card (`cancellationRefund: 'card'`); the
   * payments context carries both. Confirming a quote with a card part
   * without it is refused.
   */
  provider?: PaymentProvider;
  logger?: Logger;
}

export type CancellationRefundTo = 'wallet' | 'card' | 'none';

export interface CancellationQuote {
  quoteId: string;
  when: 'now' | 'period_end';
  /** Everything given back, in minor units. */
  refundMinor: number;
  /** 'card': `cardRefundMinor` to the card, the rest of `refundMinor` to the wallet. */
  refundTo: CancellationRefundTo;
  cardRefundMinor: number;
  endsAt: Date;
  expiresAt: Date;
  lines: string[];
}

export interface CancellationOutcome {
  quoteId: string;
  when: 'now' | 'period_end';
  endsAt: Date;
  refundMinor: number;
  refundTo: CancellationRefundTo;
  cardRefundMinor: number;
  /** The wallet balance after the refund, when money went to the wallet. */
  walletBalanceMinor?: number;
}

/** Quotes a cancellation of the account's running plan, now or at the end of the period. */
export async function quoteCancellation(
  ctx: CancellationContext,
  input: { accountId: AccountId; when: 'now' | 'period_end' },
): Promise<CancellationQuote> {
  const accountId = toAccountId(input.accountId);
  const now = ctx.clock.now();
  const sub = await getLiveSubscription(accountId);
  if (!sub || sub.status === 'pending_payment') {
    throw new DomainError('NOT_FOUND', 'You have no running plan to cancel.');
  }
  const paidPeriod =
    sub.planKind === 'recurring' &&
    sub.status === 'active' &&
    sub.periodStart instanceof Date &&
    sub.periodEnd instanceof Date &&
    sub.periodEnd.getTime() > now.getTime();
  if (input.when === 'period_end' && !paidPeriod) {
    throw new DomainError(
      'CONFLICT',
      sub.planKind === 'payg'
        ? 'Pay as you go has no period to run out; it can only stop now.'
        : 'This plan has no paid period left to run; it can only stop now.',
    );
  }
  if (input.when === 'period_end' && sub.cancelAtPeriodEnd) {
    throw new DomainError('CONFLICT', 'Your plan is already set to end with this period.');
  }

  const settings = await ctx.settings.get();
  const currency = sub.currency;
  let refundMinor = 0;
  let refundTo: CancellationRefundTo = 'none';
  let cardRefundMinor = 0;
  let card: PeriodPayment | null = null;
  let basis = '';
  if (input.when === 'now' && paidPeriod && settings.cancellationRefund !== 'none') {
    const counter = sub.planCode === 'payg' ? null : await getQuotaUsage(accountId, now);
    const share = unusedCredit({
      pricePaidMinor: sub.priceMinor,
      periodStart: sub.periodStart as Date,
      periodEnd: sub.periodEnd as Date,
      now,
      quota: counter ? { limitBytes: counter.limitBytes, usedBytes: counter.usedBytes } : null,
    });
    refundMinor = share.creditMinor;
    card =
      settings.cancellationRefund === 'card' && refundMinor > 0 ? await periodPayment(sub) : null;
    cardRefundMinor = card ? Math.min(refundMinor, card.refundableMinor) : 0;
    refundTo = cardRefundMinor > 0 ? 'card' : refundMinor > 0 ? 'wallet' : 'none';
    const data =
      share.unusedDataPpm === null ? '' : ` and ${percent(share.unusedDataPpm)} of its data`;
    basis = ` (${money(sub.priceMinor, currency)} x the smaller of ${percent(share.unusedTimePpm)} of the period left${data}, rounded down)`;
  }

  const endsAt = input.when === 'now' ? now : (sub.periodEnd as Date);
  const day = endsAt.toISOString().slice(0, 10);
  const lines =
    input.when === 'period_end'
      ? [
          `Cancel ${sub.planCode} at the end of this period?`,
          `Your plan keeps working until ${day}, then stops. Nothing is refunded.`,
          'You can change your mind until then.',
        ]
      : [
          `Cancel ${sub.planCode} now?`,
          'Your proxy access stops at once.',
          refundLine({ refundMinor, cardRefundMinor, currency, card, basis }),
          ...(cardRefundMinor > 0
            ? ['A refund to a card usually reaches it within a few working days.']
            : []),
        ];
  const expiresAt = new Date(now.getTime() + QUOTE_TTL_MS);
  const stored = await BillingQuote.create({
    accountId,
    subscriptionId: sub._id,
    subscriptionRevision: sub.revision,
    kind: input.when === 'now' ? 'cancel_now' : 'cancel_at_period_end',
    currency,
    refundMinor,
    refundTo,
    ...(card && cardRefundMinor > 0 ? { cardRefundMinor, refundPaymentRef: card.reference } : {}),
    endsAt,
    lines,
    expiresAt,
  });
  return {
    quoteId: String(stored._id),
    when: input.when,
    refundMinor,
    refundTo,
    cardRefundMinor,
    endsAt,
    expiresAt,
    lines,
  };
}

/** The card payment that paid the current period, and what it can still give back. */
interface PeriodPayment {
  reference: string;
  refundableMinor: number;
  last4: string | undefined;
}

/**
 * The payment that paid the subscription's current period: the latest
 * renewal, else the one that started it. Only a paid Paystack payment in the
 * plan's currency with something left to refund counts (a made-up or missing
 * one, as for a plan an admin gave, means the wallet).
 */
async function periodPayment(sub: SubscriptionRecord): Promise<PeriodPayment | null> {
  const reference = sub.renewalPaymentRefs.at(-1) ?? sub.activatedByPaymentRef;
  if (!reference) return null;
  const payment = await Payment.findOne({ reference, status: 'paid' }).lean();
  if (!payment || payment.currency !== sub.currency) return null;
  const refundableMinor = payment.amountMinor - (payment.refundedMinor ?? 0);
  if (refundableMinor <= 0) return null;
  return { reference, refundableMinor, last4: payment.authorization?.last4 ?? undefined };
}

function refundLine(input: {
  refundMinor: number;
  cardRefundMinor: number;
  currency: BillingQuoteRecord['currency'];
  card: PeriodPayment | null;
  basis: string;
}): string {
  const { refundMinor, cardRefundMinor, currency, card, basis } = input;
  if (refundMinor <= 0) return 'Nothing is refunded.';
  if (cardRefundMinor <= 0)
    return `${money(refundMinor, currency)} goes back to your wallet${basis}.`;
  const toCard = card?.last4 ? `the card ending ${card.last4}` : 'the card you paid with';
  const rest = refundMinor - cardRefundMinor;
  if (rest <= 0) return `${money(refundMinor, currency)} goes back to ${toCard}${basis}.`;
  return `${money(refundMinor, currency)} is refunded${basis}: ${money(cardRefundMinor, currency)} to ${toCard} (all that payment can still give back) and ${money(rest, currency)} to your wallet.`;
}

/**
 * Carries out a quote the customer confirmed. Refused: an unknown quote or
 * one of another account (NOT_FOUND); an expired one, or one whose
 * subscription changed since (CONFLICT with `details.reason` EXPIRED or
 * STALE). A quote confirmed before returns its outcome.
 */
export async function confirmCancellation(
  ctx: CancellationContext,
  input: { accountId: AccountId; quoteId: string },
): Promise<CancellationOutcome> {
  const faults = ctx.faults ?? noFaults;
  const accountId = toAccountId(input.accountId);
  const now = ctx.clock.now();
  let quote = await claimQuote(accountId, input.quoteId, now, 'cancel');

  if (quote.status === 'confirming') {
    const sub = await getSubscription(quote.subscriptionId);
    faults.reach('cancel.claimed');
    // A repeat (already cancelled by an earlier run of this confirm) is a no-op.
    await cancel(sub._id, {
      atPeriodEnd: quote.kind === 'cancel_at_period_end',
      clock: ctx.clock,
      reason: `cancelled by the customer (quote ${String(quote._id)})`,
    });
    faults.reach('cancel.subscription_cancelled');
    let walletMinor = quote.refundTo === 'none' ? 0 : quote.refundMinor;
    const cardMinor = quote.refundTo === 'card' ? (quote.cardRefundMinor ?? 0) : 0;
    if (cardMinor > 0 && quote.refundPaymentRef) {
      const refunded = await refundToCard(ctx, {
        accountId: String(accountId),
        quoteId: String(quote._id),
        paymentReference: quote.refundPaymentRef,
        amountMinor: cardMinor,
      });
      // Refused (the payment was refunded some other way since the quote): the wallet gets it all.
      if (refunded) walletMinor -= cardMinor;
      faults.reach('cancel.card_refund_requested');
    }
    if (walletMinor > 0) {
      await credit(
        String(accountId),
        {
          amountMinor: walletMinor,
          currency: quote.currency,
          key: `cancel-refund:${String(quote._id)}`,
          kind: 'refund',
          reference: String(quote._id),
          description: 'Unused part of the cancelled plan',
        },
        { clock: ctx.clock, faults },
      );
      faults.reach('cancel.wallet_credited');
    }
    await notify(
      {
        accountId: String(accountId),
        event: 'cancelled',
        period: String(quote._id),
        data: {
          planCode: sub.planCode,
          atPeriodEnd: quote.kind === 'cancel_at_period_end',
          endsAt: quote.endsAt.toISOString(),
          refundMinor: quote.refundMinor,
          refundTo: quote.refundTo,
          cardRefundMinor: quote.cardRefundMinor ?? 0,
          currency: quote.currency,
        },
      },
      { clock: ctx.clock },
    );
    quote = (await markQuoteDone(quote._id, ctx.clock.now())) ?? quote;
  }
  return outcomeOf(quote, await walletBalance(accountId, quote));
}

/**
 * The card part of a cancellation, keyed by the quote (`cancel:<quote id>`).
 * Returns false when it was refused (nothing left on the payment), so the
 * caller puts the money in the wallet instead; a refund Paystack could not
 * take yet stays recorded and is retried (core/payments/refunds.ts).
 */
async function refundToCard(
  ctx: CancellationContext,
  input: { accountId: string; quoteId: string; paymentReference: string; amountMinor: number },
): Promise<boolean> {
  if (!ctx.provider || !ctx.logger) {
    throw new DomainError('INTERNAL', 'A refund to the card needs the payments context.');
  }
  const outcome = await requestRefund(
    {
      provider: ctx.provider,
      logger: ctx.logger,
      settings: ctx.settings,
      clock: ctx.clock,
      faults: ctx.faults ?? noFaults,
    },
    {
      key: `cancel:${input.quoteId}`,
      paymentReference: input.paymentReference,
      amountMinor: input.amountMinor,
      method: 'card',
      kind: 'cancellation',
      reason: `cancelled at once (quote ${input.quoteId})`,
      requestedBy: { actor: input.accountId, channel: 'system' },
    },
  );
  return outcome.state !== 'refused';
}

async function walletBalance(
  accountId: ReturnType<typeof toAccountId>,
  quote: BillingQuoteRecord,
): Promise<number | undefined> {
  if (quote.refundTo === 'none' || quote.refundMinor === 0) return undefined;
  return (await getWallet(accountId)).balanceMinor;
}

function outcomeOf(quote: BillingQuoteRecord, walletBalanceMinor?: number): CancellationOutcome {
  return {
    quoteId: String(quote._id),
    when: quote.kind === 'cancel_now' ? 'now' : 'period_end',
    endsAt: quote.endsAt,
    refundMinor: quote.refundMinor,
    refundTo: quote.refundTo,
    cardRefundMinor: quote.cardRefundMinor ?? 0,
    ...(walletBalanceMinor === undefined ? {} : { walletBalanceMinor }),
  };
}

function money(amountMinor: number, currency: BillingQuoteRecord['currency']): string {
  return formatMoney({ amountMinor, currency });
}

function percent(ppm: number): string {
  return `${Math.floor(ppm / 10_000)} %`;
}
