/**
 * POST /webhooks/paystack against bad and odd input: forged, unsigned,
 * malformed, duplicated, unknown and out-of-place events, and Paystack being
 * unreachable while an event is processed. Nothing is applied twice and
 * nothing is fulfilled on doubt.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { signPaystackBody } from '../../../lib/paystack/signature.js';
import { WebhookEvent } from '../../../models/webhook-event.js';
import { Payment } from '../../../models/payment.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Subscription } from '../../../models/subscription.js';

useTestDatabase();
const h = usePaymentsHarness();

async function post(body: string, signature: string | undefined): Promise<Response> {
  return fetch(`${h.apiUrl}/webhooks/paystack`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === undefined ? {} : { 'x-paystack-signature': signature }),
    },
    body,
  });
}

async function starterCheckout(): Promise<{ accountId: string; reference: string }> {
  const customer = await h.newCustomer();
  const checkout = await h.payments.checkout({
    accountId: String(customer._id),
    purpose: 'plan',
    planCode: 'starter',
  });
  return { accountId: String(customer._id), reference: checkout.reference };
}

describe('webhook authentication', () => {
  it('refuses a wrong or missing signature with 401 and stores nothing', async () => {
    const { reference } = await starterCheckout();
    const before = await WebhookEvent.countDocuments();
    const wrong = await h.emulator.sendEvent(
      'charge.success',
      { reference },
      { signature: 'wrong' },
    );
    const missing = await h.emulator.sendEvent(
      'charge.success',
      { reference },
      { signature: 'missing' },
    );

    expect(wrong.map((d) => d.status)).toEqual([401]);
    expect(missing.map((d) => d.status)).toEqual([401]);
    expect(await WebhookEvent.countDocuments()).toBe(before);
    expect((await Payment.findOne({ reference }))?.status).toBe('pending');
  });

  it('refuses a body that was changed after signing', async () => {
    const body = JSON.stringify({ event: 'charge.success', data: { reference: 'x', amount: 100 } });
    const signature = signPaystackBody(body, h.secretKey);
    const res = await post(body.replace('100', '1'), signature);
    expect(res.status).toBe(401);
  });

  it('answers a correctly signed body that is not an event with 400 and stores nothing', async () => {
    const before = await WebhookEvent.countDocuments();
    for (const body of ['{not json', '[]', '{"data":{}}', '{"event":"x"}', '']) {
      const res = await post(body, signPaystackBody(body, h.secretKey));
      expect(res.status).toBe(400);
    }
    expect(await WebhookEvent.countDocuments()).toBe(before);
  });
});

describe('storing and acknowledging events', () => {
  it('stores an unknown event once, acknowledges it and marks it ignored', async () => {
    const before = h.processed.length;
    const results = await h.emulator.sendEvent(
      'transfer.success',
      { id: 991, amount: 5000 },
      { duplicates: 2 },
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    await h.waitForProcessed(before + 3);

    const stored = await WebhookEvent.find({ event: 'transfer.success' });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ status: 'ignored', deliveries: 3 });
  });

  it('stores subscription and invoice events and acts on none (Atlantic creates no Paystack subscriptions)', async () => {
    const before = h.processed.length;
    for (const event of [
      'subscription.create',
      'subscription.disable',
      'invoice.create',
      'invoice.payment_failed',
    ]) {
      await h.emulator.sendEvent(event, { subscription_code: 'SUB_x', id: 1 });
    }
    await h.waitForProcessed(before + 4);
    const stored = await WebhookEvent.find({ event: /^(subscription|invoice)\./ });
    expect(stored).toHaveLength(4);
    for (const e of stored)
      expect(e).toMatchObject({ status: 'ignored', outcome: 'no linked Paystack subscription' });
  });

  it('ignores a charge for a reference that is not ours', async () => {
    const before = h.processed.length;
    await h.emulator.sendEvent('charge.success', {
      reference: 'someone-elses-ref',
      amount: 100,
      currency: 'NGN',
    });
    await h.waitForProcessed(before + 1);
    const stored = await WebhookEvent.findOne({ eventKey: 'charge.success:someone-elses-ref' });
    expect(stored?.status).toBe('ignored');
  });
});

describe('an event stored by a process that died before processing it', () => {
  it('waits out the dead process claim, then the jobs role serves the customer once', async () => {
    const { accountId, reference } = await starterCheckout();
    h.emulator.holdDeliveries();
    await h.emulator.pay(reference);
    // The route stores a new event already claimed by itself, then processes it in memory;
    // here the "process" stores it and dies before processing.
    const body = JSON.stringify({
      event: 'charge.success',
      data: { reference, status: 'success' },
    });
    const stored = await h.payments.receiveWebhook(
      Buffer.from(body),
      signPaystackBody(body, h.secretKey),
      { claim: true },
    );
    if (stored.status !== 200) throw new Error(`not stored: ${stored.status}`);
    expect(stored.claimed).toBeDefined();

    expect(await h.payments.processDueWebhooks()).toBe(0);
    expect((await Payment.findOne({ reference }))?.status).toBe('pending');

    h.clock.advanceBy({ minutes: 1, seconds: 1 });
    expect(await h.payments.processDueWebhooks()).toBe(1);
    expect((await Payment.findOne({ reference }))?.fulfilledAt).toBeInstanceOf(Date);
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(1);
    const event = await WebhookEvent.findById(stored.eventId).lean();
    expect(event).toMatchObject({ status: 'processed', attempts: 2 });

    // Paystack's own delivery of the same event arrives late: a duplicate, nothing twice.
    const before = h.processed.length;
    await h.emulator.releaseDeliveries();
    await h.waitForProcessed(before + 1);
    expect(await Subscription.countDocuments({ accountId })).toBe(1);
    expect((await WebhookEvent.findById(stored.eventId).lean())?.deliveries).toBe(2);
  });
});

describe('never fulfilling on doubt', () => {
  it('does not serve a signed charge.success that Paystack verify does not confirm', async () => {
    const { accountId, reference } = await starterCheckout();
    const before = h.processed.length;
    await h.emulator.sendEvent('charge.success', {
      reference,
      amount: 1,
      currency: 'NGN',
      status: 'success',
    });
    await h.waitForProcessed(before + 1);

    expect((await Payment.findOne({ reference }))?.status).toBe('pending');
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(0);
    // It is retried later rather than dropped.
    expect(await WebhookEvent.findOne({ eventKey: `charge.success:${reference}` })).toMatchObject({
      status: 'received',
    });
  });

  it('flags a payment whose amount does not match, tells the admins and serves nothing', async () => {
    const { accountId, reference } = await starterCheckout();
    const before = h.processed.length;
    await h.emulator.pay(reference, { amountMinor: 100 });
    await h.waitForProcessed(before + 1);

    const payment = await Payment.findOne({ reference });
    expect(payment?.status).toBe('flagged');
    expect(payment?.flagReason).toMatch(/paid 100 minor units/);
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(0);
    expect(
      await Notification.countDocuments({
        audience: 'admins',
        event: 'payment_flagged',
        'data.reference': reference,
      }),
    ).toBe(1);
  });

  it('flags a payment made in another currency', async () => {
    const { reference } = await starterCheckout();
    const before = h.processed.length;
    await h.emulator.pay(reference, { currency: 'USD' });
    await h.waitForProcessed(before + 1);
    expect(await Payment.findOne({ reference })).toMatchObject({ status: 'flagged' });
  });

  it('keeps the event when Paystack verify fails with 5xx, and serves the customer on the retry', async () => {
    const { accountId, reference } = await starterCheckout();
    h.emulator.failNextRequests('verify', { status: 503 });
    const before = h.processed.length;
    await h.emulator.pay(reference);
    const [first] = (await h.waitForProcessed(before + 1)).slice(before);
    expect(first?.outcome).toBe('retry');
    expect((await Payment.findOne({ reference }))?.status).toBe('pending');

    h.clock.advanceBy({ minutes: 1 });
    expect(await h.payments.processDueWebhooks()).toBeGreaterThanOrEqual(1);
    expect((await Payment.findOne({ reference }))?.status).toBe('paid');
    expect(await Subscription.countDocuments({ accountId, status: 'active' })).toBe(1);
  });

  it('treats a verify that never answers like a 5xx: nothing changes until Paystack answers', async () => {
    const { reference } = await starterCheckout();
    h.emulator.failNextRequests('verify', { hang: true });
    h.emulator.holdDeliveries();
    await h.emulator.pay(reference);
    const outcome = await h.payments.fulfil(reference);
    expect(outcome.state).toBe('retry_later');
    expect((await Payment.findOne({ reference }))?.status).toBe('pending');
    expect((await h.payments.fulfil(reference)).state).toBe('fulfilled');
    const before = h.processed.length;
    await h.emulator.releaseDeliveries();
    await h.waitForProcessed(before + 1);
  });
});

describe('disputes', () => {
  it('flags the account and tells the admins when a card dispute opens', async () => {
    const { accountId, reference } = await starterCheckout();
    let before = h.processed.length;
    await h.emulator.pay(reference);
    await h.waitForProcessed(before + 1);

    before = h.processed.length;
    const dispute = {
      id: 77,
      status: 'awaiting-merchant-feedback',
      transaction: { reference, amount: 500000 },
    };
    await h.emulator.sendEvent('charge.dispute.create', dispute, { duplicates: 1 });
    await h.waitForProcessed(before + 2);

    const account = await Account.findById(accountId);
    expect(account?.flags.map((f) => f.kind)).toEqual(['dispute']);
    expect(await Notification.countDocuments({ audience: 'admins', event: 'dispute_opened' })).toBe(
      1,
    );
  });
});
