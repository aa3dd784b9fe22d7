/**
 * Refunds through the real Paystack client and the emulator: admins' full and
 * partial refunds to the card or the wallet, Paystack's webhooks carrying them
 * to the end, credit notes, the audit trail, and cancellations refunded to the
 * card. Whatever is repeated, raced or lost, money goes back once and never
 * more than was paid.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { listAudit } from '../../../core/audit.js';
import { listInvoices, type IssuedInvoice } from '../../../core/invoices.js';
import { renderInvoicePdf } from '../../../core/invoice-pdf.js';
import { openQuotaPeriod } from '../../../core/quota.js';
import { getLiveSubscription, getSubscription } from '../../../core/subscriptions.js';
import { debit, getWallet, listLedger } from '../../../core/wallet.js';
import type { AdminRefundRequest } from '../../../core/payments/index.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { Refund } from '../../../models/refund.js';
import { pdfText } from '../invoices/pdf-text.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { reasonOf } from '../../support/refusals.js';

useTestDatabase();
const h = usePaymentsHarness();
const GB = 1_000_000_000;
const DAY = 86_400_000;

let adminId = '';
let requests = 0;

beforeAll(async () => {
  adminId = String((await Account.create({ roles: ['customer', 'admin'] }))._id);
});

/** A customer who bought `planCode` by card; returns the account and the payment. */
async function planBought(planCode = 'personal') {
  const accountId = String((await h.newCustomer())._id);
  const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode });
  await h.payAndSettle(checkout.reference);
  return { accountId, reference: checkout.reference, amountMinor: checkout.amountMinor };
}

function adminRefund(
  reference: string,
  request: Partial<AdminRefundRequest> = {},
): Omit<AdminRefundRequest, 'paymentReference'> & { paymentReference: string } {
  requests += 1;
  return {
    adminId,
    channel: 'telegram',
    requestId: `msg-${requests}`,
    paymentReference: reference,
    method: 'card',
    reason: 'customer asked',
    ...request,
  };
}

function paystackRefundsOf(reference: string) {
  return [...h.emulator.refunds.values()].filter((r) => r.transactionReference === reference);
}

async function refundStatus(refundId: string | null): Promise<string | undefined> {
  return (await Refund.findById(refundId))?.status;
}

async function invoicesOf(accountId: string): Promise<IssuedInvoice[]> {
  return listInvoices(accountId);
}

async function refundedMinor(reference: string): Promise<number> {
  return (await Payment.findOne({ reference }))?.refundedMinor ?? 0;
}

