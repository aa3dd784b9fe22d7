/**
 * "What has pay as you go cost me?" (core/payg.ts): this hour, today and this
 * month, from the hourly charges the gateway writes to the wallet's ledger
 * (per-GB data charges: tests/integration/proxy/access/payg-data.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { paygCostSoFar, paygHourKey } from '../../../core/payg.js';
import { credit, debit } from '../../../core/wallet.js';
import { TestClock } from '../../../lib/clock.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
const clock = new TestClock('2026-03-02T10:20:00.000Z');
const RATE = 15_000;

async function chargedHours(accountId: string, hours: string[], extraKeys: string[] = []) {
  await credit(
    accountId,
    { amountMinor: 1_000_000, currency: 'NGN', key: `topup:${accountId}`, description: 'Top-up' },
    { clock },
  );
  for (const key of [
    ...hours.map((hour) => paygHourKey(accountId, new Date(hour))),
    ...extraKeys,
  ]) {
    const result = await debit(
      accountId,
      { amountMinor: RATE, currency: 'NGN', key, description: 'PAYG hour' },
      { clock },
    );
    expect(result.ok).toBe(true);
  }
}

describe('PAYG cost so far', () => {
  it('adds up this hour and today (UTC) from the hourly charges, and nothing else', async () => {
    const accountId = new Types.ObjectId().toHexString();
    await chargedHours(
      accountId,
      ['2026-03-01T23:00:00.000Z', '2026-03-02T08:00:00.000Z', '2026-03-02T10:00:00.000Z'],
      // A charge retried under a new key for the same hour, and a debit that is not PAYG.
      [
        `${paygHourKey(accountId, new Date('2026-03-02T09:00:00.000Z'))}:retry1`,
        `other:${accountId}`,
      ],
    );
    const other = new Types.ObjectId().toHexString();
    await chargedHours(other, ['2026-03-02T10:00:00.000Z']);

    expect(await paygCostSoFar(accountId, clock.now())).toEqual({
      hourMinor: RATE,
      todayMinor: 3 * RATE,
      monthMinor: 4 * RATE,
      dataTodayMinor: 0,
      hoursToday: 3,
      currency: 'NGN',
      summary: '₦450.00 today (3 connected hours), ₦150.00 this hour, ₦600.00 this month.',
    });
  });

  it('says so when nothing was charged today', async () => {
    const accountId = new Types.ObjectId().toHexString();
    expect(await paygCostSoFar(accountId, clock.now())).toMatchObject({
      hourMinor: 0,
      todayMinor: 0,
      monthMinor: 0,
      summary: 'Nothing charged this month.',
    });
  });
});
