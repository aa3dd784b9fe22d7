/**
 * Cancelling a plan (core/cancellation.ts) on the test database: what the
 * customer is shown is what happens, once, whatever is repeated, expires,
 * changes underneath or crashes half way.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { confirmCancellation, quoteCancellation } from '../../../core/cancellation.js';
import { seedPlans } from '../../../core/plans.js';
import { openQuotaPeriod, recordUsage } from '../../../core/quota.js';
import { createSettingsStore } from '../../../core/settings.js';
import {
  activateFromPayment,
  getSubscription,
  startPayg,
  undoCancel,
} from '../../../core/subscriptions.js';
import { getWallet } from '../../../core/wallet.js';
import { TestClock } from '../../../lib/clock.js';
import { crashAt, SimulatedCrash } from '../../../lib/faults.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { useTestDatabase } from '../../support/database.js';
import { reasonOf } from '../../support/refusals.js';

useTestDatabase();
const GB = 1_000_000_000;
const DAY = 86_400_000;
const start = new Date('2026-11-01T00:00:00.000Z');
let clock: TestClock;
const settings = () => createSettingsStore({ clock });

beforeAll(async () => {
  await seedPlans(new TestClock(start.toISOString()));
});

/** A customer on Personal (15,000.00 NGN, 100 GB a month) from `start`, who used `usedGB`. */
async function personalCustomer(
  usedGB: number,
): Promise<{ accountId: string; subscriptionId: string }> {
  clock = new TestClock(start.toISOString());
  const account = await Account.create({ email: `c${Math.random()}@example.com` });
  const accountId = String(account._id);
  const sub = await activateFromPayment({
    accountId,
    planCode: 'personal',
    paymentRef: `ref_${accountId}`,
    clock,
  });
  await openQuotaPeriod(accountId, {
    periodStart: sub.periodStart as Date,
    periodEnd: sub.periodEnd as Date,
    limitBytes: 100 * GB,
  });
  if (usedGB > 0) await recordUsage(accountId, usedGB * GB, clock.now());
  return { accountId, subscriptionId: String(sub._id) };
}

const ctx = (faults?: ReturnType<typeof crashAt>) => ({
  clock,
  settings: settings(),
  ...(faults ? { faults } : {}),
});

async function cancelledNotices(accountId: string): Promise<number> {
  return Notification.countDocuments({ accountId, event: 'cancelled' });
}

describe('cancelling at once', () => {
  it('stops the plan and puts the unused part of the period in the wallet, once', async () => {
    const { accountId, subscriptionId } = await personalCustomer(10);
    clock.advance(6 * DAY); // a fifth of November: 80 % of the time and 90 % of the data left
    const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
    expect(quote).toMatchObject({ when: 'now', refundMinor: 1_200_000, refundTo: 'wallet' });
    expect(quote.lines).toEqual([
      'Cancel personal now?',
      'Your proxy access stops at once.',
      '₦12,000.00 goes back to your wallet (₦15,000.00 x the smaller of 80 % of the period left and 90 % of its data, rounded down).',
    ]);

    const outcome = await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
    expect(outcome).toMatchObject({ refundMinor: 1_200_000, walletBalanceMinor: 1_200_000 });
    expect((await getSubscription(subscriptionId)).status).toBe('cancelled');

    // A double tap: the same outcome, no second refund, no second notice.
    const again = await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
    expect(again).toEqual(outcome);
    expect((await getWallet(accountId)).balanceMinor).toBe(1_200_000);
    expect(await cancelledNotices(accountId)).toBe(1);
  });

  it('refunds by the data left when less data than time is left', async () => {
    const { accountId } = await personalCustomer(70);
    clock.advance(15 * DAY); // halfway, 30 % of the data left
    const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
    expect(quote.refundMinor).toBe(450_000);
  });

  it('refunds nothing when the business set cancellations to refund nothing', async () => {
    const { accountId, subscriptionId } = await personalCustomer(0);
    await settings().update({ cancellationRefund: 'none' }, { actor: 'test' });
    try {
      const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
      expect(quote).toMatchObject({ refundMinor: 0, refundTo: 'none' });
      expect(quote.lines).toContain('Nothing is refunded.');
      await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
      expect((await getSubscription(subscriptionId)).status).toBe('cancelled');
      expect((await getWallet(accountId)).balanceMinor).toBe(0);
    } finally {
      await settings().update({ cancellationRefund: 'wallet' }, { actor: 'test' });
    }
  });

  it('puts the refund in the wallet under the card policy when no card payment paid the period', async () => {
    // This plan was activated without a Paystack payment (as an admin's gift would be).
    const { accountId } = await personalCustomer(0);
    await settings().update({ cancellationRefund: 'card' }, { actor: 'test' });
    try {
      clock.advance(6 * DAY);
      const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
      expect(quote).toMatchObject({
        refundMinor: 1_200_000,
        refundTo: 'wallet',
        cardRefundMinor: 0,
      });
      expect(quote.lines[2]).toMatch(/^₦12,000\.00 goes back to your wallet/);
      // No payments context is needed: nothing goes to a card.
      const outcome = await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
      expect(outcome).toMatchObject({ refundTo: 'wallet', walletBalanceMinor: 1_200_000 });
    } finally {
      await settings().update({ cancellationRefund: 'wallet' }, { actor: 'test' });
    }
  });

  it.each(['cancel.claimed', 'cancel.subscription_cancelled', 'cancel.wallet_credited'])(
    'finishes once after a crash at %s',
    async (step) => {
      const { accountId, subscriptionId } = await personalCustomer(0);
      clock.advance(15 * DAY);
      const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
      const faults = crashAt(step);
      await expect(
        confirmCancellation(ctx(faults), { accountId, quoteId: quote.quoteId }),
      ).rejects.toThrow(SimulatedCrash);

      const outcome = await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
      expect(outcome.refundMinor).toBe(750_000);
      expect((await getSubscription(subscriptionId)).status).toBe('cancelled');
      expect((await getWallet(accountId)).balanceMinor).toBe(750_000);
      expect(await cancelledNotices(accountId)).toBe(1);
    },
  );
});

