/**
 * Changing plan through the real Paystack client and the emulator: quote,
 * confirm, pay with the saved card or a link, and what the customer then has
 * (plan, price, period, quota window, wallet, invoice), exactly once.
 *
 * Each customer buys at the start of a 30-day month of its own (the shared
 * clock is set forward to it), so periods are 30 days and the expected
 * amounts are round.
 */
import { describe, expect, it } from '@jest/globals';
import { getQuotaUsage, openQuotaPeriod, recordUsage } from '../../../core/quota.js';
import {
  cancel,
  currentQuotaWindow,
  getLiveSubscription,
  getSubscription,
  renewPeriod,
  startPayg,
} from '../../../core/subscriptions.js';
import { getWallet } from '../../../core/wallet.js';
import { addSeat } from '../../../core/team.js';
import { listInvoices } from '../../../core/invoices.js';
import { crashAt, SimulatedCrash } from '../../../lib/faults.js';
import { Payment } from '../../../models/payment.js';
import { Notification } from '../../../models/notification.js';
import { useTestDatabase } from '../../support/database.js';
import { reasonOf } from '../../support/refusals.js';
import { usePaymentsHarness } from '../../support/payments.js';

useTestDatabase();
const h = usePaymentsHarness();
const GB = 1_000_000_000;
const DAY = 86_400_000;

/** A customer who bought `planCode` with a card (saved), and used `usedGB` of the current window by `afterDays`. */
let month = 0;
/** Months of 30 days from April 2027, one per customer, in order. */
const THIRTY_DAY_MONTHS = [
  '2027-04',
  '2027-06',
  '2027-09',
  '2027-11',
  '2028-04',
  '2028-06',
  '2028-09',
  '2028-11',
];

async function customerOn(planCode: string, usedGB: number, afterDays: number) {
  h.clock.set(new Date(`${THIRTY_DAY_MONTHS[month++] ?? '2029-04'}-01T00:00:00.000Z`));
  const account = await h.newCustomer();
  const accountId = String(account._id);
  const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode });
  await h.payAndSettle(checkout.reference);
  h.clock.advance(afterDays * DAY);
  const sub = await getLiveSubscription(accountId);
  const window = sub ? currentQuotaWindow(sub, h.clock.now()) : null;
  if (!sub || !window) throw new Error('no subscription');
  const limits: Record<string, number> = { starter: 10 * GB, personal: 100 * GB, team: 500 * GB };
  await openQuotaPeriod(accountId, {
    periodStart: window.start,
    periodEnd: window.end,
    limitBytes: limits[planCode] ?? 0,
  });
  if (usedGB > 0) await recordUsage(accountId, usedGB * GB, h.clock.now());
  return { accountId, subscription: sub };
}

describe('upgrading', () => {
  it('charges the saved card for the rest of the period and moves the plan, quota and price at once', async () => {
    const { accountId, subscription } = await customerOn('starter', 7, 15);
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    // Halfway; 30 % of the week's data left: credit 3,500 x 30 % = 1,050; Personal for half a month 7,500.
    expect(quote).toMatchObject({
      effective: 'now',
      creditMinor: 105_000,
      costMinor: 750_000,
      dueNowMinor: 645_000,
    });

    const outcome = await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId });
    expect(outcome).toMatchObject({ state: 'applied', toPlanCode: 'personal' });

    const sub = await getLiveSubscription(accountId);
    expect(sub).toMatchObject({
      planCode: 'personal',
      priceMinor: 1_500_000,
      periodStart: subscription.periodStart,
      periodEnd: subscription.periodEnd,
    });
    // The week's 7 GB count against the new 100 GB allowance, to the end of the month window.
    expect(await getQuotaUsage(accountId, h.clock.now())).toMatchObject({
      periodStart: h.clock.now(),
      periodEnd: subscription.periodEnd,
      limitBytes: 100 * GB,
      usedBytes: 7 * GB,
      remainingBytes: 93 * GB,
    });
    const paid = await Payment.find({ accountId, purpose: 'plan_change' }).lean();
    expect(paid.map((p) => [p.reference, p.status, p.amountMinor])).toEqual([
      [`chg-${quote.quoteId}-card`, 'paid', 645_000],
    ]);
    const invoices = await listInvoices(accountId);
    expect(invoices.some((invoice) => invoice.totalMinor === 645_000)).toBe(true);

    // Confirming again does nothing more.
    expect(await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId })).toMatchObject(
      {
        state: 'applied',
      },
    );
    expect(await Payment.countDocuments({ accountId, purpose: 'plan_change' })).toBe(1);
  });

  it('sends a payment link when the card needs the customer (2FA), and applies the change once paid', async () => {
    const { accountId } = await customerOn('starter', 0, 6);
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'team' });
    h.emulator.nextChargeAuthorization('send_otp');
    const outcome = await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId });
    expect(outcome).toMatchObject({ state: 'payment_link', amountMinor: quote.dueNowMinor });
    if (outcome.state !== 'payment_link') throw new Error('expected a link');
    expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');

    await h.payAndSettle(outcome.reference);
    expect((await getLiveSubscription(accountId))?.planCode).toBe('team');
    expect((await getQuotaUsage(accountId, h.clock.now()))?.limitBytes).toBe(500 * GB);
  });

  it('puts a payment that arrives after the plan changed otherwise into the wallet, and changes nothing', async () => {
    const { accountId, subscription } = await customerOn('starter', 0, 6);
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    h.emulator.nextChargeAuthorization('failed');
    const outcome = await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId });
    if (outcome.state !== 'payment_link') throw new Error('expected a link');
    // Before paying the link the customer cancels at period end: the quote is overtaken.
    await cancel(subscription._id, { atPeriodEnd: true, clock: h.clock });
    await h.payAndSettle(outcome.reference);

    expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');
    expect((await getWallet(accountId)).balanceMinor).toBe(quote.dueNowMinor);
  });
});

