import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import { newReference } from '../../../lib/ids.js';
import type { PaymentProvider } from '../../../lib/payment-provider.js';
import { createPaystackClient } from '../../../lib/paystack/client.js';
import { startPaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import type { PaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import { parsePaystackEvent } from '../../../lib/paystack/schemas.js';
import { isValidPaystackSignature } from '../../../lib/paystack/signature.js';
import { startWebhookReceiver } from './webhook-receiver.js';
import type { WebhookReceiver } from './webhook-receiver.js';

const secretKey = 'sk_test_webhook_suite';
let emulator: PaystackEmulator;
let paystack: PaymentProvider;
let receiver: WebhookReceiver;

beforeAll(async () => {
  emulator = await startPaystackEmulator({ secretKey });
  paystack = createPaystackClient({ secretKey, baseUrl: emulator.baseUrl });
});
afterAll(async () => {
  await emulator.stop();
});
beforeEach(async () => {
  receiver = await startWebhookReceiver();
  emulator.setWebhookUrl(receiver.url);
});
afterEach(async () => {
  await emulator.idle();
  await receiver.stop();
});

async function initialize(
  email = 'ada@example.com',
  amountMinor = 500_000,
  callbackUrl = 'http://localhost:3000/payments/callback',
) {
  const reference = newReference('w');
  const started = await paystack.initializeTransaction({
    reference,
    amountMinor,
    currency: 'NGN',
    email,
    callbackUrl,
    metadata: { accountId: 'acc-9' },
  });
  expect(started.reference).toBe(reference);
  return started;
}

describe('Paystack emulator webhooks', () => {
  it('delivers charge.success signed over the exact raw bytes, with metadata, customer and authorization', async () => {
    const { reference } = await initialize();
    await emulator.pay(reference, { signature: 'SIG_same_card' });
    expect(receiver.received).toHaveLength(1);
    const [webhook] = receiver.received;
    if (webhook === undefined) throw new Error('no webhook');
    expect(webhook.contentType).toBe('application/json');
    expect(isValidPaystackSignature(webhook.rawBody, webhook.signature, secretKey)).toBe(true);
    expect(isValidPaystackSignature(webhook.rawBody, webhook.signature, 'sk_test_other')).toBe(
      false,
    );
    const parsed = parsePaystackEvent(JSON.parse(webhook.rawBody.toString('utf8')) as unknown);
    if (parsed.kind !== 'charge.success') throw new Error(`unexpected ${parsed.kind}`);
    expect(parsed.data).toMatchObject({
      reference,
      status: 'success',
      amount: 500_000,
      currency: 'NGN',
      metadata: { accountId: 'acc-9' },
      customer: { email: 'ada@example.com' },
      authorization: { reusable: true, signature: 'SIG_same_card' },
    });
    expect(emulator.deliveries.at(-1)).toMatchObject({
      event: 'charge.success',
      status: 200,
      ok: true,
    });
  });

  it('sends no charge.success for a declined payment', async () => {
    const { reference } = await initialize();
    await emulator.fail(reference);
    await emulator.idle();
    expect(receiver.received).toHaveLength(0);
  });

  it('delivers byte-identical duplicates when asked, in parallel too', async () => {
    const { reference } = await initialize();
    await emulator.pay(reference, { deliver: { duplicates: 2, parallel: true } });
    expect(receiver.received).toHaveLength(3);
    const bodies = new Set(receiver.received.map((webhook) => webhook.rawBody.toString('hex')));
    expect(bodies.size).toBe(1);
    expect(new Set(receiver.received.map((webhook) => webhook.signature)).size).toBe(1);
  });

  it('retries a delivery the receiver refused, as Paystack does', async () => {
    const { reference } = await initialize();
    receiver.respondWith(500);
    await emulator.pay(reference, { deliver: { retries: 2 } });
    expect(receiver.received).toHaveLength(3);
    expect(emulator.deliveries.slice(-3).map((delivery) => delivery.attempt)).toEqual([1, 2, 3]);
  });

  it('moves a refund through refund.pending, refund.processing and refund.processed with string amounts', async () => {
    const { reference } = await initialize('refund@example.com', 100_000);
    await emulator.pay(reference);
    await paystack.refund({ reference, amountMinor: 100_000, currency: 'NGN' });
    await emulator.idle();
    await emulator.settleRefund(reference, 'processed');
    const events = receiver.received.map((webhook) => webhook.event);
    expect(events).toEqual([
      'charge.success',
      'refund.pending',
      'refund.processing',
      'refund.processed',
    ]);
    for (const webhook of receiver.received.slice(1)) {
      expect(webhook.data).toMatchObject({
        transaction_reference: reference,
        amount: '100000',
        currency: 'NGN',
      });
      expect(isValidPaystackSignature(webhook.rawBody, webhook.signature, secretKey)).toBe(true);
      const parsed = parsePaystackEvent({ event: webhook.event, data: webhook.data });
      expect(parsed).toMatchObject({ kind: 'refund', data: { amount: 100_000 } });
    }
    expect((await paystack.verifyTransaction(reference)).status).toBe('reversed');
  });

  it('delivers the refund events of one settlement in reverse order when asked', async () => {
    const { reference } = await initialize('late@example.com', 100_000);
    await emulator.pay(reference);
    await paystack.refund({ reference, amountMinor: 10_000, currency: 'NGN' });
    await emulator.idle();
    await emulator.settleRefund(reference, 'failed', { deliver: { order: 'reverse' } });
    expect(receiver.received.slice(-2).map((webhook) => webhook.event)).toEqual([
      'refund.failed',
      'refund.processing',
    ]);
  });

  it('holds deliveries from several calls and releases them as one reordered batch', async () => {
    const first = await initialize('a@example.com');
    const second = await initialize('b@example.com');
    emulator.holdDeliveries();
    await emulator.pay(first.reference);
    await emulator.pay(second.reference);
    await emulator.sendEvent('subscription.create', { subscription_code: 'SUB_1' });
    expect(receiver.received).toHaveLength(0);
    const results = await emulator.releaseDeliveries({ order: 'reverse' });
    expect(results).toHaveLength(3);
    expect(receiver.received.map((webhook) => webhook.event)).toEqual([
      'subscription.create',
      'charge.success',
      'charge.success',
    ]);
    expect(receiver.received.map((webhook) => webhook.data.reference).slice(1)).toEqual([
      second.reference,
      first.reference,
    ]);
  });

  it('shuffles a batch without losing or adding events', async () => {
    const references: string[] = [];
    emulator.holdDeliveries();
    for (let i = 0; i < 6; i += 1) {
      const { reference } = await initialize(`s${i}@example.com`);
      references.push(reference);
      await emulator.pay(reference);
    }
    await emulator.releaseDeliveries({ order: 'shuffle' });
    expect(receiver.received.map((webhook) => webhook.data.reference).sort()).toEqual(
      [...references].sort(),
    );
  });

  it('sends any event signed correctly, with a wrong key, or unsigned', async () => {
    const valid = await emulator.sendEvent('charge.dispute.create', { id: 7 });
    const wrong = await emulator.sendEvent('invoice.update', { id: 8 }, { signature: 'wrong' });
    const missing = await emulator.sendEvent('mystery.event', { id: 9 }, { signature: 'missing' });
    expect([valid, wrong, missing].map((results) => results.length)).toEqual([1, 1, 1]);
    const [a, b, c] = receiver.received;
    expect(a && isValidPaystackSignature(a.rawBody, a.signature, secretKey)).toBe(true);
    expect(b && isValidPaystackSignature(b.rawBody, b.signature, secretKey)).toBe(false);
    expect(c?.signature).toBeUndefined();
  });

  it('records a delivery it could not make when no webhook URL is set', async () => {
    emulator.setWebhookUrl(undefined);
    const [result] = await emulator.sendEvent('charge.success', {});
    expect(result).toMatchObject({ ok: false, status: null, error: 'no webhook URL set' });
  });
});

describe('Paystack emulator checkout page', () => {
  it('shows a SANDBOX page with pay, decline and cancel buttons', async () => {
    const { authorizationUrl, reference } = await initialize();
    const page = await fetch(authorizationUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('SANDBOX');
    expect(html).toContain('Pay (sandbox)');
    expect(html).toContain('Decline');
    expect(html).toContain('Cancel');
    expect(html).toContain('₦5,000.00');
    expect(html).toContain(reference);
  });

  it('pays, redirects to the callback with trxref and reference, and sends charge.success', async () => {
    const { authorizationUrl, reference } = await initialize(
      'buyer@example.com',
      500_000,
      'http://localhost:3000/payments/callback?from=bot',
    );
    const answer = await fetch(`${authorizationUrl}/pay`, { method: 'POST', redirect: 'manual' });
    expect(answer.status).toBe(302);
    const location = new URL(answer.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe('http://localhost:3000/payments/callback');
    expect(location.searchParams.get('trxref')).toBe(reference);
    expect(location.searchParams.get('reference')).toBe(reference);
    expect(location.searchParams.get('from')).toBe('bot');
    expect((await paystack.verifyTransaction(reference)).status).toBe('success');
    const [webhook] = await receiver.waitFor(1);
    expect(webhook?.data.reference).toBe(reference);
  });

  it('declines and cancels back to the callback without a charge.success', async () => {
    const declined = await initialize();
    const decline = await fetch(`${declined.authorizationUrl}/decline`, {
      method: 'POST',
      redirect: 'manual',
    });
    expect(decline.status).toBe(302);
    expect((await paystack.verifyTransaction(declined.reference)).status).toBe('failed');
    const cancelled = await initialize();
    const cancel = await fetch(`${cancelled.authorizationUrl}/cancel`, {
      method: 'POST',
      redirect: 'manual',
    });
    expect(new URL(cancel.headers.get('location') ?? '').searchParams.get('reference')).toBe(
      cancelled.reference,
    );
    expect((await paystack.verifyTransaction(cancelled.reference)).status).toBe('abandoned');
    await emulator.idle();
    expect(receiver.received).toHaveLength(0);
  });

  it('answers 404 for an unknown checkout', async () => {
    expect((await fetch(`${emulator.baseUrl}/checkout/nope`)).status).toBe(404);
  });
});
