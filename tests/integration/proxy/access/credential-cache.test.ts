/**
 * The gateway's in-memory cache of account facts: what it keeps and forgets
 * around its background refreshes.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../../lib/clock.js';
import { CredentialCache } from '../../../../proxy/credential-cache.js';
import { useTestDatabase } from '../../../support/database.js';
import { newCustomer, seedCatalogue } from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
useTestDatabase();

beforeAll(async () => {
  await seedCatalogue(clock);
});

describe('credential cache', () => {
  it('keeps the facts of an account that comes back while a refresh is under way', async () => {
    const customer = await newCustomer('personal', clock);
    const timerClock = new TestClock('2026-03-02T10:00:00.000Z');
    const cache = new CredentialCache({ clock, timerClock, hotForMs: 1_000 });
    await cache.refresh();
    await cache.loadAccount(customer.accountId);

    // Idle long enough to count as cold; a refresh starts (and decides what
    // is hot) before the customer's next connection reads the cache.
    timerClock.advance(5_000);
    const refreshing = cache.refresh();
    expect(cache.accountFacts(customer.accountId)?.subscription?.planCode).toBe('personal');
    await refreshing;

    // The account was just used: the refresh that ends now must not drop it,
    // or its next connection finds no facts (and no quota period to open).
    expect(cache.accountFacts(customer.accountId)?.subscription?.planCode).toBe('personal');
  });

  it('forgets an account nobody used for longer than the hot time', async () => {
    const customer = await newCustomer('personal', clock);
    const timerClock = new TestClock('2026-03-02T10:00:00.000Z');
    const cache = new CredentialCache({ clock, timerClock, hotForMs: 1_000 });
    await cache.loadAccount(customer.accountId);
    timerClock.advance(5_000);
    await cache.refresh();
    expect(cache.accountFacts(customer.accountId)).toBeUndefined();
  });
});
