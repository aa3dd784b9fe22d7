import { beforeAll, describe, expect, it } from '@jest/globals';
import { getQuotaUsage, reclaimStaleLeases } from '../../../../core/quota.js';
import { TestClock } from '../../../../lib/clock.js';
import { QuotaUsage } from '../../../../models/quota-usage.js';
import { LeaseManager } from '../../../../proxy/leases.js';
import { useTestDatabase } from '../../../support/database.js';
import { useExtraConnections } from '../../wallet/connections.js';
import {
  customerWithQuota,
  grantOf,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
const database = useTestDatabase();
const extra = useExtraConnections(database);
const MiB = 1_048_576;
const STALE_MS = 60_000;

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** When the gateway's entry on the account's counter was last renewed. */
async function renewedAt(accountId: string, gatewayId: string): Promise<number> {
  const counter = await QuotaUsage.findOne({ accountId }).lean();
  const entry = counter?.leases?.find((lease) => lease.gatewayId === gatewayId);
  return entry ? entry.renewedAt.getTime() : Number.NaN;
}

/**
 * A gateway process that leased bytes for the account, relayed some, booked
 * them, and then died: nothing calls its lease manager again.
 */
async function gatewayThatDies(accountId: string): Promise<{ gatewayId: string; used: number }> {
  const [connection] = await extra.open(1);
  const gatewayId = 'gw_dead';
  const leases = new LeaseManager({
    clock,
    connection,
    gatewayId,
    minLeaseBytes: 4 * MiB,
    onExhausted: () => undefined,
  });
  expect(await leases.ensure(accountId)).toBe(4 * MiB);
  expect(leases.spend(accountId, 100_000)).toBe(100_000);
  await leases.settleAll({ isBusy: () => true });
  return { gatewayId, used: 100_000 };
}

describe('leases of a gateway that died', () => {
  it('go back to the customer after the stale time, while a live gateway keeps its own', async () => {
    const limitBytes = 20 * MiB;
    const customer = await customerWithQuota(limitBytes, clock);
    const dead = await gatewayThatDies(customer.accountId);
    const live = await controllers.start({
      leases: { minLeaseBytes: 2 * MiB, maxLeaseBytes: 2 * MiB, heartbeatMs: 10_000 },
    });
    const grant = grantOf(await live.authorize(request(customer)));
    expect(grant.allow(50_000)).toBe(50_000);
    await live.flush();

    const before = await getQuotaUsage(customer.accountId, clock.now());
    expect(before).toMatchObject({ leasedBytes: 6 * MiB - 150_000, usedBytes: 150_000 });

    // Time passes in steps shorter than the stale time; the live gateway renews
    // at each, the dead one never does.
    for (const step of [30_000, 31_000]) {
      clock.advance(step);
      const now = clock.now().getTime();
      await waitUntil(async () => (await renewedAt(customer.accountId, live.gatewayId)) >= now);
      const reclaimed = await reclaimStaleLeases(clock.now(), STALE_MS);
      if (step === 30_000) expect(reclaimed).toEqual([]);
      else {
        expect(reclaimed).toEqual([
          expect.objectContaining({
            accountId: customer.accountId,
            gatewayId: dead.gatewayId,
            bytes: 4 * MiB - dead.used,
          }),
        ]);
      }
    }

    // The customer has everything back but what was relayed and what the live gateway holds.
    const after = await getQuotaUsage(customer.accountId, clock.now());
    expect(after).toMatchObject({ usedBytes: 150_000, leasedBytes: 2 * MiB - 50_000 });
    expect(after?.remainingBytes).toBe(limitBytes - 2 * MiB - 100_000);

    // The live gateway's tunnel goes on, and its lease settles cleanly at shutdown.
    expect(grant.allow(1_000_000)).toBe(1_000_000);
    grant.close();
    await live.stop();
    expect(await getQuotaUsage(customer.accountId, clock.now())).toMatchObject({
      usedBytes: 1_150_000,
      leasedBytes: 0,
      remainingBytes: limitBytes - 1_150_000,
    });
    expect(await reclaimStaleLeases(clock.now(), STALE_MS)).toEqual([]);
  });

  it('never loses count of bytes relayed by a gateway whose lease was taken back while it was cut off', async () => {
    const limitBytes = 20 * MiB;
    const customer = await customerWithQuota(limitBytes, clock);
    const gateway = await controllers.start({
      leases: { minLeaseBytes: 2 * MiB, maxLeaseBytes: 2 * MiB },
    });
    const grant = grantOf(await gateway.authorize(request(customer)));
    expect(grant.allow(300_000)).toBe(300_000);
    await gateway.flush();

    // As if it had not renewed for longer than the stale time.
    const later = new Date(clock.now().getTime() + 10 * STALE_MS);
    const taken = await reclaimStaleLeases(later, STALE_MS);
    expect(taken.map((lease) => lease.gatewayId)).toContain(gateway.gatewayId);

    // It comes back and relays more: booked as used, and a fresh lease is taken.
    expect(grant.allow(400_000)).toBe(400_000);
    await gateway.flush();
    expect(grant.allow(500_000)).toBe(500_000);
    grant.close();
    await gateway.stop();
    expect(await getQuotaUsage(customer.accountId, clock.now())).toMatchObject({
      usedBytes: 1_200_000,
      leasedBytes: 0,
      remainingBytes: limitBytes - 1_200_000,
    });
  });
});
