/**
 * Billing self-service over real HTTP (/api/v1/me/...), against the real
 * database, the real Paystack client and the Paystack emulator: buying a plan
 * and paying for it, the trial deposit, pay as you go, changing plan (quote,
 * confirm, saved card or link), cancelling, the wallet and its top-up, extra
 * data, auto top-up, and invoices as JSON and PDF. Every route also refuses a
 * caller without a token, with an unverified email, and answers 404 for
 * another account's things.
 */
import { describe, expect, it } from '@jest/globals';
import { billingRoutes } from '../../../api/v1/routes/billing.js';
import { openApiPath } from '../../../api/v1/openapi.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { useTestDatabase } from '../../support/database.js';
import { useApiHarness, type ApiCustomer } from '../../support/api.js';

useTestDatabase();
const api = useApiHarness();

const STARTER_MINOR = 350_000;

/** A customer who bought `planCode` through the API and paid on the Paystack emulator (card saved). */
async function customerOn(planCode: string): Promise<ApiCustomer & { reference: string }> {
  const customer = await api.customer();
  const checkout = await api.call('post', '/me/checkout', {
    token: customer.accessToken,
    body: { planCode },
  });
  expect(checkout.status).toBe(200);
  await api.payments.payAndSettle(checkout.body.reference);
  return { ...customer, reference: checkout.body.reference };
}

/** A fresh token (the test clock may have moved past the 15 minutes of the first). */
const tokenOf = (customer: ApiCustomer) => api.accessToken(customer);

describe('every billing route', () => {
  const concrete = (path: string) => path.replace(':number', 'ATL-2026-000001');
  const bodyFor = (method: string) => (method === 'get' ? {} : { body: {} });

  it('refuses a caller without a token (401)', async () => {
    expect(billingRoutes.length).toBeGreaterThanOrEqual(18);
    for (const route of billingRoutes) {
      const res = await api.call(route.method, concrete(route.path), bodyFor(route.method));
      expect([route.operationId, res.status]).toEqual([route.operationId, 401]);
      expect(res.body.error.details.reason).toBe('TOKEN_MISSING');
    }
  });

  it('refuses a caller whose email is not verified (403 EMAIL_NOT_VERIFIED)', async () => {
    const unverified = await api.customer({ verified: false });
    for (const route of billingRoutes) {
      const res = await api.call(route.method, concrete(route.path), {
        token: unverified.accessToken,
        ...bodyFor(route.method),
      });
      expect([route.operationId, res.status]).toEqual([route.operationId, 403]);
      expect(res.body.error).toMatchObject({
        code: 'FORBIDDEN',
        details: { reason: 'EMAIL_NOT_VERIFIED' },
      });
    }
  });

  it('is described in the OpenAPI document under the Billing tag', async () => {
    const res = await api.call('get', '/openapi.json');
    for (const route of billingRoutes) {
      const operation = res.body.paths[openApiPath(route.path)]?.[route.method];
      expect(operation?.operationId).toBe(route.operationId);
      expect(operation.tags).toEqual(['Billing']);
    }
  });
});

