import { beforeAll, describe, expect, it } from '@jest/globals';
import { setAutoTopUp } from '../../../core/payments/auto-topup.js';
import { recordUsage } from '../../../core/quota.js';
import { sweepUsageAlerts } from '../../../core/usage-alerts.js';
import { credit } from '../../../core/wallet.js';
import { TestClock } from '../../../lib/clock.js';
import { useTestDatabase } from '../../support/database.js';
import { newCustomer, seedCatalogue } from '../proxy/access/harness.js';
import { GB, noticesOf, openCurrentWindow, starterCustomer, USAGE_EVENTS } from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
useTestDatabase();

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** The sweep as the job runs it, twice: the second pass must add nothing. */
async function sweepTwice(): Promise<void> {
  await sweepUsageAlerts({ clock });
  const again = await sweepUsageAlerts({ clock });
  expect(again).toMatchObject({ usageAlerts: 0, walletLowAlerts: 0 });
}

describe('usage threshold sweep', () => {
  it('tells a Starter customer once at 50, 80, 95 and 100 % of the week, however often it runs', async () => {
    const { customer, counter } = await starterCustomer(clock);
    const period = counter.periodStart.toISOString();
    expect(counter.limitBytes).toBe(10 * GB);

    const steps = [
      { toBytes: 4.9 * GB, events: [] },
      { toBytes: 5 * GB, events: ['usage_50'] },
      { toBytes: 7.9 * GB, events: ['usage_50'] },
      { toBytes: 8.2 * GB, events: ['usage_50', 'usage_80'] },
      { toBytes: 9.6 * GB, events: ['usage_50', 'usage_80', 'usage_95'] },
      { toBytes: 10.3 * GB, events: ['usage_50', 'usage_80', 'usage_95', 'usage_100'] },
    ];
    let used = 0;
    for (const step of steps) {
      await recordUsage(customer.accountId, Math.round(step.toBytes - used), clock.now());
      used = step.toBytes;
      clock.advanceBy({ minutes: 10 });
      await sweepTwice();
      const notices = await noticesOf(customer.accountId, USAGE_EVENTS);
      expect(notices.map((n) => n.event)).toEqual(step.events);
    }

    const notices = await noticesOf(customer.accountId, USAGE_EVENTS);
    expect(notices.every((n) => n.period === period)).toBe(true);
    expect(notices[1]?.data).toEqual({
      usedBytes: 8_200_000_000,
      limitBytes: 10 * GB,
      percent: 82,
      periodEnd: counter.periodEnd.toISOString(),
    });
  });

  it('sends only usage_100 when the customer jumps from 40 % to the whole quota between two sweeps', async () => {
    const { customer } = await starterCustomer(clock);
    await recordUsage(customer.accountId, 4 * GB, clock.now());
    await sweepTwice();
    expect(await noticesOf(customer.accountId, USAGE_EVENTS)).toEqual([]);

    await recordUsage(customer.accountId, 6 * GB, clock.now());
    await sweepTwice();

    const notices = await noticesOf(customer.accountId, USAGE_EVENTS);
    expect(notices.map((n) => n.event)).toEqual(['usage_100']);
    expect(notices[0]?.data).toMatchObject({ usedBytes: 10 * GB, percent: 100 });
  });

  it('tells the customer again in the next week, once its window opens', async () => {
    const { customer, counter } = await starterCustomer(clock);
    await recordUsage(customer.accountId, 6 * GB, clock.now());
    await sweepTwice();

    clock.set(new Date(counter.periodEnd.getTime() + 3_600_000));
    // The old week has ended: nothing more for it, and the new one has no usage yet.
    await sweepTwice();
    const next = await openCurrentWindow(customer, clock);
    expect(next.periodStart.getTime()).toBe(counter.periodEnd.getTime());
    await recordUsage(customer.accountId, 5.5 * GB, clock.now());
    await sweepTwice();

    const notices = await noticesOf(customer.accountId, USAGE_EVENTS);
    expect(notices.map((n) => [n.event, n.period])).toEqual([
      ['usage_50', counter.periodStart.toISOString()],
      ['usage_50', next.periodStart.toISOString()],
    ]);
  });

  it('tells a PAYG customer their wallet is low once a day while it stays below the threshold', async () => {
    const payg = await newCustomer('payg', clock);
    const comfortable = await newCustomer('payg', clock);
    const autoTopUp = await newCustomer('payg', clock);
    const deposit = (accountId: string, amountMinor: number) =>
      credit(
        accountId,
        { amountMinor, currency: 'NGN', key: `topup:${accountId}`, description: 'top-up' },
        { clock },
      );
    await deposit(payg.accountId, 20_000); // below the default 50,000 threshold
    await deposit(comfortable.accountId, 80_000);
    await deposit(autoTopUp.accountId, 20_000);
    await setAutoTopUp(autoTopUp.accountId, { thresholdMinor: 30_000, amountMinor: 100_000 });

    await sweepTwice();
    clock.advanceBy({ hours: 6 });
    await sweepTwice();

    const low = await noticesOf(payg.accountId, ['wallet_low']);
    expect(low).toEqual([
      {
        event: 'wallet_low',
        period: `low:${clock.now().toISOString().slice(0, 10)}`,
        data: { balanceMinor: 20_000, currency: 'NGN' },
      },
    ]);
    expect(await noticesOf(comfortable.accountId, ['wallet_low'])).toEqual([]);
    // Auto top-up refills it; core/payments/auto-topup.ts speaks when it cannot.
    expect(await noticesOf(autoTopUp.accountId, ['wallet_low'])).toEqual([]);

    clock.advanceBy({ days: 1 });
    await sweepTwice();
    expect(await noticesOf(payg.accountId, ['wallet_low'])).toHaveLength(2);
  });
});
