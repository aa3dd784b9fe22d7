/**
 * Reminders the business sends on its own, each one pass the jobs role runs
 * every hour (jobs/reminders.ts). Every notice is written once per dedup key
 * (core/notifications.ts), so a pass repeated, or run by two processes at
 * once, adds nothing:
 *
 *   renewal_due     active recurring plan, not set to cancel, periodEnd within
 *                   settings.renewalReminderDays   -> once per period (periodEnd ISO)
 *   trial_ending    trial ending within 24 h        -> once per trial (trialEndsAt ISO)
 *   weekly_summary  the ISO week that just ended, for each customer with a
 *                   live plan or pay-as-you-go use in it -> once per week ("2026-W11");
 *                   customers may mute it (it is not a mandatory event)
 */
import type { Logger } from 'pino';
import type { Types } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { isDomainError } from '../lib/errors.js';
import type { Currency } from '../lib/money.js';
import { LedgerEntry } from '../models/ledger-entry.js';
import { Payment } from '../models/payment.js';
import { PaymentMethod } from '../models/payment-method.js';
import { Subscription, type SubscriptionRecord } from '../models/subscription.js';
import { notify } from './notifications.js';
import { parsePaygKey } from './payg.js';
import { priceForRenewal } from './plans.js';
import type { SettingsStore } from './settings.js';
import { listUsageBuckets } from './usage.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;

/** A trial is warned this long before it ends. */
export const TRIAL_WARNING_MS = 24 * HOUR_MS;

/**
 * The weekly summary waits this long after the week ends: the closing pass
 * gives unused pay-as-you-go data of the week's last hour back a few minutes
 * after that hour (jobs/gateway.ts), and the summary should show the cost after it.
 */
export const WEEKLY_SUMMARY_DELAY_MS = HOUR_MS;

export interface ReminderOptions {
  clock: Clock;
  settings: SettingsStore;
  /** One customer's failure is logged here and the pass goes on; without it, it is skipped silently. */
  logger?: Logger;
}

export interface ReminderReport {
  /** Subscriptions or customers the pass looked at. */
  checked: number;
  /** Notices written by this pass (a notice written earlier does not count again). */
  sent: number;
  /** Customers skipped because something about them failed (logged). */
  failed: number;
}

/**
 * Tells customers whose plan renews within `renewalReminderDays` (0 turns the
 * reminder off) what will be charged: the renewal price of the plan the
 * renewal moves to (a scheduled downgrade's), and whether a saved card pays
 * it. A plan set to cancel, or moving to pay as you go, does not renew and
 * gets no reminder.
 */
export async function sendRenewalReminders(options: ReminderOptions): Promise<ReminderReport> {
  const { renewalReminderDays } = await options.settings.get();
  const report: ReminderReport = { checked: 0, sent: 0, failed: 0 };
  if (renewalReminderDays === 0) return report;
  const now = options.clock.now();
  const due = await Subscription.find({
    status: 'active',
    planKind: 'recurring',
    cancelAtPeriodEnd: false,
    periodEnd: { $gt: now, $lte: new Date(now.getTime() + renewalReminderDays * DAY_MS) },
  }).lean<SubscriptionRecord[]>();
  for (const sub of due) {
    report.checked += 1;
    if (sub.scheduledPlanCode === 'payg' || !sub.periodEnd) continue;
    const periodEnd = sub.periodEnd;
    await each(report, options, sub.accountId, 'renewal_due', async () => {
      const planCode = sub.scheduledPlanCode ?? sub.planCode;
      const price = await priceForRenewal({ planCode, currency: sub.currency });
      // The card core/payments/card-or-link.ts would charge: any saved one (the latest is used).
      const hasSavedCard = (await PaymentMethod.exists({ accountId: sub.accountId })) !== null;
      return notify(
        {
          accountId: String(sub.accountId),
          event: 'renewal_due',
          period: periodEnd.toISOString(),
          data: {
            subscriptionId: String(sub._id),
            planCode,
            currentPlanCode: sub.planCode,
            periodEnd: periodEnd.toISOString(),
            amountMinor: price.priceMinor,
            currency: price.currency,
            chargesSavedCard: hasSavedCard,
          },
        },
        { clock: options.clock },
      );
    });
  }
  return report;
}

/**
 * Warns each trial once, within a day of its end, with what happens to the
 * deposit: its amount (from the payment that started the trial) and where it
 * goes back (`trialDepositRefund`: the card, or the wallet).
 */
export async function sendTrialEndingWarnings(options: ReminderOptions): Promise<ReminderReport> {
  const settings = await options.settings.get();
  const now = options.clock.now();
  const report: ReminderReport = { checked: 0, sent: 0, failed: 0 };
  const ending = await Subscription.find({
    status: 'trialing',
    trialEndsAt: { $gt: now, $lte: new Date(now.getTime() + TRIAL_WARNING_MS) },
  }).lean<SubscriptionRecord[]>();
  for (const sub of ending) {
    report.checked += 1;
    if (!sub.trialEndsAt) continue;
    const trialEndsAt = sub.trialEndsAt;
    await each(report, options, sub.accountId, 'trial_ending', async () => {
      const deposit = sub.activatedByPaymentRef
        ? await Payment.findOne(
            { reference: sub.activatedByPaymentRef, purpose: 'trial_deposit' },
            { amountMinor: 1, currency: 1 },
          ).lean<{ amountMinor: number; currency: Currency }>()
        : null;
      return notify(
        {
          accountId: String(sub.accountId),
          event: 'trial_ending',
          period: trialEndsAt.toISOString(),
          data: {
            subscriptionId: String(sub._id),
            trialEndsAt: trialEndsAt.toISOString(),
            // Absent when the trial was not started by a deposit (an admin's grant).
            ...(deposit ? { depositMinor: deposit.amountMinor, currency: deposit.currency } : {}),
            depositRefundTo: settings.trialDepositRefund === 'wallet' ? 'wallet' : 'card',
          },
        },
        { clock: options.clock },
      );
    });
  }
  return report;
}

