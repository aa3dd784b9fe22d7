/**
 * The proxy self-service routes over real HTTP against the real database, and
 * the real gateway (the proxy role on port 0, curl as the client): the
 * credentials and ready URLs the API hands out carry traffic, a rotated
 * password stops at once, a disconnect refuses, and what the gateway records
 * (refusals, failed logins, sessions) comes back through the API.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  getProxyCredentials,
  hashProxySecret,
  listProxyCredentialsChangedSince,
} from '../../../core/proxy-credentials.js';
import { activateFromPayment, chooseLocations } from '../../../core/subscriptions.js';
import { useApiGateway, useApiHarness, type ApiCustomer } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import { hasCommand } from '../../support/proxy-wire.js';

// Declared before the database hooks: the gateway stops before the database goes.
const gateway = useApiGateway(['ng', 'gb']);
useTestDatabase();
const api = useApiHarness();
beforeAll(() => gateway.start(api));
const clock = () => api.payments.clock;
const withCurl = hasCommand('curl');

/** A logged-in API customer whose account is on `planCode` (paid now), as accountOnPlan does. */
async function customerOnPlan(
  planCode: string,
  options: { locations?: string[] } = {},
): Promise<ApiCustomer & { subscriptionId: string }> {
  const customer = await api.customer();
  const subscription = await activateFromPayment({
    accountId: customer.accountId,
    planCode,
    paymentRef: `ref_${randomBytes(6).toString('hex')}`,
    clock: clock(),
  });
  if (options.locations) {
    await chooseLocations(subscription._id, { locations: options.locations, clock: clock() });
  }
  return { ...customer, subscriptionId: String(subscription._id) };
}

const call = (method: string, path: string, token?: string, body?: unknown) =>
  api.call(method, path, { ...(token ? { token } : {}), ...(body ? { body } : {}) });

const through = (proxyUrl: string) => gateway.through(proxyUrl);

