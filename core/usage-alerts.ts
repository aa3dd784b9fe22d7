/**
 * Usage-threshold alerts (issue 8): the customer hears when a quota counter
 * passes 50, 80, 95 and 100 % of its limit, when it will run out before its
 * period ends at the recent rate, and (PAYG) when the wallet is low or will
 * run out soon.
 *
 *   sweepUsageAlerts      jobs role, every 10 min: every open counter and every
 *                         PAYG wallet (the safety net; finds what the gateway
 *                         missed, e.g. usage booked by recordUsage elsewhere)
 *   alertOnSettle         gateway, after each settle: decides from the numbers
 *                         the settle returned (no I/O) and notifies right away
 *   sweepUsageForecasts   jobs role: the predictive warnings
 *
 * Each alert is one outbox item per dedup key (core/notifications.ts): a
 * usage threshold's period is the counter's `periodStart` ISO, so it goes out
 * at most once per quota period whoever raises it first, and a new period
 * raises it again. Only the highest threshold reached is sent: a counter seen
 * at 55 % then 85 % gets usage_50 then usage_80, one that jumps from 40 % to
 * 100 % between two looks gets usage_100 alone (three messages at once would
 * say nothing more).
 *
 * Who hears: the counter's account. A team's pooled counter is kept on the
 * owner's account and a capped seat's cap on the seat's own, so that is the
 * owner for the pool and the seat for its cap. PAYG hour counters (one hour
 * long, topped up in data blocks) are not quotas the customer chose and are
 * left out; PAYG customers hear about their wallet instead.
 */
import mongoose, { type Connection, type Types } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { ledgerEntryModelOn } from '../models/ledger-entry.js';
import { Notification, type NotificationEvent } from '../models/notification.js';
import { quotaUsageModelOn } from '../models/quota-usage.js';
import { Subscription } from '../models/subscription.js';
import { teamSeatModelOn } from '../models/team-seat.js';
import { walletModelOn } from '../models/wallet.js';
import { notificationDedupKey, notify } from './notifications.js';
import type { QuotaPeriodView } from './quota.js';
import { DEFAULT_SETTINGS, type BusinessSettings, type SettingsStore } from './settings.js';
import { hourEnd, listUsageBuckets } from './usage.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The thresholds that have an event (models/notification.ts), in percent. */
export const USAGE_THRESHOLDS_PCT = [50, 80, 95, 100] as const;
export type UsageThresholdPct = (typeof USAGE_THRESHOLDS_PCT)[number];

/** The usage rate a forecast extrapolates is measured over this much of the recent past. */
export const FORECAST_WINDOW_MS = 3 * DAY_MS;
/** No forecast before the period has run this long: an hour's burst says little about a week. */
export const FORECAST_MIN_OBSERVED_MS = 12 * HOUR_MS;
/** PAYG: warn when the wallet runs out within this many hours at the recent spend. */
export const WALLET_FORECAST_HORIZON_HOURS = 24;
/** PAYG: the recent hourly spend is the average over this many hours. */
export const WALLET_FORECAST_WINDOW_HOURS = 6;

export interface UsageAlertOptions {
  clock: Clock;
  /** The business settings (thresholds, wallet-low level); defaults apply without it. */
  settings?: Pick<SettingsStore, 'get'>;
  /** Defaults to mongoose's default connection. */
  connection?: Connection;
  logger?: Logger;
}

/** The counter figures the alerts read. */
export type CounterFigures = Pick<
  QuotaPeriodView,
  'accountId' | 'periodStart' | 'periodEnd' | 'limitBytes' | 'usedBytes'
>;

export interface UsageSweepReport {
  countersChecked: number;
  /** Notifications written by this pass (already-sent ones are not counted). */
  usageAlerts: number;
  walletLowAlerts: number;
}

export interface ForecastSweepReport {
  usageForecasts: number;
  walletForecasts: number;
}

/** A PAYG hour's data counter (core/payg.ts), not a plan's quota. */
export function isPaygHourCounter(counter: Pick<CounterFigures, 'periodStart' | 'periodEnd'>) {
  return counter.periodEnd.getTime() - counter.periodStart.getTime() <= HOUR_MS;
}

/** The highest of `thresholds` that `usedBytes` reaches, or null (integer arithmetic, no rounding). */
export function highestThresholdReached(
  usedBytes: number,
  limitBytes: number,
  thresholds: readonly UsageThresholdPct[] = USAGE_THRESHOLDS_PCT,
): UsageThresholdPct | null {
  if (limitBytes <= 0) return null;
  let reached: UsageThresholdPct | null = null;
  for (const pct of thresholds) if (usedBytes * 100 >= pct * limitBytes) reached = pct;
  return reached;
}

