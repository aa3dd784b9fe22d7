/**
 * PAYG per-GB charging through the real access controller: data is bought
 * from the wallet in blocks as the tunnels use it, never a byte beyond what
 * the wallet paid for, the hour's unused data goes back at the closing pass,
 * and with the rate unset (the default) PAYG stays hourly only.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  buyPaygData,
  closePaygHours,
  listPaygHours,
  paygCostSoFar,
  paygDataKey,
} from '../../../../core/payg.js';
import { updatePlan } from '../../../../core/plans.js';
import { getQuotaUsage, leaseBytes } from '../../../../core/quota.js';
import { credit, debit, getWallet } from '../../../../core/wallet.js';
import { TestClock } from '../../../../lib/clock.js';
import { LedgerEntry } from '../../../../models/ledger-entry.js';
import { Notification } from '../../../../models/notification.js';
import { PaygHour } from '../../../../models/payg-hour.js';
import type { TunnelGrant } from '../../../../proxy/access.js';
import { useTestDatabase } from '../../../support/database.js';
import {
  cutCode,
  grantOf,
  newCustomer,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
  type Customer,
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
useTestDatabase();

const HOURLY = 15_000;
/** ₦500.00 per GB: a 1 MB block costs 50 kobo. */
const PER_GB = 50_000;
const BLOCK = 1_000_000;
const CHUNK = 64 * 1024;
const leases = { minLeaseBytes: 128 * 1024, maxLeaseBytes: 512 * 1024 };

beforeAll(async () => {
  await seedCatalogue(clock);
});

async function setPerGbRate(perGbRateMinor: number | undefined): Promise<void> {
  await updatePlan(
    'payg',
    {
      payg: {
        rates: [
          {
            currency: 'NGN',
            hourlyRateMinor: HOURLY,
            ...(perGbRateMinor === undefined ? {} : { perGbRateMinor }),
          },
        ],
      },
    },
    { actor: 'test', clock },
  );
}

async function paygCustomerWith(balanceMinor: number): Promise<Customer> {
  const customer = await newCustomer('payg', clock);
  await credit(
    customer.accountId,
    {
      amountMinor: balanceMinor,
      currency: 'NGN',
      key: `topup:${customer.accountId}:${balanceMinor}`,
      description: 'top-up',
    },
    { clock },
  );
  return customer;
}

