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
 * goes to the wallet when the `cancellationRefund` setting says `wallet`
 * (the default), or nowhere when it says `none`.
 *
 * Confirming is safe to repeat and to resume: the quote is claimed with one
 * conditional update (open and unexpired -> confirming); every step after it
 * is idempotent (the cancel transition repeats as a no-op, the wallet credit
 * is keyed by the quote, the notification is deduplicated by the quote), so a
 * process that died half way finishes on the next confirm, and a double tap
 * returns the same outcome without a second refund.
 */
import { DomainError } from '../lib/errors.js';
import type { Clock } from '../lib/clock.js';
import { noFaults, type FaultPoints } from '../lib/faults.js';
import { formatMoney } from '../lib/money.js';
import { BillingQuote, type BillingQuoteRecord } from '../models/billing-quote.js';
import { claimQuote, markQuoteDone, QUOTE_TTL_MS } from './billing-quotes.js';
import { toAccountId, type AccountId } from './account-id.js';
import { notify } from './notifications.js';
import { unusedCredit } from './proration.js';
import { getQuotaUsage } from './quota.js';
import type { SettingsStore } from './settings.js';
import { cancel, getLiveSubscription, getSubscription } from './subscriptions.js';
import { credit, getWallet } from './wallet.js';

export interface CancellationContext {
  clock: Clock;
  settings: SettingsStore;
  faults?: FaultPoints;
}

export interface CancellationQuote {
  quoteId: string;
  when: 'now' | 'period_end';
  refundMinor: number;
  refundTo: 'wallet' | 'none';
  endsAt: Date;
  expiresAt: Date;
  lines: string[];
}

export interface CancellationOutcome {
  quoteId: string;
  when: 'now' | 'period_end';
  endsAt: Date;
  refundMinor: number;
  refundTo: 'wallet' | 'none';
  /** The wallet balance after the refund, when one was made. */
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
  let refundTo: 'wallet' | 'none' = 'none';
  let basis = '';
  if (input.when === 'now' && paidPeriod && settings.cancellationRefund === 'wallet') {
    const counter = sub.planCode === 'payg' ? null : await getQuotaUsage(accountId, now);
    const share = unusedCredit({
      pricePaidMinor: sub.priceMinor,
      periodStart: sub.periodStart as Date,
      periodEnd: sub.periodEnd as Date,
      now,
      quota: counter ? { limitBytes: counter.limitBytes, usedBytes: counter.usedBytes } : null,
    });
    refundMinor = share.creditMinor;
    refundTo = refundMinor > 0 ? 'wallet' : 'none';
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
          refundMinor > 0
            ? `${money(refundMinor, currency)} goes back to your wallet${basis}.`
            : 'Nothing is refunded.',
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
    endsAt,
    lines,
    expiresAt,
  });
  return {
    quoteId: String(stored._id),
    when: input.when,
    refundMinor,
    refundTo,
    endsAt,
    expiresAt,
    lines,
  };
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
    if (quote.refundTo === 'wallet' && quote.refundMinor > 0) {
      await credit(
        String(accountId),
        {
          amountMinor: quote.refundMinor,
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
          currency: quote.currency,
        },
      },
      { clock: ctx.clock },
    );
    quote = (await markQuoteDone(quote._id, ctx.clock.now())) ?? quote;
  }
  return outcomeOf(quote, await walletBalance(accountId, quote));
}

async function walletBalance(
  accountId: ReturnType<typeof toAccountId>,
  quote: BillingQuoteRecord,
): Promise<number | undefined> {
  if (quote.refundTo !== 'wallet' || quote.refundMinor === 0) return undefined;
  return (await getWallet(accountId)).balanceMinor;
}

function outcomeOf(quote: BillingQuoteRecord, walletBalanceMinor?: number): CancellationOutcome {
  return {
    quoteId: String(quote._id),
    when: quote.kind === 'cancel_now' ? 'now' : 'period_end',
    endsAt: quote.endsAt,
    refundMinor: quote.refundMinor,
    refundTo: quote.refundTo,
    ...(walletBalanceMinor === undefined ? {} : { walletBalanceMinor }),
  };
}

function money(amountMinor: number, currency: BillingQuoteRecord['currency']): string {
  return formatMoney({ amountMinor, currency });
}

function percent(ppm: number): string {
  return `${Math.floor(ppm / 10_000)} %`;
}
