/**
 * Plan-change quotes (core/proration.ts) for every pair of plans at several
 * points of a 30-day period, with exact amounts in kobo. The amounts were
 * worked out apart from the code (exact fractions, then rounded: credit down,
 * the new plan's share up), so a change to a rule or a rounding fails here.
 *
 * Points of the period (1 to 30 November 2026) and the data used by then in
 * the current quota window: start (0 %), a fifth in (10 %), halfway (70 %:
 * data, not time, sets the credit), nine tenths in (50 %).
 */
import { describe, expect, it } from '@jest/globals';
import { DEFAULT_PLANS } from '../../core/plans.js';
import { quotePlanChange, type CurrentTerms, type PlanChangeQuote } from '../../core/proration.js';
import { DomainError } from '../../lib/errors.js';

const GB = 1_000_000_000;
const periodStart = new Date('2026-11-01T00:00:00.000Z');
const periodEnd = new Date('2026-12-01T00:00:00.000Z');
const DAY = 86_400_000;
const points: Record<string, { at: Date; usedShare: number }> = {
  start: { at: periodStart, usedShare: 0 },
  'a fifth in': { at: new Date(periodStart.getTime() + 6 * DAY), usedShare: 0.1 },
  halfway: { at: new Date(periodStart.getTime() + 15 * DAY), usedShare: 0.7 },
  'nine tenths in': { at: new Date(periodStart.getTime() + 27 * DAY), usedShare: 0.5 },
};

const plan = (code: string) => {
  const found = DEFAULT_PLANS.find((p) => p.code === code);
  if (!found) throw new Error(`no plan ${code}`);
  return found;
};

function currentOn(code: string, usedShare: number): CurrentTerms {
  const p = plan(code);
  const limitBytes = p.quota?.bytes ?? 0;
  return {
    planCode: p.code,
    planName: p.name,
    planKind: p.kind,
    status: p.kind === 'trial' ? 'trialing' : 'active',
    pricePaidMinor: p.prices[0]?.amountMinor ?? 0,
    currency: 'NGN',
    ...(p.kind === 'recurring' ? { periodStart, periodEnd } : {}),
    quota: p.quota ? { limitBytes, usedBytes: Math.round(limitBytes * usedShare) } : null,
  };
}

type Row = [
  policy: 'period_end' | 'now',
  from: string,
  to: string,
  point: string,
  effective: 'now' | 'period_end',
  newPeriod: PlanChangeQuote['newPeriod'],
  creditMinor: number,
  costMinor: number,
  dueNowMinor: number,
  walletCreditMinor: number,
  renewalPriceMinor: number | null,
];