/**
 * The highest threshold that booking `bookedBytes` moved the counter across
 * (below it before, at or above it after), or null. Pure: the gateway calls
 * it with the counter a settle returned.
 */
export function thresholdCrossed(
  counter: Pick<CounterFigures, 'limitBytes' | 'usedBytes'>,
  bookedBytes: number,
  thresholds: readonly UsageThresholdPct[] = USAGE_THRESHOLDS_PCT,
): UsageThresholdPct | null {
  const after = highestThresholdReached(counter.usedBytes, counter.limitBytes, thresholds);
  if (after === null || bookedBytes <= 0) return null;
  const before = highestThresholdReached(
    counter.usedBytes - bookedBytes,
    counter.limitBytes,
    thresholds,
  );
  return before === after ? null : after;
}

/** The period key of a counter's usage alerts: the same for the gateway and the sweep. */
export function usageAlertPeriod(counter: Pick<CounterFigures, 'periodStart'>): string {
  return counter.periodStart.toISOString();
}

function usageEvent(pct: UsageThresholdPct): NotificationEvent {
  return `usage_${pct}`;
}

function usageData(counter: CounterFigures): Record<string, unknown> {
  return {
    usedBytes: counter.usedBytes,
    limitBytes: counter.limitBytes,
    percent: Math.floor((counter.usedBytes * 100) / counter.limitBytes),
    periodEnd: counter.periodEnd.toISOString(),
  };
}

/** Writes the usage alert for `pct` (once per counter period). True when it is new. */
export async function notifyUsageThreshold(
  counter: CounterFigures,
  pct: UsageThresholdPct,
  { clock }: { clock: Clock },
): Promise<boolean> {
  const { created } = await notify(
    {
      accountId: counter.accountId,
      event: usageEvent(pct),
      period: usageAlertPeriod(counter),
      data: usageData(counter),
    },
    { clock },
  );
  return created;
}

/**
 * For the gateway, after a settle booked `bookedBytes` on `counter` (the
 * counter as the settle returned it): when that crossed one of the business's
 * thresholds (`settings`, read from its few-seconds cache; the defaults
 * without one), the alert is written in the background (fire and forget,
 * failures logged), so the customer hears within a flush and the next sweep
 * finds it sent.
 */
export function alertOnSettle(
  counter: CounterFigures,
  bookedBytes: number,
  {
    clock,
    logger,
    settings,
  }: {
    clock: Clock;
    logger?: Logger | undefined;
    settings?: Pick<SettingsStore, 'get'> | undefined;
  },
): void {
  if (isPaygHourCounter(counter) || bookedBytes <= 0) return;
  const alert = async (): Promise<void> => {
    const { thresholds } = await thresholdsFrom({ clock, ...(settings ? { settings } : {}) });
    const pct = thresholdCrossed(counter, bookedBytes, thresholds);
    if (pct !== null) await notifyUsageThreshold(counter, pct, { clock });
  };
  alert().catch((error: unknown) =>
    logger?.warn({ err: error, accountId: counter.accountId }, 'usage.alert_failed'),
  );
}

async function thresholdsFrom(options: UsageAlertOptions): Promise<{
  thresholds: UsageThresholdPct[];
  settings: Pick<BusinessSettings, 'walletLowThresholdMinor' | 'currency'>;
}> {
  const settings = options.settings ? await options.settings.get() : DEFAULT_SETTINGS;
  // Only thresholds that have an event can be sent; an admin's other values are ignored.
  const known: readonly number[] = USAGE_THRESHOLDS_PCT;
  const thresholds = settings.usageThresholdsPct.filter((pct): pct is UsageThresholdPct =>
    known.includes(pct),
  );
  return { thresholds, settings };
}

interface CounterRecord {
  accountId: Types.ObjectId;
  periodStart: Date;
  periodEnd: Date;
  limitBytes: number;
  usedBytes: number;
}

function figures(record: CounterRecord): CounterFigures {
  return {
    accountId: String(record.accountId),
    periodStart: record.periodStart,
    periodEnd: record.periodEnd,
    limitBytes: record.limitBytes,
    usedBytes: record.usedBytes,
  };
}

/**
 * The open plan counters (not PAYG hours) with some usage. A seat's counter
 * whose cap was lifted is left out: the seat draws on the team's pool now.
 */
