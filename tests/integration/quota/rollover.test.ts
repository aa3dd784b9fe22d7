/**
 * Roll-over of unused data into the next quota window: off unless the plan
 * sets `quota.rolloverCapBytes`, capped, and only from the window that ended
 * when the new one starts. Through core/quota.ts and through the gateway,
 * which opens a customer's window at their first connection in it.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { getQuotaUsage, leaseBytes, openQuotaPeriod, recordUsage } from '../../../core/quota.js';
import { TestClock } from '../../../lib/clock.js';
import { Plan } from '../../../models/plan.js';
import { useTestDatabase } from '../../support/database.js';
import {
  HTTPS_PORT,
  grantOf,
  newCustomer,
  request,
  seedCatalogue,
  useControllers,
} from '../proxy/access/harness.js';

const GB = 1_000_000_000;
const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
useTestDatabase();

const week1 = {
  periodStart: new Date('2026-03-02T00:00:00Z'),
  periodEnd: new Date('2026-03-09T00:00:00Z'),
};
const week2 = { periodStart: week1.periodEnd, periodEnd: new Date('2026-03-16T00:00:00Z') };
const week4 = {
  periodStart: new Date('2026-03-23T00:00:00Z'),
  periodEnd: new Date('2026-03-30T00:00:00Z'),
};

/** An account whose first week (10 GB) ended with `usedGB` used. */
async function afterWeekOne(usedGB: number): Promise<string> {
  const accountId = new Types.ObjectId().toHexString();
  await openQuotaPeriod(accountId, { ...week1, limitBytes: 10 * GB });
  if (usedGB > 0) await recordUsage(accountId, usedGB * GB, new Date('2026-03-05T00:00:00Z'));
  return accountId;
}

beforeAll(async () => {
  await seedCatalogue(clock);
});

describe('roll-over in core/quota.ts', () => {
  it('brings nothing over without it', async () => {
    const accountId = await afterWeekOne(4);
    const next = await openQuotaPeriod(accountId, { ...week2, limitBytes: 10 * GB });
    expect(next).toMatchObject({ limitBytes: 10 * GB, carryOverBytes: 0 });
  });

  it('brings the unused bytes over, up to the cap', async () => {
    const generous = await afterWeekOne(4);
    expect(
      await openQuotaPeriod(generous, {
        ...week2,
        limitBytes: 10 * GB,
        rollover: { capBytes: 50 * GB },
      }),
    ).toMatchObject({ limitBytes: 16 * GB, carryOverBytes: 6 * GB, remainingBytes: 16 * GB });

    const capped = await afterWeekOne(4);
    expect(
      await openQuotaPeriod(capped, {
        ...week2,
        limitBytes: 10 * GB,
        rollover: { capBytes: 3 * GB },
      }),
    ).toMatchObject({ limitBytes: 13 * GB, carryOverBytes: 3 * GB });
  });

  it('leaves behind what a gateway still holds in a lease, and skips a gap', async () => {
    const accountId = await afterWeekOne(4);
    // 2 GB leased and not yet settled when the next window opens.
    await leaseBytes(accountId, 2 * GB, new Date('2026-03-08T23:00:00Z'));
    const next = await openQuotaPeriod(accountId, {
      ...week2,
      limitBytes: 10 * GB,
      rollover: { capBytes: 50 * GB },
    });
    expect(next.carryOverBytes).toBe(4 * GB);

    // Week 3 never opened (no connection then): week 4 has nothing to take from.
    const later = await openQuotaPeriod(accountId, {
      ...week4,
      limitBytes: 10 * GB,
      rollover: { capBytes: 50 * GB },
    });
    expect(later.carryOverBytes).toBe(0);
  });

  it("keeps the first opener's figures when openers race", async () => {
    const accountId = await afterWeekOne(1);
    const opened = await Promise.all(
      Array.from({ length: 6 }, () =>
        openQuotaPeriod(accountId, {
          ...week2,
          limitBytes: 10 * GB,
          rollover: { capBytes: 5 * GB },
        }),
      ),
    );
    for (const period of opened)
      expect(period).toMatchObject({ limitBytes: 15 * GB, carryOverBytes: 5 * GB });
  });
});

describe('roll-over through the gateway', () => {
  /**
   * A Starter customer (10 GB a week from activation) who connects, uses
   * `usedGB` in week one, and connects again a week later: that connection
   * opens week two. Resolves to week two's counter.
   */
  async function weekTwoAfterUsing(usedGB: number) {
    const customer = await newCustomer('starter', clock);
    const controller = await controllers.start();
    const connect = async () =>
      grantOf(
        await controller.authorize(request(customer, { protocol: 'https', port: HTTPS_PORT })),
      ).close();
    await connect();
    await recordUsage(customer.accountId, usedGB * GB, clock.now());
    await controller.flush({ returnLeases: true });
    clock.advance(7 * 86_400_000);
    await connect();
    return getQuotaUsage(customer.accountId, clock.now());
  }

  it('is off on the default plans', async () => {
    expect(await weekTwoAfterUsing(3)).toMatchObject({
      limitBytes: 10 * GB,
      carryOverBytes: 0,
    });
  });

  it('opens the next week with the unused data when the plan rolls over', async () => {
    await Plan.updateOne({ code: 'starter' }, { $set: { 'quota.rolloverCapBytes': 5 * GB } });
    try {
      // 10 GB - 8 GB used = 2 GB unused (under the 5 GB cap). A new
      // controller reads the plan as edited.
      expect(await weekTwoAfterUsing(8)).toMatchObject({
        limitBytes: 12 * GB,
        carryOverBytes: 2 * GB,
      });
    } finally {
      await Plan.updateOne({ code: 'starter' }, { $unset: { 'quota.rolloverCapBytes': 1 } });
    }
  });
});
