import { beforeAll, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import {
  checkConnection,
  computeEntitlements,
  type Entitlements,
} from '../../../core/entitlements.js';
import { getPlan, seedPlans } from '../../../core/plans.js';
import {
  activateFromPayment,
  cancel,
  chooseLocations,
  expire,
  getCurrentSubscription,
} from '../../../core/subscriptions.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const clock = new TestClock('2025-01-31T09:00:00.000Z');
const policy = { httpsOnlyPorts: [443], blockedPorts: [25] };

beforeAll(async () => {
  await seedPlans(clock);
});

/** What the gateway, bot and API do: load the records, then ask the one function. */
async function entitlementsOf(accountId: string): Promise<Entitlements> {
  const subscription = await getCurrentSubscription(accountId);
  const plan = subscription ? await getPlan(subscription.planCode) : null;
  return computeEntitlements({
    plan,
    subscription,
    account: { status: 'active' },
    wallet: null,
    quota: null,
    locations: ['ng', 'gb'],
    now: clock.now(),
    policy,
  });
}

describe('entitlements from stored plans and subscriptions over a customer lifetime', () => {
  it('follows a customer from trial to Starter to cancellation', async () => {
    const accountId = new Types.ObjectId().toHexString();
    expect((await entitlementsOf(accountId)).access).toMatchObject({
      on: false,
      code: 'NO_SUBSCRIPTION',
    });

    const trial = await activateFromPayment({
      accountId,
      planCode: 'trial',
      paymentRef: 'dep_1',
      clock,
    });
    await chooseLocations(trial._id, { locations: ['gb'], clock });
    const onTrial = await entitlementsOf(accountId);
    expect(onTrial).toMatchObject({
      access: { on: true },
      remainingBytes: 1e9,
      locations: { allowed: ['gb'] },
    });
    expect(onTrial.recheckAt).toEqual(trial.trialEndsAt);

    clock.advanceBy({ days: 3 });
    expect((await entitlementsOf(accountId)).access).toMatchObject({
      on: false,
      code: 'TRIAL_ENDED',
    });

    const starter = await activateFromPayment({
      accountId,
      planCode: 'starter',
      paymentRef: 'pay_1',
      clock,
    });
    await chooseLocations(starter._id, { locations: ['ng'], clock });
    const onStarter = await entitlementsOf(accountId);
    expect(
      checkConnection(onStarter, {
        protocol: 'https',
        port: 443,
        location: 'ng',
        openConnections: 0,
      }),
    ).toEqual({
      ok: true,
    });
    expect(
      checkConnection(onStarter, {
        protocol: 'socks5',
        port: 443,
        location: 'ng',
        openConnections: 0,
      }),
    ).toMatchObject({
      ok: false,
      code: 'PROTOCOL_NOT_IN_PLAN',
      upgrade: { text: 'Upgrade to PAYG for all protocols' },
    });

    await cancel(starter._id, { atPeriodEnd: true, clock });
    expect((await entitlementsOf(accountId)).access.on).toBe(true);
    clock.set(starter.periodEnd ?? clock.now());
    expect((await entitlementsOf(accountId)).access).toMatchObject({
      on: false,
      code: 'CANCELLED',
    });
    await expire(starter._id, { clock });
    expect((await entitlementsOf(accountId)).access).toMatchObject({
      on: false,
      code: 'CANCELLED',
    });
  });
});
