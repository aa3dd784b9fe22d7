import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { getWallet, listLedger } from '../../../core/wallet.js';
import { isDomainError } from '../../../lib/errors.js';
import { Payment } from '../../../models/payment.js';

useTestDatabase();
const h = usePaymentsHarness();

describe('PAYG wallet top-up', () => {
  it('credits the wallet exactly once however often Paystack says so', async () => {
    const customer = await h.newCustomer();
    const accountId = String(customer._id);
    const checkout = await h.payments.checkout({
      accountId,
      purpose: 'wallet_topup',
      amountMinor: 500_000,
    });
    const before = h.processed.length;
    await h.emulator.pay(checkout.reference, { deliver: { duplicates: 3, parallel: true } });
    await h.waitForProcessed(before + 4);
    await h.payments.fulfil(checkout.reference);

    expect((await getWallet(accountId)).balanceMinor).toBe(500_000);
    const { entries } = await listLedger(accountId, { limit: 10 });
    expect(entries.map((e) => [e.kind, e.amountMinor])).toEqual([['topup', 500_000]]);
  });

  it('refuses top-ups outside the allowed range before any money moves', async () => {
    const customer = await h.newCustomer();
    for (const amountMinor of [0, 99, 1.5, 10_000_000_000]) {
      const error = await h.payments
        .checkout({ accountId: String(customer._id), purpose: 'wallet_topup', amountMinor })
        .catch((e: unknown) => e);
      expect(isDomainError(error, 'VALIDATION_FAILED')).toBe(true);
    }
    expect(await Payment.countDocuments({ accountId: customer._id })).toBe(0);
  });

  it('refuses a checkout for an account without an email, or a suspended one', async () => {
    const { Account } = await import('../../../models/account.js');
    const noEmail = await Account.create({});
    const suspended = await Account.create({ email: 'frozen@example.com', status: 'suspended' });
    await expect(
      h.payments.checkout({
        accountId: String(noEmail._id),
        purpose: 'wallet_topup',
        amountMinor: 50_000,
      }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(
      h.payments.checkout({
        accountId: String(suspended._id),
        purpose: 'wallet_topup',
        amountMinor: 50_000,
      }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('frees the checkout slot when Paystack cannot be reached, so the customer can try again', async () => {
    const customer = await h.newCustomer();
    const request = {
      accountId: String(customer._id),
      purpose: 'wallet_topup' as const,
      amountMinor: 50_000,
    };
    h.emulator.failNextRequests('initialize', { status: 502 });
    await expect(h.payments.checkout(request)).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
    const retry = await h.payments.checkout(request);
    expect(retry.reused).toBe(false);
  });
});
