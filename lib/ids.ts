import { randomBytes, randomInt } from 'node:crypto';

import type { Clock } from './clock.js';

/** A random url-safe id: 128 bits as 22 base64url characters. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** A short id to tie log lines of one request together: 96 bits, 16 base64url characters. */
export function newRequestId(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * A high-entropy url-safe secret (base64url of `bytes` random bytes; default 32
 * bytes = 256 bits, 43 characters). Fit for proxy passwords, API tokens, signing keys.
 */
export function newSecret(bytes = 32): string {
  if (!Number.isSafeInteger(bytes) || bytes < 16 || bytes > 1024) {
    throw new RangeError(`newSecret(bytes) needs an integer from 16 to 1024, got ${bytes}`);
  }
  return randomBytes(bytes).toString('base64url');
}

/**
 * A uniformly random code of exactly `digits` decimal digits (leading zeros
 * kept), e.g. a verification code. `crypto.randomInt` avoids modulo bias.
 */
export function newNumericCode(digits = 6): string {
  if (!Number.isSafeInteger(digits) || digits < 1 || digits > 12) {
    throw new RangeError(`newNumericCode(digits) needs an integer from 1 to 12, got ${digits}`);
  }
  return String(randomInt(0, 10 ** digits)).padStart(digits, '0');
}

const REFERENCE_PREFIX = /^[A-Za-z0-9]{1,16}$/;
/** Milliseconds since the epoch in base 36, padded so references sort by time until the year 5188. */
const TIME_WIDTH = 9;

/**
 * A unique Paystack transaction reference: `<prefix>-<time>-<random>`, e.g.
 * `atl-mi3x0k7qz-3f9c0a1b2c4d5e6f7a8b`. Paystack allows only alphanumerics and
 * `-`, `.`, `=` in a reference (https://paystack.com/docs/api/transaction/#initialize),
 * so the separator is `-`, not `_`. References of one prefix sort by creation
 * time (to the millisecond); 80 random bits make collisions negligible.
 */
export function newReference(prefix = 'atl', clock?: Clock): string {
  if (!REFERENCE_PREFIX.test(prefix)) {
    throw new RangeError(`reference prefix must be 1-16 letters or digits, got "${prefix}"`);
  }
  const ms = clock ? clock.now().getTime() : Date.now();
  const time = ms.toString(36).padStart(TIME_WIDTH, '0');
  return `${prefix}-${time}-${randomBytes(10).toString('hex')}`;
}

/** Characters Paystack accepts in a reference. */
export const PAYSTACK_REFERENCE_PATTERN = /^[A-Za-z0-9.=-]+$/;