async function openCounters(now: Date, connection: Connection): Promise<CounterFigures[]> {
  const records = await quotaUsageModelOn(connection)
    .find({ periodStart: { $lte: now }, periodEnd: { $gt: now }, usedBytes: { $gt: 0 } })
    .select({ accountId: 1, periodStart: 1, periodEnd: 1, limitBytes: 1, usedBytes: 1 })
    .lean<CounterRecord[]>();
  const counters = records.map(figures).filter((c) => c.limitBytes > 0 && !isPaygHourCounter(c));
  if (counters.length === 0) return counters;
  const uncapped = await teamSeatModelOn(connection)
    .find({
      memberAccountId: { $in: counters.map((c) => c.accountId) },
      capBytes: null,
    })
    .select({ memberAccountId: 1 })
    .lean<{ memberAccountId: Types.ObjectId }[]>();
  const skip = new Set(uncapped.map((seat) => String(seat.memberAccountId)));
  return counters.filter((c) => !skip.has(c.accountId));
}

/** The dedup keys among `keys` that already have an outbox item. */
async function existingKeys(keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await Notification.find({ dedupKey: { $in: keys } })
    .select({ dedupKey: 1 })
    .lean<{ dedupKey: string }[]>();
  return new Set(rows.map((row) => row.dedupKey));
}

/**
 * One pass: every open counter's highest reached threshold not yet sent this
 * period, and wallet_low for PAYG wallets below the business's
 * `walletLowThresholdMinor` (once per UTC day while low). Idempotent: a rerun
 * sends nothing new.
 */
export async function sweepUsageAlerts(options: UsageAlertOptions): Promise<UsageSweepReport> {
  const { clock } = options;
  const connection = options.connection ?? mongoose.connection;
  const now = clock.now();
  const { thresholds, settings } = await thresholdsFrom(options);

  const counters = await openCounters(now, connection);
  const due = counters.flatMap((counter) => {
    const pct = highestThresholdReached(counter.usedBytes, counter.limitBytes, thresholds);
    if (pct === null) return [];
    const key = notificationDedupKey(counter.accountId, usageEvent(pct), usageAlertPeriod(counter));
    return [{ counter, pct, key }];
  });
  const sent = await existingKeys(due.map((d) => d.key));
  let usageAlerts = 0;
  for (const { counter, pct, key } of due) {
    if (sent.has(key)) continue;
    if (await notifyUsageThreshold(counter, pct, { clock })) usageAlerts += 1;
  }

  let walletLowAlerts = 0;
  for (const wallet of await paygWallets(connection)) {
    if (wallet.currency !== settings.currency) continue;
    if (wallet.balanceMinor >= settings.walletLowThresholdMinor) continue;
    // Auto top-up customers hear from core/payments/auto-topup.ts when it cannot refill.
    if (wallet.hasAutoTopUp) continue;
    const { created } = await notify(
      {
        accountId: wallet.accountId,
        event: 'wallet_low',
        period: `low:${utcDay(now)}`,
        data: { balanceMinor: wallet.balanceMinor, currency: wallet.currency },
      },
      { clock },
    );
    if (created) walletLowAlerts += 1;
  }
  return { countersChecked: counters.length, usageAlerts, walletLowAlerts };
}

interface PaygWallet {
  accountId: string;
  balanceMinor: number;
  currency: string;
  hasAutoTopUp: boolean;
}

/** Wallets of accounts whose live subscription is PAYG. */
async function paygWallets(connection: Connection): Promise<PaygWallet[]> {
  const live = await Subscription.find({ planKind: 'payg', liveAccountId: { $exists: true } })
    .select({ accountId: 1 })
    .lean<{ accountId: Types.ObjectId }[]>();
  if (live.length === 0) return [];
  const wallets = await walletModelOn(connection)
    .find({ accountId: { $in: live.map((s) => s.accountId) } })
    .select({ accountId: 1, balanceMinor: 1, currency: 1, autoTopUp: 1 })
    .lean<
      {
        accountId: Types.ObjectId;
        balanceMinor: number;
        currency: string;
        autoTopUp?: unknown;
      }[]
    >();
  return wallets.map((w) => ({
    accountId: String(w.accountId),
    balanceMinor: w.balanceMinor,
    currency: w.currency,
    hasAutoTopUp: w.autoTopUp != null,
  }));
}

function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/**
 * The predictive warnings, once per period each:
 * - usage_forecast: at the rate of the last 3 days (usage buckets of the
 *   counter's account, and of the team's seats for a pooled counter; never
 *   before the period started), the counter reaches its limit before the
 *   period ends. Not before the period has run FORECAST_MIN_OBSERVED_MS, nor
 *   once it is spent (usage_100 says that).
 * - wallet_forecast (PAYG, period = UTC day): at the average hourly spend of
 *   the last WALLET_FORECAST_WINDOW_HOURS, the wallet is empty within
 *   WALLET_FORECAST_HORIZON_HOURS.
 */
