/**
 * /api/v1/me/usage, /me/usage/history, /me/usage/sessions and
 * /me/entitlements over real HTTP against the real database. What the gateway
 * records is written with the gateway's own core writers (hourly buckets,
 * usage sessions, quota counter, PAYG hour charges keyed as the gateway keys
 * them); tests/integration/api/proxy.test.ts drives the real gateway.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { addExit, addLocation } from '../../../core/locations.js';
import { paygHourKey } from '../../../core/payg.js';
import { openQuotaPeriod, planWindowRequest, recordUsage } from '../../../core/quota.js';
import {
  activateFromPayment,
  chooseLocations,
  currentQuotaWindow,
  getCurrentSubscription,
  startPayg,
} from '../../../core/subscriptions.js';
import {
  ALL_LOCATIONS,
  addToUsageBuckets,
  hourStart,
  saveUsageSessions,
} from '../../../core/usage.js';
import { credit, debit } from '../../../core/wallet.js';
import { Types } from 'mongoose';
import { useTestDatabase } from '../../support/database.js';
import { useApiHarness, type ApiCustomer } from '../../support/api.js';

useTestDatabase();
const api = useApiHarness();
const clock = () => api.payments.clock;
const HOUR = 3_600_000;

beforeAll(async () => {
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  await addLocation({ countryCode: 'gb', city: 'London', label: 'United Kingdom' });
  await addExit('gb', { exitId: 'direct', kind: 'direct' });
});

/** A logged-in API customer whose account is on `planCode` (paid now), as accountOnPlan does. */
async function customerOnPlan(planCode: string): Promise<ApiCustomer & { subscriptionId: string }> {
  const customer = await api.customer();
  const subscription =
    planCode === 'payg'
      ? await startPayg({ accountId: customer.accountId, clock: clock() })
      : await activateFromPayment({
          accountId: customer.accountId,
          planCode,
          paymentRef: `ref_${randomBytes(6).toString('hex')}`,
          clock: clock(),
        });
  return { ...customer, subscriptionId: String(subscription._id) };
}

const get = (path: string, token?: string) => api.call('get', path, token ? { token } : {});