describe('buying a plan', () => {
  it('checkout -> pay on Paystack -> the plan is active, invoiced, and the PDF downloads', async () => {
    const customer = await api.customer();
    const before = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(before.status).toBe(200);
    expect(before.body).toEqual({ subscription: null, teamOwnerEmail: null });

    const checkout = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: { planCode: 'starter' },
    });
    expect(checkout.status).toBe(200);
    expect(checkout.body).toMatchObject({
      amountMinor: STARTER_MINOR,
      currency: 'NGN',
      reused: false,
    });
    expect(checkout.body.authorizationUrl).toMatch(/^https?:\/\//);

    // Asking again before paying hands out the same link, not a second payment.
    const again = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: { planCode: 'starter' },
    });
    expect(again.body).toMatchObject({ reference: checkout.body.reference, reused: true });

    await api.payments.payAndSettle(checkout.body.reference);

    const now = api.payments.clock.now().getTime();
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.status).toBe(200);
    expect(sub.body.subscription).toMatchObject({
      planCode: 'starter',
      planName: 'Starter',
      status: 'active',
      planKind: 'recurring',
      cancelAtPeriodEnd: false,
      renewal: { planCode: 'starter', amountMinor: STARTER_MINOR, currency: 'NGN' },
      deposit: null,
    });
    const { periodStart, periodEnd, renewsAt, quotaPeriod } = sub.body.subscription;
    expect(Date.parse(periodStart)).toBeLessThanOrEqual(now);
    expect(Date.parse(periodEnd)).toBeGreaterThan(now + 27 * 86_400_000);
    expect(renewsAt).toBe(periodEnd);
    // Starter's data runs in weeks rolling from activation.
    expect(Date.parse(quotaPeriod.end) - Date.parse(quotaPeriod.start)).toBe(7 * 86_400_000);

    const invoices = await api.call('get', '/me/invoices', { token: customer.accessToken });
    expect(invoices.status).toBe(200);
    expect(invoices.body.invoices).toHaveLength(1);
    const [invoice] = invoices.body.invoices;
    expect(invoice).toMatchObject({ kind: 'invoice', totalMinor: STARTER_MINOR, currency: 'NGN' });
    expect(invoice.number).toMatch(/^ATL-\d{4}-\d+$/);

    const json = await api.call('get', `/me/invoices/${invoice.number}`, {
      token: customer.accessToken,
    });
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({
      number: invoice.number,
      paymentReference: checkout.body.reference,
      customer: { email: customer.email },
      totalMinor: STARTER_MINOR,
    });
    expect(json.body.lines.reduce((sum: number, l: any) => sum + l.amountMinor, 0)).toBe(
      STARTER_MINOR,
    );

    const pdf = await api.call('get', invoice.pdfPath, { token: customer.accessToken });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    expect(pdf.headers.get('content-disposition')).toContain(`${invoice.number}.pdf`);
    expect(pdf.bytes.subarray(0, 4).toString('latin1')).toBe('%PDF');
  });

  it('refuses a second plan on top of a running one, as the bot words it', async () => {
    const customer = await customerOn('starter');
    const res = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: { planCode: 'personal' },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe(
      'You already have the starter plan. Change plans instead of buying a second one.',
    );
  });

  it('refuses a plan that does not exist, the trial and pay as you go', async () => {
    const customer = await api.customer();
    const unknown = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: { planCode: 'platinum' },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('PLAN_NOT_FOUND');

    const payg = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: { planCode: 'payg' },
    });
    expect(payg.status).toBe(400);
    expect(payg.body.error.message).toBe(
      'Pay-as-you-go needs a wallet top-up, not a plan purchase.',
    );

    const missing = await api.call('post', '/me/checkout', {
      token: customer.accessToken,
      body: {},
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('VALIDATION_FAILED');
  });
});

describe('the trial', () => {
  it('sends the deposit link; once paid the trial runs and the deposit is shown as held', async () => {
    const customer = await api.customer();
    const settings = await api.payments.settings.get();
    const link = await api.call('post', '/me/trial', { token: customer.accessToken });
    expect(link.status).toBe(200);
    expect(link.body).toMatchObject({ amountMinor: settings.trialDepositMinor, currency: 'NGN' });

    await api.payments.payAndSettle(link.body.reference);
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription).toMatchObject({
      planCode: 'trial',
      status: 'trialing',
      renewsAt: null,
      deposit: {
        amountMinor: settings.trialDepositMinor,
        state: 'held',
        returnTo: 'card',
        refunds: [],
      },
    });
    expect(Date.parse(sub.body.subscription.trialEndsAt)).toBeGreaterThan(
      api.payments.clock.now().getTime(),
    );
  });

  it('refuses a second trial with TRIAL_NOT_ALLOWED in the bot’s words', async () => {
    const customer = await api.customer();
    const first = await api.call('post', '/me/trial', { token: customer.accessToken });
    await api.payments.payAndSettle(first.body.reference);

    const second = await api.call('post', '/me/trial', { token: customer.accessToken });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({
      code: 'TRIAL_NOT_ALLOWED',
      message: 'This account has already had a trial.',
      details: { claim: 'account' },
    });
  });
  it('after the trial, shows the deposit on its way back, then returned once Paystack settles it', async () => {
    const customer = await api.customer();
    const link = await api.call('post', '/me/trial', { token: customer.accessToken });
    await api.payments.payAndSettle(link.body.reference);

    api.payments.clock.advanceBy({ days: 3, minutes: 1 });
    await api.payments.payments.finishDueTrials();
    const ended = await api.call('get', '/me/subscription', { token: tokenOf(customer) });
    expect(ended.body.subscription).toMatchObject({
      planCode: 'trial',
      status: 'expired',
      deposit: { state: 'returning', returnTo: 'card' },
    });
    expect(ended.body.subscription.deposit.refunds).toHaveLength(1);

    await api.payments.emulator.settleRefund(link.body.reference, 'processed');
    await api.payments.waitUntil(async () => {
      const res = await api.call('get', '/me/subscription', { token: tokenOf(customer) });
      return res.body.subscription.deposit.state === 'returned';
    });
    const returned = await api.call('get', '/me/subscription', { token: tokenOf(customer) });
    expect(returned.body.subscription.deposit.refunds[0]).toMatchObject({
      amountMinor: link.body.amountMinor,
      method: 'card',
      status: 'processed',
    });
    // Back near real time for the rest of the file (TTL-swept records are read later).
    api.payments.clock.set(Date.now());
  });
});

