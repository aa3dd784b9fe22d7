import { describe, expect, it } from '@jest/globals';
import type { BillingPeriod } from '../../../models/plan.js';
import {
  addMonthsClamped,
  addPeriods,
  currentQuotaWindow,
  periodContaining,
} from '../../../core/subscriptions.js';

const d = (iso: string): Date => new Date(iso);
const iso = (date: Date | undefined): string | undefined => date?.toISOString();
const MONTH: BillingPeriod = { unit: 'month', count: 1 };

describe('addMonthsClamped', () => {
  it.each([
    ['2025-01-31T10:15:00.000Z', 1, '2025-02-28T10:15:00.000Z'],
    ['2024-01-31T10:15:00.000Z', 1, '2024-02-29T10:15:00.000Z'],
    ['2025-01-31T10:15:00.000Z', 2, '2025-03-31T10:15:00.000Z'],
    ['2025-01-31T10:15:00.000Z', 3, '2025-04-30T10:15:00.000Z'],
    ['2025-03-31T23:59:59.999Z', -1, '2025-02-28T23:59:59.999Z'],
    ['2025-11-30T00:00:00.000Z', 3, '2026-02-28T00:00:00.000Z'],
    ['2025-12-15T08:00:00.000Z', 1, '2026-01-15T08:00:00.000Z'],
    ['2025-05-15T08:00:00.000Z', 12, '2026-05-15T08:00:00.000Z'],
  ])(
    'moves %s by %i months to %s, keeping the anchor day where the month has it',
    (from, n, to) => {
      expect(addMonthsClamped(d(from), n).toISOString()).toBe(to);
    },
  );

  it('does not drift after a short month: counted from the anchor, the 31st comes back', () => {
    const anchor = d('2025-01-31T12:00:00.000Z');
    const ends = [1, 2, 3, 4, 5, 6].map((n) =>
      addMonthsClamped(anchor, n).toISOString().slice(0, 10),
    );
    expect(ends).toEqual([
      '2025-02-28',
      '2025-03-31',
      '2025-04-30',
      '2025-05-31',
      '2025-06-30',
      '2025-07-31',
    ]);
  });

  it('keeps the UTC time of day across the dates where Europe and the US change clocks', () => {
    const anchor = d('2025-02-27T01:30:00.000Z');
    expect(addMonthsClamped(anchor, 1).toISOString()).toBe('2025-03-27T01:30:00.000Z');
    expect(addMonthsClamped(anchor, 8).toISOString()).toBe('2025-10-27T01:30:00.000Z');
  });
});

describe('periodContaining', () => {
  it.each<[string, BillingPeriod, string, string, string, number]>([
    [
      '2025-01-31T00:00:00.000Z',
      MONTH,
      '2025-02-28T00:00:00.000Z',
      '2025-02-28T00:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
      1,
    ],
    [
      '2025-01-31T00:00:00.000Z',
      MONTH,
      '2025-02-27T23:59:59.999Z',
      '2025-01-31T00:00:00.000Z',
      '2025-02-28T00:00:00.000Z',
      0,
    ],
    [
      '2025-01-31T00:00:00.000Z',
      MONTH,
      '2025-03-30T12:00:00.000Z',
      '2025-02-28T00:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
      1,
    ],
    [
      '2025-01-31T00:00:00.000Z',
      MONTH,
      '2025-12-31T00:00:00.000Z',
      '2025-12-31T00:00:00.000Z',
      '2026-01-31T00:00:00.000Z',
      11,
    ],
    [
      '2025-01-15T09:00:00.000Z',
      { unit: 'month', count: 3 },
      '2025-06-01T00:00:00.000Z',
      '2025-04-15T09:00:00.000Z',
      '2025-07-15T09:00:00.000Z',
      1,
    ],
    [
      '2025-01-01T00:00:00.000Z',
      { unit: 'week', count: 1 },
      '2025-01-15T00:00:00.000Z',
      '2025-01-15T00:00:00.000Z',
      '2025-01-22T00:00:00.000Z',
      2,
    ],
    [
      '2025-01-01T00:00:00.000Z',
      { unit: 'day', count: 10 },
      '2025-01-11T00:00:00.000Z',
      '2025-01-11T00:00:00.000Z',
      '2025-01-21T00:00:00.000Z',
      1,
    ],
    [
      '2025-06-10T00:00:00.000Z',
      MONTH,
      '2025-01-01T00:00:00.000Z',
      '2025-06-10T00:00:00.000Z',
      '2025-07-10T00:00:00.000Z',
      0,
    ],
  ])(
    'from anchor %s, period %j, the time %s falls in [%s, %s) (index %i)',
    (anchor, period, at, start, end, index) => {
      const window = periodContaining(d(anchor), period, d(at));
      expect({
        start: window.start.toISOString(),
        end: window.end.toISOString(),
        index: window.index,
      }).toEqual({
        start,
        end,
        index,
      });
    },
  );

  it('matches addPeriods at every boundary for two years of monthly periods', () => {
    const anchor = d('2024-01-31T18:45:00.000Z');
    for (let n = 0; n < 24; n += 1) {
      const start = addPeriods(anchor, MONTH, n);
      expect(periodContaining(anchor, MONTH, start).index).toBe(n);
      expect(periodContaining(anchor, MONTH, new Date(start.getTime() - 1)).index).toBe(
        Math.max(0, n - 1),
      );
    }
  });
});

describe('currentQuotaWindow', () => {
  const activation = d('2025-01-29T15:00:00.000Z');

  it('cuts weekly windows rolling from activation, across a month end', () => {
    const sub = { quotaPeriod: 'week' as const, quotaAnchorAt: activation };
    const first = currentQuotaWindow(sub, d('2025-02-04T14:59:59.999Z'));
    const second = currentQuotaWindow(sub, d('2025-02-05T15:00:00.000Z'));
    expect([iso(first?.start), iso(first?.end)]).toEqual([
      '2025-01-29T15:00:00.000Z',
      '2025-02-05T15:00:00.000Z',
    ]);
    expect([iso(second?.start), iso(second?.end)]).toEqual([
      '2025-02-05T15:00:00.000Z',
      '2025-02-12T15:00:00.000Z',
    ]);
  });

  it('uses the monthly billing period for a monthly quota, clamped in February', () => {
    const sub = { quotaPeriod: 'month' as const, quotaAnchorAt: activation };
    const window = currentQuotaWindow(sub, d('2025-03-01T00:00:00.000Z'));
    expect([iso(window?.start), iso(window?.end)]).toEqual([
      '2025-02-28T15:00:00.000Z',
      '2025-03-29T15:00:00.000Z',
    ]);
  });

  it('uses the trial itself for a trial quota', () => {
    const sub = {
      quotaPeriod: 'trial' as const,
      quotaAnchorAt: activation,
      trialEndsAt: d('2025-02-01T15:00:00.000Z'),
    };
    const window = currentQuotaWindow(sub, d('2025-01-30T00:00:00.000Z'));
    expect([iso(window?.start), iso(window?.end)]).toEqual([
      '2025-01-29T15:00:00.000Z',
      '2025-02-01T15:00:00.000Z',
    ]);
  });

  it('has no window for PAYG', () => {
    expect(currentQuotaWindow({}, d('2025-01-30T00:00:00.000Z'))).toBeNull();
  });
});
