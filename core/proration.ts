/**
 * What a plan change costs, as one pure function: no I/O, no clock reads (the
 * caller passes `now`), integers in minor units throughout. The stored quote,
 * its confirmation and the payment build on it; the bots show `lines` as is.
 *
 * The rules (README "Billing rules: changing plan" says them to customers):
 *
 * - Credit for the current plan: the price paid for the current period x the
 *   smaller of the unused share of the period's time and the unused share of
 *   the current quota window's data, rounded DOWN to the minor unit. A plan
 *   without a data quota counts time only. Nothing paid (trial, PAYG,
 *   awaiting payment): no credit.
 * - Upgrade (the new plan costs more per period, or the customer is on a
 *   trial or PAYG): takes effect at once. From a paid period, the new plan is
 *   charged for the REST OF THE CURRENT PERIOD (its price x the unused share
 *   of the period's time, rounded UP), so the renewal date does not move; from
 *   a trial or PAYG it starts a FRESH PERIOD at its full price.
 * - Downgrade (the new plan costs the same or less, or is PAYG): at the end of
 *   the period by default, with nothing to pay now and the new price charged
 *   at renewal. With the at-once policy: like an upgrade (rest of the period),
 *   the difference going to the wallet.
 * - To pay now = cost - credit when positive; when the credit is larger, the
 *   rest goes to the wallet and nothing is charged.
 */
import { DomainError } from '../lib/errors.js';
import { formatMoney, type Currency } from '../lib/money.js';
import type { PlanKind } from '../models/plan.js';
import type { SubscriptionStatus } from '../models/subscription.js';

export interface CurrentTerms {
  planCode: string;
  planName: string;
  planKind: PlanKind;
  status: SubscriptionStatus;
  /** What was paid for the current period (the subscription's price). */
  pricePaidMinor: number;
  currency: Currency;
  periodStart?: Date | null;
  periodEnd?: Date | null;
  /** The current quota window's counter; null for a plan without a data quota. */
  quota?: { limitBytes: number; usedBytes: number } | null;
}

export interface TargetPlan {
  code: string;
  name: string;
  kind: PlanKind;
  prices: readonly { currency: Currency; amountMinor: number }[];
  isOnSale: boolean;
}

export interface PlanChangePolicy {
  /** When a downgrade takes effect (default: at the end of the period). */
  downgrades: 'period_end' | 'now';
}

export interface PlanChangeQuote {
  fromPlanCode: string;
  toPlanCode: string;
  direction: 'upgrade' | 'downgrade';
  /** When the new plan applies: now, or at `effectiveAt` (the period's end). */
  effective: 'now' | 'period_end';
  effectiveAt: Date;
  /** How the new plan is charged when it applies now. */
  newPeriod: 'rest_of_period' | 'fresh_period' | 'none';
  currency: Currency;
  /** Credit for the unused part of the current period (rounded down). */
  creditMinor: number;
  /** The new plan's charge now (rest of the period rounded up, or a fresh period). */
  costMinor: number;
  /** Charged now: cost - credit, never below 0. */
  dueNowMinor: number;
  /** Credited to the wallet: credit - cost, never below 0. */
  walletCreditMinor: number;
  /** Charged at the next renewal (a downgrade at period end: the new plan's price). */
  renewalPriceMinor: number | null;
  /** Parts per million of the period's time and of the quota window's data still unused. */
  unusedTimePpm: number;
  unusedDataPpm: number | null;
  /** The quote in the customer's words, one line each. */
  lines: string[];
}

/** Statuses from which a plan change can be quoted (past due pays its renewal first). */
const CHANGEABLE: ReadonlySet<SubscriptionStatus> = new Set(['active', 'trialing']);

