/**
 * The safety net: a customer who paid while every webhook was lost and who never
 * came back to the callback page is served by re-verification.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { Payment } from '../../../models/payment.js';
import { Subscription } from '../../../models/subscription.js';

useTestDatabase();
const h = usePaymentsHarness();

describe('reverifyPendingPayments', () => {
  it('serves a paid customer whose webhook was lost, once the payment is old enough', async () => {
    const customer = await h.newCustomer();
    const accountId = String(customer._id);
    const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode: 'starter' });
    h.emulator.setWebhookUrl(undefined);
    try {
      await h.emulator.pay(checkout.reference);
    } finally {
      h.emulator.setWebhookUrl(`${h.apiUrl}/webhooks/paystack`);
    }

    const early = await h.payments.reverifyPendingPayments();
    expect(early.checked).toBe(0);

    h.clock.advanceBy({ minutes: 11 });
    const report = await h.payments.reverifyPendingPayments();
    expect(report.outcomes.fulfilled).toBe(1);
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(1);
  });

  it('gives up on checkouts nobody paid after two days and frees the slot', async () => {
    const customer = await h.newCustomer();
    const accountId = String(customer._id);
    const checkout = await h.payments.checkout({
      accountId,
      purpose: 'wallet_topup',
      amountMinor: 20_000,
    });
    h.clock.advanceBy({ hours: 49 });
    const report = await h.payments.reverifyPendingPayments();
    expect(report.abandoned).toBeGreaterThanOrEqual(1);
    expect((await Payment.findOne({ reference: checkout.reference }))?.status).toBe('abandoned');
    const fresh = await h.payments.checkout({
      accountId,
      purpose: 'wallet_topup',
      amountMinor: 20_000,
    });
    expect(fresh.reference).not.toBe(checkout.reference);
  });
});
