import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Paystack signs every webhook with HMAC-SHA512 of the raw request body, keyed
 * with the integration's secret key, hex-encoded in `x-paystack-signature`
 * (https://paystack.com/docs/payments/webhooks/#verify-event-origin). The
 * signature covers the exact bytes sent, so it must be checked against the
 * raw body before any JSON parsing (re-serialising changes the bytes).
 */
export const PAYSTACK_SIGNATURE_HEADER = 'x-paystack-signature';

/** Paystack sends webhooks only from these addresses (test and live alike). */
export const PAYSTACK_WEBHOOK_IPS: readonly string[] = Object.freeze([
  '52.31.139.75',
  '52.49.173.169',
  '52.214.14.220',
]);

/** Hex HMAC-SHA512 of `rawBody` with `secretKey`: the value of `x-paystack-signature`. */
export function signPaystackBody(rawBody: Buffer | string, secretKey: string): string {
  return createHmac('sha512', secretKey).update(rawBody).digest('hex');
}

/** 64 bytes of SHA-512 as 128 hex digits. */
const SIGNATURE_PATTERN = /^[0-9a-fA-F]{128}$/;

/**
 * True when `header` is the signature of `rawBody` under `secretKey`. The
 * comparison is constant-time over the digest bytes; a missing, empty,
 * non-hex or wrongly sized header is false without comparing.
 */
export function isValidPaystackSignature(
  rawBody: Buffer | string,
  header: string | undefined,
  secretKey: string,
): boolean {
  if (header === undefined || !SIGNATURE_PATTERN.test(header)) return false;
  const expected = createHmac('sha512', secretKey).update(rawBody).digest();
  const given = Buffer.from(header, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