export function quotePlanChange(input: {
  current: CurrentTerms;
  target: TargetPlan;
  now: Date;
  policy: PlanChangePolicy;
}): PlanChangeQuote {
  const { current, target, now, policy } = input;
  if (target.code === current.planCode) {
    throw new DomainError('CONFLICT', `You are already on the ${target.name} plan.`);
  }
  if (!target.isOnSale) {
    throw new DomainError('UNSUPPORTED', `The ${target.name} plan is not on sale.`);
  }
  if (target.kind === 'trial') {
    throw new DomainError('UNSUPPORTED', 'The trial is for new customers; choose a paid plan.');
  }
  if (!CHANGEABLE.has(current.status) && current.planKind !== 'payg') {
    throw new DomainError(
      'CONFLICT',
      current.status === 'past_due'
        ? 'Your renewal is unpaid: pay it first, then change plan.'
        : 'You have no running plan to change; buy one instead.',
      { details: { status: current.status } },
    );
  }
  const currency = current.currency;
  const targetPrice = target.kind === 'payg' ? 0 : priceIn(target, currency);

  const paidPeriod =
    current.planKind === 'recurring' &&
    current.status === 'active' &&
    current.periodStart instanceof Date &&
    current.periodEnd instanceof Date &&
    current.periodEnd.getTime() > current.periodStart.getTime();

  // From a trial or PAYG nothing is paid per period: the new plan starts a fresh period now.
  if (!paidPeriod) {
    if (target.kind === 'payg') {
      throw new DomainError('CONFLICT', 'You are already charged by the hour; top up your wallet.');
    }
    return finish({
      current,
      target,
      currency,
      direction: 'upgrade',
      effective: 'now',
      effectiveAt: now,
      newPeriod: 'fresh_period',
      creditMinor: 0,
      costMinor: targetPrice,
      renewalPriceMinor: targetPrice,
      unusedTimePpm: 0,
      unusedDataPpm: null,
    });
  }

  const periodStart = current.periodStart as Date;
  const periodEnd = current.periodEnd as Date;
  const { creditMinor, unusedTimePpm, unusedDataPpm } = unusedCredit({
    pricePaidMinor: current.pricePaidMinor,
    periodStart,
    periodEnd,
    now,
    quota: current.quota ?? null,
  });
  const periodMs = BigInt(periodEnd.getTime() - periodStart.getTime());
  const leftMs = BigInt(clamp(periodEnd.getTime() - now.getTime(), 0, Number(periodMs)));

  const upgrade = target.kind !== 'payg' && targetPrice > current.pricePaidMinor;
  if (!upgrade && policy.downgrades === 'period_end') {
    return finish({
      current,
      target,
      currency,
      direction: 'downgrade',
      effective: 'period_end',
      effectiveAt: periodEnd,
      newPeriod: 'none',
      creditMinor: 0,
      costMinor: 0,
      renewalPriceMinor: target.kind === 'payg' ? null : targetPrice,
      unusedTimePpm,
      unusedDataPpm,
    });
  }
  // The rest of the current period on the new plan, rounded up (PAYG: charged by the hour).
  const costMinor =
    target.kind === 'payg' ? 0 : Number(ceilDiv(BigInt(targetPrice) * leftMs, periodMs));
  return finish({
    current,
    target,
    currency,
    direction: upgrade ? 'upgrade' : 'downgrade',
    effective: 'now',
    effectiveAt: now,
    newPeriod: target.kind === 'payg' ? 'none' : 'rest_of_period',
    creditMinor,
    costMinor,
    renewalPriceMinor: target.kind === 'payg' ? null : targetPrice,
    unusedTimePpm,
    unusedDataPpm,
  });
}

/**
 * The credit for the unused part of a paid period: the price paid x the
 * smaller of the unused share of the period's time and of the quota window's
 * data (time only without a quota), rounded down to the minor unit. Exact:
 * the shares are compared and applied as integer fractions.
 */
export function unusedCredit(input: {
  pricePaidMinor: number;
  periodStart: Date;
  periodEnd: Date;
  now: Date;
  quota: { limitBytes: number; usedBytes: number } | null;
}): { creditMinor: number; unusedTimePpm: number; unusedDataPpm: number | null } {
  const { quota } = input;
  const spanMs = input.periodEnd.getTime() - input.periodStart.getTime();
  if (spanMs <= 0) return { creditMinor: 0, unusedTimePpm: 0, unusedDataPpm: null };
  const periodMs = BigInt(spanMs);
  const leftMs = BigInt(clamp(input.periodEnd.getTime() - input.now.getTime(), 0, spanMs));
  const limit = quota ? BigInt(Math.max(0, quota.limitBytes)) : 0n;
  const leftBytes = quota
    ? BigInt(clamp(quota.limitBytes - quota.usedBytes, 0, Math.max(0, quota.limitBytes)))
    : 0n;
  // The smaller unused share, as a fraction num/den, compared exactly.
  let num = leftMs;
  let den = periodMs;
  if (quota && limit === 0n) {
    num = 0n;
    den = 1n;
  } else if (quota && leftBytes * periodMs < leftMs * limit) {
    num = leftBytes;
    den = limit;
  }
  return {
    creditMinor: Number((BigInt(input.pricePaidMinor) * num) / den),
    unusedTimePpm: Number((leftMs * 1_000_000n) / periodMs),
    unusedDataPpm: quota && limit > 0n ? Number((leftBytes * 1_000_000n) / limit) : null,
  };
}

