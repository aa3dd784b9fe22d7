/**
 * Auto top-up of the PAYG wallet (core/payments/auto-topup.ts) through the
 * real Paystack client and the emulator: off unless turned on; on, one charge
 * of the saved card per low balance; a failing card is told, not retried
 * until the wallet moves.
 */
import { describe, expect, it } from '@jest/globals';
import { setAutoTopUp } from '../../../core/payments/index.js';
import { startPayg } from '../../../core/subscriptions.js';
import { debit, getWallet } from '../../../core/wallet.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';

useTestDatabase();
const h = usePaymentsHarness();

/** A PAYG customer who topped up ₦1,000 with a card (saved) and then spent ₦900 of it. */
async function lowWallet(): Promise<string> {
  const account = await h.newCustomer();
  const accountId = String(account._id);
  await startPayg({ accountId, clock: h.clock });
  const checkout = await h.payments.checkout({
    accountId,
    purpose: 'wallet_topup',
    amountMinor: 100_000,
  });
  await h.payAndSettle(checkout.reference);
  await debit(
    accountId,
    { amountMinor: 90_000, currency: 'NGN', key: `spend:${accountId}`, description: 'PAYG hours' },
    { clock: h.clock },
  );
  return accountId;
}

const autoCharges = (accountId: string) =>
  Payment.countDocuments({ accountId, reference: { $regex: '^atu-' } });

describe('auto top-up', () => {
  it('is off unless the customer turns it on', async () => {
    const accountId = await lowWallet();
    await h.payments.runAutoTopUps();
    expect((await getWallet(accountId)).balanceMinor).toBe(10_000);
    expect(await autoCharges(accountId)).toBe(0);
  });

  it('charges the saved card once when the balance is below the threshold', async () => {
    const accountId = await lowWallet();
    await setAutoTopUp(accountId, { thresholdMinor: 20_000, amountMinor: 200_000 });
    await h.payments.runAutoTopUps();
    await h.payments.runAutoTopUps();
    expect((await getWallet(accountId)).balanceMinor).toBe(210_000);
    expect(await autoCharges(accountId)).toBe(1);

    // Above the threshold now: nothing more.
    await h.payments.runAutoTopUps();
    expect(await autoCharges(accountId)).toBe(1);

    // Off again: a low balance stays low.
    await setAutoTopUp(accountId, null);
    await debit(
      accountId,
      {
        amountMinor: 200_000,
        currency: 'NGN',
        key: `spend2:${accountId}`,
        description: 'PAYG hours',
      },
      { clock: h.clock },
    );
    await h.payments.runAutoTopUps();
    expect((await getWallet(accountId)).balanceMinor).toBe(10_000);
  });

  it('tells the customer once when the card is declined, and does not retry until the wallet moves', async () => {
    const accountId = await lowWallet();
    await setAutoTopUp(accountId, { thresholdMinor: 20_000, amountMinor: 200_000 });
    h.emulator.nextChargeAuthorization('failed');
    await h.payments.runAutoTopUps();
    await h.payments.runAutoTopUps();
    expect((await getWallet(accountId)).balanceMinor).toBe(10_000);
    expect(await Notification.countDocuments({ accountId, event: 'wallet_low' })).toBe(1);
    expect(await autoCharges(accountId)).toBe(1);
  });
});
