import { beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { listUsageBuckets, listUsageSessions } from '../../../../core/usage.js';
import { credit, getWallet } from '../../../../core/wallet.js';
import { TestClock } from '../../../../lib/clock.js';
import { LedgerEntry } from '../../../../models/ledger-entry.js';
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
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
const database = useTestDatabase();
const extra = useExtraConnections(database);

beforeAll(async () => {
  await seedCatalogue(clock);
});

describe('metering', () => {
  it('books bytes per location and connected time per hour, and records the usage session', async () => {
    clock.set('2026-03-02T10:00:00.000Z');
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const ng = request(customer, {
      username: `${customer.username}-country-ng`,
      protocol: 'https',
    });
    const grant = grantOf(await controller.authorize(ng));
    expect(grant.allow(1_000, 'up')).toBe(1_000);
    expect(grant.allow(5_000)).toBe(5_000);

    clock.set('2026-03-02T11:30:00.000Z');
    grant.close();
    await controller.stop();

    const buckets = await listUsageBuckets(customer.accountId, {
      from: new Date('2026-03-02T00:00:00Z'),
      to: new Date('2026-03-03T00:00:00Z'),
    });
    expect(buckets).toEqual([
      expect.objectContaining({ location: '*', connectedSeconds: 3_600 }),
      expect.objectContaining({ location: 'ng', connections: 1 }),
      expect.objectContaining({ location: '*', connectedSeconds: 1_800 }),
      expect.objectContaining({ location: 'ng', bytesUp: 1_000, bytesDown: 5_000 }),
    ]);
    const [session] = await listUsageSessions(customer.accountId);
    expect(session).toMatchObject({
      startedAt: new Date('2026-03-02T10:00:00.000Z'),
      endedAt: new Date('2026-03-02T11:30:00.000Z'),
      bytesUp: 1_000,
      bytesDown: 5_000,
      connections: 1,
      locations: ['ng'],
      protocols: ['https'],
    });
  });
});

describe('background flushes of quiet accounts', () => {
  it('writes an account with nothing moving once a minute, and at once when bytes move', async () => {
    clock.set('2026-03-04T10:00:00.000Z');
    const customer = await newCustomer('personal', clock);
    // No background flush of its own: the test runs the background kind itself.
    const controller = await controllers.start({ flushMs: 3_600_000 });
    const background = () => controller.flush({ onlyDueSettles: true });
    const connected = async (): Promise<number> => {
      const buckets = await listUsageBuckets(customer.accountId, {
        from: new Date('2026-03-04T10:00:00Z'),
        to: new Date('2026-03-04T11:00:00Z'),
      });
      return buckets.find((bucket) => bucket.location === '*')?.connectedSeconds ?? 0;
    };
    const grant = grantOf(await controller.authorize(request(customer)));
    await background();
    expect(await connected()).toBe(0);

    // Open but quiet: the next background flushes leave the account alone...
    clock.set('2026-03-04T10:00:30.000Z');
    await background();
    expect(await connected()).toBe(0);
    // ...until a minute after it was last written.
    clock.set('2026-03-04T10:01:00.000Z');
    await background();
    expect(await connected()).toBe(60);

    // Bytes make it due at once.
    clock.set('2026-03-04T10:01:10.000Z');
    expect(grant.allow(500)).toBe(500);
    await background();
    expect(await connected()).toBe(70);
    // An explicit flush (shutdown, tests) writes everything whatever is due.
    clock.set('2026-03-04T10:01:20.000Z');
    await controller.flush();
    expect(await connected()).toBe(80);
    const [session] = await listUsageSessions(customer.accountId);
    expect(session).toMatchObject({ bytesDown: 500, connections: 1, endedAt: null });
    grant.close();
  });
});

describe('metering by direction', () => {
  it('books what each tunnel sent and received apart, per location, across flushes', async () => {
    clock.set('2026-03-03T09:00:00.000Z');
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const open = async (location: string) =>
      grantOf(
        await controller.authorize(
          request(customer, { username: `${customer.username}-country-${location}` }),
        ),
      );
    const inNg = await open('ng');
    const inGb = await open('gb');

    // A request goes up, a larger response comes down, on both tunnels.
    expect(inNg.allow(300, 'up')).toBe(300);
    expect(inNg.allow(70_000, 'down')).toBe(70_000);
    expect(inGb.allow(1_200, 'up')).toBe(1_200);
    await controller.flush();
    // More traffic after a flush adds to the same hour, it does not replace it.
    expect(inGb.allow(9_000, 'down')).toBe(9_000);
    expect(inGb.allow(50, 'up')).toBe(50);
    inNg.close();
    inGb.close();
    await controller.stop();

    const buckets = await listUsageBuckets(customer.accountId, {
      from: new Date('2026-03-03T09:00:00Z'),
      to: new Date('2026-03-03T10:00:00Z'),
    });
    const byLocation = new Map(buckets.map((bucket) => [bucket.location, bucket]));
    expect(byLocation.get('ng')).toMatchObject({ bytesUp: 300, bytesDown: 70_000 });
    expect(byLocation.get('gb')).toMatchObject({ bytesUp: 1_250, bytesDown: 9_000 });
    const [session] = await listUsageSessions(customer.accountId);
    expect(session).toMatchObject({
      bytesUp: 1_550,
      bytesDown: 79_000,
      connections: 2,
      locations: expect.arrayContaining(['ng', 'gb']) as unknown,
    });
  });
});

describe('PAYG', () => {
  it('charges each connected hour as it starts and cuts when the wallet cannot pay the next', async () => {
    clock.set('2026-03-02T10:15:00.000Z');
    const customer = await newCustomer('payg', clock);
    const controller = await controllers.start();
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'WALLET_EMPTY',
      message: expect.stringContaining('Top up') as unknown,
    });
    await credit(
      customer.accountId,
      {
        amountMinor: 30_000,
        currency: 'NGN',
        key: `topup:${customer.accountId}`,
        description: 'top-up',
      },
      { clock },
    );

    // The gateway sees the top-up on its next refresh.
    let first: TunnelGrant | undefined;
    await waitUntil(async () => {
      const decision = await controller.authorize(request(customer));
      if (decision.ok) first = decision.grant;
      return decision.ok;
    });
    const grant = grantOf(
      first
        ? { ok: true, grant: first }
        : { ok: false, kind: 'entitlement', code: 'NONE', message: '' },
    );
    const cut = cutCode(grant);
    // A second tunnel in the same hour is not charged again.
    grantOf(await controller.authorize(request(customer))).close();
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(15_000);

    clock.set('2026-03-02T11:00:00.000Z');
    await waitUntil(async () => (await getWallet(customer.accountId)).balanceMinor === 0);
    expect(cut.code).toBeNull();

    clock.set('2026-03-02T12:00:00.000Z');
    await waitUntil(() => cut.code === 'WALLET_EMPTY');
    const keys = (await LedgerEntry.find({ accountId: customer.accountId, kind: 'debit' }).lean())
      .filter((entry) => entry.status === 'applied')
      .map((entry) => entry.idempotencyKey)
      .sort();
    expect(keys).toEqual([
      `payg:${customer.accountId}:2026-03-02T10:00:00.000Z`,
      `payg:${customer.accountId}:2026-03-02T11:00:00.000Z`,
    ]);
  });
});