describe('GET /me/usage', () => {
  it('counts the hour that began this very moment (a clock on the hour)', async () => {
    const before = clock().now();
    clock().set(hourStart(new Date(before.getTime() + 3_600_000)));
    try {
      const ada = await customerOnPlan('starter');
      const now = clock().now();
      await addToUsageBuckets([
        {
          accountId: ada.accountId,
          hourStart: hourStart(now),
          location: ALL_LOCATIONS,
          connectedSeconds: 60,
        },
      ]);
      const res = await get('/me/usage', ada.accessToken);
      expect(res.body.connected).toMatchObject({ periodSeconds: 60, todaySeconds: 60 });
    } finally {
      clock().set(before);
    }
  });

  it('shows a Starter customer the data used and left this week, when it resets, and the connected time', async () => {
    const ada = await customerOnPlan('starter');
    const now = clock().now();
    const subscription = await getCurrentSubscription(ada.accountId);
    const window = subscription ? currentQuotaWindow(subscription, now) : null;
    if (!window) throw new Error('no window');
    // The gateway opens the counter at the first connection, then books bytes.
    await openQuotaPeriod(ada.accountId, planWindowRequest(window, { bytes: 10_000_000_000 }));
    await recordUsage(ada.accountId, 2_500_000_000, now);
    await addToUsageBuckets([
      {
        accountId: ada.accountId,
        hourStart: hourStart(now),
        location: ALL_LOCATIONS,
        connectedSeconds: 1_800.4,
      },
    ]);

    const res = await get('/me/usage', ada.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      planCode: 'starter',
      kind: 'quota',
      quota: {
        limitBytes: 10_000_000_000,
        usedBytes: 2_500_000_000,
        remainingBytes: 7_500_000_000,
        percentUsed: 25,
        periodStart: window.start.toISOString(),
        periodEnd: window.end.toISOString(),
      },
      // The activation hour counts, though it began before the period.
      connected: { periodSeconds: 1_800, todaySeconds: 1_800 },
      payg: null,
      wallet: null,
    });
    // A week from activation.
    expect(window.end.getTime() - window.start.getTime()).toBe(7 * 24 * HOUR);
  });

  it('shows the full allowance before the first connection opens a counter', async () => {
    const bo = await customerOnPlan('starter');
    const res = await get('/me/usage', bo.accessToken);
    expect(res.status).toBe(200);
    expect(res.body.quota).toMatchObject({
      limitBytes: 10_000_000_000,
      usedBytes: 0,
      remainingBytes: 10_000_000_000,
      percentUsed: 0,
    });
  });

  it('shows a PAYG customer the cost today and this month and the wallet that pays', async () => {
    const cy = await customerOnPlan('payg');
    const now = clock().now();
    const options = { clock: clock() };
    await credit(
      cy.accountId,
      {
        amountMinor: 100_000,
        currency: 'NGN',
        key: `topup:${cy.accountId}`,
        description: 'top-up',
      },
      options,
    );
    // Two connected hours charged today, as the gateway keys them.
    for (const hour of [hourStart(now), new Date(hourStart(now).getTime() - HOUR)]) {
      if (hour.getUTCDate() !== now.getUTCDate()) continue;
      await debit(
        cy.accountId,
        {
          amountMinor: 15_000,
          currency: 'NGN',
          key: paygHourKey(cy.accountId, hour),
          description: 'PAYG connected hour',
        },
        options,
      );
    }
    const hours = hourStart(now).getUTCHours() === 0 ? 1 : 2;

    const res = await get('/me/usage', cy.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      planCode: 'payg',
      kind: 'payg',
      quota: null,
      payg: {
        currency: 'NGN',
        hourMinor: 15_000,
        todayMinor: 15_000 * hours,
        monthMinor: expect.any(Number),
        hoursToday: hours,
      },
      wallet: { balanceMinor: 100_000 - 15_000 * hours, currency: 'NGN', hourlyRateMinor: 15_000 },
    });
    expect(res.body.payg.monthMinor).toBeGreaterThanOrEqual(15_000 * hours);
    expect(res.body.payg.summary).toContain('₦');
  });

  it('says there is no plan to an account without one', async () => {
    const dee = await api.customer();
    const res = await get('/me/usage', dee.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ planCode: null, kind: 'none', quota: null, payg: null });
  });

  it('refuses without a token, and an unverified email', async () => {
    expect((await get('/me/usage')).status).toBe(401);
    const unverified = await api.customer({ verified: false });
    const res = await get('/me/usage', unverified.accessToken);
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
  });
});

