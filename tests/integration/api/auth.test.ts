/**
 * Registering, verifying the email (code, link, resend) and logging in over
 * real HTTP, with the mail read from the SMTP capture: the happy paths, the
 * refusals with the rule or reason named, and the security properties (the
 * same answer for a wrong email and a wrong password, the limits per IP and
 * per email with Retry-After, links that work once and expire).
 */
import { describe, expect, it } from '@jest/globals';
import { AUTH_LIMITS } from '../../../api/v1/routes/auth.js';
import { TERMS_VERSION } from '../../../core/accounts/index.js';
import { Account } from '../../../models/account.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import {
  GOOD_PASSWORD,
  client,
  codeIn,
  linkIn,
  newAddress,
  pathOf,
  refusalOf,
} from './auth-support.js';

useTestDatabase();
const api = useApiHarness();

const mailTo = (address: string, subject = 'Your Atlantic code') =>
  api.smtp.waitForMail((m) => m.to.includes(address) && m.subject.includes(subject));

/** Registers `email` from a client of its own and returns the answer's body. */
async function register(
  email = newAddress(),
  password = GOOD_PASSWORD,
): Promise<Record<string, any> & { email: string }> {
  const res = await client(api).call('post', '/auth/register', {
    json: { email, password, acceptTerms: true },
  });
  expect(res.status).toBe(201);
  return { email, ...(res.body as Record<string, any>) };
}

/** A customer route that needs a verified email, from the mounted routes (any group). */
function verifiedOnlyPath(): string {
  const route = api.v1.routes.find(
    (r) =>
      r.access === 'customer' &&
      r.method === 'get' &&
      r.verifiedEmail !== false &&
      !r.path.includes(':') &&
      !r.planFeature,
  );
  if (!route) throw new Error('no verified-only GET route is mounted');
  return route.path;
}

