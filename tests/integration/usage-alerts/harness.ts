/**
 * What the usage-alert tests share: Starter customers (10 GB a week) with
 * their current quota window open, usage booked straight on the counter, and
 * the customer notifications the outbox holds.
 */
import { getPlan } from '../../../core/plans.js';
import { openQuotaPeriod, planWindowRequest, type QuotaPeriodView } from '../../../core/quota.js';
import { currentQuotaWindow, getCurrentSubscription } from '../../../core/subscriptions.js';
import type { TestClock } from '../../../lib/clock.js';
import { Notification, type NotificationEvent } from '../../../models/notification.js';
import { newCustomer, type Customer } from '../proxy/access/harness.js';

export const GB = 1_000_000_000;

/** Opens the customer's quota window containing `clock.now()` as the gateway would. */
export async function openCurrentWindow(
  customer: Customer,
  clock: TestClock,
): Promise<QuotaPeriodView> {
  const subscription = await getCurrentSubscription(customer.accountId);
  const window = subscription ? currentQuotaWindow(subscription, clock.now()) : null;
  if (!subscription || !window) throw new Error('no quota window');
  const plan = await getPlan(subscription.planCode);
  if (!plan.quota) throw new Error(`${plan.code} has no quota`);
  return openQuotaPeriod(customer.accountId, planWindowRequest(window, plan.quota));
}

/** A Starter customer (10 GB a week) whose current window is open. */
export async function starterCustomer(
  clock: TestClock,
): Promise<{ customer: Customer; counter: QuotaPeriodView }> {
  const customer = await newCustomer('starter', clock);
  return { customer, counter: await openCurrentWindow(customer, clock) };
}

export interface SentNotice {
  event: string;
  period: string | undefined;
  data: Record<string, unknown>;
}

/** The account's notifications of `events`, oldest first. */
export async function noticesOf(
  accountId: string,
  events: readonly NotificationEvent[],
): Promise<SentNotice[]> {
  const rows = await Notification.find({ accountId, event: { $in: [...events] } })
    .sort({ createdAt: 1, _id: 1 })
    .lean<{ event: string; period?: string | null; data?: unknown }[]>();
  return rows.map((row) => ({
    event: row.event,
    period: row.period ?? undefined,
    data: row.data as Record<string, unknown>,
  }));
}

export const USAGE_EVENTS = ['usage_50', 'usage_80', 'usage_95', 'usage_100'] as const;
