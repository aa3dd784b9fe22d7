/**
 * Every answer and webhook of the emulator parses with the schemas the client
 * and the webhook handler use, so the emulator, the schemas and the facts
 * taken from Paystack's OpenAPI description agree with each other.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { z } from 'zod';

import { newReference } from '../../../lib/ids.js';
import { startPaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import type { ChargeOutcome, PaystackEmulator } from '../../../lib/paystack/emulator/index.js';
import {
  paystackChargeResponseSchema,
  paystackChargeSuccessDataSchema,
  paystackCustomerResponseSchema,
  paystackErrorSchema,
  paystackInitializeResponseSchema,
  paystackRefundEventDataSchema,
  paystackRefundResponseSchema,
  paystackVerifyResponseSchema,
  paystackWebhookEnvelopeSchema,
} from '../../../lib/paystack/schemas.js';
import { startWebhookReceiver } from './webhook-receiver.js';
import type { WebhookReceiver } from './webhook-receiver.js';

const secretKey = 'sk_test_schema_suite';
let emulator: PaystackEmulator;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  emulator = await startPaystackEmulator({ secretKey, webhookUrl: receiver.url });
});
afterAll(async () => {
  await emulator.stop();
  await receiver.stop();
});

async function call(method: 'GET' | 'POST', path: string, body?: unknown, key = secretKey) {
  const response = await fetch(`${emulator.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json: unknown = await response.json();
  return { status: response.status, json };
}

function expectParses(schema: z.ZodType, json: unknown): void {
  const result = schema.safeParse(json);
  if (!result.success)
    throw new Error(`${JSON.stringify(result.error.issues)}\nfor ${JSON.stringify(json)}`);
}

async function initialize(email = 'schema@example.com') {
  const reference = newReference('s');
  const answer = await call('POST', '/transaction/initialize', {
    reference,
    amount: 20_000,
    email,
    currency: 'NGN',
    callback_url: 'http://localhost/cb',
  });
  expect(answer.status).toBe(200);
  expectParses(paystackInitializeResponseSchema, answer.json);
  return reference;
}

describe('emulator answers parse with the Paystack schemas', () => {
  it('initialize and verify in every transaction state', async () => {
    const abandoned = await initialize();
    expectParses(
      paystackVerifyResponseSchema,
      (await call('GET', `/transaction/verify/${abandoned}`)).json,
    );
    const paid = await initialize();
    await emulator.pay(paid);
    expectParses(
      paystackVerifyResponseSchema,
      (await call('GET', `/transaction/verify/${paid}`)).json,
    );
    const failed = await initialize();
    await emulator.fail(failed);
    expectParses(
      paystackVerifyResponseSchema,
      (await call('GET', `/transaction/verify/${failed}`)).json,
    );
    await call('POST', '/refund', { transaction: paid });
    await emulator.settleRefund(paid, 'processed');
    const reversed = await call('GET', `/transaction/verify/${paid}`);
    expectParses(paystackVerifyResponseSchema, reversed.json);
    expect(reversed.json).toMatchObject({ data: { status: 'reversed' } });
  });

  it('charge_authorization for every outcome', async () => {
    const reference = await initialize('charge@example.com');
    await emulator.pay(reference);
    const verified = paystackVerifyResponseSchema.parse(
      (await call('GET', `/transaction/verify/${reference}`)).json,
    );
    const code = verified.data.authorization?.authorization_code;
    const outcomes: ChargeOutcome[] = [
      'success',
      'failed',
      'send_otp',
      'pay_offline',
      'open_url',
      'pending',
      'paused',
    ];
    for (const outcome of outcomes) {
      emulator.nextChargeAuthorization(outcome);
      const answer = await call('POST', '/transaction/charge_authorization', {
        email: 'charge@example.com',
        amount: '15000',
        authorization_code: code,
        reference: newReference('c'),
        metadata: JSON.stringify({ custom: outcome }),
      });
      expectParses(paystackChargeResponseSchema, answer.json);
      expect(answer.json).toMatchObject({
        data: { status: outcome, metadata: { custom: outcome } },
      });
    }
  });

  it('refund by reference or by id, and customer', async () => {
    const reference = await initialize();
    await emulator.pay(reference);
    const verified = paystackVerifyResponseSchema.parse(
      (await call('GET', `/transaction/verify/${reference}`)).json,
    );
    const byReference = await call('POST', '/refund', { transaction: reference, amount: 5_000 });
    expectParses(paystackRefundResponseSchema, byReference.json);
    const byId = await call('POST', '/refund', {
      transaction: verified.data.id,
      amount: 5_000,
      currency: 'NGN',
    });
    expectParses(paystackRefundResponseSchema, byId.json);
    expect(byId.json).toMatchObject({
      data: { status: 'pending', amount: 5_000, transaction: { reference } },
    });
    expectParses(
      paystackCustomerResponseSchema,
      (await call('POST', '/customer', { email: 'who@example.com', first_name: 'Who' })).json,
    );
  });

  it('every refusal: invalid key, duplicate, unknown reference, validation', async () => {
    const reference = await initialize();
    const refusals = [
      await call('GET', `/transaction/verify/${reference}`, undefined, 'sk_test_wrong'),
      await call('POST', '/transaction/initialize', { reference, amount: 100, email: 'a@b.co' }),
      await call('GET', '/transaction/verify/none'),
      await call('POST', '/transaction/initialize', { amount: 'lots', email: 'a@b.co' }),
      await call('POST', '/transaction/charge_authorization', {
        email: 'a@b.co',
        amount: 100,
        authorization_code: 'AUTH_x',
      }),
      await call('POST', '/refund', { transaction: 'none' }),
      await call('POST', '/customer', {}),
    ];
    expect(refusals.map((answer) => answer.status)).toEqual([401, 400, 400, 400, 400, 400, 400]);
    for (const answer of refusals) expectParses(paystackErrorSchema, answer.json);
    expect(refusals[0]?.json).toEqual({ status: false, message: 'Invalid key' });
    expect(refusals[1]?.json).toMatchObject({
      message: 'Duplicate Transaction Reference',
      type: 'validation_error',
      code: 'duplicate_reference',
      meta: { nextStep: expect.any(String) },
    });
  });

  it('every webhook it sends', async () => {
    await emulator.idle();
    const delivered = await receiver.waitFor(1);
    expect(delivered.length).toBeGreaterThan(0);
    for (const webhook of receiver.received) {
      const envelope = paystackWebhookEnvelopeSchema.parse(
        JSON.parse(webhook.rawBody.toString('utf8')) as unknown,
      );
      if (envelope.event === 'charge.success')
        expectParses(paystackChargeSuccessDataSchema, envelope.data);
      else if (envelope.event.startsWith('refund.'))
        expectParses(paystackRefundEventDataSchema, envelope.data);
      else throw new Error(`unexpected ${envelope.event}`);
    }
    const events = new Set(receiver.received.map((webhook) => webhook.event));
    expect([...events].sort()).toEqual([
      'charge.success',
      'refund.pending',
      'refund.processed',
      'refund.processing',
    ]);
  });
});