describe('downgrading', () => {
  it('moves to the cheaper plan at the renewal, at its price, with nothing to pay now', async () => {
    const { accountId, subscription } = await customerOn('personal', 0, 10);
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'starter' });
    expect(quote).toMatchObject({
      effective: 'period_end',
      dueNowMinor: 0,
      renewalPriceMinor: 350_000,
    });
    expect(await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId })).toMatchObject(
      {
        state: 'scheduled',
        at: subscription.periodEnd,
      },
    );
    expect((await getLiveSubscription(accountId))?.planCode).toBe('personal');

    await renewPeriod(subscription._id, { paymentRef: 'renewal_1', clock: h.clock });
    expect(await getLiveSubscription(accountId)).toMatchObject({
      planCode: 'starter',
      priceMinor: 350_000,
      periodStart: subscription.periodEnd,
      quotaPeriod: 'week',
    });
  });

  it('applies at once with the credit in the wallet when the business downgrades at once', async () => {
    await h.settings.update({ downgradeTiming: 'now' }, { actor: 'test' });
    try {
      const { accountId } = await customerOn('personal', 20, 15);
      const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'starter' });
      // Credit 15,000 x 50 % = 7,500; Starter for half a month 1,750: 5,750 to the wallet.
      expect(quote).toMatchObject({ effective: 'now', dueNowMinor: 0, walletCreditMinor: 575_000 });
      await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId });
      expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');
      expect((await getWallet(accountId)).balanceMinor).toBe(575_000);
      expect(await Notification.findOne({ accountId, event: 'plan_changed' }).lean()).toMatchObject(
        { data: { toPlanCode: 'starter', walletCreditMinor: 575_000 } },
      );
      expect(await getQuotaUsage(accountId, h.clock.now())).toMatchObject({
        limitBytes: 10 * GB,
        usedBytes: 20 * GB,
        remainingBytes: 0,
      });
      expect(await Payment.countDocuments({ accountId, purpose: 'plan_change' })).toBe(0);
    } finally {
      await h.settings.update({ downgradeTiming: 'period_end' }, { actor: 'test' });
    }
  });
});

describe('moving to pay as you go at once', () => {
  it('ends the plan, starts PAYG and credits the unused part to the wallet, once, even after a crash', async () => {
    await h.settings.update({ downgradeTiming: 'now' }, { actor: 'test' });
    try {
      const { accountId, subscription } = await customerOn('personal', 20, 15);
      const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'payg' });
      // Credit 15,000 x the smaller of 50 % time and 80 % data left: 7,500.
      expect(quote).toMatchObject({ effective: 'now', dueNowMinor: 0, walletCreditMinor: 750_000 });
      const dying = h.withFaults(crashAt('plan_change.switched'));
      await expect(
        dying.confirmPlanChange({ accountId, quoteId: quote.quoteId }),
      ).rejects.toBeInstanceOf(SimulatedCrash);
      expect(await getLiveSubscription(accountId)).toBeNull();

      expect(
        await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId }),
      ).toMatchObject({ state: 'applied', toPlanCode: 'payg', walletCreditMinor: 750_000 });
      expect(await getLiveSubscription(accountId)).toMatchObject({
        planCode: 'payg',
        status: 'active',
      });
      expect((await getSubscription(subscription._id)).status).toBe('cancelled');
      expect((await getWallet(accountId)).balanceMinor).toBe(750_000);
      await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId });
      expect((await getWallet(accountId)).balanceMinor).toBe(750_000);
    } finally {
      await h.settings.update({ downgradeTiming: 'period_end' }, { actor: 'test' });
    }
  });
});

