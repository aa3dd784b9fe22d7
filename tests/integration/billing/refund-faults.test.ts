/**
 * Fault injection for refunds: each refund path is stopped at each of its
 * steps (as if the process died there) and resumed the way production resumes
 * it (the admin repeats the command, re-verification runs, Paystack's webhooks
 * arrive late). Whatever step it died at, the money goes back once: one
 * Paystack refund or one wallet credit, one credit note, one notice, one audit
 * entry, and the payment counts the amount once.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { listAudit } from '../../../core/audit.js';
import { listInvoices } from '../../../core/invoices.js';
import { getWallet, listLedger } from '../../../core/wallet.js';
import type { AdminRefundRequest } from '../../../core/payments/index.js';
import { crashAt, recordSteps, SimulatedCrash } from '../../../lib/faults.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { Refund } from '../../../models/refund.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';

useTestDatabase();
const h = usePaymentsHarness();

let adminId = '';
let requests = 0;

beforeAll(async () => {
  adminId = String((await Account.create({ roles: ['admin'] }))._id);
});

async function paid(purpose: 'plan' | 'wallet_topup') {
  const accountId = String((await h.newCustomer())._id);
  const checkout = await h.payments.checkout(
    purpose === 'plan'
      ? { accountId, purpose, planCode: 'starter' }
      : { accountId, purpose, amountMinor: 200_000 },
  );
  await h.payAndSettle(checkout.reference);
  return { accountId, reference: checkout.reference, amountMinor: checkout.amountMinor };
}

function request(reference: string, method: 'card' | 'wallet'): AdminRefundRequest {
  requests += 1;
  return {
    adminId,
    channel: 'whatsapp',
    requestId: `cmd-${requests}`,
    paymentReference: reference,
    method,
    reason: 'goodwill',
  };
}

const paystackRefundsOf = (reference: string) =>
  [...h.emulator.refunds.values()].filter((r) => r.transactionReference === reference);

async function expectRefundedOnce(
  accountId: string,
  reference: string,
  amountMinor: number,
): Promise<void> {
  const refunds = await Refund.find({ paymentReference: reference });
  expect(refunds).toHaveLength(1);
  expect((await Payment.findOne({ reference }))?.refundedMinor).toBe(amountMinor);
  expect(await listAudit({ target: { kind: 'payment', id: reference } })).toHaveLength(1);
  const notes = (await listInvoices(accountId)).filter((i) => i.kind === 'credit_note');
  expect(notes.map((n) => n.totalMinor)).toEqual([amountMinor]);
  expect(await Notification.countDocuments({ accountId, event: 'refund_processed' })).toBe(1);
}

async function stepsOf(run: () => Promise<unknown>, recorder: { seen: string[] }) {
  await run();
  return [...new Set(recorder.seen)];
}

describe('a card refund killed at each step', () => {
  it('is resumed by the repeated command and re-verification, and refunds the card once', async () => {
    const recorder = recordSteps();
    const first = await paid('plan');
    const steps = await stepsOf(
      () => h.withFaults(recorder).refundPayment(request(first.reference, 'card')),
      recorder,
    );
    expect(steps).toEqual(
      expect.arrayContaining([
        'refund.recorded',
        'refund.reserved',
        'refund.audited',
        'refund.checked_provider',
        'refund.provider_called',
        'refund.announced',
      ]),
    );
    await h.emulator.settleRefund(first.reference, 'processed');

    for (const step of steps) {
      const { accountId, reference, amountMinor } = await paid('plan');
      h.emulator.holdDeliveries();
      const asked = request(reference, 'card');
      const crashed = await h
        .withFaults(crashAt(step))
        .refundPayment(asked)
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);

      await h.payments.refundPayment(asked);
      await h.payments.reverifyPendingPayments();
      expect(paystackRefundsOf(reference)).toHaveLength(1);
      const refund = await Refund.findOne({ paymentReference: reference });
      expect(refund?.status).toBe('pending');

      await h.emulator.releaseDeliveries();
      await h.emulator.settleRefund(reference, 'processed');
      await h.waitUntil(async () => (await Refund.findById(refund?._id))?.status === 'processed');
      await h.emulator.idle();
      await expectRefundedOnce(accountId, reference, amountMinor);
    }
  });
});

describe('a wallet refund killed at each step', () => {
  it('is finished by the repeated command, crediting the wallet once', async () => {
    const recorder = recordSteps();
    const first = await paid('plan');
    const steps = await stepsOf(
      () => h.withFaults(recorder).refundPayment(request(first.reference, 'wallet')),
      recorder,
    );
    expect(steps).toEqual(
      expect.arrayContaining([
        'refund.reserved',
        'wallet.entry_recorded',
        'wallet.decided',
        'refund.wallet_credited',
        'invoice.draft_inserted',
        'invoice.number_claimed',
        'refund.credit_noted',
        'refund.announced',
      ]),
    );

    for (const step of steps) {
      const { accountId, reference, amountMinor } = await paid('plan');
      const asked = request(reference, 'wallet');
      const crashed = await h
        .withFaults(crashAt(step))
        .refundPayment(asked)
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);

      const outcome = await h.payments.refundPayment(asked);
      expect(outcome.state).toBe('processed');
      expect((await getWallet(accountId)).balanceMinor).toBe(amountMinor);
      expect((await listLedger(accountId)).entries).toHaveLength(1);
      await expectRefundedOnce(accountId, reference, amountMinor);
    }
  });
});

describe('a top-up refunded to the card, killed at each step', () => {
  it('takes the money out of the wallet once and refunds the card once', async () => {
    const recorder = recordSteps();
    const first = await paid('wallet_topup');
    const steps = await stepsOf(
      () => h.withFaults(recorder).refundPayment(request(first.reference, 'card')),
      recorder,
    );
    expect(steps).toEqual(expect.arrayContaining(['refund.wallet_debited', 'wallet.decided']));
    await h.emulator.settleRefund(first.reference, 'processed');

    for (const step of steps) {
      const { accountId, reference, amountMinor } = await paid('wallet_topup');
      const asked = request(reference, 'card');
      const crashed = await h
        .withFaults(crashAt(step))
        .refundPayment(asked)
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);
      await h.payments.refundPayment(asked);
      await h.payments.reverifyPendingPayments();

      expect(paystackRefundsOf(reference)).toHaveLength(1);
      expect((await getWallet(accountId)).balanceMinor).toBe(0);
      const { entries } = await listLedger(accountId);
      expect(entries.map((e) => [e.kind, e.amountMinor])).toEqual([
        ['reversal', -amountMinor],
        ['topup', amountMinor],
      ]);
      await h.emulator.settleRefund(reference, 'processed');
      const refund = await Refund.findOne({ paymentReference: reference });
      await h.waitUntil(async () => (await Refund.findById(refund?._id))?.status === 'processed');
    }
  });
});

describe('a processed refund whose webhooks were lost, killed at each step', () => {
  it('is found in Paystack’s refund list and finished once: one credit note, one notice', async () => {
    async function pendingWithLostWebhooks() {
      const bought = await paid('plan');
      h.emulator.holdDeliveries();
      await h.payments.refundPayment(request(bought.reference, 'card'));
      await h.emulator.settleRefund(bought.reference, 'processed');
      h.clock.advanceBy({ hours: 1, minutes: 1 });
      return bought;
    }
    async function deliverLate(): Promise<void> {
      await h.emulator.releaseDeliveries();
      await h.emulator.idle();
    }

    const recorder = recordSteps();
    await pendingWithLostWebhooks();
    const steps = await stepsOf(() => h.withFaults(recorder).resumeRefunds(), recorder);
    expect(steps).toEqual(
      expect.arrayContaining(['invoice.draft_inserted', 'refund.credit_noted', 'refund.announced']),
    );
    await deliverLate();

    for (const step of steps) {
      const { accountId, reference, amountMinor } = await pendingWithLostWebhooks();
      const crashed = await h
        .withFaults(crashAt(step))
        .resumeRefunds()
        .catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(SimulatedCrash);

      // Paystack's list is read at most once an hour per refund.
      h.clock.advanceBy({ hours: 1, minutes: 1 });
      await h.payments.resumeRefunds();
      expect((await Refund.findOne({ paymentReference: reference }))?.status).toBe('processed');
      // The webhooks turning up after all change nothing.
      const before = h.processed.length;
      await deliverLate();
      await h.waitForProcessed(before + 1);
      await expectRefundedOnce(accountId, reference, amountMinor);
    }
  });
});

describe('a cancellation refunded to the card, killed at each step', () => {
  it('cancels once and refunds the card once', async () => {
    await h.settings.update({ cancellationRefund: 'card' }, { actor: 'test' });
    try {
      async function cancelQuote() {
        const bought = await paid('plan');
        h.clock.advanceBy({ days: 6 });
        const quote = await h.payments.quoteCancellation({
          accountId: bought.accountId,
          when: 'now',
        });
        expect(quote.refundTo).toBe('card');
        return { ...bought, quote };
      }
      const recorder = recordSteps();
      const first = await cancelQuote();
      const steps = await stepsOf(
        () =>
          h.withFaults(recorder).confirmCancellation({
            accountId: first.accountId,
            quoteId: first.quote.quoteId,
          }),
        recorder,
      );
      expect(steps).toEqual(
        expect.arrayContaining([
          'cancel.subscription_cancelled',
          'refund.reserved',
          'refund.provider_called',
          'cancel.card_refund_requested',
        ]),
      );

      for (const step of steps) {
        const { accountId, reference, quote } = await cancelQuote();
        const crashed = await h
          .withFaults(crashAt(step))
          .confirmCancellation({ accountId, quoteId: quote.quoteId })
          .catch((e: unknown) => e);
        expect(crashed).toBeInstanceOf(SimulatedCrash);
        const outcome = await h.payments.confirmCancellation({ accountId, quoteId: quote.quoteId });
        await h.payments.reverifyPendingPayments();

        expect(outcome).toMatchObject({ refundTo: 'card', cardRefundMinor: quote.cardRefundMinor });
        expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([
          quote.cardRefundMinor,
        ]);
        expect((await getWallet(accountId)).balanceMinor).toBe(0);
        expect(await Notification.countDocuments({ accountId, event: 'cancelled' })).toBe(1);
      }
    } finally {
      await h.settings.update({ cancellationRefund: 'wallet' }, { actor: 'test' });
    }
  });
});
