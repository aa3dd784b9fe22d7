/**
 * Extra data (core/payments/data-topup.ts) through the real Paystack client
 * and the emulator: 5 GB for ₦1,500 by default, into the current quota window,
 * once per payment, by saved card or link.
 */
import { describe, expect, it } from '@jest/globals';
import { getQuotaUsage } from '../../../core/quota.js';
import { startPayg } from '../../../core/subscriptions.js';
import { crashAt, SimulatedCrash } from '../../../lib/faults.js';
import { Payment } from '../../../models/payment.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { reasonOf } from '../../support/refusals.js';

useTestDatabase();
const h = usePaymentsHarness();
const GB = 1_000_000_000;

async function starterCustomer(): Promise<string> {
  const account = await h.newCustomer();
  const accountId = String(account._id);
  const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode: 'starter' });
  await h.payAndSettle(checkout.reference);
  return accountId;
}

describe('extra data', () => {
  it('charges the saved card and raises the current window by 5 GB, once', async () => {
    const accountId = await starterCustomer();
    const bought = await h.payments.buyDataTopUp({ accountId, requestId: 'req-1' });
    expect(bought).toMatchObject({
      bytes: 5 * GB,
      amountMinor: 150_000,
      payment: { state: 'paid' },
    });
    expect(await getQuotaUsage(accountId, h.clock.now())).toMatchObject({
      limitBytes: 15 * GB,
      addedBytes: 5 * GB,
    });

    // The same request again, and the payment fulfilled again: still 5 GB.
    await h.payments.buyDataTopUp({ accountId, requestId: 'req-1' });
    if (bought.payment.state !== 'paid') throw new Error('expected a paid top-up');
    await h.payments.fulfil(bought.payment.reference);
    expect((await getQuotaUsage(accountId, h.clock.now()))?.limitBytes).toBe(15 * GB);
    expect(await Payment.countDocuments({ accountId, purpose: 'data_topup' })).toBe(1);
  });

  it('adds the data once when the process dies right after adding it', async () => {
    const accountId = await starterCustomer();
    await expect(
      h
        .withFaults(crashAt('fulfil.purchase_applied'))
        .buyDataTopUp({ accountId, requestId: 'crash' }),
    ).rejects.toThrow(SimulatedCrash);
    // Re-verification (or the webhook) finishes the payment.
    await h.payments.fulfil(`dtu-${accountId}-crash-card`);
    expect(await getQuotaUsage(accountId, h.clock.now())).toMatchObject({
      limitBytes: 15 * GB,
      addedBytes: 5 * GB,
    });
  });

  it('sends a link when the card is declined, and adds the data once it is paid', async () => {
    const accountId = await starterCustomer();
    h.emulator.nextChargeAuthorization('failed');
    const bought = await h.payments.buyDataTopUp({ accountId });
    if (bought.payment.state !== 'payment_link') throw new Error('expected a link');
    expect(bought.payment.cardDeclined).toBe(true);
    await h.payAndSettle(bought.payment.reference);
    expect((await getQuotaUsage(accountId, h.clock.now()))?.addedBytes).toBe(5 * GB);
  });

  it('is refused without a data allowance, or when the business took it off sale', async () => {
    const payg = await h.newCustomer();
    await startPayg({ accountId: String(payg._id), clock: h.clock });
    expect(await reasonOf(h.payments.buyDataTopUp({ accountId: String(payg._id) }))).toBe(
      'CONFLICT',
    );

    const accountId = await starterCustomer();
    await h.settings.update({ dataTopUpPriceMinor: 0 }, { actor: 'test' });
    try {
      expect(await reasonOf(h.payments.buyDataTopUp({ accountId }))).toBe('UNSUPPORTED');
    } finally {
      await h.settings.update({ dataTopUpPriceMinor: 150_000 }, { actor: 'test' });
    }
    expect(await Payment.countDocuments({ accountId, purpose: 'data_topup' })).toBe(0);
  });
});
