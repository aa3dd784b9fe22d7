/**
 * A customer buys a plan: checkout link -> Paystack (the emulator) -> signed
 * webhook and the callback page, in any order and any number of times -> the
 * subscription starts once, one invoice, one confirmation, the card is saved.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { Payment } from '../../../models/payment.js';
import { PaymentMethod } from '../../../models/payment-method.js';
import { Notification } from '../../../models/notification.js';
import { Subscription } from '../../../models/subscription.js';
import { listInvoices } from '../../../core/invoices.js';
import { getPlan, planPrice, updatePlan } from '../../../core/plans.js';

useTestDatabase();
const h = usePaymentsHarness();

async function callbackPage(reference: string): Promise<{ status: number; html: string }> {
  const res = await fetch(
    `${h.apiUrl}/payments/callback?trxref=${reference}&reference=${reference}`,
  );
  return { status: res.status, html: await res.text() };
}

describe('buying a plan', () => {
  it('gives a Paystack link for the plan price and serves the customer once after payment', async () => {
    const customer = await h.newCustomer();
    const starter = await getPlan('starter');

    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });
    expect(checkout.amountMinor).toBe(planPrice(starter, 'NGN'));
    expect(checkout.authorizationUrl).toContain(h.emulator.baseUrl);

    await h.emulator.pay(checkout.reference, { deliver: { duplicates: 2 } });
    await h.waitForProcessed(3);

    const subscriptions = await Subscription.find({ accountId: customer._id });
    expect(subscriptions).toHaveLength(1);
    expect(subscriptions[0]).toMatchObject({ planCode: 'starter', status: 'active' });
    const invoices = await listInvoices(customer._id);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]?.totalMinor).toBe(checkout.amountMinor);
    const confirmations = await Notification.find({
      accountId: customer._id,
      event: 'payment_confirmed',
    });
    expect(confirmations).toHaveLength(1);
    expect(await PaymentMethod.countDocuments({ accountId: customer._id })).toBe(1);
    const payment = await Payment.findOne({ reference: checkout.reference });
    expect(payment?.status).toBe('paid');
    expect(payment?.fulfilledAt).toBeInstanceOf(Date);

    const page = await callbackPage(checkout.reference);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Payment received');
    expect(page.html).toContain('https://t.me/AtlanticProxyBot');
    expect(await Subscription.countDocuments({ accountId: customer._id })).toBe(1);
  });

  it('serves the customer from the callback page when the webhook is late, and once when it comes', async () => {
    const customer = await h.newCustomer();
    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'personal',
    });
    h.emulator.holdDeliveries();
    await h.emulator.pay(checkout.reference);

    const page = await callbackPage(checkout.reference);
    expect(page.html).toContain('data-state="fulfilled"');
    expect(await Subscription.countDocuments({ accountId: customer._id, status: 'active' })).toBe(
      1,
    );

    const before = h.processed.length;
    await h.emulator.releaseDeliveries();
    await h.waitForProcessed(before + 1);
    expect(await Subscription.countDocuments({ accountId: customer._id })).toBe(1);
    expect(await listInvoices(customer._id)).toHaveLength(1);
  });

  it('fulfils once when the callback and five copies of the webhook arrive at the same moment', async () => {
    const customer = await h.newCustomer();
    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });
    h.emulator.holdDeliveries();
    await h.emulator.pay(checkout.reference, { deliver: { duplicates: 4 } });
    const before = h.processed.length;

    await Promise.all([
      h.emulator.releaseDeliveries({ parallel: true }),
      callbackPage(checkout.reference),
      callbackPage(checkout.reference),
      h.payments.fulfil(checkout.reference),
    ]);
    await h.waitForProcessed(before + 1);

    expect(await Subscription.countDocuments({ accountId: customer._id })).toBe(1);
    expect(await listInvoices(customer._id)).toHaveLength(1);
    expect(
      await Notification.countDocuments({ accountId: customer._id, event: 'payment_confirmed' }),
    ).toBe(1);
  });

  it('shares one link between concurrent checkouts for the same thing', async () => {
    const customer = await h.newCustomer();
    const request = {
      accountId: String(customer._id),
      purpose: 'plan' as const,
      planCode: 'starter',
    };
    const links = await Promise.all(Array.from({ length: 5 }, () => h.payments.checkout(request)));

    expect(new Set(links.map((l) => l.reference)).size).toBe(1);
    expect(await Payment.countDocuments({ accountId: customer._id, status: 'pending' })).toBe(1);
  });

  it('says the payment failed when the card is declined, and serves nothing', async () => {
    const customer = await h.newCustomer();
    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });
    await h.emulator.fail(checkout.reference, { gatewayResponse: 'Declined' });

    const page = await callbackPage(checkout.reference);
    expect(page.html).toContain('Payment failed');
    expect(await Subscription.countDocuments({ accountId: customer._id })).toBe(0);
    expect(
      await Notification.countDocuments({ accountId: customer._id, event: 'payment_failed' }),
    ).toBe(1);
    // A new checkout is possible after a failure.
    const again = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });
    expect(again.reference).not.toBe(checkout.reference);
  });

  it('shows "still processing" before the customer has paid and "not found" for a strange reference', async () => {
    const customer = await h.newCustomer();
    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });
    expect((await callbackPage(checkout.reference)).html).toContain('data-state="pending"');
    const unknown = await callbackPage('atl-nope');
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('Payment not found');
    const missing = await fetch(`${h.apiUrl}/payments/callback`);
    expect(missing.status).toBe(404);
  });
});

describe('a price change between checkout and payment', () => {
  it('keeps the price the customer agreed to at checkout until the renewal', async () => {
    const customer = await h.newCustomer();
    const accountId = String(customer._id);
    const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode: 'starter' });
    const agreed = (await Payment.findOne({ reference: checkout.reference }))?.amountMinor;
    await updatePlan(
      'starter',
      { prices: [{ currency: 'NGN', amountMinor: (agreed ?? 0) + 100_000 }] },
      { actor: 'admin:1', clock: h.clock },
    );

    await h.payAndSettle(checkout.reference);

    expect(await Subscription.findOne({ accountId, status: 'active' })).toMatchObject({
      planCode: 'starter',
      priceMinor: agreed,
      currency: 'NGN',
    });
  });
});

describe('what can be bought', () => {
  it('refuses a plan an admin took off sale, and a second plan on top of a running one', async () => {
    const { updatePlan } = await import('../../../core/plans.js');
    await updatePlan('team', { isOnSale: false }, { actor: 'test', clock: h.clock });
    const customer = await h.newCustomer();
    const accountId = String(customer._id);
    await expect(
      h.payments.checkout({ accountId, purpose: 'plan', planCode: 'team' }),
    ).rejects.toMatchObject({ code: 'PLAN_NOT_FOUND' });

    const first = await h.payments.checkout({ accountId, purpose: 'plan', planCode: 'starter' });
    await h.payAndSettle(first.reference);
    await expect(
      h.payments.checkout({ accountId, purpose: 'plan', planCode: 'personal' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(
      h.payments.checkout({ accountId, purpose: 'trial_deposit' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it("refuses a plan or a trial to a member of a team, who uses the owner's plan", async () => {
    const owner = await h.newCustomer();
    const ownerId = String(owner._id);
    const paid = await h.payments.checkout({
      accountId: ownerId,
      purpose: 'plan',
      planCode: 'personal',
    });
    await h.payAndSettle(paid.reference);
    const { addSeat } = await import('../../../core/team.js');
    const member = await h.newCustomer();
    const memberId = String(member._id);
    const { Subscription: Sub } = await import('../../../models/subscription.js');
    const live = await Sub.findOne({ liveAccountId: owner._id });
    // A team owner (Team is off sale in this file since the test above): give
    // the running subscription the Team plan directly.
    await Sub.updateOne({ _id: live?._id }, { $set: { planCode: 'team' } });
    await addSeat(ownerId, memberId, {}, { clock: h.clock });
    for (const purpose of ['plan', 'trial_deposit'] as const) {
      await expect(
        h.payments.checkout({ accountId: memberId, purpose, planCode: 'starter' }),
      ).rejects.toMatchObject({ code: 'CONFLICT', details: { reason: 'TEAM_MEMBER' } });
    }
    expect(await Payment.countDocuments({ accountId: member._id })).toBe(0);
  });
});