export async function sweepUsageForecasts(
  options: UsageAlertOptions,
): Promise<ForecastSweepReport> {
  const { clock } = options;
  const connection = options.connection ?? mongoose.connection;
  const now = clock.now();

  let usageForecasts = 0;
  const counters = (await openCounters(now, connection)).filter(
    (c) =>
      c.usedBytes < c.limitBytes &&
      now.getTime() - c.periodStart.getTime() >= FORECAST_MIN_OBSERVED_MS,
  );
  const sent = await existingKeys(
    counters.map((c) => notificationDedupKey(c.accountId, 'usage_forecast', usageAlertPeriod(c))),
  );
  for (const counter of counters) {
    const key = notificationDedupKey(
      counter.accountId,
      'usage_forecast',
      usageAlertPeriod(counter),
    );
    if (sent.has(key)) continue;
    const forecast = await forecastCounter(counter, now, connection);
    if (!forecast) continue;
    const { created } = await notify(
      {
        accountId: counter.accountId,
        event: 'usage_forecast',
        period: usageAlertPeriod(counter),
        data: {
          ...usageData(counter),
          bytesPerHour: forecast.bytesPerHour,
          runsOutAt: forecast.runsOutAt.toISOString(),
        },
      },
      { clock },
    );
    if (created) usageForecasts += 1;
  }

  let walletForecasts = 0;
  const wallets = (await paygWallets(connection)).filter((w) => w.balanceMinor > 0);
  for (const wallet of wallets) {
    const hourlySpendMinor = await recentHourlySpend(wallet.accountId, now, connection);
    if (hourlySpendMinor <= 0) continue;
    const hoursLeft = wallet.balanceMinor / hourlySpendMinor;
    if (hoursLeft >= WALLET_FORECAST_HORIZON_HOURS) continue;
    const { created } = await notify(
      {
        accountId: wallet.accountId,
        event: 'wallet_forecast',
        period: utcDay(now),
        data: {
          balanceMinor: wallet.balanceMinor,
          currency: wallet.currency,
          hourlySpendMinor: Math.round(hourlySpendMinor),
          runsOutAt: new Date(now.getTime() + hoursLeft * HOUR_MS).toISOString(),
        },
      },
      { clock },
    );
    if (created) walletForecasts += 1;
  }
  return { usageForecasts, walletForecasts };
}

/** When the counter runs out at the recent rate, if that is before its period ends. */
async function forecastCounter(
  counter: CounterFigures,
  now: Date,
  connection: Connection,
): Promise<{ bytesPerHour: number; runsOutAt: Date } | null> {
  const from = new Date(
    Math.max(now.getTime() - FORECAST_WINDOW_MS, counter.periodStart.getTime()),
  );
  // A pooled counter is spent by the owner and every seat.
  const seats = await teamSeatModelOn(connection)
    .find({ ownerAccountId: counter.accountId })
    .select({ memberAccountId: 1 })
    .lean<{ memberAccountId: Types.ObjectId }[]>();
  const accounts = [counter.accountId, ...seats.map((s) => String(s.memberAccountId))];
  let bytes = 0;
  for (const accountId of accounts) {
    // Hourly buckets: the one holding `from` is counted whole, the current one as far as it goes.
    const buckets = await listUsageBuckets(accountId, { from, to: hourEnd(now) }, { connection });
    for (const bucket of buckets) bytes += bucket.bytesUp + bucket.bytesDown;
  }
  const observedMs = now.getTime() - from.getTime();
  if (bytes <= 0 || observedMs <= 0) return null;
  const remaining = counter.limitBytes - counter.usedBytes;
  const runsOutAt = new Date(now.getTime() + Math.round((remaining / bytes) * observedMs));
  if (runsOutAt.getTime() >= counter.periodEnd.getTime()) return null;
  return { bytesPerHour: Math.round((bytes / observedMs) * HOUR_MS), runsOutAt };
}

/** Average applied debits per hour over the last WALLET_FORECAST_WINDOW_HOURS, minor units. */
async function recentHourlySpend(
  accountId: string,
  now: Date,
  connection: Connection,
): Promise<number> {
  const from = new Date(now.getTime() - WALLET_FORECAST_WINDOW_HOURS * HOUR_MS);
  const entries = await ledgerEntryModelOn(connection)
    .find({ accountId, kind: 'debit', status: 'applied', createdAt: { $gte: from, $lte: now } })
    .select({ amountMinor: 1 })
    .lean<{ amountMinor: number }[]>();
  const spent = entries.reduce((sum, entry) => sum - entry.amountMinor, 0);
  return spent / WALLET_FORECAST_WINDOW_HOURS;
}