describe('PAYG across gateways', () => {
  it('debits an hour once when two gateways charge it at the same moment', async () => {
    clock.set('2026-03-04T08:20:00.000Z');
    const customer = await newCustomer('payg', clock);
    await credit(
      customer.accountId,
      {
        amountMinor: 30_000,
        currency: 'NGN',
        key: `topup:${customer.accountId}`,
        description: 'top-up',
      },
      { clock },
    );
    const [second] = await extra.open(1);
    const registries = [new Registry(), new Registry()] as const;
    const gatewayA = await controllers.start({ metrics: registries[0] });
    const gatewayB = await controllers.start({ metrics: registries[1], connection: second });

    // The first tunnels of the hour open on both gateways at once: each charges the hour.
    const [onA, onB] = await Promise.all([
      gatewayA.authorize(request(customer)),
      gatewayB.authorize(request(customer)),
    ]);
    const cuts = [cutCode(grantOf(onA)), cutCode(grantOf(onB))];
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(15_000);

    // Both tunnels stay open into the next hour; both gateways charge it when it starts.
    clock.set('2026-03-04T09:00:00.000Z');
    await waitUntil(async () => {
      const charged = await Promise.all(registries.map((r) => chargedHours(r)));
      return charged.every((count) => count === 2);
    });

    const applied = (
      await LedgerEntry.find({ accountId: customer.accountId, kind: 'debit' }).lean()
    )
      .filter((entry) => entry.status === 'applied')
      .map((entry) => entry.idempotencyKey)
      .sort();
    expect(applied).toEqual([
      `payg:${customer.accountId}:2026-03-04T08:00:00.000Z`,
      `payg:${customer.accountId}:2026-03-04T09:00:00.000Z`,
    ]);
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(0);
    expect(cuts.map((cut) => cut.code)).toEqual([null, null]);
  });
});

/** Hours this gateway found charged (by itself or, idempotently, by another). */
async function chargedHours(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('atlantic_access_payg_hourly_charges_total')?.get();
  return metric?.values.find((value) => value.labels.outcome === 'charged')?.value ?? 0;
}
