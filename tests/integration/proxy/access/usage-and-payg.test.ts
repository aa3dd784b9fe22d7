import { beforeAll, describe, expect, it } from '@jest/globals';
import { listUsageBuckets, listUsageSessions } from '../../../../core/usage.js';
import { credit, getWallet } from '../../../../core/wallet.js';
import { TestClock } from '../../../../lib/clock.js';
import { LedgerEntry } from '../../../../models/ledger-entry.js';
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
} from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
useTestDatabase();

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
    // The controller's allow() takes a direction; proxy/access.ts does not expose it yet.
    const allowDirected: (bytes: number, direction?: 'up' | 'down') => number = grant.allow;
    expect(allowDirected(1_000, 'up')).toBe(1_000);
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
