import { describe, expect, it } from '@jest/globals';

import {
  decodePaystackMetadata,
  parsePaystackEvent,
  paystackAmountSchema,
  paystackErrorSchema,
  paystackVerifyResponseSchema,
} from '../../../lib/paystack/schemas.js';

const customer = { id: 1, email: 'ada@example.com', customer_code: 'CUS_x' };

describe('Paystack schemas', () => {
  it('reads refund amounts sent as numbers or digit strings, and nothing else', () => {
    expect(paystackAmountSchema.parse(10000)).toBe(10000);
    expect(paystackAmountSchema.parse('10000')).toBe(10000);
    expect(paystackAmountSchema.safeParse('100.50').success).toBe(false);
    expect(paystackAmountSchema.safeParse(100.5).success).toBe(false);
    expect(paystackAmountSchema.safeParse(-1).success).toBe(false);
  });

  it('reads metadata given as an object, a JSON string, "" or null', () => {
    expect(decodePaystackMetadata({ accountId: 'a1' })).toEqual({ accountId: 'a1' });
    expect(decodePaystackMetadata('{"accountId":"a1"}')).toEqual({ accountId: 'a1' });
    expect(decodePaystackMetadata('')).toBeNull();
    expect(decodePaystackMetadata(null)).toBeNull();
    expect(decodePaystackMetadata('not json')).toBeNull();
    expect(decodePaystackMetadata('[1,2]')).toBeNull();
  });

  it('refuses a transaction status it does not know rather than guessing', () => {
    const answer = {
      status: true,
      message: 'Verification successful',
      data: { id: 1, reference: 'r', amount: 100, currency: 'NGN', customer, status: 'mystery' },
    };
    expect(paystackVerifyResponseSchema.safeParse(answer).success).toBe(false);
    expect(
      paystackVerifyResponseSchema.safeParse({
        ...answer,
        data: { ...answer.data, status: 'success' },
      }).success,
    ).toBe(true);
  });

  it('accepts an empty authorization object for an unpaid transaction', () => {
    const parsed = paystackVerifyResponseSchema.parse({
      status: true,
      message: 'Verification successful',
      data: {
        id: 1,
        reference: 'r',
        amount: 100,
        currency: 'NGN',
        customer,
        status: 'abandoned',
        authorization: {},
      },
    });
    expect(parsed.data.authorization).toEqual({});
  });

  it('reads the 401 body, which has only status and message', () => {
    expect(paystackErrorSchema.parse({ status: false, message: 'Invalid key' }).message).toBe(
      'Invalid key',
    );
  });

  it('sorts webhook events into charge.success, refunds and the rest', () => {
    const charge = parsePaystackEvent({
      event: 'charge.success',
      data: { id: 1, reference: 'r', amount: 100, currency: 'NGN', customer, status: 'success' },
    });
    expect(charge.kind).toBe('charge.success');
    const refund = parsePaystackEvent({
      event: 'refund.processed',
      data: { status: 'processed', transaction_reference: 'r', amount: '100', currency: 'NGN' },
    });
    expect(refund).toMatchObject({ kind: 'refund', data: { amount: 100 } });
    const other = parsePaystackEvent({ event: 'subscription.create', data: { id: 9 } });
    expect(other).toEqual({ kind: 'other', event: 'subscription.create', data: { id: 9 } });
    expect(() =>
      parsePaystackEvent({ event: 'charge.success', data: { reference: 'r' } }),
    ).toThrow();
    expect(() => parsePaystackEvent({ data: {} })).toThrow();
  });
});
