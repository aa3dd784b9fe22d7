import { describe, expect, it } from '@jest/globals';

import { isDomainError } from '../../../lib/errors.js';
import {
  addMoney,
  applyBasisPoints,
  formatMoney,
  money,
  parseMajorUnits,
  prorate,
  subtractMoney,
  sumMoney,
} from '../../../lib/money.js';
import type { Currency, Rounding } from '../../../lib/money.js';

describe('money guards', () => {
  it.each([1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 1, 0.1 + 0.2])(
    'refuses %p as an amount of minor units',
    (amount) => {
      expect(() => money(amount, 'NGN')).toThrow(RangeError);
    },
  );

  it('refuses a currency Paystack does not settle in', () => {
    expect(() => money(100, 'EUR' as Currency)).toThrow(/currency must be one of/);
  });

  it('adds and subtracts in the same currency', () => {
    expect(addMoney(money(150, 'NGN'), money(50, 'NGN'))).toEqual(money(200, 'NGN'));
    expect(subtractMoney(money(150, 'NGN'), money(200, 'NGN'))).toEqual(money(-50, 'NGN'));
    expect(sumMoney([money(1, 'USD'), money(2, 'USD'), money(3, 'USD')], 'USD')).toEqual(
      money(6, 'USD'),
    );
    expect(sumMoney([], 'GHS')).toEqual(money(0, 'GHS'));
  });

  it('refuses to mix currencies', () => {
    expect(() => addMoney(money(1, 'NGN'), money(1, 'USD'))).toThrow(/NGN with USD/);
  });

  it('refuses a sum beyond the safe integer range', () => {
    expect(() => addMoney(money(Number.MAX_SAFE_INTEGER, 'NGN'), money(1, 'NGN'))).toThrow(
      RangeError,
    );
  });
});

describe('prorate', () => {
  const cases: [number, number, number, Rounding, number][] = [
    // amount, numerator, denominator, rounding, expected
    [1000, 7, 30, 'down', 233], // 233.33
    [1000, 7, 30, 'up', 234],
    [1000, 7, 30, 'half-even', 233],
    [1000, 1, 3, 'half-even', 333],
    [2000, 1, 3, 'half-even', 667], // 666.67
    [5, 1, 2, 'half-even', 2], // 2.5 -> 2 (even)
    [7, 1, 2, 'half-even', 4], // 3.5 -> 4 (even)
    [5, 1, 2, 'down', 2],
    [5, 1, 2, 'up', 3],
    [-5, 1, 2, 'down', -3], // floor
    [-5, 1, 2, 'up', -2], // ceiling
    [-5, 1, 2, 'half-even', -2], // -2.5 -> -2
    [-7, 1, 2, 'half-even', -4], // -3.5 -> -4
    [-1000, 7, 30, 'half-even', -233],
    [900, 30, 30, 'down', 900],
    [0, 5, 7, 'up', 0],
    // Products beyond 2^53 stay exact.
    [Number.MAX_SAFE_INTEGER, 3, 4, 'down', 6755399441055743],
  ];
  it.each(cases)('prorate(%p, %p, %p, %p) is %p', (amount, num, den, rounding, expected) => {
    expect(prorate(amount, num, den, rounding)).toBe(expected);
  });

  it('refuses a zero or negative denominator and fractional inputs', () => {
    expect(() => prorate(100, 1, 0, 'down')).toThrow(/denominator must be positive/);
    expect(() => prorate(100, 1, -3, 'down')).toThrow(/denominator must be positive/);
    expect(() => prorate(100, 1.5, 3, 'down')).toThrow(/numerator/);
    expect(() => prorate(100.5, 1, 3, 'down')).toThrow(/amountMinor/);
  });

  it('refuses a result that is not a safe integer', () => {
    expect(() => prorate(Number.MAX_SAFE_INTEGER, 2, 1, 'down')).toThrow(/not a safe integer/);
  });
});

describe('applyBasisPoints', () => {
  const cases: [number, number, Rounding, number][] = [
    [1_000_000, 750, 'down', 75_000], // 7.5 % VAT on ₦10,000
    [999, 750, 'down', 74], // 74.925
    [999, 750, 'up', 75],
    [999, 750, 'half-even', 75],
    [10, 2500, 'half-even', 2], // 2.5 -> 2
    [30, 2500, 'half-even', 8], // 7.5 -> 8
    [12345, 10_000, 'down', 12345],
    [12345, 0, 'up', 0],
  ];
  it.each(cases)('applyBasisPoints(%p, %p, %p) is %p', (amount, bps, rounding, expected) => {
    expect(applyBasisPoints(amount, bps, rounding)).toBe(expected);
  });
});

describe('formatMoney', () => {
  const cases: [number, Currency, string][] = [
    [1_200_000, 'NGN', '₦12,000.00'],
    [5, 'NGN', '₦0.05'],
    [0, 'NGN', '₦0.00'],
    [-5_050, 'NGN', '-₦50.50'],
    [123_456_789, 'USD', '$1,234,567.89'],
    [2_500, 'GHS', 'GH₵25.00'],
    [100_000, 'KES', 'KSh1,000.00'],
    [99, 'ZAR', 'R0.99'],
  ];
  it.each(cases)('shows %p %s as %s', (amountMinor, currency, expected) => {
    expect(formatMoney({ amountMinor, currency })).toBe(expected);
  });
});

describe('parseMajorUnits', () => {
  const good: [string, Currency, number][] = [
    ['12,000.50', 'NGN', 1_200_050],
    ['12000.5', 'NGN', 1_200_050],
    ['12000', 'NGN', 1_200_000],
    ['0.07', 'USD', 7],
    ['1,234,567.89', 'USD', 123_456_789],
    ['₦12,000', 'NGN', 1_200_000],
    ['NGN 250', 'NGN', 25_000],
    ['GH₵ 3.10', 'GHS', 310],
    ['  42  ', 'ZAR', 4_200],
    ['-10.25', 'KES', -1_025],
    // 0.1 + 0.2 style inputs stay exact: no floats are involved.
    ['0.30', 'NGN', 30],
    ['90071992547409.91', 'NGN', 9_007_199_254_740_991],
  ];
  it.each(good)('reads %p in %s as %p minor units', (input, currency, expected) => {
    expect(parseMajorUnits(input, currency)).toBe(expected);
  });

  const bad: [string, Currency][] = [
    ['', 'NGN'],
    ['abc', 'NGN'],
    ['12.345', 'NGN'], // more decimals than the currency has: no silent rounding
    ['1,00', 'NGN'],
    ['12,0000', 'NGN'],
    ['1.', 'NGN'],
    ['.5', 'NGN'],
    ['1e3', 'NGN'],
    ['$12', 'NGN'], // another currency's symbol
    ['90071992547409.92', 'NGN'], // beyond the safe integer range
  ];
  it.each(bad)('refuses %p as an amount in %s', (input, currency) => {
    let caught: unknown;
    try {
      parseMajorUnits(input, currency);
    } catch (error) {
      caught = error;
    }
    expect(isDomainError(caught, 'VALIDATION_FAILED')).toBe(true);
  });
});
