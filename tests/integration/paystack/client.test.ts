import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';

import { DomainError } from '../../../lib/errors.js';
import { newReference } from '../../../lib/ids.js';
import type { PaymentProvider } from '../../../lib/payment-provider.js';
import { createPaystackClient } from '../../../lib/paystack/client.js';
import { startPaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import type { PaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import { TestClock } from '../../support/test-clock.js';

const secretKey = 'sk_test_client_suite';
const clock = new TestClock('2025-03-01T10:00:00.000Z');
let emulator: PaystackEmulator;
let paystack: PaymentProvider;

beforeAll(async () => {
  emulator = await startPaystackEmulator({ secretKey, clock });
});
afterAll(async () => {
  await emulator.stop();
});
beforeEach(() => {
  paystack = createPaystackClient({ secretKey, baseUrl: emulator.baseUrl, timeoutMs: 2_000 });
});

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

async function initialize(email = 'ada@example.com', amountMinor = 500_000) {
  const reference = newReference('t');
  const started = await paystack.initializeTransaction({
    reference,
    amountMinor,
    currency: 'NGN',
    email,
    callbackUrl: 'http://localhost:3000/payments/callback',
    metadata: { accountId: 'acc-1', purpose: 'plan' },
  });
  return { reference, started };
}

/** A paid transaction with a reusable card; returns its authorization code. */
async function savedCard(email: string, reusable = true): Promise<string> {
  const { reference } = await initialize(email);
  await emulator.pay(reference, { reusable });
  const verified = await paystack.verifyTransaction(reference);
  const code = verified.authorization?.authorizationCode;
  if (code === undefined) throw new Error('no authorization saved');
  return code;
}

describe('Paystack client against the emulator', () => {
  it('initializes a checkout with our reference and a checkout URL', async () => {
    const { reference, started } = await initialize();
    expect(started.reference).toBe(reference);
    expect(started.accessCode).not.toBe('');
    expect(started.authorizationUrl).toBe(`${emulator.baseUrl}/checkout/${started.accessCode}`);
  });

  it('verifies an unpaid transaction as abandoned, without an authorization', async () => {
    const { reference } = await initialize();
    const verified = await paystack.verifyTransaction(reference);
    expect(verified).toMatchObject({
      reference,
      status: 'abandoned',
      amountMinor: 500_000,
      currency: 'NGN',
      paidAt: null,
      authorization: null,
      customer: { email: 'ada@example.com' },
      metadata: { accountId: 'acc-1', purpose: 'plan' },
    });
    expect(verified.customer.customerCode).toMatch(/^CUS_/);
  });

  it('verifies a paid transaction with amount, currency, paid time and a reusable card', async () => {
    const { reference } = await initialize('grace@example.com', 250_000);
    clock.advance(60_000);
    await emulator.pay(reference, { signature: 'SIG_card_1', last4: '1234', brand: 'mastercard' });
    const verified = await paystack.verifyTransaction(reference);
    expect(verified.status).toBe('success');
    expect(verified.amountMinor).toBe(250_000);
    expect(verified.paidAt).toEqual(clock.now());
    expect(verified.gatewayResponse).toBe('Successful');
    expect(verified.authorization).toMatchObject({
      signature: 'SIG_card_1',
      last4: '1234',
      brand: 'mastercard',
      reusable: true,
      channel: 'card',
    });
    expect(verified.authorization?.authorizationCode).toMatch(/^AUTH_/);
  });

  it('reports what was actually paid when it differs from what was asked', async () => {
    const { reference } = await initialize('under@example.com', 500_000);
    await emulator.pay(reference, { amountMinor: 100, currency: 'GHS' });
    const verified = await paystack.verifyTransaction(reference);
    expect(verified).toMatchObject({ status: 'success', amountMinor: 100, currency: 'GHS' });
  });

  it('verifies declined and abandoned transactions as failed and abandoned', async () => {
    const declined = await initialize();
    await emulator.fail(declined.reference);
    expect((await paystack.verifyTransaction(declined.reference)).status).toBe('failed');
    const walkedAway = await initialize();
    emulator.abandon(walkedAway.reference);
    expect((await paystack.verifyTransaction(walkedAway.reference)).status).toBe('abandoned');
  });

  it('encodes the reference in the verify path', async () => {
    const error = await failure(paystack.verifyTransaction('../customer?x=1#y'));
    expect(error.details).toMatchObject({ providerMessage: 'Transaction reference not found' });
  });

  it('refuses an unknown reference as PAYMENT_REJECTED with Paystack’s message', async () => {
    const error = await failure(paystack.verifyTransaction('atl-unknown'));
    expect(error.code).toBe('PAYMENT_REJECTED');
    expect(error.details).toMatchObject({
      status: 400,
      kind: 'rejected',
      providerMessage: 'Transaction reference not found',
      retryable: false,
      endpoint: 'verify',
    });
  });

  it('refuses a reused reference as a duplicate', async () => {
    const { reference } = await initialize();
    const error = await failure(
      paystack.initializeTransaction({
        reference,
        amountMinor: 100_00,
        currency: 'NGN',
        email: 'ada@example.com',
        callbackUrl: 'http://localhost/cb',
      }),
    );
    expect(error.code).toBe('PAYMENT_REJECTED');
    expect(error.details).toMatchObject({
      status: 400,
      providerMessage: 'Duplicate Transaction Reference',
      providerCode: 'duplicate_reference',
    });
  });

  it('refuses invalid amounts and emails with Paystack’s messages', async () => {
    const base = { currency: 'NGN' as const, callbackUrl: 'http://localhost/cb' };
    const badAmount = await failure(
      paystack.initializeTransaction({
        ...base,
        reference: newReference(),
        amountMinor: 0,
        email: 'a@b.co',
      }),
    );
    expect(badAmount.details).toMatchObject({ providerMessage: 'Invalid Amount Sent' });
    const badEmail = await failure(
      paystack.initializeTransaction({
        ...base,
        reference: newReference(),
        amountMinor: 100,
        email: 'nope',
      }),
    );
    expect(badEmail.details).toMatchObject({ providerMessage: 'Invalid Email Address Passed' });
  });

  it('reports a wrong secret key as PAYMENT_REJECTED unauthorized, never echoing the key', async () => {
    const wrongKey = 'sk_test_wrong_key_123';
    const client = createPaystackClient({ secretKey: wrongKey, baseUrl: emulator.baseUrl });
    const error = await failure(client.verifyTransaction('anything'));
    expect(error.code).toBe('PAYMENT_REJECTED');
    expect(error.details).toMatchObject({
      status: 401,
      kind: 'unauthorized',
      providerMessage: 'Invalid key',
    });
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(
      wrongKey,
    );
  });

  it('reports 5xx as UPSTREAM_FAILED retryable, and succeeds once Paystack recovers', async () => {
    const { reference } = await initialize();
    emulator.failNextRequests('verify', { status: 502 });
    emulator.failNextRequests('verify', { status: 500 });
    for (const status of [502, 500]) {
      const error = await failure(paystack.verifyTransaction(reference));
      expect(error.code).toBe('UPSTREAM_FAILED');
      expect(error.details).toEqual({
        kind: 'server',
        status,
        retryable: true,
        endpoint: 'verify',
      });
    }
    expect((await paystack.verifyTransaction(reference)).status).toBe('abandoned');
  });

  it('reports a request that never gets an answer as an UPSTREAM_FAILED timeout', async () => {
    const { reference } = await initialize();
    const client = createPaystackClient({ secretKey, baseUrl: emulator.baseUrl, timeoutMs: 200 });
    emulator.failNextRequests('verify', { hang: true });
    const error = await failure(client.verifyTransaction(reference));
    expect(error.code).toBe('UPSTREAM_FAILED');
    expect(error.details).toEqual({ kind: 'timeout', retryable: true, endpoint: 'verify' });
  });

  it('reports an unreachable Paystack as an UPSTREAM_FAILED network error', async () => {
    const gone = await startPaystackEmulator({ secretKey });
    const baseUrl = gone.baseUrl;
    await gone.stop();
    const error = await failure(
      createPaystackClient({ secretKey, baseUrl }).verifyTransaction('x'),
    );
    expect(error.code).toBe('UPSTREAM_FAILED');
    expect(error.details).toMatchObject({ kind: 'network', retryable: true });
  });

  it('leaves a charge whose answer was lost as "unknown", resolvable by verifying its reference', async () => {
    const code = await savedCard('lost@example.com');
    const reference = newReference('rn');
    emulator.failNextRequests('charge_authorization', { status: 503, afterProcessing: true });
    const error = await failure(
      paystack.chargeAuthorization({
        reference,
        amountMinor: 300_000,
        currency: 'NGN',
        email: 'lost@example.com',
        authorizationCode: code,
      }),
    );
    expect(error.code).toBe('UPSTREAM_FAILED');
    expect((await paystack.verifyTransaction(reference)).status).toBe('success');
    const retry = await failure(
      paystack.chargeAuthorization({
        reference,
        amountMinor: 300_000,
        currency: 'NGN',
        email: 'lost@example.com',
        authorizationCode: code,
      }),
    );
    expect(retry.details).toMatchObject({ providerCode: 'duplicate_reference' });
  });

  it('charges a saved reusable card', async () => {
    const code = await savedCard('renew@example.com');
    const reference = newReference('rn');
    const charge = await paystack.chargeAuthorization({
      reference,
      amountMinor: 300_000,
      currency: 'NGN',
      email: 'renew@example.com',
      authorizationCode: code,
      metadata: { purpose: 'renewal' },
    });
    expect(charge).toMatchObject({
      reference,
      status: 'success',
      amountMinor: 300_000,
      currency: 'NGN',
      requiresAction: false,
      paused: false,
      actionUrl: null,
      metadata: { purpose: 'renewal' },
    });
    expect(charge.authorization?.authorizationCode).toBe(code);
    expect(charge.paidAt).toEqual(clock.now());
  });

  it('returns a declined charge as a failed value, not an error', async () => {
    const code = await savedCard('broke@example.com');
    emulator.nextChargeAuthorization('failed');
    const charge = await paystack.chargeAuthorization({
      reference: newReference('rn'),
      amountMinor: 300_000,
      currency: 'NGN',
      email: 'broke@example.com',
      authorizationCode: code,
    });
    expect(charge).toMatchObject({ status: 'failed', requiresAction: false, paidAt: null });
  });

  it('marks charges that need the customer (OTP, offline, bank page, paused) as requiring action', async () => {
    const code = await savedCard('otp@example.com');
    for (const outcome of ['send_otp', 'pay_offline', 'open_url', 'paused'] as const) {
      emulator.nextChargeAuthorization(outcome);
      const charge = await paystack.chargeAuthorization({
        reference: newReference('rn'),
        amountMinor: 300_000,
        currency: 'NGN',
        email: 'otp@example.com',
        authorizationCode: code,
      });
      expect(charge.status).toBe(outcome);
      expect(charge.requiresAction).toBe(true);
      expect(charge.paused).toBe(outcome === 'paused');
      if (outcome === 'open_url' || outcome === 'paused') {
        expect(charge.actionUrl).toMatch(new RegExp(`^${emulator.baseUrl}/checkout/`));
      }
    }
    emulator.nextChargeAuthorization('pending');
    const pending = await paystack.chargeAuthorization({
      reference: newReference('rn'),
      amountMinor: 300_000,
      currency: 'NGN',
      email: 'otp@example.com',
      authorizationCode: code,
    });
    expect(pending).toMatchObject({ status: 'pending', requiresAction: false });
  });

  it('refuses a non-reusable or unknown authorization, or one of another customer', async () => {
    const oneOff = await savedCard('once@example.com', false);
    const charge = (email: string, authorizationCode: string) =>
      paystack.chargeAuthorization({
        reference: newReference('rn'),
        amountMinor: 1000,
        currency: 'NGN',
        email,
        authorizationCode,
      });
    const notReusable = await failure(charge('once@example.com', oneOff));
    expect(notReusable.code).toBe('PAYMENT_REJECTED');
    expect(notReusable.details).toMatchObject({
      status: 400,
      providerMessage: 'This authorization is not reusable',
    });
    const unknown = await failure(charge('once@example.com', 'AUTH_doesnotexist'));
    expect(unknown.details).toMatchObject({
      status: 400,
      providerMessage: expect.stringContaining('Authorization'),
    });
    const reusable = await savedCard('owner@example.com');
    const stranger = await failure(charge('stranger@example.com', reusable));
    expect(stranger.code).toBe('PAYMENT_REJECTED');
  });

  it('refunds part of a payment, then the rest, and refuses an over-refund', async () => {
    const { reference } = await initialize('refund@example.com', 100_000);
    await emulator.pay(reference);
    const part = await paystack.refund({
      reference,
      amountMinor: 40_000,
      currency: 'NGN',
      merchantNote: 'deposit',
    });
    expect(part).toMatchObject({
      status: 'pending',
      amountMinor: 40_000,
      currency: 'NGN',
      transactionReference: reference,
    });
    const over = await failure(
      paystack.refund({ reference, amountMinor: 60_001, currency: 'NGN' }),
    );
    expect(over.code).toBe('PAYMENT_REJECTED');
    expect(over.details).toMatchObject({ status: 400, endpoint: 'refund' });
    const rest = await paystack.refund({ reference, currency: 'NGN' });
    expect(rest.amountMinor).toBe(60_000);
    expect(rest.id).not.toBe(part.id);
  });

  it('refuses to refund an unpaid or unknown transaction', async () => {
    const { reference } = await initialize();
    expect((await failure(paystack.refund({ reference, currency: 'NGN' }))).code).toBe(
      'PAYMENT_REJECTED',
    );
    expect((await failure(paystack.refund({ reference: 'nope', currency: 'NGN' }))).code).toBe(
      'PAYMENT_REJECTED',
    );
  });

  it('creates a customer once per email', async () => {
    const first = await paystack.createCustomer({
      email: 'Cust@Example.com',
      firstName: 'Ada',
      phone: '+2348000000000',
      metadata: { accountId: 'a' },
    });
    expect(first.customerCode).toMatch(/^CUS_/);
    expect(first.email).toBe('cust@example.com');
    const again = await paystack.createCustomer({ email: 'cust@example.com' });
    expect(again).toEqual(first);
    const bad = await failure(paystack.createCustomer({ email: 'not-an-email' }));
    expect(bad.details).toMatchObject({ status: 400, endpoint: 'customer' });
  });

  it('reports every endpoint’s 5xx the same way', async () => {
    const calls: Array<
      [Parameters<PaystackEmulator['failNextRequests']>[0], () => Promise<unknown>]
    > = [
      ['initialize', () => initialize()],
      [
        'charge_authorization',
        () =>
          paystack.chargeAuthorization({
            reference: newReference(),
            amountMinor: 1,
            currency: 'NGN',
            email: 'a@b.co',
            authorizationCode: 'x',
          }),
      ],
      ['refund', () => paystack.refund({ reference: 'x', currency: 'NGN' })],
      ['customer', () => paystack.createCustomer({ email: 'a@b.co' })],
    ];
    for (const [endpoint, call] of calls) {
      emulator.failNextRequests(endpoint, { status: 503 });
      const error = await failure(call());
      expect(error.details).toEqual({ kind: 'server', status: 503, retryable: true, endpoint });
    }
  });
});
