/**
 * The README's REST walk-through, step by step, over real HTTP: register,
 * verify the email with the mailed code, log in, buy a plan (paid on the
 * Paystack emulator), connect, and use the credentials through the real
 * gateway with curl. If a step of the README stops working, this fails.
 */
import { beforeAll, expect, it } from '@jest/globals';
import { useApiGateway, useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import { hasCommand } from '../../support/proxy-wire.js';

// Declared before the database hooks: the gateway stops before the database goes.
const gateway = useApiGateway(['ng']);
useTestDatabase();
const api = useApiHarness();
beforeAll(() => gateway.start(api));

const withCurl = hasCommand('curl');
const maybe = withCurl ? it : it.skip;

maybe('register, verify, log in, buy, connect: the credentials carry traffic', async () => {
  const email = 'ada@example.com';
  const password = 'correct horse battery 9';

  // 1. Register (the answer holds tokens already; the email is not verified yet).
  const registered = await api.call('post', '/auth/register', {
    body: { email, password, acceptTerms: true },
  });
  expect(registered.status).toBe(201);
  expect(registered.body.account.emailVerified).toBe(false);
  let token: string = registered.body.accessToken;

  // Most routes wait for the verified email.
  const early = await api.call('get', '/me/subscription', { token });
  expect(early.status).toBe(403);
  expect(early.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');

  // 2. Verify with the 6-digit code from the mail (the mail also has a one-click link).
  const mail = await api.smtp.waitForMail((m) => m.to.includes(email));
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
  expect(code).toBeDefined();
  expect(mail.text).toContain('/account/verify-email?token=');
  const verified = await api.call('post', '/auth/verify-email', { token, body: { code } });
  expect(verified.status).toBe(200);
  expect(verified.body.emailVerified).toBe(true);

  // 3. Log in (as a client would another day).
  const login = await api.call('post', '/auth/login', { body: { email, password } });
  expect(login.status).toBe(200);
  token = login.body.accessToken;

  // 4. Buy: a Paystack link; the plan starts once Paystack confirms the payment.
  const checkout = await api.call('post', '/me/checkout', {
    token,
    body: { planCode: 'personal' },
  });
  expect(checkout.status).toBe(200);
  expect(checkout.body.authorizationUrl).toMatch(/^http/);
  await api.payments.payAndSettle(checkout.body.reference);
  const subscription = await api.call('get', '/me/subscription', { token });
  expect(subscription.body).toMatchObject({ subscription: { planCode: 'personal' } });

  // 5. Connect: credentials and a ready URL (the password is shown this once).
  const connected = await api.call('post', '/me/connect', {
    token,
    body: { location: 'ng', protocol: 'socks5' },
  });
  expect(connected.status).toBe(200);
  const url: string = connected.body.connection.url;
  expect(url).toMatch(/^socks5h?:\/\/[^:]+-country-ng:[^@]+@/);

  // 6. Use it (here the gateway listens on 127.0.0.1 and a free port).
  const result = await gateway.through(url);
  expect(result.ok).toBe(true);
  expect(result.body).toContain('hello from target');
});
