import { beforeAll, describe, expect, it } from '@jest/globals';
import { issueProxyCredentials } from '../../../../core/proxy-credentials.js';
import { getQuotaUsage, openQuotaPeriod } from '../../../../core/quota.js';
import { currentQuotaWindow, getCurrentSubscription } from '../../../../core/subscriptions.js';
import { addSeat, removeSeat, type SeatCaps } from '../../../../core/team.js';
import { TestClock } from '../../../../lib/clock.js';
import { Account } from '../../../../models/account.js';
import { Plan } from '../../../../models/plan.js';
import { Subscription } from '../../../../models/subscription.js';
import type { GatewayAccessController } from '../../../../proxy/access-controller.js';
import type { TunnelGrant } from '../../../../proxy/access.js';
import { useTestDatabase } from '../../../support/database.js';
import { useExtraConnections } from '../../wallet/connections.js';
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
// Declared first so its afterAll stops the gateways while the database is still up.
const controllers = useControllers(clock);
const database = useTestDatabase();
const extra = useExtraConnections(database);
const MiB = 1_048_576;
const CHUNK = 64 * 1024;
const connectionRate = { perSecond: 100_000, burst: 100_000 };
const leases = { minLeaseBytes: 256 * 1024, maxLeaseBytes: 2 * MiB };

beforeAll(async () => {
  await seedCatalogue(clock);
});

/** A Team owner whose pooled window allows `limitBytes` (default: the plan's 500 GB). */
async function teamOwner(limitBytes?: number): Promise<Customer> {
  const owner = await newCustomer('team', clock);
  if (limitBytes !== undefined) {
    const subscription = await getCurrentSubscription(owner.accountId);
    const window = subscription ? currentQuotaWindow(subscription, clock.now()) : null;
    if (!window) throw new Error('no quota window');
    await openQuotaPeriod(owner.accountId, {
      periodStart: window.start,
      periodEnd: window.end,
      limitBytes,
    });
  }
  return owner;
}

/** A new account with its own proxy credentials, added as a seat of `owner`. */
async function seatOf(owner: Customer, caps: SeatCaps = {}): Promise<Customer> {
  const account = await Account.create({});
  const accountId = String(account._id);
  const issued = await issueProxyCredentials(accountId, {});
  await addSeat(owner.accountId, accountId, caps, { clock });
  return { accountId, username: issued.username, secret: issued.secret };
}

/**
 * One client tunnel pulling as fast as it can, reconnecting when cut short,
 * until the gateway refuses (as in quota-leases.test.ts).
 */
