import { describe, expect, it } from '@jest/globals';

import { TestClock } from '../../../lib/clock.js';
import {
  PAYSTACK_REFERENCE_PATTERN,
  newId,
  newNumericCode,
  newReference,
  newRequestId,
  newSecret,
} from '../../../lib/ids.js';

const base64url = /^[A-Za-z0-9_-]+$/;

function manyDistinct(make: () => string, count = 2000): number {
  return new Set(Array.from({ length: count }, make)).size;
}

describe('ids', () => {
  it('newId is 22 url-safe characters and unique', () => {
    const id = newId();
    expect(id).toMatch(base64url);
    expect(id).toHaveLength(22);
    expect(manyDistinct(newId)).toBe(2000);
  });

  it('newRequestId is 16 url-safe characters and unique', () => {
    expect(newRequestId()).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(manyDistinct(newRequestId)).toBe(2000);
  });

  it('newSecret carries the asked number of random bytes, url-safe', () => {
    expect(newSecret()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(newSecret(48), 'base64url')).toHaveLength(48);
    expect(manyDistinct(() => newSecret(16))).toBe(2000);
    expect(() => newSecret(8)).toThrow(RangeError);
  });

  it('newReference uses only characters Paystack accepts and is unique', () => {
    const reference = newReference();
    expect(reference).toMatch(PAYSTACK_REFERENCE_PATTERN);
    expect(reference).toMatch(/^atl-[0-9a-z]{9}-[0-9a-f]{20}$/);
    expect(newReference('topup')).toMatch(/^topup-/);
    expect(manyDistinct(() => newReference())).toBe(2000);
  });

  it('newReference sorts by creation time', () => {
    const clock = new TestClock('2025-01-01T00:00:00Z');
    const references: string[] = [];
    for (let i = 0; i < 50; i += 1) {
      references.push(newReference('atl', clock));
      clock.advanceBy({ ms: 1 + i * 997 });
    }
    expect([...references].sort()).toEqual(references);
  });

  it('newReference refuses a prefix with separators', () => {
    expect(() => newReference('atl_x')).toThrow(RangeError);
    expect(() => newReference('')).toThrow(RangeError);
  });

  it('newNumericCode has exactly the asked digits, leading zeros kept', () => {
    for (let i = 0; i < 200; i += 1) expect(newNumericCode()).toMatch(/^\d{6}$/);
    expect(newNumericCode(4)).toMatch(/^\d{4}$/);
    expect(() => newNumericCode(0)).toThrow(RangeError);
    expect(() => newNumericCode(13)).toThrow(RangeError);
  });

  it('newNumericCode is spread over every digit value', () => {
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 5000; i += 1) {
      const digit = Number(newNumericCode(1));
      counts[digit] = (counts[digit] ?? 0) + 1;
    }
    // Expected 500 each; a fair source falls outside 350..650 with negligible probability.
    for (const count of counts) {
      expect(count).toBeGreaterThan(350);
      expect(count).toBeLessThan(650);
    }
  });
});
