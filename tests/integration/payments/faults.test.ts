/**
 * Fault injection: every money flow is stopped at each of its steps (as if the
 * process died there) and then resumed the way production resumes it (the next
 * webhook, callback or re-verification run). Whatever step it died at, the
 * customer ends up served exactly once: one subscription, one wallet credit,
 * one invoice, one confirmation, one refund.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { crashAt, recordSteps, SimulatedCrash } from '../../../lib/faults.js';
import { Payment } from '../../../models/payment.js';
import { Refund } from '../../../models/refund.js';
import { PaymentMethod } from '../../../models/payment-method.js';
import { Subscription } from '../../../models/subscription.js';
import { Notification } from '../../../models/notification.js';
import { Invoice } from '../../../models/invoice.js';
import { getWallet, listLedger } from '../../../core/wallet.js';
import type { CheckoutRequest } from '../../../core/payments/index.js';

useTestDatabase();
const h = usePaymentsHarness();

type Purpose = CheckoutRequest['purpose'];

async function paidCheckout(purpose: Purpose): Promise<{ accountId: string; reference: string }> {
  const customer = await h.newCustomer();
  const accountId = String(customer._id);
  const request: CheckoutRequest =
    purpose === 'plan'
      ? { accountId, purpose, planCode: 'starter' }
      : purpose === 'wallet_topup'
        ? { accountId, purpose, amountMinor: 250_000 }
        : { accountId, purpose };
  const checkout = await h.payments.checkout(request);
  // Webhooks are held so that only the run under test (and its recovery) touch the payment.
  h.emulator.holdDeliveries();
  await h.emulator.pay(checkout.reference);
  return { accountId, reference: checkout.reference };
}

/** The steps one uninterrupted fulfilment of `purpose` passes. */
async function stepsOf(purpose: Purpose): Promise<string[]> {
  const { reference } = await paidCheckout(purpose);
  const recorder = recordSteps();
  expect((await h.withFaults(recorder).fulfil(reference)).state).toBe('fulfilled');
  await h.emulator.releaseDeliveries();
  return [...new Set(recorder.seen)];
}

async function expectServedOnce(purpose: Purpose, accountId: string, reference: string) {
  const payment = await Payment.findOne({ reference });
  expect(payment?.status).toBe('paid');
  expect(payment?.fulfilledAt).toBeInstanceOf(Date);
  expect(await Invoice.countDocuments({ paymentReference: reference })).toBe(1);
  expect(await Notification.countDocuments({ accountId, event: 'payment_confirmed' })).toBe(1);
  expect(await PaymentMethod.countDocuments({ accountId })).toBe(1);
  if (purpose === 'plan') {
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(1);
  } else if (purpose === 'trial_deposit') {
    expect(await Subscription.countDocuments({ accountId, status: 'trialing' })).toBe(1);
  } else {
    expect((await getWallet(accountId)).balanceMinor).toBe(250_000);
    expect((await listLedger(accountId)).entries).toHaveLength(1);
  }
}

describe.each<Purpose>(['plan', 'trial_deposit', 'wallet_topup'])(
  'fulfilment of a %s payment killed at each step',
  (purpose) => {
    it('is resumed by re-verification and serves the customer exactly once', async () => {
      const steps = await stepsOf(purpose);
      expect(steps.length).toBeGreaterThanOrEqual(6);

      for (const step of steps) {
        const { accountId, reference } = await paidCheckout(purpose);
        const fault = crashAt(step);
        const crashed = await h
          .withFaults(fault)
          .fulfil(reference)
          .catch((e: unknown) => e);
        expect(crashed).toBeInstanceOf(SimulatedCrash);

        // What production does next: the re-verification job (and the held webhook).
        h.clock.advanceBy({ minutes: 15 });
        await h.payments.reverifyPendingPayments();
        const before = h.processed.length;
        await h.emulator.releaseDeliveries();
        await h.waitForProcessed(before + 1);

        await expectServedOnce(purpose, accountId, reference);
      }
    });
  },
);

describe('a trial deposit refund killed at each step', () => {
  it('is resumed and refunds the card exactly once', async () => {
    const recorder = recordSteps();
    {
      const { reference } = await paidCheckout('trial_deposit');
      await h.payments.fulfil(reference);
      await h.emulator.releaseDeliveries();
      await h.withFaults(recorder).refundDeposit(reference, { reason: 'trial_ended' });
    }
    const steps = [...new Set(recorder.seen)];
    expect(steps).toEqual(expect.arrayContaining(['refund.recorded', 'refund.provider_called']));

    for (const step of steps) {
      const { reference } = await paidCheckout('trial_deposit');
      await h.payments.fulfil(reference);
      await h.emulator.releaseDeliveries();
      const crashed = await h
        .withFaults(crashAt(step))
        .refundDeposit(reference, { reason: 'trial_ended' })
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);

      await h.payments.reverifyPendingPayments();
      await h.payments.refundDeposit(reference, { reason: 'trial_ended' });

      const refunds = [...h.emulator.refunds.values()].filter(
        (r) => r.transactionReference === reference,
      );
      expect(refunds).toHaveLength(1);
      const refund = await Refund.findOne({ paymentReference: reference });
      expect(['pending', 'processing', 'processed']).toContain(refund?.status);
    }
  });
});

describe('a checkout killed before Paystack answered', () => {
  it('does not block the customer: the next checkout replaces it', async () => {
    const customer = await h.newCustomer();
    const request: CheckoutRequest = {
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'personal',
    };
    for (const step of ['checkout.payment_created', 'checkout.initialized']) {
      const crashed = await h
        .withFaults(crashAt(step))
        .checkout(request)
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);
      h.clock.advanceBy({ minutes: 1 });
    }
    const checkout = await h.payments.checkout(request);
    expect(checkout.authorizationUrl).toContain('/checkout/');
    await h.payAndSettle(checkout.reference);
    expect(await Subscription.countDocuments({ accountId: customer._id, status: 'active' })).toBe(
      1,
    );
  });
});
