/**
 * Passwords over real HTTP: forgot password (the same answer whether or not
 * the address has an account), the reset page and its form, the API's
 * reset, changing the password while logged in, and the set-password link a
 * chat customer gets from the bot. A reset ends every login session and
 * proves the address; links work once and expire after 30 minutes.
 */
import { describe, expect, it } from '@jest/globals';
import { AUTH_LIMITS } from '../../../api/v1/routes/auth.js';
import { accountForIdentity, createPasswordLink } from '../../../core/accounts/index.js';
import { Account } from '../../../models/account.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import {
  GOOD_PASSWORD,
  client,
  linkIn,
  newAddress,
  pathOf,
  refusalOf,
  type Answer,
} from './auth-support.js';

useTestDatabase();
const api = useApiHarness();

const NEW_PASSWORD = 'copper lantern 2031';

async function registered(email = newAddress()) {
  const res = await client(api).call('post', '/auth/register', {
    json: { email, password: GOOD_PASSWORD, acceptTerms: true },
  });
  expect(res.status).toBe(201);
  return {
    email,
    accountId: res.body.account.id as string,
    accessToken: res.body.accessToken as string,
    refreshToken: res.body.refreshToken as string,
  };
}

function login(email: string, password: string): Promise<Answer> {
  return client(api).call('post', '/auth/login', { json: { email, password } });
}

async function forgot(email: string): Promise<Answer> {
  return client(api).call('post', '/auth/forgot-password', { json: { email } });
}

async function resetLinkFor(email: string, after?: unknown): Promise<URL> {
  const mail = await api.smtp.waitForMail(
    (m) => m.to.includes(email) && m.subject === 'Reset your Atlantic password' && m !== after,
  );
  return linkIn(mail.text, 'reset-password');
}

function submitForm(link: URL, password: string, confirm = password): Promise<Answer> {
  return client(api).call('post', '/account/reset-password', {
    form: { token: link.searchParams.get('token') ?? '', password, confirm },
  });
}

