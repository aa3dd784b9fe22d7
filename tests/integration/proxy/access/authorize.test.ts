import { beforeAll, describe, expect, it } from '@jest/globals';
import { rotateProxySecret } from '../../../../core/proxy-credentials.js';
import { switchPlan } from '../../../../core/subscriptions.js';
import { listAuthFailures, listRecentRefusals } from '../../../../core/usage.js';
import { TestClock } from '../../../../lib/clock.js';
import { Subscription } from '../../../../models/subscription.js';
import { useTestDatabase } from '../../../support/database.js';
import { useExtraConnections } from '../../wallet/connections.js';
import {
  HTTPS_PORT,
  cutCode,
  grantOf,
  newCustomer,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
} from './harness.js';

// Near real time, not a fixed date: the refusal and failed-login records read
// here carry the business clock's time and have TTL indexes, which the test
// database sweeps every second by real time. A clock months behind made them
// expire on insert, and the reads passed only if they beat the next sweep.
const clock = new TestClock(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 600_000);
const controllers = useControllers(clock);
const database = useTestDatabase();
const extra = useExtraConnections(database);

beforeAll(async () => {
  await seedCatalogue(clock);
});

describe('authentication', () => {
  it('grants the right secret and refuses a wrong one, an unknown user and a malformed username', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();

    expect(await controller.authorize(request(customer))).toMatchObject({ ok: true });
    for (const attempt of [
      request(customer, { password: 'wrong' }),
      request(customer, { username: 'nosuchuser' }),
      request(customer, { username: `${customer.username}-planet-mars` }),
    ]) {
      expect(await controller.authorize(attempt)).toMatchObject({
        ok: false,
        kind: 'authentication',
        code: 'BAD_CREDENTIALS',
      });
    }
    await controller.flush();
    const failures = await listAuthFailures(customer.accountId);
    expect(failures).toEqual([
      expect.objectContaining({ reason: 'BAD_SECRET', sourceIp: '198.51.100.7' }),
    ]);
  });

  it('backs off an address after repeated failures while the owner still gets in', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const attacker = { password: 'guess', sourceIp: '203.0.113.9' };
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const decision = await controller.authorize(request(customer, attacker));
      outcomes.push(decision.ok ? 'ok' : decision.code);
    }
    // Five free failures, then each failure blocks the address for longer.
    expect(outcomes.slice(0, 6)).toEqual(Array(6).fill('BAD_CREDENTIALS'));
    expect(outcomes.slice(6)).toEqual(['TOO_MANY_ATTEMPTS', 'TOO_MANY_ATTEMPTS']);
    // Even the right secret is refused from the blocked address...
    expect(
      await controller.authorize(request(customer, { sourceIp: attacker.sourceIp })),
    ).toMatchObject({ ok: false, kind: 'rate_limited', code: 'TOO_MANY_ATTEMPTS' });
    // ...but not from the customer's own.
    expect(await controller.authorize(request(customer))).toMatchObject({ ok: true });
  });

  it('stops the old secret and cuts its tunnels on every gateway when the secret is rotated', async () => {
    const customer = await newCustomer('personal', clock);
    const [second] = await extra.open(1);
    const gatewayA = await controllers.start();
    const gatewayB = await controllers.start({ connection: second });
    const onB = cutCode(grantOf(await gatewayB.authorize(request(customer))));

    const rotated = await rotateProxySecret(customer.accountId, { clock });

    await waitUntil(() => onB.code === 'CREDENTIALS_ROTATED');
    await waitUntil(async () => !(await gatewayA.authorize(request(customer))).ok);
    expect(await gatewayA.authorize(request(customer))).toMatchObject({ code: 'BAD_CREDENTIALS' });
    expect(
      await gatewayA.authorize(request({ ...customer, secret: rotated.secret })),
    ).toMatchObject({ ok: true });
  });
});

describe('authenticate (the SOCKS5 login step)', () => {
  it('accepts good credentials and refuses bad ones with the same records and backoff as authorize', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const login = {
      username: customer.username,
      password: customer.secret,
      sourceIp: '192.0.2.44',
    };

    expect(await controller.authenticate(login)).toBeUndefined();
    // Options belong to the username, so a login with them is the same login.
    expect(
      await controller.authenticate({ ...login, username: `${customer.username}-country-gb` }),
    ).toBeUndefined();
    expect(await controller.authenticate({ ...login, password: 'wrong' })).toMatchObject({
      ok: false,
      kind: 'authentication',
      code: 'BAD_CREDENTIALS',
    });
    for (let i = 0; i < 6; i++) await controller.authenticate({ ...login, password: 'wrong' });
    expect(await controller.authenticate(login)).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    expect(
      await controller.authorize(request(customer, { sourceIp: login.sourceIp })),
    ).toMatchObject({ ok: false, code: 'TOO_MANY_ATTEMPTS' });

    await controller.flush();
    const failures = await listAuthFailures(customer.accountId);
    expect(failures.filter((f) => f.reason === 'BAD_SECRET')).toHaveLength(6);
    expect(failures.every((f) => f.sourceIp === login.sourceIp)).toBe(true);
  });
});