describe('a team owner moving to a plan without seats', () => {
  it('is told before confirming that the members lose proxy access, and when', async () => {
    const { accountId, subscription } = await customerOn('team', 0, 10);
    for (const email of ['m1@example.com', 'm2@example.com']) {
      const member = await h.newCustomer(email);
      await addSeat(accountId, String(member._id), {}, { clock: h.clock });
    }
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    const day = subscription.periodEnd?.toISOString().slice(0, 10) ?? '';
    expect(quote.membersLosingAccess).toBe(2);
    expect(quote.lines).toContain(
      `Your 2 team members lose proxy access on ${day}: the Personal plan has no seats for members. Their accounts stay; add them again on a plan with seats.`,
    );

    // An owner without members (or moving to a plan with seats) sees no such line.
    const alone = await customerOn('personal', 0, 10);
    const upgrade = await h.payments.quotePlanChange({
      accountId: alone.accountId,
      toPlanCode: 'team',
    });
    expect(upgrade.membersLosingAccess).toBe(0);
    expect(upgrade.lines.join(' ')).not.toContain('team member');
  });
});

describe('from pay as you go', () => {
  it('answers with the plan checkout, which ends PAYG when the plan is paid', async () => {
    h.clock.set(new Date('2029-06-01T00:00:00.000Z'));
    const account = await h.newCustomer();
    const accountId = String(account._id);
    await startPayg({ accountId, clock: h.clock });
    const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    expect(quote).toMatchObject({ newPeriod: 'fresh_period', dueNowMinor: 1_500_000 });
    expect(await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId })).toMatchObject(
      {
        state: 'use_checkout',
        toPlanCode: 'personal',
      },
    );
    const checkout = await h.payments.checkout({
      accountId,
      purpose: 'plan',
      planCode: 'personal',
    });
    await h.payAndSettle(checkout.reference);
    expect(await getLiveSubscription(accountId)).toMatchObject({
      planCode: 'personal',
      status: 'active',
    });
  });
});

describe('a crash half way', () => {
  it.each(['plan_change.switched', 'plan_change.quota_switched'])(
    'leaves nothing doubled or lost when the process dies at %s',
    async (step) => {
      await h.settings.update({ downgradeTiming: 'now' }, { actor: 'test' });
      try {
        const { accountId } = await customerOn('personal', 0, 15);
        const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'starter' });
        await expect(
          h.withFaults(crashAt(step)).confirmPlanChange({ accountId, quoteId: quote.quoteId }),
        ).rejects.toThrow(SimulatedCrash);
        expect(
          await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId }),
        ).toMatchObject({
          state: 'applied',
        });
        expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');
        expect((await getWallet(accountId)).balanceMinor).toBe(quote.walletCreditMinor);
        expect((await getQuotaUsage(accountId, h.clock.now()))?.limitBytes).toBe(10 * GB);
      } finally {
        await h.settings.update({ downgradeTiming: 'period_end' }, { actor: 'test' });
      }
    },
  );
});

describe('quotes that cannot be confirmed', () => {
  it('refuses an expired quote and one the plan changed under', async () => {
    const { accountId, subscription } = await customerOn('starter', 0, 3);
    const late = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    h.clock.advance(15 * 60_000 + 1);
    expect(await reasonOf(h.payments.confirmPlanChange({ accountId, quoteId: late.quoteId }))).toBe(
      'EXPIRED',
    );

    const overtaken = await h.payments.quotePlanChange({ accountId, toPlanCode: 'personal' });
    await cancel(subscription._id, { atPeriodEnd: true, clock: h.clock });
    expect(
      await reasonOf(h.payments.confirmPlanChange({ accountId, quoteId: overtaken.quoteId })),
    ).toBe('STALE');
    expect(await Payment.countDocuments({ accountId, purpose: 'plan_change' })).toBe(0);
  });
});
