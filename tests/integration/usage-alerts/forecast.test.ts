import { beforeAll, describe, expect, it } from '@jest/globals';
import { en } from '../../../bot/core/texts/en.js';
import { recordUsage } from '../../../core/quota.js';
import { sweepUsageForecasts } from '../../../core/usage-alerts.js';
import { addToUsageBuckets, hourStart } from '../../../core/usage.js';
import { credit, debit } from '../../../core/wallet.js';
import { TestClock } from '../../../lib/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { newCustomer, seedCatalogue } from '../proxy/access/harness.js';
import { GB, noticesOf, starterCustomer } from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z'); // a Monday
useTestDatabase();

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** `bytes` relayed evenly over the `hours` hours before now: counter and hourly buckets. */
async function relayedOver(accountId: string, bytes: number, hours: number): Promise<void> {
  const perHour = Math.floor(bytes / hours);
  const now = clock.now().getTime();
  await addToUsageBuckets(
    Array.from({ length: hours }, (_, i) => ({
      accountId,
      hourStart: hourStart(new Date(now - (i + 1) * 3_600_000)),
      location: 'ng',
      bytesDown: perHour,
    })),
  );
  await recordUsage(accountId, perHour * hours, clock.now());
}

describe('usage forecasts', () => {
  it('warns once per week when the last days’ rate would spend the quota before the week ends', async () => {
    clock.set('2026-03-02T10:00:00.000Z');
    const fast = await starterCustomer(clock);
    const slow = await starterCustomer(clock);
    clock.advanceBy({ days: 2 });
    // Wednesday 10:00. 6 GB in 2 days is 125 MB an hour: the 4 GB left last until Thursday 18:00.
    await relayedOver(fast.customer.accountId, 6 * GB, 48);
    // 0.96 GB in 2 days: the rest lasts 18 days, past the week's end.
    await relayedOver(slow.customer.accountId, 0.96 * GB, 48);

    expect(await sweepUsageForecasts({ clock })).toMatchObject({ usageForecasts: 1 });
    clock.advanceBy({ hours: 1 });
    expect(await sweepUsageForecasts({ clock })).toMatchObject({ usageForecasts: 0 });

    const warned = await noticesOf(fast.customer.accountId, ['usage_forecast']);
    expect(warned).toHaveLength(1);
    expect(warned[0]?.period).toBe(fast.counter.periodStart.toISOString());
    expect(warned[0]?.data).toMatchObject({
      usedBytes: 6 * GB,
      limitBytes: 10 * GB,
      bytesPerHour: 125_000_000,
      runsOutAt: '2026-03-05T18:00:00.000Z',
    });
    expect(en.notice.usageForecast(10 * GB, String(warned[0]?.data.runsOutAt))).toContain(
      "you'll reach 10 GB on Thursday",
    );
    expect(await noticesOf(slow.customer.accountId, ['usage_forecast'])).toEqual([]);
  });

  it('does not forecast from the first hours of a week', async () => {
    clock.set('2026-03-16T10:00:00.000Z');
    const { customer } = await starterCustomer(clock);
    clock.advanceBy({ hours: 2 });
    await relayedOver(customer.accountId, 2 * GB, 2);

    await sweepUsageForecasts({ clock });

    expect(await noticesOf(customer.accountId, ['usage_forecast'])).toEqual([]);
  });
});

describe('wallet forecasts (PAYG)', () => {
  it('warns once a day when the recent hourly spend empties the wallet within a day', async () => {
    clock.set('2026-03-23T00:00:00.000Z');
    const short = await newCustomer('payg', clock);
    const rich = await newCustomer('payg', clock);
    for (const [accountId, amountMinor] of [
      [short.accountId, 30_000],
      [rich.accountId, 5_000_000],
    ] as const) {
      await credit(
        accountId,
        { amountMinor, currency: 'NGN', key: `topup:${accountId}`, description: 'top-up' },
        { clock },
      );
    }
    for (let hour = 0; hour < 6; hour += 1) {
      for (const { accountId } of [short, rich]) {
        await debit(
          accountId,
          {
            amountMinor: 2_000,
            currency: 'NGN',
            key: `payg:${accountId}:${hour}`,
            description: 'hour',
          },
          { clock },
        );
      }
      clock.advanceBy({ hours: 1 });
    }

    await sweepUsageForecasts({ clock });
    clock.advanceBy({ minutes: 10 });
    await sweepUsageForecasts({ clock });

    // 18,000 left at 2,000 an hour: 9 hours.
    const warned = await noticesOf(short.accountId, ['wallet_forecast']);
    expect(warned).toEqual([
      {
        event: 'wallet_forecast',
        period: '2026-03-23',
        data: {
          balanceMinor: 18_000,
          currency: 'NGN',
          hourlySpendMinor: 2_000,
          runsOutAt: '2026-03-23T15:00:00.000Z',
        },
      },
    ]);
    expect(await noticesOf(rich.accountId, ['wallet_forecast'])).toEqual([]);
  });
});
