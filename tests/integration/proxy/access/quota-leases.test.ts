import { beforeAll, describe, expect, it } from '@jest/globals';
import { addQuotaBytes, getQuotaUsage } from '../../../../core/quota.js';
import { TestClock } from '../../../../lib/clock.js';
import type { GatewayAccessController } from '../../../../proxy/access-controller.js';
import { LeaseManager } from '../../../../proxy/leases.js';
import type { TunnelGrant } from '../../../../proxy/access.js';
import { useTestDatabase } from '../../../support/database.js';
import { useExtraConnections } from '../../wallet/connections.js';
import {
  customerWithQuota,
  grantOf,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
  type Customer,
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
// Declared first so its afterAll stops the gateways while the database is still up.
const controllers = useControllers(clock);
const database = useTestDatabase();
const extra = useExtraConnections(database);
const MiB = 1_048_576;
const CHUNK = 64 * 1024;

beforeAll(async () => {
  await seedCatalogue(clock);
});

/**
 * One client tunnel pulling as fast as it can: asks for 64 KiB per turn of the
 * event loop (as a relay does per read) and, when cut short, reconnects until
 * the gateway refuses. Resolves to the bytes granted and the last refusal.
 */
async function pullUntilRefused(
  controller: GatewayAccessController,
  customer: Customer,
): Promise<{ bytes: number; refusal: string }> {
  let bytes = 0;
  for (;;) {
    const decision = await controller.authorize(request(customer));
    if (!decision.ok) return { bytes, refusal: decision.code };
    const grant = decision.grant;
    let cut = false;
    grant.onCut(() => {
      cut = true;
    });
    for (;;) {
      const granted = grant.allow(CHUNK);
      bytes += granted;
      if (granted < CHUNK || cut) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    grant.close();
  }
}

/**
 * One tunnel that holds on when allow() comes up short, as the relay does:
 * waits for the lease to be renewed and carries on, until the gateway says
 * the quota is spent. Resolves to the bytes granted.
 */
async function pullHolding(grant: TunnelGrant): Promise<number> {
  if (!grant.waitForAllowance) throw new Error('the grant cannot wait for a renewal');
  let bytes = 0;
  for (;;) {
    const granted = grant.allow(CHUNK, bytes % 2 === 0 ? 'down' : 'up');
    bytes += granted;
    if (granted < CHUNK && !(await grant.waitForAllowance())) return bytes;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('quota leases: zero overshoot', () => {
  it('keeps 8 tunnels open across lease renewals and ends them at the last byte of the quota', async () => {
    const limitBytes = 24 * MiB + 4_321;
    const customer = await customerWithQuota(limitBytes, clock);
    const controller = await controllers.start({
      leases: { minLeaseBytes: 256 * 1024, maxLeaseBytes: MiB },
    });
    const grants = await Promise.all(
      Array.from({ length: 8 }, async () => grantOf(await controller.authorize(request(customer)))),
    );

    const pulled = await Promise.all(grants.map((grant) => pullHolding(grant)));

    // Every tunnel lived through many renewals on its one connection.
    expect(pulled.reduce((sum, bytes) => sum + bytes, 0)).toBe(limitBytes);
    expect(pulled.every((bytes) => bytes > MiB)).toBe(true);
    for (const grant of grants) grant.close();
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'QUOTA_EXHAUSTED',
    });
    await controller.flush({ returnLeases: true });
    expect(await getQuotaUsage(customer.accountId, clock.now())).toMatchObject({
      usedBytes: limitBytes,
      leasedBytes: 0,
    });
  });

  it('delivers the whole quota and not one byte more to 8 parallel tunnels on one gateway', async () => {
    const limitBytes = 24 * MiB + 12_345;
    const customer = await customerWithQuota(limitBytes, clock);
    const controller = await controllers.start({
      leases: { minLeaseBytes: 256 * 1024, maxLeaseBytes: 4 * MiB },
    });

    const tunnels = await Promise.all(
      Array.from({ length: 8 }, () => pullUntilRefused(controller, customer)),
    );

    const delivered = tunnels.reduce((sum, t) => sum + t.bytes, 0);
    expect(delivered).toBe(limitBytes);
    expect(tunnels.every((t) => t.refusal === 'QUOTA_EXHAUSTED')).toBe(true);
    await controller.flush({ returnLeases: true });
    const counter = await getQuotaUsage(customer.accountId, clock.now());
    expect(counter).toMatchObject({ usedBytes: limitBytes, leasedBytes: 0, remainingBytes: 0 });
  });

  it('stays within the quota when two gateways serve the same account', async () => {
    const limitBytes = 24 * MiB;
    const customer = await customerWithQuota(limitBytes, clock);
    const [second] = await extra.open(1);
    const leases = { minLeaseBytes: 256 * 1024, maxLeaseBytes: 4 * MiB };
    const gatewayA = await controllers.start({ leases });
    const gatewayB = await controllers.start({ leases, connection: second });

    const tunnels = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pullUntilRefused(i % 2 === 0 ? gatewayA : gatewayB, customer),
      ),
    );

    const delivered = tunnels.reduce((sum, t) => sum + t.bytes, 0);
    expect(delivered).toBeLessThanOrEqual(limitBytes + MiB);
    // Leases make it exact: nothing is delivered that was not leased.
    expect(delivered).toBeLessThanOrEqual(limitBytes);
    await Promise.all([
      gatewayA.flush({ returnLeases: true }),
      gatewayB.flush({ returnLeases: true }),
    ]);
    const counter = await getQuotaUsage(customer.accountId, clock.now());
    expect(counter?.usedBytes).toBe(delivered);
    expect(counter?.leasedBytes).toBe(0);
  });

  it('lets a customer connect again within moments of an admin top-up', async () => {
    const customer = await customerWithQuota(2 * MiB, clock);
    const controller = await controllers.start();
    const spent = await pullUntilRefused(controller, customer);
    expect(spent).toEqual({ bytes: 2 * MiB, refusal: 'QUOTA_EXHAUSTED' });
    const refused = await controller.authorize(request(customer));
    expect(refused).toMatchObject({
      ok: false,
      kind: 'entitlement',
      code: 'QUOTA_EXHAUSTED',
      message: expect.stringContaining('Data limit reached. Upgrade or wait for reset') as unknown,
    });

    await addQuotaBytes(customer.accountId, MiB, clock.now());

    let grantedAfterTopUp = 0;
    await waitUntil(async () => {
      const decision = await controller.authorize(request(customer));
      if (!decision.ok) return false;
      grantedAfterTopUp = decision.grant.allow(MiB);
      decision.grant.close();
      return true;
    });
    expect(grantedAfterTopUp).toBe(MiB);
  });

  it('returns unused lease bytes to the counter when the gateway stops', async () => {
    const customer = await customerWithQuota(100 * MiB, clock);
    const controller = await controllers.start();
    const grant = grantOf(await controller.authorize(request(customer)));
    expect(grant.allow(1000)).toBe(1000);
    const during = await getQuotaUsage(customer.accountId, clock.now());
    expect(during?.leasedBytes).toBeGreaterThan(0);

    await controller.stop();

    const after = await getQuotaUsage(customer.accountId, clock.now());
    expect(after).toMatchObject({
      usedBytes: 1000,
      leasedBytes: 0,
      remainingBytes: 100 * MiB - 1000,
    });
  });
});