describe('GET /me/usage/history', () => {
  it('sums bytes, connections and connected time per day and per hour, every bucket listed', async () => {
    const ed = await customerOnPlan('personal');
    const now = clock().now();
    const thisHour = hourStart(now);
    const twoDaysAgo = new Date(thisHour.getTime() - 48 * HOUR);
    await addToUsageBuckets([
      {
        accountId: ed.accountId,
        hourStart: thisHour,
        location: 'ng',
        bytesUp: 100,
        bytesDown: 900,
        connections: 3,
      },
      {
        accountId: ed.accountId,
        hourStart: thisHour,
        location: 'gb',
        bytesUp: 50,
        bytesDown: 50,
        connections: 1,
      },
      {
        accountId: ed.accountId,
        hourStart: thisHour,
        location: ALL_LOCATIONS,
        connectedSeconds: 600,
      },
      {
        accountId: ed.accountId,
        hourStart: twoDaysAgo,
        location: 'ng',
        bytesUp: 7,
        bytesDown: 3,
        connections: 1,
      },
      // Another account's use is not shown.
      {
        accountId: new Types.ObjectId().toHexString(),
        hourStart: thisHour,
        location: 'ng',
        bytesUp: 999,
      },
    ]);

    const days = await get('/me/usage/history?granularity=day&days=7', ed.accessToken);
    expect(days.status).toBe(200);
    expect(days.body.buckets).toHaveLength(7);
    const today = days.body.buckets[6];
    expect(today).toMatchObject({
      bytesUp: 150,
      bytesDown: 950,
      bytes: 1_100,
      connections: 4,
      connectedSeconds: 600,
    });
    expect(new Date(today.start).getTime()).toBeLessThanOrEqual(now.getTime());
    expect(new Date(today.end).getTime()).toBeGreaterThan(now.getTime());
    expect(days.body.totals).toEqual({
      bytesUp: 157,
      bytesDown: 953,
      bytes: 1_110,
      connections: 5,
      connectedSeconds: 600,
    });

    const hours = await get('/me/usage/history?granularity=hour&days=1', ed.accessToken);
    expect(hours.status).toBe(200);
    expect(hours.body.buckets).toHaveLength(24);
    expect(hours.body.buckets[23]).toMatchObject({
      start: thisHour.toISOString(),
      bytes: 1_100,
      connectedSeconds: 600,
    });
    // Two days ago is outside one day of hours.
    expect(hours.body.totals.bytes).toBe(1_100);
  });

  it('refuses a history longer than allowed, an unknown granularity and a bad number', async () => {
    const fay = await customerOnPlan('personal');
    for (const query of [
      'granularity=hour&days=8',
      'granularity=day&days=32',
      'granularity=week',
      'days=0',
      'days=abc',
    ]) {
      const res = await get(`/me/usage/history?${query}`, fay.accessToken);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.issues[0].path).toMatch(/^query\./);
    }
  });

  it('describes its query parameters in the OpenAPI document', async () => {
    const doc = await get('/openapi.json');
    const params = doc.body.paths['/me/usage/history'].get.parameters;
    expect(params.map((p: any) => p.name).sort()).toEqual(['days', 'granularity']);
    expect(params.find((p: any) => p.name === 'granularity').schema.enum).toEqual(['day', 'hour']);
  });

  it('refuses without a token, and an unverified email', async () => {
    expect((await get('/me/usage/history')).status).toBe(401);
    const unverified = await api.customer({ verified: false });
    expect((await get('/me/usage/history', unverified.accessToken)).status).toBe(403);
  });
});

describe('GET /me/usage/sessions', () => {
  it('lists the latest sessions newest first with bytes, duration, connections, locations and protocols', async () => {
    const gus = await customerOnPlan('personal');
    const now = clock().now();
    const older = {
      sessionId: new Types.ObjectId().toHexString(),
      accountId: gus.accountId,
      gatewayId: 'gw-1',
      startedAt: new Date(now.getTime() - 3 * HOUR),
      lastSeenAt: new Date(now.getTime() - 2 * HOUR),
      endedAt: new Date(now.getTime() - 2 * HOUR),
      bytesUp: 1_000,
      bytesDown: 9_000,
      connections: 4,
      locations: ['ng'],
      protocols: ['socks5' as const],
    };
    const open = {
      ...older,
      sessionId: new Types.ObjectId().toHexString(),
      startedAt: new Date(now.getTime() - 600_000),
      lastSeenAt: now,
      endedAt: undefined,
      locations: ['gb', 'ng'],
      protocols: ['https' as const, 'socks5' as const],
    };
    await saveUsageSessions([older, open]);

    const res = await get('/me/usage/sessions?limit=5', gus.accessToken);
    expect(res.status).toBe(200);
    expect(res.body.sessions).toHaveLength(2);
    expect(res.body.sessions[0]).toMatchObject({
      id: open.sessionId,
      endedAt: null,
      durationSeconds: 600,
      locations: expect.arrayContaining(['gb', 'ng']),
    });
    expect(res.body.sessions[1]).toMatchObject({
      id: older.sessionId,
      durationSeconds: 3_600,
      bytesUp: 1_000,
      bytesDown: 9_000,
      bytes: 10_000,
      connections: 4,
      locations: ['ng'],
      protocols: ['socks5'],
    });
    const one = await get('/me/usage/sessions?limit=1', gus.accessToken);
    expect(one.body.sessions).toHaveLength(1);
  });

  it('refuses a limit out of range', async () => {
    const hal = await customerOnPlan('personal');
    for (const limit of ['0', '201', 'many']) {
      const res = await get(`/me/usage/sessions?limit=${limit}`, hal.accessToken);
      expect(res.status).toBe(400);
      expect(res.body.error.details.issues[0].path).toBe('query.limit');
    }
  });

  it("never shows another account's sessions; refuses without a token or a verified email", async () => {
    const ivy = await customerOnPlan('personal');
    const jon = await customerOnPlan('personal');
    await saveUsageSessions([
      {
        sessionId: new Types.ObjectId().toHexString(),
        accountId: ivy.accountId,
        gatewayId: 'gw-1',
        startedAt: clock().now(),
        lastSeenAt: clock().now(),
        bytesUp: 1,
        bytesDown: 1,
        connections: 1,
        locations: ['ng'],
        protocols: ['https'],
      },
    ]);
    expect((await get('/me/usage/sessions', ivy.accessToken)).body.sessions).toHaveLength(1);
    expect((await get('/me/usage/sessions', jon.accessToken)).body.sessions).toEqual([]);
    expect((await get('/me/usage/sessions')).status).toBe(401);
    const unverified = await api.customer({ verified: false });
    expect((await get('/me/usage/sessions', unverified.accessToken)).status).toBe(403);
  });
});

