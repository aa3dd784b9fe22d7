import { describe, expect, it } from '@jest/globals';

import { TestClock, durationMs, systemClock } from '../../../lib/clock.js';

describe('clocks', () => {
  it('systemClock reads the real time', () => {
    const before = Date.now();
    const now = systemClock.now().getTime();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('TestClock stands still until moved', () => {
    const clock = new TestClock('2025-03-01T10:00:00Z');
    expect(clock.now().toISOString()).toBe('2025-03-01T10:00:00.000Z');
    expect(clock.now().toISOString()).toBe('2025-03-01T10:00:00.000Z');
  });

  it('TestClock advances by milliseconds and by a duration', () => {
    const clock = new TestClock(Date.UTC(2025, 0, 31, 23, 0));
    clock.advance(1500);
    expect(clock.now().toISOString()).toBe('2025-01-31T23:00:01.500Z');
    const after = clock.advanceBy({ days: 3, hours: 1, minutes: 2, seconds: 3, ms: 4 });
    expect(after.toISOString()).toBe('2025-02-04T00:02:04.504Z');
  });

  it('TestClock can be set anywhere, and refuses to advance backwards', () => {
    const clock = new TestClock();
    clock.set(new Date('2030-06-15T12:00:00Z'));
    expect(clock.now().toISOString()).toBe('2030-06-15T12:00:00.000Z');
    clock.set('2020-01-01T00:00:00Z');
    expect(clock.now().getUTCFullYear()).toBe(2020);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.set('not a date')).toThrow(RangeError);
  });

  it('hands out copies, so changing a returned Date does not move the clock', () => {
    const clock = new TestClock('2025-01-01T00:00:00Z');
    clock.now().setUTCFullYear(1999);
    expect(clock.now().getUTCFullYear()).toBe(2025);
  });

  it('converts durations to milliseconds', () => {
    expect(durationMs({ days: 1 })).toBe(86_400_000);
    expect(durationMs({ hours: 1, minutes: 30 })).toBe(5_400_000);
    expect(durationMs({})).toBe(0);
  });
});