describe('an admin refunds a card payment', () => {
  it('refunds all of it to the card, audited, and issues a numbered credit note when Paystack is done', async () => {
    const { accountId, reference, amountMinor } = await planBought();
    const outcome = await h.payments.refundPayment(adminRefund(reference));
    expect(outcome).toMatchObject({ state: 'pending', method: 'card', amountMinor });
    expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([amountMinor]);
    expect(await refundedMinor(reference)).toBe(amountMinor);

    const [audit, ...more] = await listAudit({ target: { kind: 'payment', id: reference } });
    expect(more).toHaveLength(0);
    expect(audit).toMatchObject({
      actor: adminId,
      channel: 'telegram',
      action: 'refund.requested',
      details: {
        refundId: outcome.refundId,
        amountMinor,
        method: 'card',
        reason: 'customer asked',
      },
    });

    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(outcome.refundId)) === 'processed');

    const [creditNote, invoice] = await invoicesOf(accountId);
    expect(invoice?.kind).toBe('invoice');
    expect(creditNote).toMatchObject({
      kind: 'credit_note',
      paymentReference: `refund:${outcome.refundId}`,
      credits: { invoiceNumber: invoice?.number, paymentReference: reference },
      totalMinor: amountMinor,
    });
    expect(creditNote?.number).toMatch(/^ATL-\d{4}-\d{6}$/);
    expect(creditNote?.sequence).toBeGreaterThan(invoice?.sequence ?? Infinity);
    expect((await Refund.findById(outcome.refundId))?.creditNoteNumber).toBe(creditNote?.number);

    const notice = await Notification.find({ accountId, event: 'refund_processed' });
    expect(notice.map((n) => n.data as Record<string, unknown>)).toEqual([
      expect.objectContaining({
        amountMinor,
        method: 'card',
        creditNoteNumber: creditNote?.number,
      }),
    ]);

    const text = pdfText(
      await renderInvoicePdf(creditNote as IssuedInvoice, { font: null, compress: false }),
    ).join('\n');
    expect(text).toContain('Credit note');
    expect(text).toContain(`Credits invoice: ${invoice?.number ?? '?'}`);
    expect(text).toContain('Total credited');
  });

  it('refunds in parts, never more than was paid, and one credit note per part', async () => {
    const { accountId, reference, amountMinor } = await planBought();
    const first = await h.payments.refundPayment(
      adminRefund(reference, { amountMinor: 600_000, reason: 'slow exits in Lagos' }),
    );
    expect(first.state).toBe('pending');

    const rest = amountMinor - 600_000;
    expect(
      await reasonOf(h.payments.refundPayment(adminRefund(reference, { amountMinor: rest + 1 }))),
    ).toBe('EXCEEDS_REFUNDABLE');
    const second = await h.payments.refundPayment(adminRefund(reference, { amountMinor: rest }));
    expect(second.state).toBe('pending');
    expect(await reasonOf(h.payments.refundPayment(adminRefund(reference)))).toBe('NOTHING_LEFT');
    expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([600_000, rest]);
    expect(await refundedMinor(reference)).toBe(amountMinor);

    await h.emulator.settleRefund(reference, 'processed');
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(second.refundId)) === 'processed');
    await h.waitUntil(async () => (await refundStatus(first.refundId)) === 'processed');

    const notes = (await invoicesOf(accountId)).filter((i) => i.kind === 'credit_note');
    expect(notes.map((n) => n.totalMinor).sort((a, b) => a - b)).toEqual(
      [600_000, rest].sort((a, b) => a - b),
    );
    expect(new Set(notes.map((n) => n.number)).size).toBe(2);
    expect(await Notification.countDocuments({ accountId, event: 'refund_processed' })).toBe(2);
  });

  it('refunds once when the same request arrives twice at the same time, and again later', async () => {
    const { reference } = await planBought('starter');
    const request = adminRefund(reference, { amountMinor: 100_000 });
    const outcomes = await Promise.all([
      h.payments.refundPayment(request),
      h.payments.refundPayment(request),
      h.payments.refundPayment(request),
    ]);
    expect(new Set(outcomes.map((o) => o.refundId)).size).toBe(1);
    const again = await h.payments.refundPayment(request);
    expect(again.refundId).toBe(outcomes[0]?.refundId);

    expect(paystackRefundsOf(reference)).toHaveLength(1);
    expect(await Refund.countDocuments({ paymentReference: reference })).toBe(1);
    expect(await listAudit({ target: { kind: 'payment', id: reference } })).toHaveLength(1);
    expect(await refundedMinor(reference)).toBe(100_000);
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(again.refundId)) === 'processed');
  });

  it('finds the refund Paystack took when its answer was lost, instead of refunding again', async () => {
    const { reference } = await planBought('starter');
    h.emulator.holdDeliveries();
    h.emulator.failNextRequests('refund', { status: 502, afterProcessing: true });
    const outcome = await h.payments.refundPayment(adminRefund(reference, { amountMinor: 50_000 }));
    expect(outcome.state).toBe('retry_later');
    expect(await refundStatus(outcome.refundId)).toBe('requested');
    expect(paystackRefundsOf(reference)).toHaveLength(1);

    // The jobs role's next pass (re-verification) moves it on from Paystack's refund list.
    const report = await h.payments.reverifyPendingPayments();
    expect(report.refundsResumed).toBeGreaterThanOrEqual(1);
    const [taken] = paystackRefundsOf(reference);
    expect(paystackRefundsOf(reference)).toHaveLength(1);
    expect(await Refund.findById(outcome.refundId).lean()).toMatchObject({
      status: 'pending',
      providerRefundId: String(taken?.id),
    });

    // The held webhook (refund.pending) then changes nothing.
    const before = h.processed.length;
    await h.emulator.releaseDeliveries();
    await h.waitForProcessed(before + 1);
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(outcome.refundId)) === 'processed');
    expect(paystackRefundsOf(reference)).toHaveLength(1);
  });

  it('tells the admins when Paystack fails the refund, issues no credit note, and frees the amount', async () => {
    const { accountId, reference, amountMinor } = await planBought('starter');
    const outcome = await h.payments.refundPayment(adminRefund(reference));
    await h.emulator.settleRefund(reference, 'failed');
    await h.waitUntil(async () => (await refundStatus(outcome.refundId)) === 'failed');

    expect(
      await Notification.countDocuments({
        audience: 'admins',
        event: 'refund_failed',
        'data.refundId': outcome.refundId,
      }),
    ).toBe(1);
    expect(await Notification.countDocuments({ accountId, event: 'refund_processed' })).toBe(0);
    expect((await invoicesOf(accountId)).map((i) => i.kind)).toEqual(['invoice']);
    expect(await refundedMinor(reference)).toBe(0);

    // The admin can try again.
    const retry = await h.payments.refundPayment(adminRefund(reference, { method: 'wallet' }));
    expect(retry).toMatchObject({ state: 'processed', amountMinor });
  });

  it('stops the plan the payment bought when asked to', async () => {
    const { accountId, reference } = await planBought('starter');
    const sub = await getLiveSubscription(accountId);
    await h.payments.refundPayment(adminRefund(reference, { method: 'wallet', endPlan: true }));
    expect((await getSubscription(String(sub?._id))).status).toBe('cancelled');
  });

  it('is refused to someone who is not an admin', async () => {
    const { reference } = await planBought('starter');
    const customer = String((await h.newCustomer())._id);
    expect(
      await reasonOf(h.payments.refundPayment(adminRefund(reference, { adminId: customer }))),
    ).toBe('FORBIDDEN');
    expect(paystackRefundsOf(reference)).toHaveLength(0);
    expect(await listAudit({ target: { kind: 'payment', id: reference } })).toHaveLength(0);
  });
});

