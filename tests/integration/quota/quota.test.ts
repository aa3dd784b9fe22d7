import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import {
  addQuotaBytes,
  getQuotaUsage,
  leaseBytes,
  openQuotaPeriod,
  recordUsage,
  settleLease,
  switchQuotaWindow,
} from '../../../core/quota.js';
import { QuotaUsage } from '../../../models/quota-usage.js';
import { useTestDatabase } from '../../support/database.js';
import { pick, useExtraConnections } from '../wallet/connections.js';

const database = useTestDatabase();
const extra = useExtraConnections(database);

const week = {
  periodStart: new Date('2026-03-02T00:00:00Z'),
  periodEnd: new Date('2026-03-09T00:00:00Z'),
};
const midWeek = new Date('2026-03-05T12:00:00Z');

function newAccount(): string {
  return new Types.ObjectId().toHexString();
}

describe('quota periods', () => {
  it('opens a period once when several billing runs race, adding the carry-over', async () => {
    const accountId = newAccount();
    const connections = await extra.open(3);
    const opened = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        openQuotaPeriod(
          accountId,
          { ...week, limitBytes: 10_000_000_000, carryOverBytes: 1_500_000_000 },
          { connection: pick(connections, i) },
        ),
      ),
    );
    expect(opened.every((p) => p.limitBytes === 11_500_000_000)).toBe(true);
    expect(await QuotaUsage.countDocuments({ accountId })).toBe(1);
    expect(opened[0]).toMatchObject({
      carryOverBytes: 1_500_000_000,
      usedBytes: 0,
      leasedBytes: 0,
      remainingBytes: 11_500_000_000,
    });

    // A rerun with other figures changes nothing: the first opening wins.
    const rerun = await openQuotaPeriod(accountId, { ...week, limitBytes: 1 });
    expect(rerun.limitBytes).toBe(11_500_000_000);
  });

  it('finds the period that contains a time, start inclusive and end exclusive', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 1_000 });
    const next = { periodStart: week.periodEnd, periodEnd: new Date('2026-03-16T00:00:00Z') };
    await openQuotaPeriod(accountId, { ...next, limitBytes: 2_000 });

    expect(await getQuotaUsage(accountId, new Date('2026-03-01T23:59:59Z'))).toBeNull();
    expect((await getQuotaUsage(accountId, week.periodStart))?.limitBytes).toBe(1_000);
    expect((await getQuotaUsage(accountId, week.periodEnd))?.limitBytes).toBe(2_000);
    expect(await getQuotaUsage(accountId, next.periodEnd)).toBeNull();
  });

  it('refuses a period that ends before it starts, or a negative limit', async () => {
    const accountId = newAccount();
    await expect(
      openQuotaPeriod(accountId, {
        periodStart: week.periodEnd,
        periodEnd: week.periodStart,
        limitBytes: 1,
      }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'periodEnd' } });
    await expect(openQuotaPeriod(accountId, { ...week, limitBytes: -1 })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'limitBytes' },
    });
  });
});

describe('recordUsage and addQuotaBytes', () => {
  it('counts every byte booked by concurrent gateways', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 100_000 });
    const connections = await extra.open(3);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        recordUsage(accountId, 1_000, midWeek, { connection: pick(connections, i) }),
      ),
    );
    const after = await recordUsage(accountId, 500, midWeek);
    expect(after).toEqual({
      usedBytes: 60_500,
      remainingBytes: 39_500,
      periodStart: week.periodStart,
    });
  });

  it('books usage past the limit as it happened, and reports nothing remaining', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 1_000 });
    expect(await recordUsage(accountId, 1_200, midWeek)).toMatchObject({
      usedBytes: 1_200,
      remainingBytes: 0,
    });
    expect((await leaseBytes(accountId, 10, midWeek))?.grantedBytes).toBe(0);
  });

  it('has nowhere to book usage outside any period', async () => {
    const accountId = newAccount();
    expect(await recordUsage(accountId, 10, midWeek)).toBeNull();
    expect(await addQuotaBytes(accountId, 10, midWeek)).toBeNull();
    expect(await leaseBytes(accountId, 10, midWeek)).toBeNull();
  });

  it('adds purchased bytes to the current period, where leases can use them', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 1_000 });
    expect((await leaseBytes(accountId, 5_000, midWeek))?.grantedBytes).toBe(1_000);
    const topped = await addQuotaBytes(accountId, 2_000, midWeek);
    expect(topped).toMatchObject({ limitBytes: 3_000, addedBytes: 2_000, remainingBytes: 2_000 });
    expect((await leaseBytes(accountId, 5_000, midWeek))?.grantedBytes).toBe(2_000);
  });
});

