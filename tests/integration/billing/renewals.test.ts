/**
 * Renewals and dunning through the real Paystack client and the emulator, with
 * a test clock across the period end, the dunning retries and the grace.
 * Defaults: grace 3 days, retries 24 h and 72 h after the period end.
 */
import { describe, expect, it } from '@jest/globals';
import { cancel, getLiveSubscription, getSubscription } from '../../../core/subscriptions.js';
import { crashAt, SimulatedCrash } from '../../../lib/faults.js';
import { getWallet } from '../../../core/wallet.js';
import { suspendAccount, unsuspendAccount } from '../../../core/admin/index.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { Subscription, type SubscriptionRecord } from '../../../models/subscription.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';

useTestDatabase();
const h = usePaymentsHarness();
const HOUR = 3_600_000;
let month = 0;

/** A customer who bought `planCode` on the first of a month of its own (card saved). */
async function customerOn(planCode = 'starter') {
  h.clock.set(new Date(Date.UTC(2030 + Math.floor(month / 12), month % 12, 1)));
  month += 2;
  const account = await h.newCustomer();
  const accountId = String(account._id);
  const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode });
  await h.payAndSettle(checkout.reference);
  const sub = await Subscription.findOne({ accountId }).lean<SubscriptionRecord>().orFail();
  return { accountId, sub };
}

/** The same, with the clock a minute past the end of the first period. */
async function renewalDue(planCode = 'starter') {
  const customer = await customerOn(planCode);
  h.clock.set(new Date((customer.sub.periodEnd as Date).getTime() + 60_000));
  return customer;
}

const renewalsOf = (accountId: string) =>
  Payment.find({ accountId, purpose: 'renewal' }).sort({ createdAt: 1 }).lean();

describe('renewals', () => {
  it('charges the saved card at the period end and starts the next period, once', async () => {
    const { accountId, sub } = await renewalDue();
    const [outcome] = (await h.payments.runRenewals()).filter(
      (o) => o.subscriptionId === String(sub._id),
    );
    expect(outcome).toMatchObject({ state: 'renewed' });
    const renewed = await getSubscription(sub._id);
    expect(renewed).toMatchObject({ status: 'active', periodStart: sub.periodEnd });
    expect((renewed.periodEnd as Date).getTime()).toBeGreaterThan(
      (sub.periodEnd as Date).getTime(),
    );
    expect((await renewalsOf(accountId)).map((p) => [p.status, p.amountMinor])).toEqual([
      ['paid', 350_000],
    ]);

    await h.payments.runRenewals();
    expect(await renewalsOf(accountId)).toHaveLength(1);
  });

  it('goes past due with a link when the card is declined, and recovers at the first retry', async () => {
    const { accountId, sub } = await renewalDue();
    h.emulator.nextChargeAuthorization('failed');
    await h.payments.renewSubscription(String(sub._id));
    const pastDue = await getSubscription(sub._id);
    expect(pastDue).toMatchObject({ status: 'past_due' });
    expect(pastDue.graceEndsAt).toEqual(
      new Date((sub.periodEnd as Date).getTime() + 3 * 24 * HOUR),
    );
    const notice = await Notification.findOne({ accountId, event: 'payment_failed' }).lean();
    expect(notice?.data).toMatchObject({ purpose: 'renewal', cardDeclined: true, attempt: 0 });
    expect(String((notice?.data as { authorizationUrl?: string }).authorizationUrl)).toContain(
      'http',
    );

    // The same hour again: nothing new.
    await h.payments.renewSubscription(String(sub._id));
    expect(await renewalsOf(accountId)).toHaveLength(2);

    // 24 h after the period end: the card again, and this time it goes through.
    h.clock.advance(24 * HOUR);
    await h.payments.renewSubscription(String(sub._id));
    expect(await getSubscription(sub._id)).toMatchObject({
      status: 'active',
      periodStart: sub.periodEnd,
    });
    expect((await renewalsOf(accountId)).filter((p) => p.status === 'paid')).toHaveLength(1);
  });

  it('sends a link when the card needs the customer (2FA), and renews when they pay it', async () => {
    const { sub } = await renewalDue();
    h.emulator.nextChargeAuthorization('send_otp');
    const outcome = await h.payments.renewSubscription(String(sub._id));
    if (outcome?.state !== 'payment_link')
      throw new Error(`expected a link, got ${outcome?.state}`);
    await h.payAndSettle(outcome.reference);
    expect(await getSubscription(sub._id)).toMatchObject({
      status: 'active',
      periodStart: sub.periodEnd,
    });
  });

  it('ends the plan when the grace runs out unpaid, and credits a late payment to the wallet', async () => {
    const { accountId, sub } = await renewalDue();
    const id = String(sub._id);
    h.emulator.nextChargeAuthorization('failed');
    const first = await h.payments.renewSubscription(id);
    h.clock.advance(24 * HOUR);
    h.emulator.nextChargeAuthorization('failed');
    await h.payments.renewSubscription(id);
    h.clock.advance(48 * HOUR);
    h.emulator.nextChargeAuthorization('failed');
    await h.payments.renewSubscription(id);
    expect((await getSubscription(sub._id)).status).toBe('past_due');
    h.clock.advance(1 * HOUR); // 73 h: past the 3-day grace; the pass ends it
    await h.payments.runRenewals();
    expect((await getSubscription(sub._id)).status).toBe('expired');
    // Told once, however often the pass runs.
    await h.payments.runRenewals();
    expect(await Notification.countDocuments({ accountId, event: 'expired' })).toBe(1);

    // The first link paid now: the plan stays ended, the money is the customer's.
    if (first?.state !== 'payment_link') throw new Error('expected a link');
    await h.payAndSettle(first.reference);
    expect((await getSubscription(sub._id)).status).toBe('expired');
    expect((await getWallet(accountId)).balanceMinor).toBe(350_000);
  });

  it('holds the renewal of a suspended account (no charge, no notice) and bills from the unsuspension', async () => {
    const { accountId, sub } = await renewalDue();
    const admin = String((await Account.create({ roles: ['customer', 'admin'] }))._id);
    const ctx = { actor: { accountId: admin, channel: 'api' as const }, clock: h.clock };
    await suspendAccount(ctx, { user: accountId, reason: 'abuse report' });

    const [held] = (await h.payments.runRenewals()).filter(
      (o) => o.subscriptionId === String(sub._id),
    );
    expect(held).toEqual({
      subscriptionId: String(sub._id),
      state: 'held',
      reason: 'account_suspended',
    });
    h.clock.advance(5 * 24 * HOUR);
    await h.payments.runRenewals();
    expect(await renewalsOf(accountId)).toHaveLength(0);
    expect(await Notification.countDocuments({ accountId, event: 'payment_failed' })).toBe(0);
    expect(await getSubscription(sub._id)).toMatchObject({ status: 'active' });

    // Unsuspended five days after the period ended: the next period starts now.
    await unsuspendAccount(ctx, { user: accountId });
    const unsuspendedAt = h.clock.now();
    await h.payments.runRenewals();
    const renewed = await getSubscription(sub._id);
    expect(renewed).toMatchObject({ status: 'active', periodStart: unsuspendedAt });
    expect((await renewalsOf(accountId)).map((p) => p.status)).toEqual(['paid']);
  });

  it('ends a plan set to cancel at its period end without charging', async () => {
    const { accountId, sub } = await customerOn();
    await cancel(sub._id, { atPeriodEnd: true, clock: h.clock });
    h.clock.set(new Date((sub.periodEnd as Date).getTime() + 60_000));
    await h.payments.runRenewals();
    expect((await getSubscription(sub._id)).status).toBe('cancelled');
    expect(await renewalsOf(accountId)).toHaveLength(0);
  });

  it('waits, without a link, when Paystack fails after charging, and renews once re-verification sees the payment', async () => {
    const { accountId, sub } = await renewalDue();
    h.emulator.failNextRequests('charge_authorization', { status: 502, afterProcessing: true });
    const outcome = await h.payments.renewSubscription(String(sub._id));
    expect(outcome).toMatchObject({ state: 'processing' });
    expect(await getSubscription(sub._id)).toMatchObject({
      status: 'active',
      periodEnd: sub.periodEnd,
    });
    expect((await renewalsOf(accountId)).map((p) => p.reference.endsWith('-link'))).toEqual([
      false,
    ]);

    h.clock.advance(11 * 60_000); // past pendingPaymentReverifyAfterMinutes
    await h.payments.reverifyPendingPayments();
    expect(await getSubscription(sub._id)).toMatchObject({
      status: 'active',
      periodStart: sub.periodEnd,
    });
    expect((await renewalsOf(accountId)).map((p) => p.status)).toEqual(['paid']);
  });
});

