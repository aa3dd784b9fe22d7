import { beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { markExitHealth } from '../../../../core/locations.js';
import { TestClock } from '../../../../lib/clock.js';
import { useTestDatabase } from '../../../support/database.js';
import {
  customerWithQuota,
  grantOf,
  newCustomer,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
useTestDatabase();

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** The value of one labelled series in the registry's text exposition (0 when absent). */
async function sample(registry: Registry, series: string): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('access metrics', () => {
  it('counts a refusal by its reason code, and a cut apart from a refusal', async () => {
    const registry = new Registry();
    const customer = await newCustomer('starter', clock);
    const controller = await controllers.start({ metrics: registry });
    const refused = 'atlantic_access_refusals_total{code="PROTOCOL_NOT_IN_PLAN",stage="refused"}';
    expect(await sample(registry, refused)).toBe(0);

    await controller.authorize(request(customer, { protocol: 'socks5' }));
    await controller.authorize(request(customer, { protocol: 'socks5' }));

    expect(await sample(registry, refused)).toBe(2);

    const live = grantOf(
      await controller.authorize(request(customer, { protocol: 'https', port: 8443 })),
    );
    await controller.disconnect(customer.accountId);
    live.close();
    expect(
      await sample(registry, 'atlantic_access_refusals_total{code="DISCONNECTED",stage="cut"}'),
    ).toBe(1);
  });

  it('counts failed logins by the reason behind them', async () => {
    const registry = new Registry();
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start({ metrics: registry });

    await controller.authorize(request(customer, { password: 'wrong' }));
    await controller.authorize(request(customer, { username: 'nobodyhere' }));
    await controller.authorize(request(customer, { username: `${customer.username}-planet-x` }));

    for (const reason of ['BAD_SECRET', 'UNKNOWN_USER', 'MALFORMED_USERNAME']) {
      expect(
        await sample(registry, `atlantic_access_auth_failures_total{reason="${reason}"}`),
      ).toBe(1);
    }
  });

  it('shows an exit as unhealthy after a failed dial and healthy once it may be tried again', async () => {
    const registry = new Registry();
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start({ metrics: registry, exitRetryMs: 30_000 });
    const health = (exit: string) =>
      sample(registry, `atlantic_access_exit_healthy{location="gb",exit="gb:${exit}"}`);
    expect([await health('up1'), await health('up2'), await health('up3')]).toEqual([1, 1, 1]);

    const grant = grantOf(
      await controller.authorize(
        request(customer, { username: `${customer.username}-country-gb-session-m1` }),
      ),
    );
    const failed = grant.exit.id.slice('gb:'.length);
    grant.exitFailed(new Error('connect ECONNREFUSED'));
    grant.close();
    expect(await health(failed)).toBe(0);

    // After the retry time, and once an admin (or a probe) marked it healthy, it is back.
    clock.advanceBy({ seconds: 31 });
    await markExitHealth('gb', failed, { healthy: true }, { clock });
    await waitUntil(async () => (await health(failed)) === 1);
  });

  it('counts lease renewals as a customer spends the quota, and a renewal that found nothing', async () => {
    const registry = new Registry();
    const MiB = 1_048_576;
    const customer = await customerWithQuota(3 * MiB, clock);
    const controller = await controllers.start({
      metrics: registry,
      leases: { minLeaseBytes: MiB, maxLeaseBytes: MiB },
    });
    const grant = grantOf(await controller.authorize(request(customer)));
    expect(await sample(registry, 'atlantic_access_lease_renewals_total')).toBe(1);

    let delivered = 0;
    await waitUntil(() => {
      delivered += grant.allow(256 * 1024);
      return delivered === 3 * MiB;
    });
    await waitUntil(
      async () =>
        (await sample(registry, 'atlantic_access_lease_failures_total{reason="exhausted"}')) >= 1,
    );
    expect(await sample(registry, 'atlantic_access_lease_renewals_total')).toBe(3);
    expect(await sample(registry, 'atlantic_access_leased_bytes_total')).toBe(3 * MiB);
    grant.close();
  });
});