describe('forgot password, then the reset page', () => {
  it('mails a link whose form sets the password, ends every session and the old password', async () => {
    const account = await registered();
    const second = await login(account.email, GOOD_PASSWORD);

    const res = await forgot(account.email);
    expect(res.status).toBe(202);
    expect(res.body.message).toMatch(/If an account has this address/);
    const link = await resetLinkFor(account.email);

    const page = await client(api).call('get', pathOf(link));
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-outcome="form"');
    expect(page.text).toContain('Choose a new password');
    expect(page.text).toContain(`Account: ${account.email}`);
    expect(page.text).toContain('<form method="post" action="/account/reset-password">');
    expect(page.text).toContain(`value="${link.searchParams.get('token')}"`);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // Opening the page spends nothing (mail scanners open links).
    expect((await client(api).call('get', pathOf(link))).status).toBe(200);

    const mismatch = await submitForm(link, NEW_PASSWORD, `${NEW_PASSWORD}!`);
    expect(mismatch.status).toBe(400);
    expect(mismatch.text).toContain('The two passwords are not the same.');
    const weak = await submitForm(link, 'password2024');
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('data-outcome="retry"');
    expect(weak.text).toContain('among the first that attackers try');

    const saved = await submitForm(link, NEW_PASSWORD);
    expect(saved.status).toBe(200);
    expect(saved.text).toContain('data-outcome="saved"');

    // Every session from before the reset is over: access and refresh tokens alike.
    for (const token of [account.accessToken, second.body.accessToken as string]) {
      const me = await api.call('get', '/me', { token });
      expect(me.status).toBe(401);
      expect(me.body.error.details.reason).toBe('SESSION_ENDED');
    }
    const refresh = await api.call('post', '/auth/refresh', {
      body: { refreshToken: account.refreshToken },
    });
    expect(refresh.status).toBe(401);

    expect((await login(account.email, GOOD_PASSWORD)).status).toBe(401);
    const fresh = await login(account.email, NEW_PASSWORD);
    expect(fresh.status).toBe(200);
    // Only the owner of the mailbox could open the link: the address counts as verified.
    expect(fresh.body.account.emailVerified).toBe(true);

    const notice = await api.smtp.waitForMail(
      (m) => m.to.includes(account.email) && m.subject === 'Your Atlantic password was changed',
    );
    expect(notice.text).toContain('If you did not do this');

    // Once only.
    const reused = await client(api).call('get', pathOf(link));
    expect(reused.status).toBe(400);
    expect(reused.text).toContain('This link was already used');
    const resubmitted = await submitForm(link, 'another lantern 77');
    expect(resubmitted.text).toContain('This link was already used');
    expect((await login(account.email, NEW_PASSWORD)).status).toBe(200);
  });

  it('answers the same for an address without an account, and mails nothing there', async () => {
    const nobody = newAddress('nobody');
    const unknown = await forgot(nobody);
    const account = await registered();
    const known = await forgot(account.email);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    await resetLinkFor(account.email);
    expect(api.smtp.messages.filter((m) => m.to.includes(nobody))).toEqual([]);
  });

  it('refuses a malformed address', async () => {
    const res = await forgot('not an address');
    expect(res.status).toBe(400);
  });

  it('limits requests per email (429 with Retry-After), from any IP', async () => {
    const { email } = await registered();
    for (let i = 0; i < AUTH_LIMITS.forgotPerEmail[0].max; i++) {
      expect((await forgot(email)).status).toBe(202);
    }
    const limited = await forgot(email);
    expect(limited.status).toBe(429);
    expect(limited.body.error.details.scope).toBe('account');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('limits requests per IP', async () => {
    const c = client(api);
    for (let i = 0; i < AUTH_LIMITS.forgotPerIp[0].max; i++) {
      const res = await c.call('post', '/auth/forgot-password', { json: { email: newAddress() } });
      expect(res.status).toBe(202);
    }
    const limited = await c.call('post', '/auth/forgot-password', {
      json: { email: newAddress() },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.details.scope).toBe('ip');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lets only the newest link work, and none after 30 minutes', async () => {
    const { email } = await registered();
    await forgot(email);
    const first = await resetLinkFor(email);
    const firstMail = api.smtp.messages.find((m) => m.text.includes(first.href));
    await forgot(email);
    const second = await resetLinkFor(email, firstMail);
    expect((await client(api).call('get', pathOf(first))).text).toContain(
      'This link does not work',
    );
    api.payments.clock.advanceBy({ minutes: 31 });
    const expired = await client(api).call('get', pathOf(second));
    expect(expired.status).toBe(400);
    expect(expired.text).toContain('This link has expired');
    const api400 = await api.call('post', '/auth/reset-password', {
      body: { token: second.searchParams.get('token'), password: NEW_PASSWORD },
    });
    expect(api400.status).toBe(400);
    expect(api400.body.error.details.reason).toBe('LINK_EXPIRED');
    expect((await login(email, GOOD_PASSWORD)).status).toBe(200);
  });

  it('escapes what the page shows and refuses a tampered token without echoing it', async () => {
    const email = `o'hara&sons${Math.floor(Math.random() * 1e6)}@example.com`;
    await registered(email);
    await forgot(email);
    const link = await resetLinkFor(email);
    const page = await client(api).call('get', pathOf(link));
    expect(page.text).toContain(email.replace('&', '&amp;').replace("'", '&#39;'));
    expect(page.text).not.toContain(email);

    const hostile = await client(api).call(
      'get',
      `/account/reset-password?token=${encodeURIComponent('"><img src=x onerror=alert(1)>')}`,
    );
    expect(hostile.status).toBe(400);
    expect(hostile.text).not.toContain('<img');
    expect(hostile.text).toContain('This link does not work');
  });

  it('limits form posts per IP (429 page with Retry-After)', async () => {
    const c = client(api);
    for (let i = 0; i < 20; i++) {
      const res = await c.call('post', '/account/reset-password', {
        form: { token: 'x'.repeat(43), password: NEW_PASSWORD, confirm: NEW_PASSWORD },
      });
      expect(res.status).toBe(400);
    }
    const limited = await c.call('post', '/account/reset-password', {
      form: { token: 'x'.repeat(43), password: NEW_PASSWORD, confirm: NEW_PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(limited.text).toContain('Too many attempts');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('POST /auth/reset-password', () => {
  it('sets the password from the link token, verifies the address, ends the sessions', async () => {
    const account = await registered();
    expect((await Account.findById(account.accountId).lean())?.emailVerifiedAt).toBeUndefined();
    await forgot(account.email);
    const token = (await resetLinkFor(account.email)).searchParams.get('token');

    const weak = await api.call('post', '/auth/reset-password', {
      body: { token, password: 'aaaaaaaaaaaaaa' },
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.details.reason).toBe('PASSWORD_ONE_KIND');

    // A weak password did not spend the link.
    const res = await api.call('post', '/auth/reset-password', {
      body: { token, password: NEW_PASSWORD },
    });
    expect(res.status).toBe(204);
    expect((await api.call('get', '/me', { token: account.accessToken })).status).toBe(401);
    const fresh = await login(account.email, NEW_PASSWORD);
    expect(fresh.body.account.emailVerified).toBe(true);

    const again = await api.call('post', '/auth/reset-password', {
      body: { token, password: 'another lantern 77' },
    });
    expect(again.status).toBe(400);
    expect(again.body.error.details.reason).toBe('LINK_USED');
  });

  it('refuses a made-up token', async () => {
    const res = await api.call('post', '/auth/reset-password', {
      body: { token: 'A'.repeat(43), password: NEW_PASSWORD },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.reason).toBe('LINK_INVALID');
  });
});

describe('POST /me/password', () => {
  it('changes the password, keeps this session, ends the others, and tells the owner', async () => {
    const account = await registered();
    const other = await login(account.email, GOOD_PASSWORD);
    const res = await api.call('post', '/me/password', {
      token: account.accessToken,
      body: { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ otherSessionsEnded: 1 });
    expect((await api.call('get', '/me', { token: account.accessToken })).status).toBe(200);
    expect((await api.call('get', '/me', { token: other.body.accessToken })).status).toBe(401);
    expect((await login(account.email, GOOD_PASSWORD)).status).toBe(401);
    expect((await login(account.email, NEW_PASSWORD)).status).toBe(200);
    await api.smtp.waitForMail(
      (m) => m.to.includes(account.email) && m.subject === 'Your Atlantic password was changed',
    );
  });

  it('refuses a wrong current password, a weak or unchanged new one, and a missing token', async () => {
    const account = await registered();
    const call = (body: object) =>
      api.call('post', '/me/password', { token: account.accessToken, body });
    const wrong = await call({ currentPassword: 'not my password 1', newPassword: NEW_PASSWORD });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details).toMatchObject({
      field: 'currentPassword',
      reason: 'WRONG_PASSWORD',
    });
    const weak = await call({ currentPassword: GOOD_PASSWORD, newPassword: 'short' });
    expect(weak.body.error.details).toMatchObject({
      field: 'newPassword',
      reason: 'PASSWORD_TOO_SHORT',
    });
    const same = await call({ currentPassword: GOOD_PASSWORD, newPassword: GOOD_PASSWORD });
    expect(same.body.error.details.reason).toBe('PASSWORD_UNCHANGED');
    const anonymous = await api.call('post', '/me/password', {
      body: { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD },
    });
    expect(anonymous.status).toBe(401);
    expect((await login(account.email, GOOD_PASSWORD)).status).toBe(200);
  });

  it('limits attempts per account (429 with Retry-After)', async () => {
    const account = await registered();
    for (let i = 0; i < 10; i++) {
      const res = await api.call('post', '/me/password', {
        token: account.accessToken,
        body: { currentPassword: `guess number ${i}`, newPassword: NEW_PASSWORD },
      });
      expect(res.status).toBe(400);
    }
    const limited = await api.call('post', '/me/password', {
      token: account.accessToken,
      body: { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('a password set from chat', () => {
  it('the link the bot shows opens a set-password page; the password then logs in over the API', async () => {
    // A chat customer, signed up in chat (verified email), asks the bot for the link.
    const ctx = {
      clock: api.payments.clock,
      mailer: api.mailer,
      publicUrl: 'http://atlantic.test',
    };
    const { account } = await accountForIdentity(
      { channel: 'telegram', externalId: String(Date.now()) },
      ctx,
    );
    const email = newAddress('chat');
    await Account.updateOne(
      { _id: account.id },
      { $set: { email, emailVerifiedAt: api.payments.clock.now() } },
    );
    const before = await login(email, NEW_PASSWORD);
    expect(before.status).toBe(401);

    const { url } = await createPasswordLink(ctx, account.id);
    const link = new URL(url);
    const page = await client(api).call('get', pathOf(link));
    expect(page.text).toContain('Set a password for the API');
    expect((await submitForm(link, NEW_PASSWORD)).status).toBe(200);

    const res = await login(email, NEW_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.body.account).toMatchObject({
      id: account.id,
      identities: [{ channel: 'telegram' }],
    });
    // A wrong password still answers like an unknown address.
    expect(refusalOf(await login(email, GOOD_PASSWORD))).toEqual(
      refusalOf(await login(newAddress(), GOOD_PASSWORD)),
    );
  });

  it('needs a verified email', async () => {
    const { account } = await accountForIdentity(
      { channel: 'whatsapp', externalId: `234${Date.now()}` },
      { clock: api.payments.clock },
    );
    await expect(
      createPasswordLink(
        { clock: api.payments.clock, mailer: api.mailer, publicUrl: 'http://atlantic.test' },
        account.id,
      ),
    ).rejects.toMatchObject({ code: 'FORBIDDEN', details: { reason: 'EMAIL_NOT_VERIFIED' } });
  });
});