// prettier-ignore
const table: Row[] = [
  ['period_end', 'trial', 'starter', 'start', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'trial', 'starter', 'a fifth in', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'trial', 'starter', 'halfway', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'trial', 'starter', 'nine tenths in', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'trial', 'personal', 'start', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'trial', 'personal', 'a fifth in', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'trial', 'personal', 'halfway', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'trial', 'personal', 'nine tenths in', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'trial', 'team', 'start', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'trial', 'team', 'a fifth in', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'trial', 'team', 'halfway', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'trial', 'team', 'nine tenths in', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'starter', 'personal', 'start', 'now', 'rest_of_period', 350000, 1500000, 1150000, 0, 1500000],
  ['period_end', 'starter', 'personal', 'a fifth in', 'now', 'rest_of_period', 280000, 1200000, 920000, 0, 1500000],
  ['period_end', 'starter', 'personal', 'halfway', 'now', 'rest_of_period', 105000, 750000, 645000, 0, 1500000],
  ['period_end', 'starter', 'personal', 'nine tenths in', 'now', 'rest_of_period', 35000, 150000, 115000, 0, 1500000],
  ['period_end', 'starter', 'team', 'start', 'now', 'rest_of_period', 350000, 6000000, 5650000, 0, 6000000],
  ['period_end', 'starter', 'team', 'a fifth in', 'now', 'rest_of_period', 280000, 4800000, 4520000, 0, 6000000],
  ['period_end', 'starter', 'team', 'halfway', 'now', 'rest_of_period', 105000, 3000000, 2895000, 0, 6000000],
  ['period_end', 'starter', 'team', 'nine tenths in', 'now', 'rest_of_period', 35000, 600000, 565000, 0, 6000000],
  ['period_end', 'starter', 'payg', 'start', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'starter', 'payg', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'starter', 'payg', 'halfway', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'starter', 'payg', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'personal', 'starter', 'start', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'personal', 'starter', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'personal', 'starter', 'halfway', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'personal', 'starter', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'personal', 'team', 'start', 'now', 'rest_of_period', 1500000, 6000000, 4500000, 0, 6000000],
  ['period_end', 'personal', 'team', 'a fifth in', 'now', 'rest_of_period', 1200000, 4800000, 3600000, 0, 6000000],
  ['period_end', 'personal', 'team', 'halfway', 'now', 'rest_of_period', 450000, 3000000, 2550000, 0, 6000000],
  ['period_end', 'personal', 'team', 'nine tenths in', 'now', 'rest_of_period', 150000, 600000, 450000, 0, 6000000],
  ['period_end', 'personal', 'payg', 'start', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'personal', 'payg', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'personal', 'payg', 'halfway', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'personal', 'payg', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'team', 'starter', 'start', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'team', 'starter', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'team', 'starter', 'halfway', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'team', 'starter', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, 350000],
  ['period_end', 'team', 'personal', 'start', 'period_end', 'none', 0, 0, 0, 0, 1500000],
  ['period_end', 'team', 'personal', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, 1500000],
  ['period_end', 'team', 'personal', 'halfway', 'period_end', 'none', 0, 0, 0, 0, 1500000],
  ['period_end', 'team', 'personal', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, 1500000],
  ['period_end', 'team', 'payg', 'start', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'team', 'payg', 'a fifth in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'team', 'payg', 'halfway', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'team', 'payg', 'nine tenths in', 'period_end', 'none', 0, 0, 0, 0, null],
  ['period_end', 'payg', 'starter', 'start', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'payg', 'starter', 'a fifth in', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'payg', 'starter', 'halfway', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'payg', 'starter', 'nine tenths in', 'now', 'fresh_period', 0, 350000, 350000, 0, 350000],
  ['period_end', 'payg', 'personal', 'start', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'payg', 'personal', 'a fifth in', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'payg', 'personal', 'halfway', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'payg', 'personal', 'nine tenths in', 'now', 'fresh_period', 0, 1500000, 1500000, 0, 1500000],
  ['period_end', 'payg', 'team', 'start', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'payg', 'team', 'a fifth in', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'payg', 'team', 'halfway', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['period_end', 'payg', 'team', 'nine tenths in', 'now', 'fresh_period', 0, 6000000, 6000000, 0, 6000000],
  ['now', 'starter', 'personal', 'start', 'now', 'rest_of_period', 350000, 1500000, 1150000, 0, 1500000],
  ['now', 'starter', 'personal', 'a fifth in', 'now', 'rest_of_period', 280000, 1200000, 920000, 0, 1500000],
  ['now', 'starter', 'personal', 'halfway', 'now', 'rest_of_period', 105000, 750000, 645000, 0, 1500000],
  ['now', 'starter', 'personal', 'nine tenths in', 'now', 'rest_of_period', 35000, 150000, 115000, 0, 1500000],
  ['now', 'starter', 'team', 'start', 'now', 'rest_of_period', 350000, 6000000, 5650000, 0, 6000000],
  ['now', 'starter', 'team', 'a fifth in', 'now', 'rest_of_period', 280000, 4800000, 4520000, 0, 6000000],
  ['now', 'starter', 'team', 'halfway', 'now', 'rest_of_period', 105000, 3000000, 2895000, 0, 6000000],
  ['now', 'starter', 'team', 'nine tenths in', 'now', 'rest_of_period', 35000, 600000, 565000, 0, 6000000],
  ['now', 'starter', 'payg', 'start', 'now', 'none', 350000, 0, 0, 350000, null],
  ['now', 'starter', 'payg', 'a fifth in', 'now', 'none', 280000, 0, 0, 280000, null],
  ['now', 'starter', 'payg', 'halfway', 'now', 'none', 105000, 0, 0, 105000, null],
  ['now', 'starter', 'payg', 'nine tenths in', 'now', 'none', 35000, 0, 0, 35000, null],
  ['now', 'personal', 'starter', 'start', 'now', 'rest_of_period', 1500000, 350000, 0, 1150000, 350000],
  ['now', 'personal', 'starter', 'a fifth in', 'now', 'rest_of_period', 1200000, 280000, 0, 920000, 350000],
  ['now', 'personal', 'starter', 'halfway', 'now', 'rest_of_period', 450000, 175000, 0, 275000, 350000],
  ['now', 'personal', 'starter', 'nine tenths in', 'now', 'rest_of_period', 150000, 35000, 0, 115000, 350000],
  ['now', 'personal', 'team', 'start', 'now', 'rest_of_period', 1500000, 6000000, 4500000, 0, 6000000],
  ['now', 'personal', 'team', 'a fifth in', 'now', 'rest_of_period', 1200000, 4800000, 3600000, 0, 6000000],
  ['now', 'personal', 'team', 'halfway', 'now', 'rest_of_period', 450000, 3000000, 2550000, 0, 6000000],
  ['now', 'personal', 'team', 'nine tenths in', 'now', 'rest_of_period', 150000, 600000, 450000, 0, 6000000],
  ['now', 'personal', 'payg', 'start', 'now', 'none', 1500000, 0, 0, 1500000, null],
  ['now', 'personal', 'payg', 'a fifth in', 'now', 'none', 1200000, 0, 0, 1200000, null],
  ['now', 'personal', 'payg', 'halfway', 'now', 'none', 450000, 0, 0, 450000, null],
  ['now', 'personal', 'payg', 'nine tenths in', 'now', 'none', 150000, 0, 0, 150000, null],
  ['now', 'team', 'starter', 'start', 'now', 'rest_of_period', 6000000, 350000, 0, 5650000, 350000],
  ['now', 'team', 'starter', 'a fifth in', 'now', 'rest_of_period', 4800000, 280000, 0, 4520000, 350000],
  ['now', 'team', 'starter', 'halfway', 'now', 'rest_of_period', 1800000, 175000, 0, 1625000, 350000],
  ['now', 'team', 'starter', 'nine tenths in', 'now', 'rest_of_period', 600000, 35000, 0, 565000, 350000],
  ['now', 'team', 'personal', 'start', 'now', 'rest_of_period', 6000000, 1500000, 0, 4500000, 1500000],
  ['now', 'team', 'personal', 'a fifth in', 'now', 'rest_of_period', 4800000, 1200000, 0, 3600000, 1500000],
  ['now', 'team', 'personal', 'halfway', 'now', 'rest_of_period', 1800000, 750000, 0, 1050000, 1500000],
  ['now', 'team', 'personal', 'nine tenths in', 'now', 'rest_of_period', 600000, 150000, 0, 450000, 1500000],
  ['now', 'team', 'payg', 'start', 'now', 'none', 6000000, 0, 0, 6000000, null],
  ['now', 'team', 'payg', 'a fifth in', 'now', 'none', 4800000, 0, 0, 4800000, null],
  ['now', 'team', 'payg', 'halfway', 'now', 'none', 1800000, 0, 0, 1800000, null],
  ['now', 'team', 'payg', 'nine tenths in', 'now', 'none', 600000, 0, 0, 600000, null],
];

describe('plan change quotes', () => {
  it.each(table)(
    'downgrades %s: %s -> %s %s',
    (policy, from, to, point, effective, newPeriod, credit, cost, due, wallet, renewal) => {
      const { at, usedShare } = points[point] as { at: Date; usedShare: number };
      const quote = quotePlanChange({
        current: currentOn(from, usedShare),
        target: plan(to),
        now: at,
        policy: { downgrades: policy },
      });
      expect({
        effective: quote.effective,
        effectiveAt: quote.effectiveAt,
        newPeriod: quote.newPeriod,
        creditMinor: quote.creditMinor,
        costMinor: quote.costMinor,
        dueNowMinor: quote.dueNowMinor,
        walletCreditMinor: quote.walletCreditMinor,
        renewalPriceMinor: quote.renewalPriceMinor,
      }).toEqual({
        effective,
        effectiveAt: effective === 'now' ? at : periodEnd,
        newPeriod,
        creditMinor: credit,
        costMinor: cost,
        dueNowMinor: due,
        walletCreditMinor: wallet,
        renewalPriceMinor: renewal,
      });
    },
  );

  it('covers every ordered pair of plans a customer can move between', () => {
    const pairs = new Set(table.map(([, from, to]) => `${from}->${to}`));
    const sources = ['trial', 'starter', 'personal', 'team', 'payg'];
    const targets = ['starter', 'personal', 'team', 'payg'];
    for (const from of sources) {
      for (const to of targets) {
        if (from === to || (to === 'payg' && (from === 'trial' || from === 'payg'))) continue;
        expect(pairs).toContain(`${from}->${to}`);
      }
    }
  });

  it("rounds the credit down and the new plan's share up, one millisecond into the period", () => {
    const quote = quotePlanChange({
      current: currentOn('starter', 0),
      target: plan('personal'),
      now: new Date(periodStart.getTime() + 1),
      policy: { downgrades: 'period_end' },
    });
    // 350,000 x (P - 1 ms) / P = 349,999.9998...; 1,500,000 x the same = 1,499,999.9994...
    expect(quote).toMatchObject({
      creditMinor: 349_999,
      costMinor: 1_500_000,
      dueNowMinor: 1_150_001,
    });
  });

  it('gives no credit once the quota window is spent, however much time is left', () => {
    const current = {
      ...currentOn('personal', 0),
      quota: { limitBytes: 100 * GB, usedBytes: 100 * GB },
    };
    const quote = quotePlanChange({
      current,
      target: plan('team'),
      now: points['a fifth in']?.at as Date,
      policy: { downgrades: 'period_end' },
    });
    expect(quote).toMatchObject({ creditMinor: 0, costMinor: 4_800_000, dueNowMinor: 4_800_000 });
  });

  it('tells the customer the rule, the amounts and when the change applies', () => {
    const quote = quotePlanChange({
      current: currentOn('starter', 0.7),
      target: plan('personal'),
      now: points.halfway?.at as Date,
      policy: { downgrades: 'period_end' },
    });
    expect(quote.lines).toEqual([
      'Starter -> Personal',
      'Credit for your Starter plan: ₦1,050.00 (₦3,500.00 x the smaller of 50 % of the period left and 30 % of its data, rounded down).',
      'Personal for the rest of this period: ₦7,500.00 (renews on 2026-12-01 at ₦15,000.00).',
      'To pay now: ₦6,450.00.',
      'The change applies at once.',
    ]);
    const later = quotePlanChange({
      current: currentOn('personal', 0),
      target: plan('starter'),
      now: points.halfway?.at as Date,
      policy: { downgrades: 'period_end' },
    });
    expect(later.lines).toEqual([
      'Personal -> Starter',
      'Your Personal plan runs until 2026-12-01; Starter starts then.',
      'Nothing to pay now; ₦3,500.00 at renewal on 2026-12-01.',
    ]);
  });

  it.each([
    ['the same plan', currentOn('personal', 0), plan('personal'), 'CONFLICT'],
    ['the trial', currentOn('starter', 0), plan('trial'), 'UNSUPPORTED'],
    [
      'a plan not on sale',
      currentOn('starter', 0),
      { ...plan('team'), isOnSale: false },
      'UNSUPPORTED',
    ],
    [
      'a plan not sold in the currency',
      { ...currentOn('starter', 0), currency: 'USD' as const },
      plan('personal'),
      'UNSUPPORTED',
    ],
    [
      'from an unpaid renewal',
      { ...currentOn('starter', 0), status: 'past_due' as const },
      plan('personal'),
      'CONFLICT',
    ],
    ['PAYG to PAYG', currentOn('payg', 0), plan('payg'), 'CONFLICT'],
  ])('refuses a change to %s', (_name, current, target, code) => {
    const attempt = (): PlanChangeQuote =>
      quotePlanChange({ current, target, now: periodStart, policy: { downgrades: 'period_end' } });
    expect(attempt).toThrow(DomainError);
    expect(attempt).toThrow(expect.objectContaining({ code }));
  });
});
