import { createHmac } from 'node:crypto';

import { describe, expect, it } from '@jest/globals';

import {
  isValidPaystackSignature,
  PAYSTACK_WEBHOOK_IPS,
  signPaystackBody,
} from '../../../lib/paystack/signature.js';

const key = 'sk_test_signature_key';
const body = '{"event":"charge.success","data":{"reference":"atl-1","amount":500000}}';

describe('Paystack webhook signatures', () => {
  it('signs with hex HMAC-SHA512 of the raw body and the secret key', () => {
    const expected = createHmac('sha512', key).update(body).digest('hex');
    expect(signPaystackBody(body, key)).toBe(expected);
    expect(signPaystackBody(Buffer.from(body), key)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{128}$/);
  });

  it('accepts the signature of the exact bytes, as string or buffer, in either hex case', () => {
    const signature = signPaystackBody(body, key);
    expect(isValidPaystackSignature(body, signature, key)).toBe(true);
    expect(isValidPaystackSignature(Buffer.from(body), signature, key)).toBe(true);
    expect(isValidPaystackSignature(body, signature.toUpperCase(), key)).toBe(true);
  });

  it('rejects a tampered body, even one that parses to the same JSON', () => {
    const signature = signPaystackBody(body, key);
    expect(isValidPaystackSignature(body.replace('500000', '5000000'), signature, key)).toBe(false);
    const reformatted = JSON.stringify(JSON.parse(body) as unknown, null, 1);
    expect(isValidPaystackSignature(reformatted, signature, key)).toBe(false);
  });

  it('rejects a signature made with another key', () => {
    expect(isValidPaystackSignature(body, signPaystackBody(body, 'sk_test_other'), key)).toBe(
      false,
    );
  });

  it('rejects a missing, empty, non-hex or wrongly sized header without throwing', () => {
    const signature = signPaystackBody(body, key);
    expect(isValidPaystackSignature(body, undefined, key)).toBe(false);
    expect(isValidPaystackSignature(body, '', key)).toBe(false);
    expect(isValidPaystackSignature(body, 'z'.repeat(128), key)).toBe(false);
    expect(isValidPaystackSignature(body, signature.slice(0, 64), key)).toBe(false);
    expect(isValidPaystackSignature(body, `${signature}00`, key)).toBe(false);
    expect(isValidPaystackSignature(body, `${signature.slice(0, 127)}`, key)).toBe(false);
    expect(
      isValidPaystackSignature(body, createHmac('sha256', key).update(body).digest('hex'), key),
    ).toBe(false);
  });

  it('lists the addresses Paystack sends webhooks from', () => {
    expect(PAYSTACK_WEBHOOK_IPS).toEqual(['52.31.139.75', '52.49.173.169', '52.214.14.220']);
  });
});
