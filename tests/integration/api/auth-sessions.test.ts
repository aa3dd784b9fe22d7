/**
 * Login sessions over real HTTP: refresh tokens rotate on every use, a spent
 * one presented again ends its whole family; logging out (this session, all
 * of them, or one by id) stops its tokens at once; another account's session
 * id is a 404.
 */
import { describe, expect, it } from '@jest/globals';
import { Account } from '../../../models/account.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import { GOOD_PASSWORD, client, newAddress } from './auth-support.js';

useTestDatabase();
const api = useApiHarness();

/** An account registered over the API, and `logins` sessions of it (each from its own IP). */
async function accountWithLogins(logins: number) {
  const email = newAddress();
  const registered = await client(api).call('post', '/auth/register', {
    json: { email, password: GOOD_PASSWORD, acceptTerms: true },
  });
  expect(registered.status).toBe(201);
  const sessions: { accessToken: string; refreshToken: string; sessionId: string }[] = [
    registered.body,
  ];
  for (let i = 1; i < logins; i++) {
    const res = await client(api).call('post', '/auth/login', {
      json: { email, password: GOOD_PASSWORD },
    });
    expect(res.status).toBe(200);
    sessions.push(res.body);
  }
  return { email, accountId: registered.body.account.id as string, sessions };
}

const me = (token: string) => api.call('get', '/me', { token });