describe('entitlements per connection', () => {
  it('refuses what the plan does not include, with the rule and the upgrade that lifts it', async () => {
    const customer = await newCustomer('starter', clock);
    const controller = await controllers.start();

    expect(await controller.authorize(request(customer, { protocol: 'socks5' }))).toMatchObject({
      ok: false,
      kind: 'entitlement',
      code: 'PROTOCOL_NOT_IN_PLAN',
      message: expect.stringContaining('Upgrade to PAYG for all protocols') as unknown,
    });
    expect(
      await controller.authorize(request(customer, { protocol: 'https', port: 22 })),
    ).toMatchObject({ ok: false, code: 'PORT_NOT_ALLOWED' });
    expect(
      await controller.authorize(
        request(customer, {
          protocol: 'https',
          port: HTTPS_PORT,
          username: `${customer.username}-country-gb`,
        }),
      ),
    ).toMatchObject({ ok: false, code: 'LOCATION_NOT_IN_PLAN' });
    const granted = grantOf(
      await controller.authorize(request(customer, { protocol: 'https', port: HTTPS_PORT })),
    );
    expect(granted.exit).toEqual({ kind: 'direct', id: 'ng:direct' });

    await controller.flush();
    const reasons = (await listRecentRefusals(customer.accountId)).map((r) => r.code);
    expect(reasons).toEqual(
      expect.arrayContaining(['PROTOCOL_NOT_IN_PLAN', 'PORT_NOT_ALLOWED', 'LOCATION_NOT_IN_PLAN']),
    );
  });

  it('counts connections across gateways against the plan limit', async () => {
    const customer = await newCustomer('starter', clock); // 2 connections at once
    const [second] = await extra.open(1);
    const gatewayA = await controllers.start();
    const gatewayB = await controllers.start({ connection: second });
    const https = { protocol: 'https' as const, port: HTTPS_PORT };
    const first = grantOf(await gatewayA.authorize(request(customer, https)));
    grantOf(await gatewayA.authorize(request(customer, https)));

    await waitUntil(async () => {
      const decision = await gatewayB.authorize(request(customer, https));
      if (decision.ok) decision.grant.close();
      return !decision.ok && decision.code === 'CONNECTION_LIMIT';
    });

    first.close();
    await waitUntil(async () => {
      const decision = await gatewayB.authorize(request(customer, https));
      return decision.ok;
    });
  });

  it('cuts live tunnels within moments when the subscription ends in the database', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const live = cutCode(grantOf(await controller.authorize(request(customer))));

    await Subscription.updateOne(
      { accountId: customer.accountId },
      { $set: { status: 'expired' }, $unset: { liveAccountId: 1 } },
    );

    await waitUntil(() => live.code === 'SUBSCRIPTION_EXPIRED');
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'SUBSCRIPTION_EXPIRED',
      message: expect.stringContaining('Renew') as unknown,
    });
  });
});

describe('dates', () => {
  it('cuts a live tunnel when its paid period runs out, with no write to the database', async () => {
    const trialClock = new TestClock(clock.now());
    const customer = await newCustomer('personal', trialClock);
    const controller = await controllers.start({ clock: trialClock });
    const live = cutCode(grantOf(await controller.authorize(request(customer))));
    const subscription = await Subscription.findOne({ accountId: customer.accountId }).lean();
    const periodEnd = subscription?.periodEnd;
    if (!periodEnd) throw new Error('the plan has no period end');
    // Nothing renews it (no jobs here): the end of the period alone must show.
    trialClock.set(new Date(periodEnd.getTime() + 1));
    await waitUntil(() => live.code !== null);
    const decision = await controller.authorize(request(customer));
    expect(decision.ok).toBe(false);
    expect(live.code).toBe(decision.ok ? null : decision.code);
  });
});

describe('a plan change', () => {
  it('unlocks what the new plan allows within moments, with no reconnect of the gateway', async () => {
    const customer = await newCustomer('starter', clock);
    const controller = await controllers.start();
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'PROTOCOL_NOT_IN_PLAN',
    });
    const sub = await Subscription.findOne({ accountId: customer.accountId }).lean();
    await switchPlan(String(sub?._id), {
      planCode: 'personal',
      priceMinor: 1_500_000,
      changeRef: 'test-upgrade',
      clock,
    });
    // The gateway's next cache refresh (100 ms in these tests) sees the new plan.
    await waitUntil(async () => {
      const decision = await controller.authorize(request(customer));
      if (decision.ok) decision.grant.close();
      return decision.ok;
    });
  });
});

describe('connect and disconnect', () => {
  it('closes the account on every gateway and lets it back in on connect', async () => {
    const customer = await newCustomer('personal', clock);
    const [second] = await extra.open(1);
    const gatewayA = await controllers.start();
    const gatewayB = await controllers.start({ connection: second });
    const onA = cutCode(grantOf(await gatewayA.authorize(request(customer))));
    const onB = cutCode(grantOf(await gatewayB.authorize(request(customer))));

    await gatewayA.disconnect(customer.accountId);

    expect(onA.code).toBe('DISCONNECTED');
    await waitUntil(() => onB.code === 'DISCONNECTED');
    expect(await gatewayB.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'DISCONNECTED',
    });

    await gatewayA.connect(customer.accountId);
    await waitUntil(async () => (await gatewayB.authorize(request(customer))).ok);
  });
});

describe('exits', () => {
  it('rotates exits per connection, keeps one per session id, and skips an exit that failed', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const inGb = (suffix = '') =>
      request(customer, { username: `${customer.username}-country-gb${suffix}` });
    const exitOf = async (suffix = '') => {
      const grant = grantOf(await controller.authorize(inGb(suffix)));
      grant.close();
      return grant.exit.id;
    };

    const rotating = new Set([await exitOf(), await exitOf(), await exitOf()]);
    expect(rotating).toEqual(new Set(['gb:up1', 'gb:up2', 'gb:up3']));

    const sticky = await exitOf('-session-abc12');
    expect(await exitOf('-session-abc12')).toBe(sticky);

    const failing = grantOf(await controller.authorize(inGb('-session-abc12')));
    failing.exitFailed(new Error('connect ECONNREFUSED'));
    failing.close();
    const moved = await exitOf('-session-abc12');
    expect(moved).not.toBe(sticky);
    for (let i = 0; i < 6; i++) expect(await exitOf()).not.toBe(sticky);
  });
});
