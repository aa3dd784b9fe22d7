/**
 * Trials held by a refundable deposit: one per person, the deposit returned at
 * the end (to the card through Paystack's refund API, or to the wallet), and
 * Paystack's refund webhooks carrying the refund to its end in any order.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { Payment } from '../../../models/payment.js';
import { Refund } from '../../../models/refund.js';
import { Subscription } from '../../../models/subscription.js';
import { Notification } from '../../../models/notification.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { getWallet } from '../../../core/wallet.js';
import { listInvoices } from '../../../core/invoices.js';
import { isDomainError } from '../../../lib/errors.js';

useTestDatabase();
const h = usePaymentsHarness();

async function startTrial(options: { signature?: string; accountId?: string } = {}) {
  const accountId = options.accountId ?? String((await h.newCustomer())._id);
  const checkout = await h.payments.checkout({ accountId, purpose: 'trial_deposit' });
  await h.payAndSettle(
    checkout.reference,
    options.signature ? { signature: options.signature } : {},
  );
  return { accountId, reference: checkout.reference, amountMinor: checkout.amountMinor };
}

async function refundState(reference: string): Promise<string | undefined> {
  return (await Refund.findOne({ paymentReference: reference }))?.status ?? undefined;
}

describe('starting a trial', () => {
  it('takes the deposit from settings and starts a trial once it is paid', async () => {
    const settings = await h.settings.get();
    const { accountId, reference, amountMinor } = await startTrial();

    expect(amountMinor).toBe(settings.trialDepositMinor);
    const subscription = await Subscription.findOne({ accountId });
    expect(subscription).toMatchObject({ planCode: 'trial', status: 'trialing' });
    expect(subscription?.trialEndsAt?.getTime()).toBe(h.clock.now().getTime() + 3 * 86_400_000);
    expect(await Notification.countDocuments({ accountId, event: 'trial_started' })).toBe(1);
    const [invoice] = await listInvoices(accountId);
    expect(invoice?.lines[0]?.description).toBe('Refundable trial deposit');
    expect(invoice?.vatMinor ?? 0).toBe(0);
    expect(await refundState(reference)).toBeUndefined();
  });

  it('refuses a second trial for the same account before any payment', async () => {
    const { accountId } = await startTrial();
    await h.payments.finishDueTrials();
    const error = await h.payments
      .checkout({ accountId, purpose: 'trial_deposit' })
      .catch((e: unknown) => e);
    expect(isDomainError(error, 'TRIAL_NOT_ALLOWED')).toBe(true);
  });

  it('refuses a trial to a Telegram user who had one on an account they since deleted', async () => {
    const first = await h.newCustomer();
    await ChannelIdentity.create({
      channel: 'telegram',
      externalId: '5550001',
      accountId: first._id,
    });
    await startTrial({ accountId: String(first._id) });
    await ChannelIdentity.deleteOne({ channel: 'telegram', externalId: '5550001' });

    const second = await h.newCustomer();
    await ChannelIdentity.create({
      channel: 'telegram',
      externalId: '5550001',
      accountId: second._id,
    });
    const error = await h.payments
      .checkout({ accountId: String(second._id), purpose: 'trial_deposit' })
      .catch((e: unknown) => e);
    expect(isDomainError(error, 'TRIAL_NOT_ALLOWED')).toBe(true);
    expect((error as Error).message).toMatch(/Telegram/);
  });

  it('refunds the deposit at once, and says why, when the card already had a trial elsewhere', async () => {
    await startTrial({ signature: 'SIG_SHARED_CARD' });
    const second = await startTrial({ signature: 'SIG_SHARED_CARD' });

    expect(
      await Subscription.countDocuments({ accountId: second.accountId, planCode: 'trial' }),
    ).toBe(0);
    expect(await refundState(second.reference)).toBe('pending');
    const refusal = await Notification.findOne({
      accountId: second.accountId,
      event: 'trial_refused',
    });
    expect(refusal?.data).toMatchObject({ alreadyUsed: 'card' });
    expect(
      [...h.emulator.refunds.values()].some((r) => r.transactionReference === second.reference),
    ).toBe(true);
  });
});

describe('ending a trial', () => {
  it('ends the trial after three days, refunds the deposit to the card and says so when Paystack finishes', async () => {
    const { accountId, reference } = await startTrial();
    h.clock.advanceBy({ days: 3, minutes: 1 });

    const { ended } = await h.payments.finishDueTrials();
    expect(ended).toBeGreaterThanOrEqual(1);
    expect(await Subscription.findOne({ accountId })).toMatchObject({ status: 'expired' });
    expect(await refundState(reference)).toBe('pending');

    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundState(reference)) === 'processed');
    expect(await Notification.countDocuments({ accountId, event: 'deposit_refunded' })).toBe(1);

    // Running it again changes nothing.
    await h.payments.finishDueTrials();
    expect(
      [...h.emulator.refunds.values()].filter((r) => r.transactionReference === reference),
    ).toHaveLength(1);
  });

  it('reaches "processed" when Paystack sends the refund events in reverse order', async () => {
    const { reference } = await startTrial();
    await h.payments.refundDeposit(reference, { reason: 'customer asked' });
    await h.emulator.settleRefund(reference, 'processed', {
      deliver: { order: 'reverse', duplicates: 1 },
    });
    await h.waitUntil(async () => (await refundState(reference)) === 'processed');
    await h.emulator.idle();
    expect(await refundState(reference)).toBe('processed');
  });

  it('tells the admins when Paystack fails the refund', async () => {
    const { reference } = await startTrial();
    await h.payments.refundDeposit(reference, { reason: 'trial_ended' });
    await h.emulator.settleRefund(reference, 'failed');
    await h.waitUntil(async () => (await refundState(reference)) === 'failed');
    expect(
      await Notification.countDocuments({
        audience: 'admins',
        event: 'deposit_refund_failed',
        'data.reference': reference,
      }),
    ).toBe(1);
  });

  it('ends the trial and refunds the deposit when the customer buys a plan during it', async () => {
    const { accountId, reference } = await startTrial();
    const checkout = await h.payments.checkout({
      accountId,
      purpose: 'plan',
      planCode: 'personal',
    });
    await h.emulator.pay(checkout.reference);
    // Not "the next processed event": the deposit's refund webhooks race the purchase's.
    await h.waitUntil(
      async () => (await Payment.findOne({ reference: checkout.reference }))?.fulfilledAt != null,
    );

    const subscriptions = await Subscription.find({ accountId }).sort({ createdAt: 1 });
    expect(subscriptions.map((s) => [s.planCode, s.status])).toEqual([
      ['trial', 'expired'],
      ['personal', 'active'],
    ]);
    expect(await refundState(reference)).toBe('pending');
  });

  it('credits the deposit to the wallet when the business chose wallet refunds', async () => {
    await h.settings.update({ trialDepositRefund: 'wallet' }, { actor: 'test' });
    try {
      const { accountId, reference, amountMinor } = await startTrial();
      h.clock.advanceBy({ days: 3, minutes: 1 });
      await h.payments.finishDueTrials();
      expect(await refundState(reference)).toBe('processed');
      expect((await getWallet(accountId)).balanceMinor).toBe(amountMinor);
      expect(await Notification.countDocuments({ accountId, event: 'deposit_refunded' })).toBe(1);
    } finally {
      await h.settings.update({ trialDepositRefund: 'refund' }, { actor: 'test' });
    }
  });
});