describe('POST /auth/register', () => {
  it('opens an account with the terms accepted, logs it in, and mails a code and a link', async () => {
    const email = newAddress();
    const res = await client(api).call('post', '/auth/register', {
      json: { email: email.toUpperCase(), password: GOOD_PASSWORD, acceptTerms: true },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      account: {
        email,
        emailVerified: false,
        status: 'active',
        termsVersion: TERMS_VERSION,
        identities: [],
      },
      verificationEmailSent: true,
    });
    expect(typeof res.body.accessToken).toBe('string');
    expect(typeof res.body.refreshToken).toBe('string');
    expect(new Date(res.body.refreshTokenExpiresAt).getTime()).toBeGreaterThan(
      new Date(res.body.accessTokenExpiresAt).getTime(),
    );
    // The password is stored only as a salted scrypt hash with its cost.
    const stored = await Account.findOne({ email }).select('+passwordHash').lean();
    expect(stored?.passwordHash).toMatch(/^scrypt\$15\$8\$3\$[\w-]+\$[\w-]+$/);
    expect(stored?.passwordHash).not.toContain(GOOD_PASSWORD);
    expect(JSON.stringify(res.body)).not.toContain('scrypt');

    const mail = await mailTo(email);
    expect(codeIn(mail)).toMatch(/^\d{6}$/);
    expect(linkIn(mail.text, 'verify-email').searchParams.get('token')).toMatch(/^[\w-]{43}$/);

    // Logged in but unverified: /me works, routes that need a verified email say why not.
    const me = await api.call('get', '/me', { token: res.body.accessToken });
    expect(me.status).toBe(200);
    const refused = await api.call('get', verifiedOnlyPath(), { token: res.body.accessToken });
    expect(refused.status).toBe(403);
    expect(refused.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
  });

  it.each([
    ['short1!', 'PASSWORD_TOO_SHORT'],
    ['onlyletterspassword', 'PASSWORD_ONE_KIND'],
    ['12345678901234', 'PASSWORD_ONE_KIND'],
    ['Password123!', 'PASSWORD_TOO_COMMON'],
    ['1q2w3e4r5t', 'PASSWORD_TOO_COMMON'],
    ['x'.repeat(129) + '1', 'PASSWORD_TOO_LONG'],
  ])('refuses the password %j and names the rule (%s)', async (password, reason) => {
    const email = newAddress();
    const res = await client(api).call('post', '/auth/register', {
      json: { email, password, acceptTerms: true },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'password', reason },
    });
    expect(res.body.error.message.length).toBeGreaterThan(10);
    expect(await Account.countDocuments({ email })).toBe(0);
  });

  it('refuses a password that contains the first part of the email', async () => {
    const res = await client(api).call('post', '/auth/register', {
      json: { email: 'ngozi.okafor@example.com', password: 'Ngozi.Okafor-2024', acceptTerms: true },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.reason).toBe('PASSWORD_CONTAINS_EMAIL');
  });

  it('refuses without the terms accepted, and a malformed address', async () => {
    const c = client(api);
    const noTerms = await c.call('post', '/auth/register', {
      json: { email: newAddress(), password: GOOD_PASSWORD },
    });
    expect(noTerms.status).toBe(400);
    expect(noTerms.body.error.details.issues[0].path).toBe('body.acceptTerms');
    const badEmail = await c.call('post', '/auth/register', {
      json: { email: 'not-an-address', password: GOOD_PASSWORD, acceptTerms: true },
    });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error.details.reason).toBe('INVALID_EMAIL');
  });

  it('answers 409 EMAIL_TAKEN for an address that has an account, and changes nothing', async () => {
    const { email } = await register();
    const before = await Account.findOne({ email }).select('+passwordHash').lean();
    const res = await client(api).call('post', '/auth/register', {
      json: { email, password: 'another harbour 55', acceptTerms: true },
    });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'EMAIL_TAKEN' } });
    expect(res.body.error.message).toMatch(/Log in, or reset your password/);
    const after = await Account.findOne({ email }).select('+passwordHash').lean();
    expect(after?.passwordHash).toBe(before?.passwordHash);
  });

  it('limits registrations per IP (429 with Retry-After)', async () => {
    const c = client(api);
    for (let i = 0; i < AUTH_LIMITS.registerPerIp[0].max; i++) {
      const res = await c.call('post', '/auth/register', {
        json: { email: newAddress(), password: GOOD_PASSWORD, acceptTerms: true },
      });
      expect(res.status).toBe(201);
    }
    const email = newAddress();
    const limited = await c.call('post', '/auth/register', {
      json: { email, password: GOOD_PASSWORD, acceptTerms: true },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'ip' } });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(await Account.countDocuments({ email })).toBe(0);
    // Another client is not held up by this one.
    await register();
  });

  it('limits attempts per email across IPs', async () => {
    const email = newAddress();
    for (let i = 0; i < AUTH_LIMITS.registerPerEmail[0].max; i++) {
      const res = await client(api).call('post', '/auth/register', {
        json: { email, password: 'short', acceptTerms: true },
      });
      expect(res.status).toBe(400);
    }
    const limited = await client(api).call('post', '/auth/register', {
      json: { email, password: GOOD_PASSWORD, acceptTerms: true },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.details.scope).toBe('account');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('verifying the email', () => {
  it('with the mailed code: the account is verified and verified-only routes open', async () => {
    const { email, accessToken } = await register();
    const code = codeIn(await mailTo(email));
    const res = await api.call('post', '/auth/verify-email', {
      token: accessToken,
      body: { code },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email, emailVerified: true });
    expect((await api.call('get', verifiedOnlyPath(), { token: accessToken })).status).not.toBe(
      403,
    );
  });

  it('refuses a wrong code with the tries left, and needs a token', async () => {
    const { email, accessToken } = await register();
    const code = codeIn(await mailTo(email));
    const wrong = code === '000000' ? '111111' : '000000';
    const res = await api.call('post', '/auth/verify-email', {
      token: accessToken,
      body: { code: wrong },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toMatchObject({ reason: 'WRONG_CODE', attemptsLeft: 4 });
    const anonymous = await api.call('post', '/auth/verify-email', { body: { code } });
    expect(anonymous.status).toBe(401);
    expect((await Account.findOne({ email }).lean())?.emailVerifiedAt).toBeUndefined();
  });

  it('limits code attempts per account (429 with Retry-After)', async () => {
    const { email, accessToken } = await register();
    await mailTo(email);
    const c = client(api);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await c.call('post', '/auth/verify-email', {
        token: accessToken,
        json: { code: '12345' },
      });
      statuses.push(res.status);
    }
    expect(statuses.every((status) => status === 400)).toBe(true);
    const limited = await client(api).call('post', '/auth/verify-email', {
      token: accessToken,
      json: { code: '123456' },
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('with the link: the page verifies once, then says it already is', async () => {
    const { email, accessToken } = await register();
    const link = linkIn((await mailTo(email)).text, 'verify-email');
    const page = await client(api).call('get', pathOf(link));
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.text).toContain('data-outcome="verified"');
    expect(page.text).toContain(`${email} is verified`);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    const me = await api.call('get', '/me', { token: accessToken });
    expect(me.body.emailVerified).toBe(true);

    const again = await client(api).call('get', pathOf(link));
    expect(again.status).toBe(200);
    expect(again.text).toContain('data-outcome="already"');
  });

  it('shows an expired link as expired, and a broken one as not working', async () => {
    const { email } = await register();
    const link = linkIn((await mailTo(email)).text, 'verify-email');
    api.payments.clock.advanceBy({ hours: 25 });
    const expired = await client(api).call('get', pathOf(link));
    expect(expired.status).toBe(400);
    expect(expired.text).toContain('This link has expired');
    expect((await Account.findOne({ email }).lean())?.emailVerifiedAt).toBeUndefined();

    const broken = await client(api).call(
      'get',
      `/account/verify-email?token=${encodeURIComponent('"><script>alert(1)</script>')}`,
    );
    expect(broken.status).toBe(400);
    expect(broken.text).toContain('This link does not work');
    expect(broken.text).not.toContain('<script>');
  });

  it('escapes the address on the page', async () => {
    const email = `o'brien&co${Math.floor(Math.random() * 1e6)}@example.com`;
    await register(email);
    const link = linkIn((await mailTo(email)).text, 'verify-email');
    const page = await client(api).call('get', pathOf(link));
    expect(page.status).toBe(200);
    expect(page.text).toContain(email.replace('&', '&amp;').replace("'", '&#39;'));
    expect(page.text).not.toContain(email);
  });

  it('resends a new code and link, then makes the customer wait (429 with Retry-After)', async () => {
    const { email, accessToken } = await register();
    const first = await mailTo(email);
    api.payments.clock.advanceBy({ seconds: 61 });
    const res = await api.call('post', '/auth/verify-email/resend', { token: accessToken });
    expect(res.status).toBe(202);
    expect(res.body.sentTo).toBe(email);
    const second = await api.smtp.waitForMail(
      (m) => m.to.includes(email) && m !== first && m.subject.includes('Your Atlantic code'),
    );
    // Only the newest link works.
    const oldPage = await client(api).call('get', pathOf(linkIn(first.text, 'verify-email')));
    expect(oldPage.text).toContain('This link does not work');
    const tooSoon = await api.call('post', '/auth/verify-email/resend', { token: accessToken });
    expect(tooSoon.status).toBe(429);
    expect(Number(tooSoon.headers.get('retry-after'))).toBeGreaterThan(0);
    const code = codeIn(second);
    const verified = await api.call('post', '/auth/verify-email', {
      token: accessToken,
      body: { code },
    });
    expect(verified.body.emailVerified).toBe(true);
    api.payments.clock.advanceBy({ seconds: 61 });
    const done = await api.call('post', '/auth/verify-email/resend', { token: accessToken });
    expect(done.status).toBe(409);
    expect(done.body.error.details.reason).toBe('ALREADY_VERIFIED');
  });
});

describe('POST /auth/login', () => {
  it('logs in with the email in any case and answers tokens that work', async () => {
    const { email } = await register();
    const c = client(api);
    const res = await c.call('post', '/auth/login', {
      json: { email: ` ${email.toUpperCase()} `, password: GOOD_PASSWORD },
      headers: { 'user-agent': 'integration-test/1.0' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      account: { email, emailVerified: false },
      sessionId: expect.stringMatching(/^[0-9a-f]{24}$/),
    });
    const me = await api.call('get', '/me', { token: res.body.accessToken });
    expect(me.body.email).toBe(email);
    const sessions = await api.call('get', '/auth/sessions', { token: res.body.accessToken });
    expect(sessions.body.sessions).toContainEqual(
      expect.objectContaining({
        id: res.body.sessionId,
        current: true,
        ip: c.ip,
        userAgent: 'integration-test/1.0',
      }),
    );
  });

  it('answers a wrong password and an unknown email identically', async () => {
    const { email } = await register();
    const wrongPassword = await client(api).call('post', '/auth/login', {
      json: { email, password: 'violet harbour 1988' },
    });
    const unknownEmail = await client(api).call('post', '/auth/login', {
      json: { email: newAddress(), password: GOOD_PASSWORD },
    });
    expect(wrongPassword.status).toBe(401);
    expect(wrongPassword.body.error.details.reason).toBe('INVALID_CREDENTIALS');
    expect(refusalOf(unknownEmail)).toEqual(refusalOf(wrongPassword));
  });

  it('refuses an account made in chat that has no password, the same way', async () => {
    const email = newAddress();
    await Account.create({ email, emailVerifiedAt: api.payments.clock.now() });
    const res = await client(api).call('post', '/auth/login', {
      json: { email, password: GOOD_PASSWORD },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('INVALID_CREDENTIALS');
  });

  it('lets a suspended account in (to read its account), never a deleted one', async () => {
    const suspended = await register();
    await Account.updateOne({ email: suspended.email }, { $set: { status: 'suspended' } });
    const ok = await client(api).call('post', '/auth/login', {
      json: { email: suspended.email, password: GOOD_PASSWORD },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.account.status).toBe('suspended');

    const deleted = await register();
    await Account.updateOne({ email: deleted.email }, { $set: { status: 'deleted' } });
    const refused = await client(api).call('post', '/auth/login', {
      json: { email: deleted.email, password: GOOD_PASSWORD },
    });
    expect(refused.status).toBe(401);
    expect(refused.body.error.details.reason).toBe('INVALID_CREDENTIALS');
  });

  it('limits attempts per email from many IPs: the right password is refused too once reached', async () => {
    const { email } = await register();
    for (let i = 0; i < AUTH_LIMITS.loginPerEmail[0].max; i++) {
      const res = await client(api).call('post', '/auth/login', {
        json: { email, password: `wrong guess ${i}x` },
      });
      expect(res.status).toBe(401);
    }
    const limited = await client(api).call('post', '/auth/login', {
      json: { email, password: GOOD_PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.details.scope).toBe('account');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    // Once the window has passed, the owner gets in.
    api.payments.clock.advance(retryAfter * 1000);
    const later = await client(api).call('post', '/auth/login', {
      json: { email, password: GOOD_PASSWORD },
    });
    expect(later.status).toBe(200);
  });

  it('limits attempts per IP across emails', async () => {
    const c = client(api);
    for (let i = 0; i < AUTH_LIMITS.loginPerIp[0].max; i++) {
      const res = await c.call('post', '/auth/login', {
        json: { email: newAddress(), password: GOOD_PASSWORD },
      });
      expect(res.status).toBe(401);
    }
    const limited = await c.call('post', '/auth/login', {
      json: { email: newAddress(), password: GOOD_PASSWORD },
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.details.scope).toBe('ip');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});
