import { describe, expect, it } from '@jest/globals';

import { formatBytes, formatDuration, usageBar } from '../../../bot/render/gauges.js';

describe('usageBar', () => {
  it.each([
    [0, 100, undefined, '░░░░░░░░░░ 0 %'],
    [62, 100, undefined, '▓▓▓▓▓▓░░░░ 62 %'],
    [6.2e9, 10e9, undefined, '▓▓▓▓▓▓░░░░ 62 %'],
    // Rounded down: a bar is full, and the number 100, only once the limit is spent.
    [99.9, 100, undefined, '▓▓▓▓▓▓▓▓▓░ 99 %'],
    [9, 100, undefined, '░░░░░░░░░░ 9 %'],
    [100, 100, undefined, '▓▓▓▓▓▓▓▓▓▓ 100 %'],
    // Past the limit the bar stays full and the real share shows.
    [104.5, 100, undefined, '▓▓▓▓▓▓▓▓▓▓ 104 %'],
    [250, 100, undefined, '▓▓▓▓▓▓▓▓▓▓ 250 %'],
    [-5, 100, undefined, '░░░░░░░░░░ 0 %'],
    // No allowance at all is spent from the start.
    [0, 0, undefined, '▓▓▓▓▓▓▓▓▓▓ 100 %'],
    [5, 0, undefined, '▓▓▓▓▓▓▓▓▓▓ 100 %'],
    [1, 3, 5, '▓░░░░ 33 %'],
    [2, 3, 20, '▓▓▓▓▓▓▓▓▓▓▓▓▓░░░░░░░ 66 %'],
  ])('usageBar(%p, %p, %p) is %p', (used, limit, width, expected) => {
    expect(usageBar(used, limit, width)).toBe(expected);
  });

  it('refuses a width that is not a positive integer and amounts that are not numbers', () => {
    expect(() => usageBar(1, 2, 0)).toThrow(RangeError);
    expect(() => usageBar(1, 2, 2.5)).toThrow(RangeError);
    expect(() => usageBar(Number.NaN, 2)).toThrow(RangeError);
    expect(() => usageBar(1, Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [512, '512 B'],
    [999, '999 B'],
    [1000, '1 kB'],
    [1536, '1.53 kB'],
    [1_500_000, '1.5 MB'],
    [999_999_999, '999 MB'],
    [1e9, '1 GB'],
    [1.15e9, '1.15 GB'],
    [2.35e9, '2.35 GB'],
    [2_359_999_999, '2.35 GB'],
    [10e9, '10 GB'],
    [10.5e9, '10.5 GB'],
    [99_990_000_000, '99.9 GB'],
    [123_456_789_012, '123 GB'],
    [1.2e12, '1.2 TB'],
    [7e15, '7 PB'],
    [1234e15, '1234 PB'],
    [512.9, '512 B'],
  ])('formatBytes(%p) is %p', (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected);
  });

  it('refuses negative and non-finite counts', () => {
    expect(() => formatBytes(-1)).toThrow(RangeError);
    expect(() => formatBytes(Number.NaN)).toThrow(RangeError);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [45, '45 s'],
    [59.9, '59 s'],
    [60, '1 min'],
    [12 * 60 + 59, '12 min'],
    [3599, '59 min'],
    [3600, '1 h'],
    [3 * 3600 + 5 * 60, '3 h 05 min'],
    [3 * 3600 + 45 * 60 + 30, '3 h 45 min'],
    [86_399, '23 h 59 min'],
    [86_400, '1 d'],
    [2 * 86_400 + 4 * 3600 + 59 * 60, '2 d 4 h'],
    [400 * 86_400 + 23 * 3600, '400 d 23 h'],
  ])('formatDuration(%p) is %p', (seconds, expected) => {
    expect(formatDuration(seconds)).toBe(expected);
  });

  it('refuses negative and non-finite durations', () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});