/** Resolves when `condition` holds, re-checking while the gateway's timers flush (every 50 ms). */
async function eventually(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const maybe = withCurl ? it : it.skip;

describe('POST /me/connect', () => {
  maybe(
    'gives a Personal customer SOCKS5 credentials once, whose ready URL carries traffic through the real gateway',
    async () => {
      const ada = await customerOnPlan('personal');
      const res = await call('post', '/me/connect', ada.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      expect(res.status).toBe(200);
      const { username, password, connection } = res.body;
      expect(res.body).toMatchObject({
        host: 'proxy.atlantic.test',
        socksPort: 1080,
        httpPort: 8080,
        firstTime: true,
        reconnected: false,
        accessPaused: false,
      });
      expect(password).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(connection).toEqual({
        location: 'ng',
        locationLabel: 'Nigeria (Lagos)',
        protocol: 'socks5',
        sticky: false,
        sessionId: null,
        host: 'proxy.atlantic.test',
        port: 1080,
        username: `${username}-country-ng`,
        url: `socks5://${username}-country-ng:${password}@proxy.atlantic.test:1080`,
        template: `socks5://${username}-country-ng:PASSWORD@proxy.atlantic.test:1080`,
      });
      expect(res.body.urls.http).toBe(`http://${username}:${password}@proxy.atlantic.test:8080`);
      // What the gateway checks: the stored hash is the hash of the password we were shown.
      const [stored] = (await listProxyCredentialsChangedSince(null)).filter(
        (c) => c.accountId === ada.accountId,
      );
      expect(stored?.secretHash).toBe(hashProxySecret(password));

      // The ready URLs work through the real gateway, SOCKS5 and the HTTP proxy.
      expect((await through(connection.url)).ok).toBe(true);
      expect((await through(res.body.urls.http)).ok).toBe(true);

      // The traffic comes back as a usage session and in the history.
      await eventually(async () => {
        const sessions = await call('get', '/me/usage/sessions', ada.accessToken);
        return sessions.body.sessions[0]?.bytes > 0;
      });
      const [session] = (await call('get', '/me/usage/sessions', ada.accessToken)).body.sessions;
      expect(session.locations).toContain('ng');
      expect(session.protocols).toEqual(expect.arrayContaining(['socks5']));
      const history = await call(
        'get',
        '/me/usage/history?granularity=hour&days=1',
        ada.accessToken,
      );
      expect(history.body.totals.bytes).toBeGreaterThan(0);

      // A second connect does not show the password again (it is stored hashed).
      const again = await call('post', '/me/connect', ada.accessToken, {
        location: 'gb',
        protocol: 'https',
      });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ firstTime: false, password: null });
      expect(again.body.connection).toMatchObject({
        username: `${username}-country-gb`,
        port: 8080,
        url: null,
        template: `http://${username}-country-gb:PASSWORD@proxy.atlantic.test:8080`,
      });
    },
    30_000,
  );

  it('adds a sticky session id to the username on a plan with sticky sessions', async () => {
    const bo = await customerOnPlan('personal');
    const res = await call('post', '/me/connect', bo.accessToken, {
      location: 'gb',
      protocol: 'https',
      sticky: true,
    });
    expect(res.status).toBe(200);
    expect(res.body.connection.sessionId).toMatch(/^[0-9a-f]{8}$/);
    expect(res.body.connection.username).toBe(
      `${res.body.username}-country-gb-session-${res.body.connection.sessionId}`,
    );
  });

  it('refuses SOCKS5 on Starter with the reason and words of the bots and the gateway', async () => {
    const cy = await customerOnPlan('starter', { locations: ['ng'] });
    const res = await call('post', '/me/connect', cy.accessToken, {
      location: 'ng',
      protocol: 'socks5',
    });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      code: 'FORBIDDEN',
      message: 'Your Starter plan does not include SOCKS5. Upgrade to PAYG for all protocols.',
      details: {
        reason: 'PROTOCOL_NOT_IN_PLAN',
        upgrade: { action: 'upgrade', planCode: 'payg', text: 'Upgrade to PAYG for all protocols' },
      },
    });
    expect(typeof res.body.error.requestId).toBe('string');
    // Nothing was made.
    expect(await getProxyCredentials(cy.accountId)).toBeNull();
  });

  it("refuses a location outside the plan, one not chosen yet, an unknown one, a sticky session Starter lacks, and a protocol that doesn't exist", async () => {
    const dee = await customerOnPlan('starter', { locations: ['ng'] });
    const outside = await call('post', '/me/connect', dee.accessToken, {
      location: 'gb',
      protocol: 'https',
    });
    expect(outside.status).toBe(403);
    expect(outside.body.error.details.reason).toBe('LOCATION_NOT_IN_PLAN');
    expect(outside.body.error.message).toBe(
      'Your Starter plan includes ng only. Upgrade to Personal for all locations.',
    );

    const unknown = await call('post', '/me/connect', dee.accessToken, {
      location: 'zz',
      protocol: 'https',
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.reason).toBe('UNKNOWN_LOCATION');
    expect(unknown.body.error.message).toBe('There is no location "zz". Locations: gb, ng.');

    const sticky = await call('post', '/me/connect', dee.accessToken, {
      location: 'ng',
      protocol: 'https',
      sticky: true,
    });
    expect(sticky.status).toBe(403);
    expect(sticky.body.error.details.reason).toBe('PLAN_FEATURE_REQUIRED');
    expect(sticky.body.error.message).toBe('Sticky sessions are not part of your plan.');

    const ftp = await call('post', '/me/connect', dee.accessToken, {
      location: 'ng',
      protocol: 'ftp',
    });
    expect(ftp.status).toBe(400);
    expect(ftp.body.error.details.issues[0].path).toBe('body.protocol');

    const fresh = await customerOnPlan('starter');
    const notChosen = await call('post', '/me/connect', fresh.accessToken, {
      location: 'ng',
      protocol: 'https',
    });
    expect(notChosen.status).toBe(403);
    expect(notChosen.body.error.details.reason).toBe('LOCATION_NOT_CHOSEN');
  });

  it('refuses an account without a plan, without a token, and with an unverified email', async () => {
    const none = await api.customer();
    const res = await call('post', '/me/connect', none.accessToken, {
      location: 'ng',
      protocol: 'https',
    });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      message: 'You have no plan yet. Start a trial or choose a plan to connect.',
      details: { reason: 'NO_SUBSCRIPTION' },
    });
    expect(
      (await call('post', '/me/connect', undefined, { location: 'ng', protocol: 'https' })).status,
    ).toBe(401);
    const unverified = await api.customer({ verified: false });
    const refused = await call('post', '/me/connect', unverified.accessToken, {
      location: 'ng',
      protocol: 'https',
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
  });
});