describe('pay as you go', () => {
  it('starts at once, paid from the wallet; asking again changes nothing', async () => {
    const customer = await api.customer();
    const res = await api.call('post', '/me/payg', { token: customer.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ planCode: 'payg', planKind: 'payg', status: 'active' });
    expect(res.body.renewsAt).toBeNull();

    const again = await api.call('post', '/me/payg', { token: customer.accessToken });
    expect(again.status).toBe(200);
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription).toMatchObject({ planCode: 'payg', status: 'active' });
  });

  it('is refused while another plan runs', async () => {
    const customer = await customerOn('starter');
    const res = await api.call('post', '/me/payg', { token: customer.accessToken });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('already has a live starter subscription');
  });
});

describe('changing plan', () => {
  it('quotes an upgrade and, confirmed, charges the saved card and moves the plan at once', async () => {
    const customer = await customerOn('starter');
    const quote = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'personal', when: 'now' },
    });
    expect(quote.status).toBe(200);
    expect(quote.body).toMatchObject({
      fromPlanCode: 'starter',
      toPlanCode: 'personal',
      direction: 'upgrade',
      effective: 'now',
      newPeriod: 'rest_of_period',
      currency: 'NGN',
    });
    expect(quote.body.dueNowMinor).toBe(quote.body.costMinor - quote.body.creditMinor);
    expect(quote.body.dueNowMinor).toBeGreaterThan(0);
    expect(quote.body.lines.length).toBeGreaterThan(0);
    expect(Date.parse(quote.body.expiresAt)).toBeGreaterThan(api.payments.clock.now().getTime());

    const confirmed = await api.call('post', '/me/plan-change/confirm', {
      token: customer.accessToken,
      body: { quoteId: quote.body.quoteId },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ state: 'applied', toPlanCode: 'personal' });

    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription).toMatchObject({
      planCode: 'personal',
      status: 'active',
      renewal: { planCode: 'personal', amountMinor: 1_500_000 },
    });
    // The card charge has its own invoice, for what was due now.
    const invoices = await api.call('get', '/me/invoices', { token: customer.accessToken });
    expect(invoices.body.invoices.map((i: any) => i.totalMinor).sort()).toEqual(
      [STARTER_MINOR, quote.body.dueNowMinor].sort(),
    );

    // A repeated confirm answers the same outcome and charges nothing more.
    const repeat = await api.call('post', '/me/plan-change/confirm', {
      token: customer.accessToken,
      body: { quoteId: quote.body.quoteId },
    });
    expect(repeat.body).toMatchObject({ state: 'applied', toPlanCode: 'personal' });
    const after = await api.call('get', '/me/invoices', { token: customer.accessToken });
    expect(after.body.invoices).toHaveLength(2);
  });

  it('answers a payment link when the saved card needs the customer', async () => {
    const customer = await customerOn('starter');
    const quote = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'personal' },
    });
    api.payments.emulator.nextChargeAuthorization('send_otp');
    const confirmed = await api.call('post', '/me/plan-change/confirm', {
      token: customer.accessToken,
      body: { quoteId: quote.body.quoteId },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({
      state: 'payment_link',
      amountMinor: quote.body.dueNowMinor,
    });
    expect(confirmed.body.authorizationUrl).toMatch(/^https?:\/\//);

    await api.payments.payAndSettle(confirmed.body.reference);
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription.planCode).toBe('personal');
  });

  it('schedules a downgrade for the period end, and refuses it "now" with TIMING_NOT_AVAILABLE', async () => {
    const customer = await customerOn('personal');
    const now = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'starter', when: 'now' },
    });
    expect(now.status).toBe(409);
    expect(now.body.error.details).toMatchObject({
      reason: 'TIMING_NOT_AVAILABLE',
      effective: 'period_end',
    });
    expect(now.body.error.message).toContain('at the end of the period');

    const quote = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'starter', when: 'period_end' },
    });
    expect(quote.body).toMatchObject({ effective: 'period_end', dueNowMinor: 0 });
    const confirmed = await api.call('post', '/me/plan-change/confirm', {
      token: customer.accessToken,
      body: { quoteId: quote.body.quoteId },
    });
    expect(confirmed.body).toMatchObject({ state: 'scheduled', toPlanCode: 'starter' });

    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription).toMatchObject({
      planCode: 'personal',
      scheduledPlanCode: 'starter',
      renewal: { planCode: 'starter', amountMinor: STARTER_MINOR },
    });
    expect(confirmed.body.at).toBe(sub.body.subscription.periodEnd);
  });

  it('refuses without a running plan, and an unknown quote', async () => {
    const customer = await api.customer();
    const quote = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'personal' },
    });
    expect(quote.status).toBe(404);
    expect(quote.body.error.message).toBe('You have no running plan to change; choose one to buy.');
    const confirm = await api.call('post', '/me/plan-change/confirm', {
      token: customer.accessToken,
      body: { quoteId: '0123456789abcdef01234567' },
    });
    expect(confirm.status).toBe(404);
    expect(confirm.body.error.message).toBe('That quote does not exist; ask for a new one.');
  });

  it('refuses a quote once its 15 minutes are over', async () => {
    const customer = await customerOn('starter');
    const quote = await api.call('post', '/me/plan-change/quote', {
      token: customer.accessToken,
      body: { planCode: 'personal' },
    });
    api.payments.clock.advanceBy({ minutes: 16 });
    const late = await api.call('post', '/me/plan-change/confirm', {
      token: tokenOf(customer),
      body: { quoteId: quote.body.quoteId },
    });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({
      code: 'CONFLICT',
      message: 'That quote has expired; ask for a new one.',
      details: { reason: 'EXPIRED' },
    });
    const sub = await api.call('get', '/me/subscription', { token: tokenOf(customer) });
    expect(sub.body.subscription.planCode).toBe('starter');
  });

  it("answers 404 for another account's quote and changes nothing", async () => {
    const owner = await customerOn('starter');
    const quote = await api.call('post', '/me/plan-change/quote', {
      token: owner.accessToken,
      body: { planCode: 'personal' },
    });
    const intruder = await customerOn('starter');
    const res = await api.call('post', '/me/plan-change/confirm', {
      token: intruder.accessToken,
      body: { quoteId: quote.body.quoteId },
    });
    expect(res.status).toBe(404);
    for (const who of [owner, intruder]) {
      const sub = await api.call('get', '/me/subscription', { token: tokenOf(who) });
      expect(sub.body.subscription.planCode).toBe('starter');
    }
  });
});