/** Monday 00:00 UTC of the ISO week containing `at`. */
export function isoWeekStart(at: Date): Date {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const sinceMonday = (day.getUTCDay() + 6) % 7;
  return new Date(day.getTime() - sinceMonday * DAY_MS);
}

/** The ISO 8601 week of `at`, e.g. `2026-W03` (the year is the week's, which its Thursday decides). */
export function isoWeekId(at: Date): string {
  const thursday = new Date(isoWeekStart(at).getTime() + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / WEEK_MS) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/**
 * Last week in one message, for each customer with a live plan now or with
 * pay-as-you-go charges in that week: bytes relayed (the usage buckets), the
 * plan and its renewal or end, and what pay as you go cost (the week's
 * `payg…` ledger entries: connected hours and data, less data given back).
 * Sent from `WEEKLY_SUMMARY_DELAY_MS` after Monday 00:00 UTC; a customer who
 * muted `weekly_summary` gets the item with every slot `skipped`.
 */
export async function sendWeeklySummaries(options: ReminderOptions): Promise<ReminderReport> {
  const now = options.clock.now();
  const report: ReminderReport = { checked: 0, sent: 0, failed: 0 };
  const weekEnd = isoWeekStart(now);
  if (now.getTime() < weekEnd.getTime() + WEEKLY_SUMMARY_DELAY_MS) return report;
  const weekStart = new Date(weekEnd.getTime() - WEEK_MS);
  const week = isoWeekId(weekStart);

  const payg = await paygCostsOfWeek(weekStart, weekEnd);
  const live = await Subscription.find({
    status: { $in: ['trialing', 'active', 'past_due'] },
  }).lean<SubscriptionRecord[]>();
  const liveByAccount = new Map(live.map((sub) => [String(sub.accountId), sub]));
  const accounts = new Set([...liveByAccount.keys(), ...payg.keys()]);

  for (const accountId of accounts) {
    report.checked += 1;
    const sub = liveByAccount.get(accountId);
    const cost = payg.get(accountId);
    await each(report, options, accountId, 'weekly_summary', async () => {
      const buckets = await listUsageBuckets(accountId, { from: weekStart, to: weekEnd });
      const usedBytes = buckets.reduce((sum, row) => sum + row.bytesUp + row.bytesDown, 0);
      const connectedSeconds = buckets.reduce((sum, row) => sum + row.connectedSeconds, 0);
      const renews =
        sub?.status === 'active' && sub.planKind === 'recurring' && !sub.cancelAtPeriodEnd;
      return notify(
        {
          accountId,
          event: 'weekly_summary',
          period: week,
          data: {
            week,
            weekStart: weekStart.toISOString(),
            weekEnd: weekEnd.toISOString(),
            usedBytes,
            connectedSeconds,
            planCode: sub?.planCode ?? null,
            status: sub?.status ?? null,
            renewsAt: renews ? (sub.periodEnd?.toISOString() ?? null) : null,
            endsAt: sub && !renews ? (sub.periodEnd?.toISOString() ?? null) : null,
            paygCostMinor: cost?.amountMinor ?? 0,
            currency: cost?.currency ?? sub?.currency ?? null,
          },
        },
        { clock: options.clock },
      );
    });
  }
  return report;
}

/**
 * What pay as you go cost each account in [from, to), by the hour in the
 * ledger key (as core/payg.ts paygCostSoFar counts): debits count, returns
 * take off. A return is written after its hour, so entries are read from an
 * hour before the week on and filtered by their key.
 */
async function paygCostsOfWeek(
  from: Date,
  to: Date,
): Promise<Map<string, { amountMinor: number; currency: Currency }>> {
  const entries = await LedgerEntry.find(
    {
      status: 'applied',
      createdAt: { $gte: new Date(from.getTime() - HOUR_MS) },
      idempotencyKey: { $regex: '^payg' },
    },
    { idempotencyKey: 1, amountMinor: 1, currency: 1 },
  ).lean<{ idempotencyKey: string; amountMinor: number; currency: Currency }[]>();
  const costs = new Map<string, { amountMinor: number; currency: Currency }>();
  for (const entry of entries) {
    const parsed = parsePaygKey(entry.idempotencyKey);
    if (!parsed) continue;
    const at = parsed.hour.getTime();
    if (at < from.getTime() || at >= to.getTime()) continue;
    const cost = costs.get(parsed.accountId) ?? { amountMinor: 0, currency: entry.currency };
    // Debits are negative in the ledger and returns positive: the cost is the negation.
    cost.amountMinor -= entry.amountMinor;
    costs.set(parsed.accountId, cost);
  }
  return costs;
}

/** Runs one customer's notice, counting it; a domain failure is logged and the pass goes on. */
async function each(
  report: ReminderReport,
  options: ReminderOptions,
  accountId: Types.ObjectId | string,
  event: string,
  send: () => Promise<{ created: boolean }>,
): Promise<void> {
  try {
    if ((await send()).created) report.sent += 1;
  } catch (error) {
    if (!isDomainError(error)) throw error;
    report.failed += 1;
    options.logger?.warn({ err: error, accountId: String(accountId), event }, 'reminder.failed');
  }
}