describe('GET /me/entitlements', () => {
  it('shows a Starter customer HTTPS only, SOCKS5 refused with the upgrade, and one location to choose', async () => {
    const kim = await customerOnPlan('starter');
    const res = await get('/me/entitlements', kim.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      planCode: 'starter',
      status: 'active',
      access: { on: true, refusal: null },
      protocols: { allowed: ['https'] },
      locations: { allowed: [], known: ['gb', 'ng'], toChoose: 1 },
      ports: { allow: [443], block: [25] },
      remainingBytes: 10_000_000_000,
      payg: null,
    });
    const socks = res.body.protocols.refused.find((r: any) => r.protocol === 'socks5');
    expect(socks).toEqual({
      protocol: 'socks5',
      code: 'PROTOCOL_NOT_IN_PLAN',
      message: 'Your Starter plan does not include SOCKS5. Upgrade to PAYG for all protocols.',
      upgrade: { action: 'upgrade', planCode: 'payg', text: 'Upgrade to PAYG for all protocols' },
    });

    await chooseLocations(kim.subscriptionId, { locations: ['ng'], clock: clock() });
    const after = await get('/me/entitlements', kim.accessToken);
    expect(after.body.locations).toMatchObject({ allowed: ['ng'], toChoose: 0 });
  });

  it('says access is off, as the bots word it, for an account without a plan and a PAYG wallet that is empty', async () => {
    const lee = await api.customer();
    const none = await get('/me/entitlements', lee.accessToken);
    expect(none.status).toBe(200);
    expect(none.body.access).toEqual({
      on: false,
      notice: null,
      refusal: {
        code: 'NO_SUBSCRIPTION',
        message: 'You have no plan yet. Start a trial or choose a plan to connect.',
        upgrade: { action: 'subscribe', planCode: null, text: 'Choose a plan' },
      },
    });
    const max = await customerOnPlan('payg');
    const empty = await get('/me/entitlements', max.accessToken);
    expect(empty.body.access.refusal.code).toBe('WALLET_EMPTY');
    expect(empty.body.access.refusal.upgrade.action).toBe('top_up');
    expect(empty.body.remainingBytes).toBeNull();
  });

  it('refuses without a token, a forged token, and an unverified email', async () => {
    expect((await get('/me/entitlements')).status).toBe(401);
    const unverified = await api.customer({ verified: false });
    expect((await get('/me/entitlements', unverified.accessToken)).status).toBe(403);
    const forged = `${unverified.accessToken.slice(0, -4)}AAAA`;
    expect((await get('/me/entitlements', forged)).status).toBe(401);
  });
});