describe('cancelling', () => {
  it('at the period end: says what it means, cancels once, says "already" on a repeat, and can be undone', async () => {
    const customer = await customerOn('starter');
    const view = await api.call('get', '/me/cancellation', { token: customer.accessToken });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({
      planCode: 'starter',
      when: 'period_end',
      choices: ['period_end', 'now'],
      refundMinor: 0,
      refundTo: 'none',
      cancelAtPeriodEnd: false,
    });
    const day = String(view.body.endsAt).slice(0, 10);
    expect(view.body.lines).toEqual([
      'Cancel starter at the end of this period?',
      `Your plan keeps working until ${day}, then stops. Nothing is refunded.`,
      'You can change your mind until then.',
    ]);

    const cancel = await api.call('post', '/me/cancel', {
      token: customer.accessToken,
      body: { confirm: true, quoteId: view.body.quoteId },
    });
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({
      when: 'period_end',
      alreadyCancelled: false,
      message: `Done: Your plan stops on ${day} and will not renew.`,
    });
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription).toMatchObject({
      status: 'active',
      cancelAtPeriodEnd: true,
      renewsAt: null,
      renewal: null,
    });

    const repeat = await api.call('post', '/me/cancel', {
      token: customer.accessToken,
      body: { confirm: true, quoteId: view.body.quoteId },
    });
    expect(repeat.status).toBe(200);
    expect(repeat.body).toMatchObject({ alreadyCancelled: true, when: 'period_end' });
    expect(repeat.body.message).toMatch(/^Already cancelled/);

    const undo = await api.call('post', '/me/cancel/undo', { token: customer.accessToken });
    expect(undo.status).toBe(200);
    expect(undo.body).toMatchObject({
      cancelAtPeriodEnd: false,
      renewsAt: sub.body.subscription.periodEnd,
    });
  });

  it('now: access stops and the unused part goes to the wallet, as quoted', async () => {
    const customer = await customerOn('starter');
    const view = await api.call('get', '/me/cancellation?when=now', {
      token: customer.accessToken,
    });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ when: 'now', refundTo: 'wallet' });
    expect(view.body.refundMinor).toBeGreaterThan(0);
    expect(view.body.refundMinor).toBeLessThanOrEqual(STARTER_MINOR);
    expect(view.body.walletRefundMinor).toBe(view.body.refundMinor);
    expect(view.body.lines[1]).toBe('Your proxy access stops at once.');
    expect(view.body.lines[2]).toContain('goes back to your wallet');

    const cancel = await api.call('post', '/me/cancel', {
      token: customer.accessToken,
      body: { confirm: true, quoteId: view.body.quoteId },
    });
    expect(cancel.body).toMatchObject({
      when: 'now',
      refundMinor: view.body.refundMinor,
      walletBalanceMinor: view.body.refundMinor,
      message: 'Done: Your plan has ended.',
    });
    const sub = await api.call('get', '/me/subscription', { token: customer.accessToken });
    expect(sub.body.subscription.status).toBe('cancelled');
    const wallet = await api.call('get', '/me/wallet', { token: customer.accessToken });
    expect(wallet.body.balanceMinor).toBe(view.body.refundMinor);
    expect(wallet.body.ledger[0]).toMatchObject({
      kind: 'refund',
      amountMinor: view.body.refundMinor,
      description: 'Unused part of the cancelled plan',
    });

    // Nothing left to cancel.
    const none = await api.call('get', '/me/cancellation', { token: customer.accessToken });
    expect(none.status).toBe(404);
    expect(none.body.error.message).toBe('You have no running plan to cancel.');
  });

  it('refuses without confirm: true, undo with nothing to undo, and another account’s quote', async () => {
    const customer = await customerOn('starter');
    const view = await api.call('get', '/me/cancellation', { token: customer.accessToken });
    const unconfirmed = await api.call('post', '/me/cancel', {
      token: customer.accessToken,
      body: { quoteId: view.body.quoteId },
    });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.error.code).toBe('VALIDATION_FAILED');

    const undo = await api.call('post', '/me/cancel/undo', { token: customer.accessToken });
    expect(undo.status).toBe(409);
    expect(undo.body.error.details.reason).toBe('NOT_CANCELLING');

    const intruder = await customerOn('starter');
    const stolen = await api.call('post', '/me/cancel', {
      token: intruder.accessToken,
      body: { confirm: true, quoteId: view.body.quoteId },
    });
    expect(stolen.status).toBe(404);
    for (const who of [customer, intruder]) {
      const sub = await api.call('get', '/me/subscription', { token: who.accessToken });
      expect(sub.body.subscription.cancelAtPeriodEnd).toBe(false);
    }
  });
});