async function pullUntilRefused(
  controller: GatewayAccessController,
  customer: Customer,
): Promise<{ bytes: number; refusal: string; message: string }> {
  let bytes = 0;
  for (;;) {
    const decision = await controller.authorize(request(customer));
    if (!decision.ok) return { bytes, refusal: decision.code, message: decision.message };
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

/** Pulls `bytes` through one grant, waiting for lease renewals as the relay does. */
async function pull(grant: TunnelGrant, bytes: number): Promise<number> {
  if (!grant.waitForAllowance) throw new Error('the grant cannot wait for a renewal');
  let moved = 0;
  while (moved < bytes) {
    const granted = grant.allow(Math.min(CHUNK, bytes - moved));
    moved += granted;
    if (granted === 0 && !(await grant.waitForAllowance())) return moved;
  }
  return moved;
}

describe('team seats at the gateway', () => {
  it('lets two seats and the owner share the pooled quota, and not one byte more', async () => {
    const limitBytes = 12 * MiB + 4_321;
    const owner = await teamOwner(limitBytes);
    const seatA = await seatOf(owner);
    const seatB = await seatOf(owner);
    const controller = await controllers.start({ leases, connectionRate });

    const tunnels = await Promise.all(
      [seatA, seatA, seatA, seatB, seatB, seatB, owner].map((who) =>
        pullUntilRefused(controller, who),
      ),
    );

    const delivered = tunnels.reduce((sum, t) => sum + t.bytes, 0);
    expect(delivered).toBe(limitBytes);
    expect(tunnels.every((t) => t.refusal === 'QUOTA_EXHAUSTED')).toBe(true);
    expect(tunnels[0]?.message).toMatch(/^Data limit reached\. Upgrade or wait for reset/);
    // Each seat used part of the pool, from the one counter of the owner.
    expect(tunnels.slice(0, 3).reduce((sum, t) => sum + t.bytes, 0)).toBeGreaterThan(0);
    expect(tunnels.slice(3, 6).reduce((sum, t) => sum + t.bytes, 0)).toBeGreaterThan(0);
    await controller.flush({ returnLeases: true });
    expect(await getQuotaUsage(owner.accountId, clock.now())).toMatchObject({
      usedBytes: limitBytes,
      leasedBytes: 0,
      remainingBytes: 0,
    });
    expect(await getQuotaUsage(seatA.accountId, clock.now())).toBeNull();
  });

  it('keeps two gateways serving two seats within the pooled quota', async () => {
    const limitBytes = 12 * MiB;
    const owner = await teamOwner(limitBytes);
    const seats = [await seatOf(owner), await seatOf(owner)];
    const [second] = await extra.open(1);
    const gatewayA = await controllers.start({ leases, connectionRate });
    const gatewayB = await controllers.start({ leases, connectionRate, connection: second });

    const tunnels = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pullUntilRefused(i % 2 === 0 ? gatewayA : gatewayB, seats[i % 2 === 0 ? 0 : 1] as Customer),
      ),
    );

    const delivered = tunnels.reduce((sum, t) => sum + t.bytes, 0);
    expect(delivered).toBeLessThanOrEqual(limitBytes);
    await Promise.all([
      gatewayA.flush({ returnLeases: true }),
      gatewayB.flush({ returnLeases: true }),
    ]);
    const counter = await getQuotaUsage(owner.accountId, clock.now());
    expect(counter).toMatchObject({ usedBytes: delivered, leasedBytes: 0 });
  });

  it('cuts a seat at its own data cap while the other seat keeps working', async () => {
    const owner = await teamOwner(64 * MiB);
    const capped = await seatOf(owner, { capBytes: 3 * MiB + 777 });
    const free = await seatOf(owner);
    const controller = await controllers.start({ leases, connectionRate });
    const freeGrant = grantOf(await controller.authorize(request(free)));
    const freeCut = cutCode(freeGrant);

    const cappedTunnels = await Promise.all(
      [1, 2, 3].map(() => pullUntilRefused(controller, capped)),
    );

    expect(cappedTunnels.reduce((sum, t) => sum + t.bytes, 0)).toBe(3 * MiB + 777);
    for (const tunnel of cappedTunnels) {
      expect(tunnel).toMatchObject({
        refusal: 'QUOTA_EXHAUSTED',
        message: "Your seat's data cap is reached; ask your team owner.",
      });
    }
    // The other seat's live tunnel and new ones go on.
    expect(await pull(freeGrant, 5 * MiB)).toBe(5 * MiB);
    expect(freeCut.code).toBeNull();
    const another = grantOf(await controller.authorize(request(free)));
    expect(another.allow(1000)).toBe(1000);
    another.close();
    freeGrant.close();
    await controller.flush({ returnLeases: true });
    expect(await getQuotaUsage(capped.accountId, clock.now())).toMatchObject({
      usedBytes: 3 * MiB + 777,
      limitBytes: 3 * MiB + 777,
      leasedBytes: 0,
    });
    expect((await getQuotaUsage(owner.accountId, clock.now()))?.usedBytes).toBe(
      3 * MiB + 777 + 5 * MiB + 1000,
    );
  });

  it("counts every seat's open connections against the team's limit", async () => {
    await Plan.updateOne({ code: 'team' }, { $set: { maxConnections: 3 } });
    try {
      const owner = await teamOwner();
      const seatA = await seatOf(owner);
      const seatB = await seatOf(owner, { maxConnections: 1 });
      const controller = await controllers.start({ connectionRate });

      const a1 = grantOf(await controller.authorize(request(seatA)));
      const a2 = grantOf(await controller.authorize(request(seatA)));
      const b1 = grantOf(await controller.authorize(request(seatB)));
      expect(await controller.authorize(request(seatA))).toMatchObject({
        ok: false,
        code: 'CONNECTION_LIMIT',
        message: expect.stringContaining('allows 3 connections at once') as unknown,
      });
      expect(await controller.authorize(request(owner))).toMatchObject({
        ok: false,
        code: 'CONNECTION_LIMIT',
      });

      a1.close();
      // The team has room again, but seat B's own limit is one connection.
      expect(await controller.authorize(request(seatB))).toMatchObject({
        ok: false,
        code: 'CONNECTION_LIMIT',
        message: expect.stringContaining('Your seat allows 1 connection at once') as unknown,
      });
      const o1 = grantOf(await controller.authorize(request(owner)));
      for (const grant of [a2, b1, o1]) grant.close();
    } finally {
      await Plan.updateOne({ code: 'team' }, { $set: { maxConnections: 50 } });
    }
  });

  it("cuts a removed seat's live tunnels and refuses its new ones within moments", async () => {
    const owner = await teamOwner();
    const leaving = await seatOf(owner);
    const staying = await seatOf(owner);
    const controller = await controllers.start({ connectionRate });
    const leavingGrant = grantOf(await controller.authorize(request(leaving)));
    const stayingGrant = grantOf(await controller.authorize(request(staying)));
    const leavingCut = cutCode(leavingGrant);
    const stayingCut = cutCode(stayingGrant);
    expect(leavingGrant.allow(1000)).toBe(1000);

    await removeSeat(owner.accountId, leaving.accountId);

    await waitUntil(() => leavingCut.code !== null);
    expect(leavingCut.code).toBe('NO_SUBSCRIPTION');
    expect(leavingGrant.allow(1000)).toBe(0);
    expect(await controller.authorize(request(leaving))).toMatchObject({
      ok: false,
      code: 'NO_SUBSCRIPTION',
    });
    expect(stayingCut.code).toBeNull();
    expect(stayingGrant.allow(1000)).toBe(1000);
    leavingGrant.close();
    stayingGrant.close();
  });

  it('switches every seat off when the owner account is suspended', async () => {
    const owner = await teamOwner();
    const seat = await seatOf(owner);
    const controller = await controllers.start({ connectionRate });
    const grant = grantOf(await controller.authorize(request(seat)));
    const cut = cutCode(grant);

    await Account.updateOne({ _id: owner.accountId }, { $set: { status: 'suspended' } });

    await waitUntil(() => cut.code !== null);
    expect(cut.code).toBe('ACCOUNT_SUSPENDED');
    expect(await controller.authorize(request(seat))).toMatchObject({
      ok: false,
      code: 'ACCOUNT_SUSPENDED',
    });
    grant.close();
  });

  it("refuses a seat once its owner's plan has no seats any more", async () => {
    const owner = await teamOwner();
    const seat = await seatOf(owner);
    const controller = await controllers.start({ connectionRate });
    const grant = grantOf(await controller.authorize(request(seat)));
    const cut = cutCode(grant);

    // The owner's plan changed under the seats (as an admin could, directly in the database).
    await Subscription.updateOne(
      { liveAccountId: owner.accountId },
      { $set: { planCode: 'personal' } },
    );

    await waitUntil(() => cut.code !== null);
    expect(cut.code).toBe('NO_SUBSCRIPTION');
    expect(await controller.authorize(request(seat))).toMatchObject({
      ok: false,
      code: 'NO_SUBSCRIPTION',
      message: expect.stringContaining('has no seats for members') as unknown,
    });
    grant.close();
  });
});
