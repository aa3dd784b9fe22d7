import { describe, expect, it } from '@jest/globals';
import { DEFAULT_PLANS, comparePlans, gbText, validatePlan } from '../../../core/plans.js';
import type { PlanData } from '../../../models/plan.js';

const defaults: PlanData[] = DEFAULT_PLANS.map((p) => ({ ...p, version: 1, editedBy: 'seed' }));
const byCode = (code: string): PlanData => {
  const plan = defaults.find((p) => p.code === code);
  if (!plan) throw new Error(code);
  return plan;
};

describe('the default catalogue', () => {
  it('has trial, starter, personal, team and payg, each valid for its kind', () => {
    expect(defaults.map((p) => p.code)).toEqual(['trial', 'starter', 'personal', 'team', 'payg']);
    for (const plan of defaults) expect([plan.code, validatePlan(plan)]).toEqual([plan.code, []]);
  });

  it('matches the architecture table', () => {
    expect(byCode('trial')).toMatchObject({
      trial: { durationDays: 3, dataBytes: 1e9 },
      protocols: ['https'],
      locations: { kind: 'choose', max: 1 },
    });
    expect(byCode('starter')).toMatchObject({
      billingPeriod: { unit: 'month', count: 1 },
      quota: { bytes: 10e9, period: 'week', rolling: true },
      protocols: ['https'],
      portRule: 'https_only',
      maxConnections: 2,
    });
    expect(byCode('personal')).toMatchObject({
      quota: { bytes: 100e9, period: 'month' },
      protocols: ['http', 'https', 'socks5'],
      locations: { kind: 'all' },
      features: { rotation: true, stickySessions: true },
      maxConnections: 10,
    });
    expect(byCode('team')).toMatchObject({
      quota: { bytes: 500e9, pooled: true },
      seats: 5,
      maxConnections: 50,
    });
    expect(byCode('payg').payg?.rates[0]).toEqual({ currency: 'NGN', hourlyRateMinor: 15_000 });
    expect(byCode('payg').quota).toBeUndefined();
  });
});

describe('validatePlan', () => {
  it.each<[string, string, Partial<PlanData>, RegExp]>([
    ['starter', 'without a price', { prices: [] }, /needs a price/],
    ['starter', 'without a billing period', { billingPeriod: undefined }, /billing period/],
    [
      'starter',
      'with two NGN prices',
      {
        prices: [
          { currency: 'NGN', amountMinor: 1 },
          { currency: 'NGN', amountMinor: 2 },
        ],
      },
      /one price/,
    ],
    [
      'starter',
      'with a trial quota',
      { quota: { bytes: 1, period: 'trial', rolling: true, pooled: false } },
      /'trial' quota/,
    ],
    [
      'trial',
      'whose quota differs from its data',
      { trial: { durationDays: 3, dataBytes: 2e9 } },
      /must equal/,
    ],
    [
      'trial',
      'with a billing period',
      { billingPeriod: { unit: 'month', count: 1 } },
      /no billing period/,
    ],
    ['payg', 'without rates', { payg: { rates: [] } }, /hourly rate/],
    [
      'payg',
      'with a quota',
      { quota: { bytes: 1, period: 'month', rolling: true, pooled: false } },
      /no quota/,
    ],
    ['team', 'pooled for one seat', { seats: 1 }, /more than one seat/],
    [
      'personal',
      'choosing zero locations',
      { locations: { kind: 'choose', max: 0 } },
      /max of at least 1/,
    ],
  ])('refuses %s %s', (code, _what, change, problem) => {
    expect(validatePlan({ ...byCode(code), ...change }).join('; ')).toMatch(problem);
  });
});

describe('comparePlans', () => {
  it('lays the catalogue out side by side with numbers and short labels', () => {
    const rows = comparePlans(defaults);
    expect(
      rows.map((r) => [
        r.code,
        r.labels.price,
        r.labels.data,
        r.labels.protocols,
        r.labels.locations,
        r.maxConnections,
        r.seats,
      ]),
    ).toEqual([
      ['trial', 'refundable deposit', '1 GB for 3 days', 'HTTPS', 'one location', 2, 1],
      ['starter', '₦3,500.00 per month', '10 GB per week, rolling', 'HTTPS', 'one location', 2, 1],
      [
        'personal',
        '₦15,000.00 per month',
        '100 GB per month',
        'HTTP, HTTPS, SOCKS5',
        'all locations',
        10,
        1,
      ],
      [
        'team',
        '₦60,000.00 per month',
        '500 GB per month shared by 5 members',
        'HTTP, HTTPS, SOCKS5',
        'all locations',
        50,
        5,
      ],
      [
        'payg',
        '₦150.00 per connected hour',
        'no data cap (paid from your wallet)',
        'HTTP, HTTPS, SOCKS5',
        'all locations',
        20,
        1,
      ],
    ]);
    expect(rows[1]?.price).toEqual({
      amountMinor: 350_000,
      currency: 'NGN',
      per: { unit: 'month', count: 1 },
    });
    expect(rows[1]?.data).toEqual({
      bytes: 10e9,
      period: 'week',
      pooled: false,
      rolloverCapBytes: 0,
    });
  });

  it('says when unused data rolls over, and how much at most', () => {
    const starter = byCode('starter');
    const rolling = {
      ...starter,
      quota: { ...(starter.quota as NonNullable<typeof starter.quota>), rolloverCapBytes: 5e9 },
    };
    expect(comparePlans([rolling])[0]?.labels.data).toBe(
      '10 GB per week, rolling, unused data rolls over (up to 5 GB)',
    );
    expect(comparePlans([starter])[0]?.labels.data).toBe('10 GB per week, rolling');
  });

  it('shows the optional per-GB PAYG rate when an admin turns it on', () => {
    const payg = {
      ...byCode('payg'),
      payg: {
        rates: [{ currency: 'NGN' as const, hourlyRateMinor: 15_000, perGbRateMinor: 50_000 }],
      },
    };
    expect(comparePlans([payg])[0]?.labels.price).toBe(
      '₦150.00 per connected hour + ₦500.00 per GB',
    );
  });

  it('leaves out plans that have no price in the asked currency, but keeps the trial', () => {
    expect(comparePlans(defaults, { currency: 'USD' }).map((r) => r.code)).toEqual(['trial']);
  });
});

describe('gbText', () => {
  it.each([
    [1e9, '1 GB'],
    [1.5e9, '1.5 GB'],
    [0, '0 GB'],
    [250e6, '0.3 GB'],
  ])('shows %d bytes as %s (GB = 10^9 bytes)', (bytes, text) => {
    expect(gbText(bytes)).toBe(text);
  });
});