describe('cancelling at the end of the period', () => {
  it('keeps the plan running to the end, moves no money, and can be undone', async () => {
    const { accountId, subscriptionId } = await personalCustomer(0);
    clock.advance(6 * DAY);
    const quote = await quoteCancellation(ctx(), { accountId, when: 'period_end' });
    expect(quote).toMatchObject({ refundMinor: 0, endsAt: new Date('2026-12-01T00:00:00.000Z') });
    expect(quote.lines[1]).toBe(
      'Your plan keeps working until 2026-12-01, then stops. Nothing is refunded.',
    );

    await confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId });
    const sub = await getSubscription(subscriptionId);
    expect(sub).toMatchObject({ status: 'active', cancelAtPeriodEnd: true });
    expect((await getWallet(accountId)).balanceMinor).toBe(0);

    await expect(quoteCancellation(ctx(), { accountId, when: 'period_end' })).rejects.toThrow(
      'already set to end',
    );
    await undoCancel(subscriptionId, { clock });
    expect((await getSubscription(subscriptionId)).cancelAtPeriodEnd).toBe(false);
  });

  it('is refused for pay as you go, which has no period', async () => {
    clock = new TestClock(start.toISOString());
    const account = await Account.create({ email: `p${Math.random()}@example.com` });
    await startPayg({ accountId: String(account._id), clock });
    await expect(
      quoteCancellation(ctx(), { accountId: String(account._id), when: 'period_end' }),
    ).rejects.toThrow('can only stop now');
    const now = await quoteCancellation(ctx(), { accountId: String(account._id), when: 'now' });
    expect(now.refundMinor).toBe(0);
  });
});

describe('quotes that cannot be confirmed', () => {
  it('refuses an expired quote and changes nothing', async () => {
    const { accountId, subscriptionId } = await personalCustomer(0);
    const quote = await quoteCancellation(ctx(), { accountId, when: 'now' });
    clock.advance(15 * 60_000 + 1);
    expect(await reasonOf(confirmCancellation(ctx(), { accountId, quoteId: quote.quoteId }))).toBe(
      'EXPIRED',
    );
    expect((await getSubscription(subscriptionId)).status).toBe('active');
    expect((await getWallet(accountId)).balanceMinor).toBe(0);
  });

  it('refuses a quote whose subscription changed since', async () => {
    const { accountId, subscriptionId } = await personalCustomer(0);
    const refund = await quoteCancellation(ctx(), { accountId, when: 'now' });
    const atEnd = await quoteCancellation(ctx(), { accountId, when: 'period_end' });
    await confirmCancellation(ctx(), { accountId, quoteId: atEnd.quoteId });
    expect(await reasonOf(confirmCancellation(ctx(), { accountId, quoteId: refund.quoteId }))).toBe(
      'STALE',
    );
    expect((await getSubscription(subscriptionId)).status).toBe('active');
    expect((await getWallet(accountId)).balanceMinor).toBe(0);
  });

  it("refuses another account's quote and a made-up one", async () => {
    const owner = await personalCustomer(0);
    const other = await personalCustomer(0);
    const quote = await quoteCancellation(ctx(), { accountId: owner.accountId, when: 'now' });
    for (const attempt of [
      confirmCancellation(ctx(), { accountId: other.accountId, quoteId: quote.quoteId }),
      confirmCancellation(ctx(), { accountId: owner.accountId, quoteId: 'nonsense' }),
    ]) {
      expect(await reasonOf(attempt)).toBe('NOT_FOUND');
    }
    expect((await getSubscription(owner.subscriptionId)).status).toBe('active');
  });
});
