import { describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import { isDomainError } from '../../../lib/errors.js';
import {
  DEFAULT_PLANS,
  getPlan,
  getPlanForSale,
  listPlans,
  priceForRenewal,
  seedPlans,
  updatePlan,
} from '../../../core/plans.js';
import { Plan } from '../../../models/plan.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const clock = new TestClock('2025-03-01T00:00:00.000Z');

describe('seedPlans', () => {
  it('inserts every default on first start and nothing on the next', async () => {
    const first = await seedPlans(clock);
    expect(first.inserted).toEqual(DEFAULT_PLANS.map((p) => p.code));
    const second = await seedPlans(clock);
    expect(second.inserted).toEqual([]);
    const plans = await listPlans();
    expect(plans.map((p) => [p.code, p.version, p.editedBy])).toEqual(
      DEFAULT_PLANS.map((p) => [p.code, 1, 'seed']),
    );
    expect(plans[0]?.createdAt).toEqual(clock.now());
  });

  it('never overwrites an admin edit, and re-inserts only a missing default', async () => {
    await seedPlans(clock);
    await updatePlan(
      'starter',
      { prices: [{ currency: 'NGN', amountMinor: 400_000 }] },
      { actor: 'admin:1', clock },
    );
    await Plan.deleteOne({ code: 'team' });

    const again = await seedPlans(clock);

    expect(again.inserted).toEqual(['team']);
    const starter = await getPlan('starter');
    expect(starter).toMatchObject({
      version: 2,
      editedBy: 'admin:1',
      prices: [{ currency: 'NGN', amountMinor: 400_000 }],
    });
  });

  it('leaves one copy of each plan when several processes seed at once', async () => {
    await Plan.deleteMany({});
    const results = await Promise.all(Array.from({ length: 6 }, () => seedPlans(clock)));
    const inserted = results.flatMap((r) => r.inserted).sort();
    expect(inserted).toEqual(DEFAULT_PLANS.map((p) => p.code).sort());
    expect(await Plan.countDocuments({})).toBe(DEFAULT_PLANS.length);
  });
});

describe('reading the catalogue', () => {
  it('finds a plan by code, whatever its case', async () => {
    await seedPlans(clock);
    expect((await getPlan(' Personal ')).code).toBe('personal');
  });

  it('answers PLAN_NOT_FOUND for a code that is not in the catalogue', async () => {
    await expect(getPlan('gold')).rejects.toMatchObject({
      name: 'DomainError',
      code: 'PLAN_NOT_FOUND',
    });
  });

  it('keeps a plan taken off sale readable for running subscriptions but not for sale', async () => {
    await seedPlans(clock);
    await updatePlan('team', { isOnSale: false }, { actor: 'admin:1', clock });
    expect((await getPlan('team')).isOnSale).toBe(false);
    await expect(getPlanForSale('team')).rejects.toMatchObject({ code: 'PLAN_NOT_FOUND' });
    expect((await listPlans({ onSaleOnly: true })).map((p) => p.code)).not.toContain('team');
    await updatePlan('team', { isOnSale: true }, { actor: 'admin:1', clock });
  });
});

describe('updatePlan', () => {
  it('bumps the version, records the editor and time, and the renewal price follows', async () => {
    await seedPlans(clock);
    const before = await getPlan('personal');
    clock.advanceBy({ hours: 1 });
    const after = await updatePlan(
      'personal',
      {
        prices: [
          { currency: 'NGN', amountMinor: 1_800_000 },
          { currency: 'USD', amountMinor: 1_500 },
        ],
      },
      { actor: 'admin:7', clock },
    );
    expect(after.version).toBe(before.version + 1);
    expect(after).toMatchObject({ editedBy: 'admin:7', updatedAt: clock.now() });
    expect(await priceForRenewal({ planCode: 'personal', currency: 'NGN' })).toEqual({
      priceMinor: 1_800_000,
      currency: 'NGN',
      planVersion: after.version,
    });
    expect((await priceForRenewal({ planCode: 'personal', currency: 'USD' })).priceMinor).toBe(
      1_500,
    );
  });

  it('removes an optional part with null and keeps the plan valid', async () => {
    await seedPlans(clock);
    const edited = await updatePlan(
      'payg',
      { payg: { rates: [{ currency: 'NGN', hourlyRateMinor: 20_000, perGbRateMinor: 50_000 }] } },
      { actor: 'admin:1', clock },
    );
    expect(edited.payg?.rates[0]).toEqual({
      currency: 'NGN',
      hourlyRateMinor: 20_000,
      perGbRateMinor: 50_000,
    });
    const team = await updatePlan(
      'team',
      { seats: 10, maxConnections: 80 },
      { actor: 'admin:1', clock },
    );
    expect(team).toMatchObject({ seats: 10, maxConnections: 80 });
  });

  it.each<[string, Parameters<typeof updatePlan>[1], RegExp]>([
    ['a recurring plan without a price', { prices: [] }, /needs a price/],
    ['a negative price', { prices: [{ currency: 'NGN', amountMinor: -1 }] }, /amountMinor/],
    ['a fractional price', { prices: [{ currency: 'NGN', amountMinor: 10.5 }] }, /whole number/],
    ['an unknown protocol', { protocols: ['ftp' as 'http'] }, /ftp|protocols/],
    ['no protocols', { protocols: [] }, /at least one protocol/],
    ['removing the quota of a monthly plan', { quota: null }, /needs a data quota/],
  ])(
    'refuses %s with every problem named and leaves the plan unchanged',
    async (_what, changes, problem) => {
      await seedPlans(clock);
      const before = await getPlan('starter');
      const error = await updatePlan('starter', changes, { actor: 'admin:1', clock }).catch(
        (e: unknown) => e,
      );
      expect(isDomainError(error, 'VALIDATION_FAILED')).toBe(true);
      expect((error as Error).message).toMatch(problem);
      expect((await getPlan('starter')).version).toBe(before.version);
    },
  );

  it('refuses to change the code or the version', async () => {
    await seedPlans(clock);
    const changes = { code: 'gold', version: 99 } as unknown as Parameters<typeof updatePlan>[1];
    await expect(updatePlan('starter', changes, { actor: 'admin:1', clock })).rejects.toMatchObject(
      {
        code: 'VALIDATION_FAILED',
      },
    );
  });

  it('refuses an edit made against a version someone else has since changed', async () => {
    await seedPlans(clock);
    const seen = await getPlan('starter');
    await updatePlan(
      'starter',
      { name: 'Starter+' },
      { actor: 'admin:1', clock, expectedVersion: seen.version },
    );
    await expect(
      updatePlan(
        'starter',
        { name: 'Starter 2' },
        { actor: 'admin:2', clock, expectedVersion: seen.version },
      ),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await getPlan('starter')).name).toBe('Starter+');
  });

  it('applies concurrent edits of different fields one after the other, each with its own version', async () => {
    await seedPlans(clock);
    const before = await getPlan('personal');
    await Promise.all([
      updatePlan('personal', { maxConnections: 12 }, { actor: 'admin:1', clock }),
      updatePlan('personal', { description: 'More for less' }, { actor: 'admin:2', clock }),
    ]);
    const after = await getPlan('personal');
    expect(after).toMatchObject({
      maxConnections: 12,
      description: 'More for less',
      version: before.version + 2,
    });
  });

  it('answers PLAN_NOT_FOUND for an unknown plan', async () => {
    await expect(
      updatePlan('gold', { name: 'Gold' }, { actor: 'admin:1', clock }),
    ).rejects.toMatchObject({
      code: 'PLAN_NOT_FOUND',
    });
  });

  it('refuses a renewal price for a plan that does not renew', async () => {
    await seedPlans(clock);
    await expect(priceForRenewal({ planCode: 'payg', currency: 'NGN' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
    await expect(priceForRenewal({ planCode: 'starter', currency: 'KES' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });
});

describe('the Plan model', () => {
  it('keeps plan codes unique', async () => {
    await seedPlans(clock);
    const copy = { ...DEFAULT_PLANS[1], version: 1, editedBy: 'x' };
    await expect(Plan.create(copy)).rejects.toMatchObject({ code: 11000 });
    expect(mongoose.connection.readyState).toBe(1);
  });
});
