import { beforeAll, describe, expect, it } from '@jest/globals';
import { getQuotaUsage } from '../../../core/quota.js';
import { createSettingsStore } from '../../../core/settings.js';
import { sweepUsageAlerts } from '../../../core/usage-alerts.js';
import { TestClock } from '../../../lib/clock.js';
import type { TunnelGrant } from '../../../proxy/access.js';
import { useTestDatabase } from '../../support/database.js';
import {
  customerWithQuota,
  grantOf,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
} from '../proxy/access/harness.js';
import { noticesOf, USAGE_EVENTS } from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
// Declared first so its afterAll stops the gateways while the database is still up.
const controllers = useControllers(clock);
useTestDatabase();
const MiB = 1_048_576;
const CHUNK = 64 * 1024;

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** Relays `bytes` through the tunnel as a relay would, waiting for lease renewals. */
async function relay(grant: TunnelGrant, bytes: number): Promise<void> {
  let left = bytes;
  while (left > 0) {
    const granted = grant.allow(Math.min(CHUNK, left));
    left -= granted;
    if (granted === 0 && !(await grant.waitForAllowance?.())) throw new Error('quota spent');
  }
}

describe('usage alerts from the gateway', () => {
  it('tells the customer as soon as a settle crosses 50 % and then 80 %, before any sweep runs', async () => {
    const limitBytes = 10 * MiB;
    const customer = await customerWithQuota(limitBytes, clock);
    const controller = await controllers.start({
      leases: { minLeaseBytes: 256 * 1024, maxLeaseBytes: MiB },
    });
    const grant = grantOf(await controller.authorize(request(customer)));

    await relay(grant, 5.5 * MiB);
    await controller.flush();
    await waitUntil(async () => (await noticesOf(customer.accountId, USAGE_EVENTS)).length === 1);

    await relay(grant, 3 * MiB);
    await controller.flush();
    await waitUntil(async () => (await noticesOf(customer.accountId, USAGE_EVENTS)).length === 2);

    const counter = await getQuotaUsage(customer.accountId, clock.now());
    expect(counter?.usedBytes).toBe(8.5 * MiB);
    const notices = await noticesOf(customer.accountId, USAGE_EVENTS);
    expect(notices.map((n) => [n.event, n.period])).toEqual([
      ['usage_50', counter?.periodStart.toISOString()],
      ['usage_80', counter?.periodStart.toISOString()],
    ]);
    expect(notices[1]?.data).toMatchObject({ limitBytes, percent: 85 });

    // The sweep finds both already sent.
    expect(await sweepUsageAlerts({ clock })).toMatchObject({ usageAlerts: 0 });
    expect(await noticesOf(customer.accountId, USAGE_EVENTS)).toHaveLength(2);
    grant.close();
  });

  it('uses the thresholds the business chose: with 50 % turned off, the first alert is 80 %', async () => {
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    await settings.update({ usageThresholdsPct: [80, 100] }, { actor: 'test' });
    const limitBytes = 10 * MiB;
    const customer = await customerWithQuota(limitBytes, clock);
    const controller = await controllers.start({
      settings,
      leases: { minLeaseBytes: 256 * 1024, maxLeaseBytes: MiB },
    });
    const grant = grantOf(await controller.authorize(request(customer)));

    await relay(grant, 5.5 * MiB);
    await controller.flush();
    await relay(grant, 3 * MiB);
    await controller.flush();
    await waitUntil(async () => (await noticesOf(customer.accountId, USAGE_EVENTS)).length === 1);
    expect((await noticesOf(customer.accountId, USAGE_EVENTS)).map((n) => n.event)).toEqual([
      'usage_80',
    ]);
    await settings.update({ usageThresholdsPct: [50, 80, 95, 100] }, { actor: 'test' });
    grant.close();
  });
});