describe('GET /me/proxy/credentials and POST /me/proxy/credentials/rotate', () => {
  it('shows host, ports, username and URL templates without the password once made', async () => {
    const eve = await customerOnPlan('personal');
    const before = await call('get', '/me/proxy/credentials', eve.accessToken);
    expect(before.status).toBe(404);
    expect(before.body.error.details.reason).toBe('NO_CREDENTIALS');

    const made = await call('post', '/me/connect', eve.accessToken, {
      location: 'ng',
      protocol: 'https',
    });
    const res = await call('get', '/me/proxy/credentials', eve.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      host: 'proxy.atlantic.test',
      socksPort: 1080,
      httpPort: 8080,
      username: made.body.username,
      password: null,
      accessPaused: false,
      urls: { socks5: null, http: null },
      templates: {
        socks5: `socks5://${made.body.username}:PASSWORD@proxy.atlantic.test:1080`,
        http: `http://${made.body.username}:PASSWORD@proxy.atlantic.test:8080`,
      },
      usernameOptions: {
        country: '-country-<code>',
        session: '-session-<id>',
        example: `${made.body.username}-country-ng-session-ab12`,
      },
    });
  });

  maybe(
    "rotates: the old password stops at the gateway, the new one works, the failed try is listed, and another account's password is untouched",
    async () => {
      const fay = await customerOnPlan('personal');
      const gus = await customerOnPlan('personal');
      const fayFirst = await call('post', '/me/connect', fay.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      const gusFirst = await call('post', '/me/connect', gus.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      expect((await through(fayFirst.body.connection.url)).ok).toBe(true);

      const rotated = await call('post', '/me/proxy/credentials/rotate', fay.accessToken);
      expect(rotated.status).toBe(200);
      expect(rotated.body.username).toBe(fayFirst.body.username);
      expect(rotated.body.password).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(rotated.body.password).not.toBe(fayFirst.body.password);
      expect(rotated.body.urls.socks5).toBe(
        `socks5://${rotated.body.username}:${rotated.body.password}@proxy.atlantic.test:1080`,
      );

      // The old password is refused by the gateway; the new one carries traffic.
      expect((await through(fayFirst.body.connection.url)).ok).toBe(false);
      const newUrl = `socks5://${rotated.body.username}-country-ng:${rotated.body.password}@proxy.atlantic.test:1080`;
      expect((await through(newUrl)).ok).toBe(true);

      // Gus's password still works, and his stored secret did not change.
      expect((await through(gusFirst.body.connection.url)).ok).toBe(true);
      const gusStored = (await listProxyCredentialsChangedSince(null)).find(
        (c) => c.accountId === gus.accountId,
      );
      expect(gusStored?.secretHash).toBe(hashProxySecret(gusFirst.body.password));
      expect(gusStored?.secretVersion).toBe(1);

      // The failed try with the old password is in Fay's failed logins, not in Gus's.
      await eventually(async () => {
        const failed = await call('get', '/me/proxy/failed-logins', fay.accessToken);
        return failed.body.failedLogins.length > 0;
      });
      const failed = await call('get', '/me/proxy/failed-logins', fay.accessToken);
      expect(failed.status).toBe(200);
      expect(failed.body.username).toBe(fayFirst.body.username);
      expect(failed.body.failedLogins[0]).toMatchObject({
        sourceIp: expect.stringMatching(/127\.0\.0\.1/),
        reason: 'BAD_SECRET',
        reasonText: 'wrong password',
        attempts: 1,
      });
      expect(Date.parse(failed.body.failedLogins[0].at)).not.toBeNaN();
      const gusFailed = await call('get', '/me/proxy/failed-logins', gus.accessToken);
      expect(gusFailed.body.failedLogins).toEqual([]);
    },
    30_000,
  );

  it('refuses to rotate before there are credentials, and a bad limit on failed logins', async () => {
    const hal = await customerOnPlan('personal');
    const res = await call('post', '/me/proxy/credentials/rotate', hal.accessToken);
    expect(res.status).toBe(404);
    expect(res.body.error.details.reason).toBe('NO_CREDENTIALS');
    const bad = await call('get', '/me/proxy/failed-logins?limit=0', hal.accessToken);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.issues[0].path).toBe('query.limit');
  });

  it('limits rotations to 10 an hour per account, and not for another account', async () => {
    const quinn = await customerOnPlan('personal');
    const rae = await customerOnPlan('personal');
    await call('post', '/me/connect', quinn.accessToken, { location: 'ng', protocol: 'https' });
    await call('post', '/me/connect', rae.accessToken, { location: 'ng', protocol: 'https' });
    for (let i = 0; i < 10; i++) {
      expect((await call('post', '/me/proxy/credentials/rotate', quinn.accessToken)).status).toBe(
        200,
      );
    }
    const limited = await call('post', '/me/proxy/credentials/rotate', quinn.accessToken);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await call('post', '/me/proxy/credentials/rotate', rae.accessToken)).status).toBe(200);
  });

  it('refuses without a token and with an unverified email', async () => {
    const unverified = await api.customer({ verified: false });
    for (const [method, path] of [
      ['get', '/me/proxy/credentials'],
      ['post', '/me/proxy/credentials/rotate'],
      ['get', '/me/proxy/failed-logins'],
    ] as const) {
      expect((await call(method, path)).status).toBe(401);
      const res = await call(method, path, unverified.accessToken);
      expect(res.status).toBe(403);
      expect(res.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
    }
  });
});