describe('an admin refunds to the wallet', () => {
  it('credits the wallet through the ledger at once, with a credit note', async () => {
    const { accountId, reference } = await planBought();
    const outcome = await h.payments.refundPayment(
      adminRefund(reference, { method: 'wallet', amountMinor: 250_000 }),
    );
    expect(outcome).toMatchObject({ state: 'processed', method: 'wallet', amountMinor: 250_000 });
    expect(outcome.creditNoteNumber).toMatch(/^ATL-/);
    expect(paystackRefundsOf(reference)).toHaveLength(0);
    expect((await getWallet(accountId)).balanceMinor).toBe(250_000);
    const { entries } = await listLedger(accountId);
    expect(entries.map((e) => [e.kind, e.amountMinor, e.reference])).toEqual([
      ['refund', 250_000, reference],
    ]);
    const [note] = await invoicesOf(accountId);
    expect(note).toMatchObject({ kind: 'credit_note', totalMinor: 250_000 });
    expect(await Notification.countDocuments({ accountId, event: 'refund_processed' })).toBe(1);
  });
});

describe('a wallet top-up refunded to the card', () => {
  async function toppedUp(amountMinor: number) {
    const accountId = String((await h.newCustomer())._id);
    const checkout = await h.payments.checkout({ accountId, purpose: 'wallet_topup', amountMinor });
    await h.payAndSettle(checkout.reference);
    return { accountId, reference: checkout.reference };
  }

  it('is refused once the money has been spent, and moves nothing', async () => {
    const { accountId, reference } = await toppedUp(250_000);
    const spent = await debit(
      accountId,
      { amountMinor: 200_000, currency: 'NGN', key: `spend:${reference}`, description: 'PAYG' },
      { clock: h.clock },
    );
    expect(spent.ok).toBe(true);

    expect(await reasonOf(h.payments.refundPayment(adminRefund(reference)))).toBe('ALREADY_SPENT');
    expect((await getWallet(accountId)).balanceMinor).toBe(50_000);
    expect(paystackRefundsOf(reference)).toHaveLength(0);
    expect(await refundedMinor(reference)).toBe(0);

    // What is still in the wallet can go back.
    const part = await h.payments.refundPayment(adminRefund(reference, { amountMinor: 50_000 }));
    expect(part.state).toBe('pending');
    expect((await getWallet(accountId)).balanceMinor).toBe(0);
    expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([50_000]);
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(part.refundId)) === 'processed');
  });

  it('puts the money back in the wallet when Paystack fails the card refund', async () => {
    const { accountId, reference } = await toppedUp(300_000);
    const outcome = await h.payments.refundPayment(adminRefund(reference));
    expect((await getWallet(accountId)).balanceMinor).toBe(0);
    await h.emulator.settleRefund(reference, 'failed');
    await h.waitUntil(async () => (await refundStatus(outcome.refundId)) === 'failed');
    expect((await getWallet(accountId)).balanceMinor).toBe(300_000);
  });

  it('cannot be refunded to the wallet it is already in', async () => {
    const { reference } = await toppedUp(100_000);
    expect(
      await reasonOf(h.payments.refundPayment(adminRefund(reference, { method: 'wallet' }))),
    ).toBe('VALIDATION_FAILED');
  });
});

