/**
 * The reminder passes against a real database, with time moved by a TestClock:
 * each notice goes out once at the right moment, with what the customer will
 * be charged, and not at all when it does not apply.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import { setPreferences } from '../../../core/notifications.js';
import { paygHourKey } from '../../../core/payg.js';
import { seedPlans } from '../../../core/plans.js';
import {
  isoWeekId,
  sendRenewalReminders,
  sendTrialEndingWarnings,
  sendWeeklySummaries,
} from '../../../core/reminders.js';
import { createSettingsStore } from '../../../core/settings.js';
import {
  activateFromPayment,
  cancel,
  renewPeriod,
  schedulePlanChange,
} from '../../../core/subscriptions.js';
import { addToUsageBuckets, ALL_LOCATIONS } from '../../../core/usage.js';
import { credit, debit } from '../../../core/wallet.js';
import { Account } from '../../../models/account.js';
import { Notification, type NotificationEvent } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { PaymentMethod } from '../../../models/payment-method.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
let customers = 0;

async function newCustomer(): Promise<string> {
  customers += 1;
  const account = await Account.create({ email: `r${customers}@example.com` });
  return account._id.toHexString();
}

async function notices(accountId: string, event: NotificationEvent) {
  return Notification.find({ accountId, event }).sort({ createdAt: 1, _id: 1 }).lean();
}

function at(clock: TestClock, time: Date, offsetMs: number): void {
  clock.set(new Date(time.getTime() + offsetMs));
}

beforeAll(async () => {
  await seedPlans(new TestClock('2026-01-01T00:00:00Z'));
});

describe('renewal reminders', () => {
  it('reminds once, from 3 days before the period end, and again for the next period', async () => {
    const clock = new TestClock('2026-03-02T09:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const accountId = await newCustomer();
    const sub = await activateFromPayment({
      accountId,
      planCode: 'starter',
      paymentRef: `pay-${accountId}`,
      clock,
    });
    const periodEnd = sub.periodEnd ?? new Date(NaN);

    at(clock, periodEnd, -4 * DAY_MS);
    await sendRenewalReminders({ clock, settings });
    expect(await notices(accountId, 'renewal_due')).toHaveLength(0);

    at(clock, periodEnd, -3 * DAY_MS);
    await sendRenewalReminders({ clock, settings });
    at(clock, periodEnd, -2 * DAY_MS);
    await sendRenewalReminders({ clock, settings });
    await sendRenewalReminders({ clock, settings });
    const first = await notices(accountId, 'renewal_due');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      period: periodEnd.toISOString(),
      data: {
        planCode: 'starter',
        periodEnd: periodEnd.toISOString(),
        amountMinor: 350_000,
        currency: 'NGN',
        chargesSavedCard: false,
      },
    });

    // Renewed at the period end; by now the customer saved a card.
    at(clock, periodEnd, 0);
    const renewed = await renewPeriod(sub._id, { paymentRef: `ren-${accountId}`, clock });
    await PaymentMethod.create({
      accountId,
      provider: 'paystack',
      authorizationCode: 'AUTH_test',
      email: `r${customers}@example.com`,
      last4: '4081',
      savedFromReference: `ren-${accountId}`,
    });
    const nextEnd = renewed.subscription.periodEnd ?? new Date(NaN);
    expect(nextEnd.getTime()).toBeGreaterThan(periodEnd.getTime());
    at(clock, nextEnd, -3 * DAY_MS + HOUR_MS);
    await sendRenewalReminders({ clock, settings });
    await sendRenewalReminders({ clock, settings });

    const all = await notices(accountId, 'renewal_due');
    expect(all.map((n) => n.period)).toEqual([periodEnd.toISOString(), nextEnd.toISOString()]);
    expect(all[1]?.data).toMatchObject({ amountMinor: 350_000, chargesSavedCard: true });
  });

  it('quotes the new plan’s price when a downgrade is scheduled for the period end', async () => {
    const clock = new TestClock('2026-03-02T09:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const accountId = await newCustomer();
    const sub = await activateFromPayment({
      accountId,
      planCode: 'personal',
      paymentRef: `pay-${accountId}`,
      clock,
    });
    await schedulePlanChange(sub._id, { planCode: 'starter', changeRef: 'chg-1', clock });

    at(clock, sub.periodEnd ?? new Date(NaN), -DAY_MS);
    await sendRenewalReminders({ clock, settings });

    const [reminder] = await notices(accountId, 'renewal_due');
    expect(reminder?.data).toMatchObject({
      planCode: 'starter',
      currentPlanCode: 'personal',
      amountMinor: 350_000,
    });
  });

  it('sends nothing for a plan set to cancel at its period end', async () => {
    const clock = new TestClock('2026-03-02T09:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const accountId = await newCustomer();
    const sub = await activateFromPayment({
      accountId,
      planCode: 'starter',
      paymentRef: `pay-${accountId}`,
      clock,
    });
    await cancel(sub._id, { atPeriodEnd: true, clock });

    at(clock, sub.periodEnd ?? new Date(NaN), -DAY_MS);
    await sendRenewalReminders({ clock, settings });

    expect(await notices(accountId, 'renewal_due')).toHaveLength(0);
  });

  it('reminds on the day the admins set in renewalReminderDays', async () => {
    const clock = new TestClock('2026-03-02T09:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const accountId = await newCustomer();
    const sub = await activateFromPayment({
      accountId,
      planCode: 'starter',
      paymentRef: `pay-${accountId}`,
      clock,
    });
    await settings.update({ renewalReminderDays: 7 }, { actor: 'test' });
    try {
      at(clock, sub.periodEnd ?? new Date(NaN), -6 * DAY_MS);
      await sendRenewalReminders({ clock, settings });
      expect(await notices(accountId, 'renewal_due')).toHaveLength(1);
    } finally {
      await settings.update({ renewalReminderDays: 3 }, { actor: 'test' });
    }
  });
});

describe('trial ending warnings', () => {
  it('warns a trial once, within 24 hours of its end, with the deposit it will return', async () => {
    const clock = new TestClock('2026-03-02T09:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const accountId = await newCustomer();
    const reference = `dep-${accountId}`;
    await Payment.create({
      reference,
      accountId,
      purpose: 'trial_deposit',
      amountMinor: 200_000,
      currency: 'NGN',
      email: 'trial@example.com',
      status: 'paid',
      openedAt: clock.now(),
    });
    const sub = await activateFromPayment({
      accountId,
      planCode: 'trial',
      paymentRef: reference,
      clock,
    });
    const trialEndsAt = sub.trialEndsAt ?? new Date(NaN);

    at(clock, trialEndsAt, -25 * HOUR_MS);
    await sendTrialEndingWarnings({ clock, settings });
    expect(await notices(accountId, 'trial_ending')).toHaveLength(0);

    at(clock, trialEndsAt, -23 * HOUR_MS);
    await sendTrialEndingWarnings({ clock, settings });
    at(clock, trialEndsAt, -HOUR_MS);
    await sendTrialEndingWarnings({ clock, settings });

    const warnings = await notices(accountId, 'trial_ending');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      period: trialEndsAt.toISOString(),
      data: {
        trialEndsAt: trialEndsAt.toISOString(),
        depositMinor: 200_000,
        currency: 'NGN',
        depositRefundTo: 'card',
      },
    });
  });
});

describe('weekly summary', () => {
  // 2026-03-02 is a Monday: the week 2026-W10 runs to 2026-03-09T00:00Z.
  const weekStart = new Date('2026-03-02T00:00:00Z');
  const weekEnd = new Date('2026-03-09T00:00:00Z');

  it('sends last week once to customers with a plan or PAYG use, skipped for one who muted it', async () => {
    const clock = new TestClock('2026-03-02T08:00:00Z');
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const subscriber = await newCustomer();
    const muted = await newCustomer();
    const payg = await newCustomer();
    const idle = await newCustomer();
    for (const accountId of [subscriber, muted]) {
      await activateFromPayment({
        accountId,
        planCode: 'starter',
        paymentRef: `pay-${accountId}`,
        clock,
      });
    }
    await setPreferences(muted, { mutedEvents: ['weekly_summary'] });

    // 2 GB relayed by the subscriber in the week, 1 GB just after it.
    const hour = new Date('2026-03-04T10:00:00Z');
    await addToUsageBuckets([
      { accountId: subscriber, hourStart: hour, location: 'ng', bytesDown: 1_500_000_000 },
      { accountId: subscriber, hourStart: hour, location: 'gb', bytesUp: 500_000_000 },
      { accountId: subscriber, hourStart: hour, location: ALL_LOCATIONS, connectedSeconds: 600 },
      { accountId: subscriber, hourStart: weekEnd, location: 'ng', bytesDown: 1_000_000_000 },
      { accountId: idle, hourStart: hour, location: 'ng', bytesDown: 1_000 },
    ]);
    // Two connected PAYG hours (₦150 each) in the week, one in the week after.
    await credit(
      payg,
      { amountMinor: 100_000, currency: 'NGN', key: `topup:${payg}`, description: 'top-up' },
      { clock },
    );
    for (const paygHour of [hour, new Date(hour.getTime() + HOUR_MS), weekEnd]) {
      // The gateway charges an hour as it starts.
      clock.set(paygHour);
      await debit(
        payg,
        {
          amountMinor: 15_000,
          currency: 'NGN',
          key: paygHourKey(payg, paygHour),
          description: 'hour',
        },
        { clock },
      );
    }

    // Not yet: the week has just ended and the closing pass may still give data back.
    clock.set('2026-03-09T00:30:00Z');
    await sendWeeklySummaries({ clock, settings });
    expect(await notices(subscriber, 'weekly_summary')).toHaveLength(0);

    clock.set('2026-03-09T01:30:00Z');
    await sendWeeklySummaries({ clock, settings });
    clock.set('2026-03-09T02:30:00Z');
    await sendWeeklySummaries({ clock, settings });

    const week = isoWeekId(weekStart);
    expect(week).toBe('2026-W10');
    const [summary, ...more] = await notices(subscriber, 'weekly_summary');
    expect(more).toHaveLength(0);
    expect(summary).toMatchObject({
      period: week,
      data: {
        week,
        weekStart: weekStart.toISOString(),
        weekEnd: weekEnd.toISOString(),
        usedBytes: 2_000_000_000,
        connectedSeconds: 600,
        planCode: 'starter',
        status: 'active',
        paygCostMinor: 0,
      },
    });
    expect(summary?.deliveries?.email?.status).toBe('pending');

    const [mutedSummary] = await notices(muted, 'weekly_summary');
    expect(mutedSummary?.deliveries?.email?.status).toBe('skipped');

    const [paygSummary] = await notices(payg, 'weekly_summary');
    expect(paygSummary?.data).toMatchObject({
      planCode: null,
      paygCostMinor: 30_000,
      currency: 'NGN',
    });
    expect(await notices(idle, 'weekly_summary')).toHaveLength(0);

    // The next week: the plans again; PAYG only had use in the week after W10 ended.
    clock.set('2026-03-16T03:00:00Z');
    await sendWeeklySummaries({ clock, settings });
    expect((await notices(subscriber, 'weekly_summary')).map((n) => n.period)).toEqual([
      '2026-W10',
      '2026-W11',
    ]);
    const paygWeeks = await notices(payg, 'weekly_summary');
    expect(
      paygWeeks.map((n) => [n.period, (n.data as { paygCostMinor: number }).paygCostMinor]),
    ).toEqual([
      ['2026-W10', 30_000],
      ['2026-W11', 15_000],
    ]);
  });

  it('numbers ISO weeks by their Thursday across the new year', () => {
    expect(isoWeekId(new Date('2026-01-01T12:00:00Z'))).toBe('2026-W01');
    expect(isoWeekId(new Date('2025-12-29T00:00:00Z'))).toBe('2026-W01');
    expect(isoWeekId(new Date('2027-01-01T00:00:00Z'))).toBe('2026-W53');
    expect(isoWeekId(new Date('2026-03-08T23:59:59Z'))).toBe('2026-W10');
  });
});