describe('GET and POST /me/locations', () => {
  it('lets a Starter customer choose the one location and shows which are allowed', async () => {
    const ivy = await customerOnPlan('starter');
    const before = await call('get', '/me/locations', ivy.accessToken);
    expect(before.status).toBe(200);
    expect(before.body.toChoose).toBe(1);
    expect(before.body.locations).toEqual([
      {
        code: 'gb',
        countryCode: 'gb',
        city: 'London',
        label: 'United Kingdom',
        available: true,
        allowed: false,
      },
      {
        code: 'ng',
        countryCode: 'ng',
        city: 'Lagos',
        label: 'Nigeria (Lagos)',
        available: true,
        allowed: false,
      },
    ]);
    const chosen = await call('post', '/me/locations', ivy.accessToken, { codes: ['NG'] });
    expect(chosen.status).toBe(200);
    expect(chosen.body.toChoose).toBe(0);
    expect(chosen.body.locations.filter((l: any) => l.allowed).map((l: any) => l.code)).toEqual([
      'ng',
    ]);
    // Choosing it again changes nothing.
    expect((await call('post', '/me/locations', ivy.accessToken, { codes: ['ng'] })).status).toBe(
      200,
    );
    // And Connect now works there.
    const connect = await call('post', '/me/connect', ivy.accessToken, {
      location: 'ng',
      protocol: 'https',
    });
    expect(connect.status).toBe(200);
  });

  it('refuses an unknown location, a second one on Starter, and a choice on a plan with every location', async () => {
    const jon = await customerOnPlan('starter');
    const unknown = await call('post', '/me/locations', jon.accessToken, { codes: ['zz'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.reason).toBe('UNKNOWN_LOCATION');
    const two = await call('post', '/me/locations', jon.accessToken, { codes: ['ng', 'gb'] });
    expect(two.status).toBe(400);
    expect(two.body.error.message).toBe('Choose one location for the Starter plan.');
    await call('post', '/me/locations', jon.accessToken, { codes: ['ng'] });
    const second = await call('post', '/me/locations', jon.accessToken, { codes: ['gb'] });
    expect(second.status).toBe(409);
    expect(second.body.error.details.reason).toBe('LOCATIONS_ALREADY_CHOSEN');
    const empty = await call('post', '/me/locations', jon.accessToken, { codes: [] });
    expect(empty.status).toBe(400);

    const kim = await customerOnPlan('personal');
    const all = await call('get', '/me/locations', kim.accessToken);
    expect(all.body.locations.every((l: any) => l.allowed)).toBe(true);
    const refused = await call('post', '/me/locations', kim.accessToken, { codes: ['zz'] });
    expect(refused.status).toBe(400);
  });

  it('refuses without a token, an unverified email, and an account without a plan', async () => {
    expect((await call('get', '/me/locations')).status).toBe(401);
    expect((await call('post', '/me/locations', undefined, { codes: ['ng'] })).status).toBe(401);
    const unverified = await api.customer({ verified: false });
    expect((await call('get', '/me/locations', unverified.accessToken)).status).toBe(403);
    const none = await api.customer();
    const res = await call('post', '/me/locations', none.accessToken, { codes: ['ng'] });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe('NO_SUBSCRIPTION');
  });
});

describe('POST /me/disconnect, POST /me/new-ip and GET /me/proxy/refusals', () => {
  maybe(
    'disconnect makes the gateway refuse, the refusal says why and what to do, and connect resumes',
    async () => {
      const lee = await customerOnPlan('personal');
      const max = await customerOnPlan('personal');
      const first = await call('post', '/me/connect', lee.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      const maxFirst = await call('post', '/me/connect', max.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      const url = first.body.connection.url;
      expect((await through(url)).ok).toBe(true);

      const off = await call('post', '/me/disconnect', lee.accessToken);
      expect(off.status).toBe(200);
      expect(off.body.accessPaused).toBe(true);
      expect((await through(url)).ok).toBe(false);
      // Another account is not disconnected.
      expect((await through(maxFirst.body.connection.url)).ok).toBe(true);

      await eventually(async () => {
        const why = await call('get', '/me/proxy/refusals', lee.accessToken);
        return why.body.refusals.some((r: any) => r.code === 'DISCONNECTED');
      });
      const why = await call('get', '/me/proxy/refusals', lee.accessToken);
      expect(why.status).toBe(200);
      expect(why.body.refusals[0]).toMatchObject({
        code: 'DISCONNECTED',
        message: 'Your proxy is disconnected. Press Connect to use it again.',
        stage: 'refused',
        protocol: 'socks5',
        whatToDo: 'Connect again: POST /api/v1/me/connect.',
      });
      expect((await call('get', '/me/proxy/refusals', max.accessToken)).body.refusals).toEqual([]);

      const back = await call('post', '/me/connect', lee.accessToken, {
        location: 'ng',
        protocol: 'socks5',
      });
      expect(back.body).toMatchObject({ reconnected: true, accessPaused: false, password: null });
      expect((await through(url)).ok).toBe(true);
    },
    30_000,
  );

  maybe(
    'explains a gateway refusal of SOCKS5 on Starter with the upgrade that lifts it, and says the proxy works now',
    async () => {
      const ned = await customerOnPlan('starter', { locations: ['ng'] });
      const made = await call('post', '/me/connect', ned.accessToken, {
        location: 'ng',
        protocol: 'https',
      });
      const socks = `socks5://${made.body.username}:${made.body.password}@proxy.atlantic.test:1080`;
      expect((await through(socks)).ok).toBe(false);
      await eventually(async () => {
        const why = await call('get', '/me/proxy/refusals', ned.accessToken);
        return why.body.refusals.length > 0;
      });
      const why = await call('get', '/me/proxy/refusals?limit=5', ned.accessToken);
      expect(why.body.refusals[0]).toMatchObject({
        code: 'PROTOCOL_NOT_IN_PLAN',
        message: 'Your Starter plan does not include SOCKS5. Upgrade to PAYG for all protocols.',
        upgrade: { action: 'upgrade', planCode: 'payg', text: 'Upgrade to PAYG for all protocols' },
        whatToDo: 'Upgrade to PAYG for all protocols',
      });
      expect(why.body.now).toEqual({
        working: true,
        message: 'Right now your proxy is working.',
        refusal: null,
      });
    },
    30_000,
  );

  it('new IP moves the account to fresh exits', async () => {
    const ola = await customerOnPlan('personal');
    await call('post', '/me/connect', ola.accessToken, { location: 'ng', protocol: 'https' });
    const before = await getProxyCredentials(ola.accountId);
    const res = await call('post', '/me/new-ip', ola.accessToken);
    expect(res.status).toBe(200);
    expect(res.body.message).toBe('Done: your next connections use a new exit IP.');
    expect((await getProxyCredentials(ola.accountId))?.exitEpoch).toBe(
      (before?.exitEpoch ?? 0) + 1,
    );
  });

  it('refuses disconnect and new IP before there are credentials, and a bad refusals limit', async () => {
    const pam = await customerOnPlan('personal');
    for (const path of ['/me/disconnect', '/me/new-ip']) {
      const res = await call('post', path, pam.accessToken);
      expect(res.status).toBe(404);
      expect(res.body.error.details.reason).toBe('NO_CREDENTIALS');
    }
    const bad = await call('get', '/me/proxy/refusals?limit=500', pam.accessToken);
    expect(bad.status).toBe(400);
  });

  it('says what is wrong now for an account without a plan; refuses without a token or a verified email', async () => {
    const none = await api.customer();
    const why = await call('get', '/me/proxy/refusals', none.accessToken);
    expect(why.status).toBe(200);
    expect(why.body).toEqual({
      refusals: [],
      now: {
        working: false,
        message: 'Right now: You have no plan yet. Start a trial or choose a plan to connect.',
        refusal: {
          code: 'NO_SUBSCRIPTION',
          message: 'You have no plan yet. Start a trial or choose a plan to connect.',
          upgrade: { action: 'subscribe', planCode: null, text: 'Choose a plan' },
        },
      },
    });
    const unverified = await api.customer({ verified: false });
    for (const [method, path] of [
      ['post', '/me/disconnect'],
      ['post', '/me/new-ip'],
      ['get', '/me/proxy/refusals'],
    ] as const) {
      expect((await call(method, path)).status).toBe(401);
      expect((await call(method, path, unverified.accessToken)).status).toBe(403);
    }
  });
});