describe('cancelling at once with refunds to the card', () => {
  /** A customer on Personal bought by card at the start of a 30-day month, `afterDays` in. */
  async function personalOnCard(month: string, afterDays: number) {
    h.clock.set(new Date(`${month}-01T00:00:00.000Z`));
    const bought = await planBought('personal');
    const sub = await getLiveSubscription(bought.accountId);
    await openQuotaPeriod(bought.accountId, {
      periodStart: sub?.periodStart as Date,
      periodEnd: sub?.periodEnd as Date,
      limitBytes: 100 * GB,
    });
    h.clock.advance(afterDays * DAY);
    return bought;
  }

  async function withCardPolicy<T>(run: () => Promise<T>): Promise<T> {
    await h.settings.update({ cancellationRefund: 'card' }, { actor: 'test' });
    try {
      return await run();
    } finally {
      await h.settings.update({ cancellationRefund: 'wallet' }, { actor: 'test' });
    }
  }

  it('refunds the unused part of the period to the card that paid it', async () => {
    await withCardPolicy(async () => {
      const { accountId, reference } = await personalOnCard('2027-04', 6);
      const quote = await h.payments.quoteCancellation({ accountId, when: 'now' });
      // 24 of 30 days left: 15,000 x 80 %.
      expect(quote).toMatchObject({
        refundMinor: 1_200_000,
        refundTo: 'card',
        cardRefundMinor: 1_200_000,
      });
      expect(quote.lines[2]).toMatch(/^₦12,000\.00 goes back to the card ending \d{4} \(/);

      const outcome = await h.payments.confirmCancellation({ accountId, quoteId: quote.quoteId });
      expect(outcome).toMatchObject({ refundTo: 'card', cardRefundMinor: 1_200_000 });
      expect((await getLiveSubscription(accountId)) ?? null).toBeNull();
      expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([1_200_000]);
      expect((await getWallet(accountId)).balanceMinor).toBe(0);

      // Confirming again refunds nothing more.
      await h.payments.confirmCancellation({ accountId, quoteId: quote.quoteId });
      expect(paystackRefundsOf(reference)).toHaveLength(1);

      const refund = await Refund.findOne({ paymentReference: reference });
      expect(refund).toMatchObject({
        kind: 'cancellation',
        method: 'card',
        amountMinor: 1_200_000,
      });
      await h.emulator.settleRefund(reference, 'processed');
      await h.waitUntil(async () => (await refundStatus(String(refund?._id))) === 'processed');
      const [note] = await invoicesOf(accountId);
      expect(note).toMatchObject({ kind: 'credit_note', totalMinor: 1_200_000 });
    });
  });

  it('sends the card only what that payment can still give back, and the rest to the wallet', async () => {
    await withCardPolicy(async () => {
      const { accountId, reference, amountMinor } = await personalOnCard('2027-06', 6);
      await h.payments.refundPayment(
        adminRefund(reference, { amountMinor: amountMinor - 200_000, method: 'wallet' }),
      );
      const quote = await h.payments.quoteCancellation({ accountId, when: 'now' });
      expect(quote).toMatchObject({
        refundMinor: 1_200_000,
        refundTo: 'card',
        cardRefundMinor: 200_000,
      });
      expect(quote.lines[2]).toContain('₦2,000.00 to the card ending');
      expect(quote.lines[2]).toContain('₦10,000.00 to your wallet');

      const before = (await getWallet(accountId)).balanceMinor;
      await h.payments.confirmCancellation({ accountId, quoteId: quote.quoteId });
      expect(paystackRefundsOf(reference).map((r) => r.amountMinor)).toEqual([200_000]);
      expect((await getWallet(accountId)).balanceMinor - before).toBe(1_000_000);
      expect(await refundedMinor(reference)).toBe(amountMinor);
      await h.emulator.settleRefund(reference, 'processed');
    });
  });

  it('puts the money in the wallet when Paystack fails the card refund', async () => {
    await withCardPolicy(async () => {
      const { accountId, reference } = await personalOnCard('2027-09', 6);
      const quote = await h.payments.quoteCancellation({ accountId, when: 'now' });
      await h.payments.confirmCancellation({ accountId, quoteId: quote.quoteId });
      await h.emulator.settleRefund(reference, 'failed');
      await h.waitUntil(async () => (await getWallet(accountId)).balanceMinor === 1_200_000);
      expect(await refundedMinor(reference)).toBe(1_200_000);
      expect(
        await Notification.countDocuments({ audience: 'admins', event: 'refund_failed' }),
      ).toBeGreaterThanOrEqual(1);
    });
  });
});

describe('deposit refunds kept on the payment by an older version', () => {
  async function depositWithLegacyRefund() {
    const accountId = String((await h.newCustomer())._id);
    const checkout = await h.payments.checkout({ accountId, purpose: 'trial_deposit' });
    await h.payAndSettle(checkout.reference);
    const now = h.clock.now();
    // As the older version wrote it, straight into the collection.
    await Payment.collection.updateOne(
      { reference: checkout.reference },
      {
        $set: {
          refund: {
            status: 'requested',
            method: 'card',
            amountMinor: checkout.amountMinor,
            reason: 'trial_ended',
            requestedAt: now,
            updatedAt: now,
          },
        },
      },
    );
    return { accountId, reference: checkout.reference, amountMinor: checkout.amountMinor };
  }

  it('are moved to their own record and finished', async () => {
    const { reference, amountMinor } = await depositWithLegacyRefund();
    await h.payments.resumeRefunds();

    const payment = await Payment.findOne({ reference });
    expect(payment?.refund).toBeUndefined();
    expect(payment?.refundedMinor).toBe(amountMinor);
    const [refund, ...others] = await h.payments.listRefunds(reference);
    expect(others).toHaveLength(0);
    expect(refund).toMatchObject({ kind: 'deposit', status: 'pending', amountMinor });
    expect(paystackRefundsOf(reference)).toHaveLength(1);
    await h.payments.refundDeposit(reference, { reason: 'trial_ended' });
    expect(paystackRefundsOf(reference)).toHaveLength(1);
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(async () => (await refundStatus(refund?.id ?? null)) === 'processed');
  });

  it('take the refund the older version already asked Paystack for, without a tag', async () => {
    const { reference } = await depositWithLegacyRefund();
    const earlier = await h.ctx.provider.refund({
      reference,
      currency: 'NGN',
      merchantNote: 'Atlantic trial deposit: trial_ended',
    });
    await h.payments.resumeRefunds();
    expect(paystackRefundsOf(reference)).toHaveLength(1);
    expect(await Refund.findOne({ paymentReference: reference }).lean()).toMatchObject({
      status: 'pending',
      providerRefundId: String(earlier.id),
    });
    await h.emulator.settleRefund(reference, 'processed');
    await h.waitUntil(
      async () => (await Refund.findOne({ paymentReference: reference }))?.status === 'processed',
    );
  });
});