describe('POST /auth/refresh', () => {
  it('swaps a refresh token for new tokens that work; the old access token keeps its session', async () => {
    const customer = await api.customer();
    const res = await api.call('post', '/auth/refresh', {
      body: { refreshToken: customer.refreshToken },
    });
    expect(res.status).toBe(200);
    expect(res.body.sessionId).toBe(customer.sessionId);
    expect(res.body.refreshToken).not.toBe(customer.refreshToken);
    expect((await me(res.body.accessToken)).status).toBe(200);
    expect((await me(customer.accessToken)).status).toBe(200);
    // The next swap works with the new refresh token.
    const next = await api.call('post', '/auth/refresh', {
      body: { refreshToken: res.body.refreshToken },
    });
    expect(next.status).toBe(200);
  });

  it('ends the whole family when a spent token comes back (A -> B; A again: REUSED; B refused)', async () => {
    const customer = await api.customer();
    const tokenA = customer.refreshToken;
    const b = await api.call('post', '/auth/refresh', { body: { refreshToken: tokenA } });
    expect(b.status).toBe(200);

    const reused = await api.call('post', '/auth/refresh', { body: { refreshToken: tokenA } });
    expect(reused.status).toBe(401);
    expect(reused.body.error.details.reason).toBe('REFRESH_REUSED');

    const tokenB = await api.call('post', '/auth/refresh', {
      body: { refreshToken: b.body.refreshToken },
    });
    expect(tokenB.status).toBe(401);
    expect(tokenB.body.error.details.reason).toBe('REFRESH_ENDED');
    // And every access token of the session stops at once.
    expect((await me(b.body.accessToken)).status).toBe(401);
    expect((await me(customer.accessToken)).body.error.details.reason).toBe('SESSION_ENDED');
  });

  it('refuses a forged or malformed token without touching a real session', async () => {
    const customer = await api.customer();
    const [sessionId] = customer.refreshToken.split('.');
    const forged = `${sessionId}.${'A'.repeat(43)}`;
    const res = await api.call('post', '/auth/refresh', { body: { refreshToken: forged } });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('REFRESH_INVALID');
    const junk = await api.call('post', '/auth/refresh', { body: { refreshToken: 'nope' } });
    expect(junk.status).toBe(401);
    // The real token still works: a guess does not end the owner's session.
    const ok = await api.call('post', '/auth/refresh', {
      body: { refreshToken: customer.refreshToken },
    });
    expect(ok.status).toBe(200);
  });

  it('refuses the session of an account deleted meanwhile', async () => {
    const customer = await api.customer();
    await Account.updateOne({ _id: customer.accountId }, { $set: { status: 'deleted' } });
    const res = await api.call('post', '/auth/refresh', {
      body: { refreshToken: customer.refreshToken },
    });
    expect(res.status).toBe(401);
  });

  it('limits refreshes per IP (429 with Retry-After)', async () => {
    const c = client(api);
    for (let i = 0; i < 60; i++) {
      const res = await c.call('post', '/auth/refresh', { json: { refreshToken: 'nope' } });
      expect(res.status).toBe(401);
    }
    const limited = await c.call('post', '/auth/refresh', { json: { refreshToken: 'nope' } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('stops after 30 days without use', async () => {
    const customer = await api.customer();
    api.payments.clock.advanceBy({ days: 31 });
    const res = await api.call('post', '/auth/refresh', {
      body: { refreshToken: customer.refreshToken },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('REFRESH_EXPIRED');
  });
});

describe('logging out', () => {
  it('POST /auth/logout ends this session only: its tokens stop, the others go on', async () => {
    const { sessions } = await accountWithLogins(2);
    const [mine, other] = sessions as [(typeof sessions)[0], (typeof sessions)[0]];
    const res = await api.call('post', '/auth/logout', { token: mine.accessToken });
    expect(res.status).toBe(204);
    expect((await me(mine.accessToken)).body.error.details.reason).toBe('SESSION_ENDED');
    const refresh = await api.call('post', '/auth/refresh', {
      body: { refreshToken: mine.refreshToken },
    });
    expect(refresh.body.error.details.reason).toBe('REFRESH_ENDED');
    expect((await me(other.accessToken)).status).toBe(200);
    // Logging out again with the dead token is refused, not an error.
    expect((await api.call('post', '/auth/logout', { token: mine.accessToken })).status).toBe(401);
  });

  it('POST /auth/logout-all ends every session, this one included', async () => {
    const { sessions } = await accountWithLogins(3);
    const res = await api.call('post', '/auth/logout-all', { token: sessions[0]?.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sessionsEnded: 3 });
    for (const session of sessions) expect((await me(session.accessToken)).status).toBe(401);
  });

  it('needs a token', async () => {
    expect((await api.call('post', '/auth/logout')).status).toBe(401);
    expect((await api.call('post', '/auth/logout-all')).status).toBe(401);
  });
});

describe('the session list', () => {
  it('lists the live sessions, marks the current one, and ends another by id', async () => {
    const { sessions } = await accountWithLogins(3);
    const [current, second, third] = sessions as [
      (typeof sessions)[0],
      (typeof sessions)[0],
      (typeof sessions)[0],
    ];
    const list = await api.call('get', '/auth/sessions', { token: current.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.sessions).toHaveLength(3);
    expect(
      list.body.sessions.filter((s: { current: boolean }) => s.current).map((s: any) => s.id),
    ).toEqual([current.sessionId]);
    expect(JSON.stringify(list.body)).not.toContain(current.refreshToken.split('.')[1]);

    const ended = await api.call('delete', `/auth/sessions/${second.sessionId}`, {
      token: current.accessToken,
    });
    expect(ended.status).toBe(204);
    expect((await me(second.accessToken)).status).toBe(401);
    expect((await me(third.accessToken)).status).toBe(200);
    const after = await api.call('get', '/auth/sessions', { token: current.accessToken });
    expect(after.body.sessions.map((s: { id: string }) => s.id).sort()).toEqual(
      [current.sessionId, third.sessionId].sort(),
    );
    // Already ended: 404.
    const again = await api.call('delete', `/auth/sessions/${second.sessionId}`, {
      token: current.accessToken,
    });
    expect(again.status).toBe(404);
  });

  it("answers 404 for another account's session and leaves it alone", async () => {
    const me1 = await api.customer();
    const other = await api.customer();
    const res = await api.call('delete', `/auth/sessions/${other.sessionId}`, {
      token: me1.accessToken,
    });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect((await me(other.accessToken)).status).toBe(200);
    const list = await api.call('get', '/auth/sessions', { token: me1.accessToken });
    expect(list.body.sessions.map((s: { id: string }) => s.id)).toEqual([me1.sessionId]);
  });

  it('refuses a malformed id and a missing token', async () => {
    const customer = await api.customer();
    const bad = await api.call('delete', '/auth/sessions/not-an-id', {
      token: customer.accessToken,
    });
    expect(bad.status).toBe(400);
    expect((await api.call('get', '/auth/sessions')).status).toBe(401);
  });
});