describe('the wallet', () => {
  it('tops up through a Paystack link and shows the balance and the ledger line', async () => {
    const customer = await api.customer();
    const empty = await api.call('get', '/me/wallet', { token: customer.accessToken });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({
      balanceMinor: 0,
      currency: 'NGN',
      ledger: [],
      nextBefore: null,
      autoTopUp: { enabled: false },
      topUpLimits: { minMinor: 10_000, maxMinor: 100_000_000 },
    });

    const link = await api.call('post', '/me/wallet/top-up', {
      token: customer.accessToken,
      body: { amountMinor: 500_000 },
    });
    expect(link.status).toBe(200);
    expect(link.body).toMatchObject({ amountMinor: 500_000, currency: 'NGN', reused: false });
    expect(link.body.authorizationUrl).toMatch(/^https?:\/\//);
    await api.payments.payAndSettle(link.body.reference);

    const wallet = await api.call('get', '/me/wallet', { token: customer.accessToken });
    expect(wallet.body.balanceMinor).toBe(500_000);
    expect(wallet.body.ledger).toHaveLength(1);
    expect(wallet.body.ledger[0]).toMatchObject({
      kind: 'topup',
      amountMinor: 500_000,
      balanceAfterMinor: 500_000,
      reference: link.body.reference,
    });
  });

  it('refuses a top-up outside the limits, in the bot’s words', async () => {
    const customer = await api.customer();
    const low = await api.call('post', '/me/wallet/top-up', {
      token: customer.accessToken,
      body: { amountMinor: 5_000 },
    });
    expect(low.status).toBe(400);
    expect(low.body.error.message).toBe('Top up between ₦100.00 and ₦1,000,000.00.');
    const high = await api.call('post', '/me/wallet/top-up', {
      token: customer.accessToken,
      body: { amountMinor: 100_000_001 },
    });
    expect(high.status).toBe(400);
    const fraction = await api.call('post', '/me/wallet/top-up', {
      token: customer.accessToken,
      body: { amountMinor: 100.5 },
    });
    expect(fraction.status).toBe(400);
    const badPage = await api.call('get', '/me/wallet?limit=0', { token: customer.accessToken });
    expect(badPage.status).toBe(400);
  });
});

describe('extra data', () => {
  it('lists the pack, and charges the saved card: the data joins this period’s allowance', async () => {
    // The emulator stamps `paid_at` with the system clock, and a pack goes to the
    // quota window containing that moment: put the business clock (ahead of the
    // system clock after earlier tests) just behind it, so the plan bought here
    // is active when Paystack says the pack was paid, as in production.
    api.payments.clock.set(Date.now() - 60_000);
    const settings = await api.payments.settings.get();
    const customer = await customerOn('starter');
    const offer = await api.call('get', '/me/data-top-up', { token: customer.accessToken });
    expect(offer.status).toBe(200);
    expect(offer.body).toEqual({
      packs: [
        {
          pack: 'standard',
          gb: settings.dataTopUpGb,
          bytes: settings.dataTopUpGb * 1_000_000_000,
          price: { amountMinor: settings.dataTopUpPriceMinor, currency: 'NGN' },
        },
      ],
      canBuy: true,
    });

    const bought = await api.call('post', '/me/data-top-up', {
      token: customer.accessToken,
      body: { pack: 'standard', requestId: 'retry-safe-1' },
    });
    expect(bought.status).toBe(200);
    expect(bought.body).toMatchObject({
      state: 'paid',
      added: true,
      bytes: settings.dataTopUpGb * 1_000_000_000,
      authorizationUrl: null,
    });
    const starter = await getPlan('starter');
    const usage = await getQuotaUsage(customer.accountId, api.payments.clock.now());
    expect(usage?.limitBytes).toBe((starter.quota?.bytes ?? 0) + settings.dataTopUpGb * 1e9);

    // The same requestId is the same purchase: no second charge, no second pack.
    const retried = await api.call('post', '/me/data-top-up', {
      token: customer.accessToken,
      body: { requestId: 'retry-safe-1' },
    });
    expect(retried.body.reference).toBe(bought.body.reference);
    const again = await getQuotaUsage(customer.accountId, api.payments.clock.now());
    expect(again?.limitBytes).toBe(usage?.limitBytes);
    const invoices = await api.call('get', '/me/invoices', { token: customer.accessToken });
    expect(invoices.body.invoices).toHaveLength(2);
  });

  it('is refused without a plan with a data allowance', async () => {
    const customer = await api.customer();
    const offer = await api.call('get', '/me/data-top-up', { token: customer.accessToken });
    expect(offer.body.canBuy).toBe(false);
    const res = await api.call('post', '/me/data-top-up', {
      token: customer.accessToken,
      body: {},
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe(
      'Extra data is for a running plan with a data allowance; pay as you go has no cap to raise.',
    );
    const bad = await api.call('post', '/me/data-top-up', {
      token: customer.accessToken,
      body: { requestId: 'not ok!' },
    });
    expect(bad.status).toBe(400);
  });
});

describe('auto top-up', () => {
  it('round-trips the setting: on with its figures, then off', async () => {
    const customer = await api.customer();
    const off = await api.call('get', '/me/auto-top-up', { token: customer.accessToken });
    expect(off.status).toBe(200);
    expect(off.body).toEqual({
      enabled: false,
      thresholdMinor: null,
      amountMinor: null,
      currency: 'NGN',
    });

    const on = await api.call('put', '/me/auto-top-up', {
      token: customer.accessToken,
      body: { enabled: true, thresholdMinor: 100_000, amountMinor: 500_000 },
    });
    expect(on.status).toBe(200);
    expect(on.body).toEqual({
      enabled: true,
      thresholdMinor: 100_000,
      amountMinor: 500_000,
      currency: 'NGN',
    });
    const read = await api.call('get', '/me/auto-top-up', { token: customer.accessToken });
    expect(read.body).toEqual(on.body);
    const wallet = await api.call('get', '/me/wallet', { token: customer.accessToken });
    expect(wallet.body.autoTopUp).toEqual(on.body);

    const turnedOff = await api.call('put', '/me/auto-top-up', {
      token: customer.accessToken,
      body: { enabled: false },
    });
    expect(turnedOff.body.enabled).toBe(false);
    const readOff = await api.call('get', '/me/auto-top-up', { token: customer.accessToken });
    expect(readOff.body).toEqual(off.body);
  });

  it('refuses a setting without its figures or with negative ones', async () => {
    const customer = await api.customer();
    for (const body of [
      { enabled: true },
      { enabled: true, thresholdMinor: -1, amountMinor: 500_000 },
      { enabled: true, thresholdMinor: 100_000, amountMinor: 0 },
    ]) {
      const res = await api.call('put', '/me/auto-top-up', { token: customer.accessToken, body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const read = await api.call('get', '/me/auto-top-up', { token: customer.accessToken });
    expect(read.body.enabled).toBe(false);
  });
});

describe('invoices', () => {
  it("answers 404 for another account's invoice, as JSON and as PDF", async () => {
    const owner = await customerOn('starter');
    const list = await api.call('get', '/me/invoices', { token: owner.accessToken });
    const number = list.body.invoices[0].number as string;

    const intruder = await api.customer();
    const json = await api.call('get', `/me/invoices/${number}`, { token: intruder.accessToken });
    expect(json.status).toBe(404);
    expect(json.body.error.code).toBe('NOT_FOUND');
    const pdf = await api.call('get', `/me/invoices/${number}/pdf`, {
      token: intruder.accessToken,
    });
    expect(pdf.status).toBe(404);
    expect(pdf.headers.get('content-type')).toContain('application/json');
    const theirs = await api.call('get', '/me/invoices', { token: intruder.accessToken });
    expect(theirs.body.invoices).toEqual([]);
  });

  it('answers 404 for an unknown number and 400 for something that is not one', async () => {
    const customer = await api.customer();
    const unknown = await api.call('get', '/me/invoices/ATL-2020-999999', {
      token: customer.accessToken,
    });
    expect(unknown.status).toBe(404);
    const bad = await api.call('get', '/me/invoices/..%2Fetc/pdf', { token: customer.accessToken });
    expect(bad.status).toBe(400);
    const badPage = await api.call('get', '/me/invoices?limit=0', { token: customer.accessToken });
    expect(badPage.status).toBe(400);
  });
});