describe('a downgrade to pay as you go at the period end', () => {
  it('ends the plan and starts PAYG without charging, and a pass that died half way is finished by the next', async () => {
    for (const crash of [false, true]) {
      const { accountId, sub } = await customerOn('personal');
      const quote = await h.payments.quotePlanChange({ accountId, toPlanCode: 'payg' });
      expect(quote).toMatchObject({ effective: 'period_end', dueNowMinor: 0 });
      expect(
        await h.payments.confirmPlanChange({ accountId, quoteId: quote.quoteId }),
      ).toMatchObject({ state: 'scheduled', at: sub.periodEnd });
      expect(await getLiveSubscription(accountId)).toMatchObject({ planCode: 'personal' });

      h.clock.set(new Date((sub.periodEnd as Date).getTime() + 60_000));
      if (crash) {
        const dying = h.withFaults(crashAt('renewal.moved_to_payg_ended'));
        await expect(dying.runRenewals()).rejects.toBeInstanceOf(SimulatedCrash);
        expect(await getLiveSubscription(accountId)).toBeNull();
      }
      const outcomes = (await h.payments.runRenewals()).filter(
        (o) => o.subscriptionId === String(sub._id),
      );
      expect(outcomes).toEqual([expect.objectContaining({ state: 'moved_to_payg' })]);
      expect(await getSubscription(sub._id)).toMatchObject({ status: 'cancelled' });
      expect(await getLiveSubscription(accountId)).toMatchObject({
        planCode: 'payg',
        status: 'active',
      });
      expect(await renewalsOf(accountId)).toHaveLength(0);

      // The next pass has nothing left to do for this customer.
      const again = (await h.payments.runRenewals()).filter(
        (o) => o.subscriptionId === String(sub._id),
      );
      expect(again).toEqual([]);
    }
  });
});