/** Pulls through one tunnel as the relay does (holding on across renewals) until it is refused more. */
async function pullHolding(grant: TunnelGrant, limit = Number.POSITIVE_INFINITY): Promise<number> {
  if (!grant.waitForAllowance) throw new Error('the grant cannot wait for a renewal');
  let bytes = 0;
  while (bytes < limit) {
    const want = Math.min(CHUNK, limit - bytes);
    const granted = grant.allow(want);
    bytes += granted;
    if (granted < want && !(await grant.waitForAllowance())) return bytes;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return bytes;
}

async function appliedKeys(accountId: string, prefix: string): Promise<string[]> {
  return (await LedgerEntry.find({ accountId, status: 'applied' }).lean())
    .map((entry) => entry.idempotencyKey)
    .filter((key) => key.startsWith(prefix))
    .sort();
}

describe('PAYG per-GB charging on', () => {
  beforeAll(async () => {
    await setPerGbRate(PER_GB);
  });

  it('buys data in blocks as it is used and cuts at the last byte the wallet paid for', async () => {
    clock.set('2026-03-02T10:10:00.000Z');
    // The hour, two whole blocks and 20 kobo: 2,400,000 bytes in all.
    const customer = await paygCustomerWith(HOURLY + 120);
    const controller = await controllers.start({ leases, paygDataBlockBytes: BLOCK });
    const grant = grantOf(await controller.authorize(request(customer)));
    const cut = cutCode(grant);

    const pulled = await pullHolding(grant);

    expect(pulled).toBe(2_400_000);
    await waitUntil(() => cut.code === 'WALLET_EMPTY');
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(0);
    const hour = new Date('2026-03-02T10:00:00.000Z');
    expect(await appliedKeys(customer.accountId, 'payg-data:')).toEqual([
      paygDataKey(customer.accountId, hour, 0),
      paygDataKey(customer.accountId, hour, 1),
      paygDataKey(customer.accountId, hour, 2),
    ]);
    // A new tunnel is refused with the reason, and the customer is told once.
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'WALLET_EMPTY',
      message: expect.stringContaining('Top up') as unknown,
    });
    await waitUntil(
      async () =>
        (await Notification.countDocuments({
          accountId: customer.accountId,
          event: 'wallet_empty',
        })) === 1,
    );
    grant.close();
  });

  it('gives back what an hour bought and did not use at the closing pass, once', async () => {
    clock.set('2026-03-05T10:10:00.000Z');
    const customer = await paygCustomerWith(HOURLY + 1_000);
    const controller = await controllers.start({ leases, paygDataBlockBytes: BLOCK });
    const grant = grantOf(await controller.authorize(request(customer)));
    // 1.5 MB used: 75 kobo. Blocks are bought a little ahead of use (a lease
    // renews at half), so at least two blocks (100 kobo) were bought.
    expect(await pullHolding(grant, 1_500_000)).toBe(1_500_000);
    grant.close();
    await controller.stop(); // books the usage and gives the lease back

    const hour = new Date('2026-03-05T10:00:00.000Z');
    const paidForData = 1_000 - (await getWallet(customer.accountId)).balanceMinor;
    expect(paidForData).toBeGreaterThanOrEqual(100);
    expect(paidForData % 50).toBe(0);
    expect(await paygCostSoFar(customer.accountId, clock.now())).toMatchObject({
      hourMinor: HOURLY + paidForData,
      dataTodayMinor: paidForData,
    });
    // Not yet: the hour has not ended.
    expect((await closePaygHours({ clock })).closed).toBe(0);

    clock.set('2026-03-05T11:06:00.000Z');
    const report = await closePaygHours({ clock });
    expect(report).toMatchObject({ closed: 1, waiting: 0, returnedMinor: paidForData - 75 });
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(1_000 - 75);
    const [statement] = await listPaygHours(customer.accountId, {
      from: hour,
      to: clock.now(),
    });
    expect(statement).toMatchObject({
      hourStart: hour,
      connectedMinor: HOURLY,
      dataUsedBytes: 1_500_000,
      dataCostMinor: 75,
      dataReturnedMinor: paidForData - 75,
      totalMinor: HOURLY + 75,
      bucketBytes: 1_500_000,
    });
    expect(await paygCostSoFar(customer.accountId, clock.now())).toMatchObject({
      todayMinor: HOURLY + 75,
      dataTodayMinor: 75,
    });

    // A second pass (or a second jobs process) changes nothing.
    expect((await closePaygHours({ clock })).closed).toBe(0);
    expect(await PaygHour.countDocuments({ accountId: customer.accountId })).toBe(1);
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(1_000 - 75);
  });

  it('waits to close an hour while a gateway still holds its data', async () => {
    clock.set('2026-03-08T10:10:00.000Z');
    const customer = await paygCustomerWith(HOURLY + 1_000);
    const controller = await controllers.start({
      leases: { ...leases, idleReturnMs: 3_600_000 },
      paygDataBlockBytes: BLOCK,
    });
    const grant = grantOf(await controller.authorize(request(customer)));
    expect(await pullHolding(grant, 100_000)).toBe(100_000);
    grant.close();

    clock.set('2026-03-08T11:06:00.000Z');
    expect(await closePaygHours({ clock })).toMatchObject({ closed: 0, waiting: 1 });
    await controller.stop();
    expect(await closePaygHours({ clock })).toMatchObject({ closed: 1, waiting: 0 });
    const [statement] = await PaygHour.find({ accountId: customer.accountId }).lean();
    expect(statement).toMatchObject({ dataUsedBytes: 100_000, dataCostMinor: 5 });
  });

  it('charges the bytes after an hour boundary to the new hour, on a tunnel that stays open', async () => {
    clock.set('2026-03-11T10:50:00.000Z');
    const customer = await paygCustomerWith(2 * HOURLY + 1_000);
    const controller = await controllers.start({ leases, paygDataBlockBytes: BLOCK });
    const grant = grantOf(await controller.authorize(request(customer)));
    expect(await pullHolding(grant, 300_000)).toBe(300_000);

    clock.set('2026-03-11T11:00:00.000Z');
    await waitUntil(async () => (await appliedKeys(customer.accountId, 'payg:')).length === 2);
    expect(await pullHolding(grant, 300_000)).toBe(300_000);
    grant.close();
    await controller.stop();

    const used = async (iso: string) =>
      (await getQuotaUsage(customer.accountId, new Date(iso)))?.usedBytes;
    // Up to one lease may have been spent from the old hour before the switch was seen.
    const before = await used('2026-03-11T10:59:00.000Z');
    const after = await used('2026-03-11T11:01:00.000Z');
    expect((before ?? 0) + (after ?? 0)).toBe(600_000);
    expect(after).toBeGreaterThan(0);
    expect(await appliedKeys(customer.accountId, 'payg-data:')).toEqual([
      paygDataKey(customer.accountId, new Date('2026-03-11T10:00:00.000Z'), 0),
      paygDataKey(customer.accountId, new Date('2026-03-11T11:00:00.000Z'), 0),
    ]);
  });

  it('buys one block when two gateways run short at once, and finishes a purchase a crash cut short', async () => {
    clock.set('2026-03-14T10:10:00.000Z');
    const customer = await paygCustomerWith(1_000);
    const request = { now: clock.now(), perGbRateMinor: PER_GB, currency: 'NGN' as const };
    const both = await Promise.all([
      buyPaygData(customer.accountId, { ...request, blockBytes: BLOCK }, { clock }),
      buyPaygData(customer.accountId, { ...request, blockBytes: BLOCK }, { clock }),
    ]);
    expect(both).toEqual([BLOCK, BLOCK]);
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(950);

    // A process debited block 1 and died before adding it: the next call adds
    // what was paid for and debits nothing more.
    const hour = new Date('2026-03-14T10:00:00.000Z');
    expect(await leaseBytes(customer.accountId, BLOCK, clock.now())).toMatchObject({
      grantedBytes: BLOCK, // the first block is taken
    });
    await debit(
      customer.accountId,
      {
        amountMinor: 50,
        currency: 'NGN',
        key: paygDataKey(customer.accountId, hour, 1),
        description: 'PAYG data',
      },
      { clock },
    );
    expect(
      await buyPaygData(customer.accountId, { ...request, blockBytes: BLOCK }, { clock }),
    ).toBe(BLOCK);
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(900);
  });
});

describe('PAYG per-GB charging off (the default)', () => {
  beforeAll(async () => {
    await setPerGbRate(undefined);
  });

  it('charges the connected hour only and never meters bytes', async () => {
    clock.set('2026-03-17T10:10:00.000Z');
    const customer = await paygCustomerWith(HOURLY);
    const controller = await controllers.start({ leases, paygDataBlockBytes: BLOCK });
    const grant = grantOf(await controller.authorize(request(customer)));
    // Far more than the wallet could buy per GB, with nothing left in it.
    expect(grant.allow(50 * BLOCK)).toBe(50 * BLOCK);
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(0);
    expect(await appliedKeys(customer.accountId, 'payg-data:')).toEqual([]);
    grant.close();
    await controller.stop();
    clock.set('2026-03-17T11:06:00.000Z');
    await closePaygHours({ clock });
    const [statement] = await PaygHour.find({ accountId: customer.accountId }).lean();
    expect(statement).toMatchObject({
      connectedMinor: HOURLY,
      dataPaidMinor: 0,
      dataReturnedMinor: 0,
      totalMinor: HOURLY,
      bucketBytes: 50 * BLOCK,
    });
  });
});