describe('quota leases', () => {
  it('never grants more than the limit to 90 concurrent lease requests from 3 connections', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 10_000 });
    const connections = await extra.open(3);
    const leases = await Promise.all(
      Array.from({ length: 90 }, (_, i) =>
        leaseBytes(accountId, 300, midWeek, { connection: pick(connections, i) }),
      ),
    );
    const granted = leases.map((l) => l?.grantedBytes ?? -1);
    expect(granted.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(granted.filter((g) => g === 300)).toHaveLength(33);
    expect(granted.filter((g) => g === 100)).toHaveLength(1);
    expect(granted.filter((g) => g === 0)).toHaveLength(56);
    const period = await getQuotaUsage(accountId, midWeek);
    expect(period).toMatchObject({ usedBytes: 0, leasedBytes: 10_000, remainingBytes: 0 });
  });

  it('lets six gateways on three connections spend the quota exactly, leasing and settling at once', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 50_000 });
    const connections = await extra.open(3);
    let maxSeen = 0;

    const gateway = async (i: number): Promise<number> => {
      const connection = pick(connections, i);
      let spent = 0;
      for (;;) {
        const lease = await leaseBytes(accountId, 700 + i * 111, midWeek, { connection });
        if (!lease || lease.grantedBytes === 0) return spent;
        // Spend part of the lease, settle, and return the rest.
        const used = Math.ceil(lease.grantedBytes / 2);
        const period = await settleLease(
          accountId,
          lease.periodStart,
          { leasedBytes: lease.grantedBytes, usedBytes: used },
          { connection },
        );
        maxSeen = Math.max(maxSeen, period.usedBytes + period.leasedBytes);
        spent += used;
      }
    };
    const spent = await Promise.all([0, 1, 2, 3, 4, 5].map(gateway));

    expect(spent.reduce((a, b) => a + b, 0)).toBe(50_000);
    expect(maxSeen).toBeLessThanOrEqual(50_000);
    expect(await getQuotaUsage(accountId, midWeek)).toMatchObject({
      usedBytes: 50_000,
      leasedBytes: 0,
      remainingBytes: 0,
    });
  });

  it('returns the unused part of a lease to the period', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 10_000 });
    const lease = await leaseBytes(accountId, 4_000, midWeek);
    expect(lease?.grantedBytes).toBe(4_000);
    expect((await getQuotaUsage(accountId, midWeek))?.remainingBytes).toBe(6_000);

    const settled = await settleLease(accountId, week.periodStart, {
      leasedBytes: 4_000,
      usedBytes: 1_500,
    });
    expect(settled).toMatchObject({ usedBytes: 1_500, leasedBytes: 0, remainingBytes: 8_500 });
  });

  it('refuses to settle more than is leased, and a period that does not exist', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 10_000 });
    await leaseBytes(accountId, 1_000, midWeek);
    await settleLease(accountId, week.periodStart, { leasedBytes: 1_000, usedBytes: 1_000 });
    await expect(
      settleLease(accountId, week.periodStart, { leasedBytes: 1_000, usedBytes: 1_000 }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(
      settleLease(accountId, new Date('2020-01-01T00:00:00Z'), { leasedBytes: 0, usedBytes: 1 }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await getQuotaUsage(accountId, midWeek))?.usedBytes).toBe(1_000);
  });

  it('refuses a lease of no bytes', async () => {
    await expect(leaseBytes(newAccount(), 0, midWeek)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'requestedBytes' },
    });
  });
});

describe('switching the window at a plan change', () => {
  const at = new Date('2026-03-05T12:00:00Z');
  const monthEnd = new Date('2026-04-02T00:00:00Z');

  it('ends the current window and opens the new allowance with the used bytes carried', async () => {
    const accountId = newAccount();
    await openQuotaPeriod(accountId, { ...week, limitBytes: 10_000_000_000 });
    await recordUsage(accountId, 4_000_000_000, new Date('2026-03-04T00:00:00Z'));

    const switched = await switchQuotaWindow(accountId, {
      at,
      periodEnd: monthEnd,
      limitBytes: 100_000_000_000,
    });
    expect(switched).toMatchObject({
      periodStart: at,
      periodEnd: monthEnd,
      limitBytes: 100_000_000_000,
      usedBytes: 4_000_000_000,
      remainingBytes: 96_000_000_000,
    });
    expect(await getQuotaUsage(accountId, at)).toMatchObject({ periodStart: at });
    const ended = await QuotaUsage.findOne({ accountId, periodStart: week.periodStart }).lean();
    expect(ended?.periodEnd).toEqual(at);

    // A rerun of the same change (a retried job) finds what the first did.
    await recordUsage(accountId, 1_000_000_000, new Date('2026-03-06T00:00:00Z'));
    const again = await switchQuotaWindow(accountId, { at, periodEnd: monthEnd, limitBytes: 1 });
    expect(again).toMatchObject({ limitBytes: 100_000_000_000, usedBytes: 5_000_000_000 });
  });

  it('opens the new allowance unused when no window was open', async () => {
    const accountId = newAccount();
    const switched = await switchQuotaWindow(accountId, { at, periodEnd: monthEnd, limitBytes: 5 });
    expect(switched).toMatchObject({ usedBytes: 0, remainingBytes: 5 });
  });
});
