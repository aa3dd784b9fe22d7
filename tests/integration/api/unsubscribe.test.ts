/**
 * The one-click unsubscribe page that emails link to (core/email/unsubscribe.ts):
 * opening the link only shows a button (mail scanners open links), the
 * button or a mail client's RFC 8058 POST mutes that event for that account,
 * and a forged or altered token changes nothing.
 */
import { describe, expect, it } from '@jest/globals';
import { getPreferences } from '../../../core/notifications.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
const api = useApiHarness();

const tokenFor = (accountId: string): string => {
  const links = api.deps.unsubscribe;
  if (!links) throw new Error('the harness signs unsubscribe links');
  return links.token(accountId, 'weekly_summary');
};

const form = (token: string): RequestInit => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token }).toString(),
});

describe('/account/unsubscribe', () => {
  it('shows a button on opening the link, and mutes the event when it is pressed', async () => {
    const customer = await api.customer();
    const token = tokenFor(customer.accountId);

    const page = await api.raw('get', `/account/unsubscribe?token=${encodeURIComponent(token)}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-outcome="form"');
    expect(html).toContain('weekly summary');
    // Opening the link changed nothing.
    expect((await getPreferences(customer.accountId)).mutedEvents).not.toContain('weekly_summary');

    const done = await api.raw('post', '/account/unsubscribe', form(token));
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('data-outcome="unsubscribed"');
    expect((await getPreferences(customer.accountId)).mutedEvents).toContain('weekly_summary');

    // Pressing again is fine and changes nothing more.
    expect((await api.raw('post', '/account/unsubscribe', form(token))).status).toBe(200);
    expect(
      (await getPreferences(customer.accountId)).mutedEvents.filter((e) => e === 'weekly_summary'),
    ).toHaveLength(1);
  });

  it('accepts a mail client’s one-click POST to the link itself (RFC 8058)', async () => {
    const customer = await api.customer();
    const token = tokenFor(customer.accountId);
    const res = await api.raw('post', `/account/unsubscribe?token=${encodeURIComponent(token)}`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(res.status).toBe(200);
    expect((await getPreferences(customer.accountId)).mutedEvents).toContain('weekly_summary');
  });

  it('refuses a forged or altered token and mutes nothing', async () => {
    const victim = await api.customer();
    const other = await api.customer();
    const genuine = tokenFor(other.accountId);
    // Someone else's account id in a token signed for another account.
    const altered = genuine.replace(other.accountId, victim.accountId);
    for (const token of [
      altered,
      `${victim.accountId}.weekly_summary.AAAAAAAAAAAAAAAAAAAAAA`,
      'x',
    ]) {
      const res = await api.raw('post', '/account/unsubscribe', form(token));
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('data-outcome="invalid"');
    }
    const page = await api.raw('get', `/account/unsubscribe?token=${encodeURIComponent(altered)}`);
    expect(page.status).toBe(400);
    expect((await getPreferences(victim.accountId)).mutedEvents).not.toContain('weekly_summary');
  });
});