function finish(
  parts: Omit<
    PlanChangeQuote,
    'fromPlanCode' | 'toPlanCode' | 'dueNowMinor' | 'walletCreditMinor' | 'lines'
  > & {
    current: CurrentTerms;
    target: TargetPlan;
  },
): PlanChangeQuote {
  const { current, target, ...quote } = parts;
  const dueNowMinor = Math.max(0, quote.costMinor - quote.creditMinor);
  const walletCreditMinor = Math.max(0, quote.creditMinor - quote.costMinor);
  const full: Omit<PlanChangeQuote, 'lines'> = {
    ...quote,
    fromPlanCode: current.planCode,
    toPlanCode: target.code,
    dueNowMinor,
    walletCreditMinor,
  };
  return { ...full, lines: describe(full, current, target) };
}

function describe(
  quote: Omit<PlanChangeQuote, 'lines'>,
  current: CurrentTerms,
  target: TargetPlan,
): string[] {
  const money = (minor: number): string =>
    formatMoney({ amountMinor: minor, currency: quote.currency });
  const day = (date: Date): string => date.toISOString().slice(0, 10);
  const percent = (ppm: number): string => `${Math.floor(ppm / 10_000)} %`;
  const lines = [`${current.planName} -> ${target.name}`];
  if (quote.effective === 'period_end') {
    lines.push(
      `Your ${current.planName} plan runs until ${day(quote.effectiveAt)}; ${target.name} starts then.`,
      quote.renewalPriceMinor === null
        ? 'From then on you pay by the hour from your wallet.'
        : `Nothing to pay now; ${money(quote.renewalPriceMinor)} at renewal on ${day(quote.effectiveAt)}.`,
    );
    return lines;
  }
  if (quote.newPeriod === 'fresh_period') {
    lines.push(`${target.name} starts now for a full period: ${money(quote.costMinor)}.`);
  } else {
    const unusedData =
      quote.unusedDataPpm === null ? '' : ` and ${percent(quote.unusedDataPpm)} of its data`;
    lines.push(
      `Credit for your ${current.planName} plan: ${money(quote.creditMinor)} (${money(current.pricePaidMinor)} x the smaller of ${percent(quote.unusedTimePpm)} of the period left${unusedData}, rounded down).`,
    );
    if (quote.newPeriod === 'rest_of_period') {
      lines.push(
        `${target.name} for the rest of this period: ${money(quote.costMinor)} (renews on ${day(current.periodEnd as Date)} at ${money(quote.renewalPriceMinor ?? 0)}).`,
      );
    } else {
      lines.push(`${target.name} is charged by the hour from your wallet.`);
    }
  }
  if (quote.dueNowMinor > 0) lines.push(`To pay now: ${money(quote.dueNowMinor)}.`);
  if (quote.walletCreditMinor > 0) {
    lines.push(`Credited to your wallet: ${money(quote.walletCreditMinor)}.`);
  }
  if (quote.dueNowMinor === 0 && quote.walletCreditMinor === 0) lines.push('Nothing to pay now.');
  lines.push('The change applies at once.');
  return lines;
}

function priceIn(target: TargetPlan, currency: Currency): number {
  const price = target.prices.find((p) => p.currency === currency);
  if (!price) {
    throw new DomainError('UNSUPPORTED', `The ${target.name} plan is not sold in ${currency}.`, {
      details: { planCode: target.code, currency },
    });
  }
  return price.amountMinor;
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