describe('settling spent bytes on the counter', () => {
  async function managerFor(): Promise<LeaseManager> {
    const [connection] = await extra.open(1);
    return new LeaseManager({
      clock,
      connection,
      gatewayId: 'gw_settles',
      minLeaseBytes: 4 * MiB,
      settleEveryMs: 10_000,
      onExhausted: () => undefined,
    });
  }
  const usedOf = async (customer: Customer): Promise<number | undefined> =>
    (await getQuotaUsage(customer.accountId, clock.now()))?.usedBytes;

  it('books an active account once per interval in the background, and at once when asked', async () => {
    const customer = await customerWithQuota(100 * MiB, clock);
    const leases = await managerFor();
    await leases.ensure(customer.accountId);
    expect(leases.spend(customer.accountId, 1_000)).toBe(1_000);

    await leases.settleAll({ isBusy: () => true, onlyDue: true });
    expect(await usedOf(customer)).toBe(0);

    clock.advance(10_000);
    await leases.settleAll({ isBusy: () => true, onlyDue: true });
    expect(await usedOf(customer)).toBe(1_000);

    expect(leases.spend(customer.accountId, 500)).toBe(500);
    await leases.settleAll({ isBusy: () => true });
    expect(await usedOf(customer)).toBe(1_500);
    await leases.settleAll({ isBusy: () => false, returnAll: true });
  });

  it('books an account that reached its limit without waiting for the interval', async () => {
    const customer = await customerWithQuota(MiB, clock);
    const leases = await managerFor();
    // Asks for 4 MiB, gets the 1 MiB left: the lease is the last one.
    expect(await leases.ensure(customer.accountId)).toBe(MiB);
    expect(leases.spend(customer.accountId, MiB)).toBe(MiB);

    await leases.settleAll({ isBusy: () => true, onlyDue: true });
    expect(await usedOf(customer)).toBe(MiB);
    await leases.settleAll({ isBusy: () => false, returnAll: true });
  });
});
