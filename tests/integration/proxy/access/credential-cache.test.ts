/**
 * The gateway's in-memory cache of account facts: what it keeps and forgets
 * around its background refreshes.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { addSeat, removeSeat, setSeatCaps } from '../../../../core/team.js';
import { credit } from '../../../../core/wallet.js';
import { TestClock } from '../../../../lib/clock.js';
import { Account } from '../../../../models/account.js';
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

  it('re-reads what changed at the next refresh, and a hand edit of the database within the sweep', async () => {
    const customer = await newCustomer('personal', clock);
    const owner = await newCustomer('team', clock);
    const member = { accountId: String((await Account.create({}))._id) };
    // A refresh every 100 ms, so the sweep re-reads every account once per 10
    // refreshes; no overlap for writers' clock skew and business time ahead of
    // the wall clock (the window of writes then starts where the last refresh
    // did), so a write is new to exactly one refresh.
    const cache = new CredentialCache({
      clock: new TestClock(new Date(Date.now() + 3_600_000)),
      refreshMs: 100,
      factsSweepMs: 1_000,
      overlapMs: 0,
    });
    await cache.refresh();
    for (const { accountId } of [customer, owner, member]) await cache.loadAccount(accountId);
    const facts = (accountId: string) => cache.accountFacts(accountId);

    // Written through the application (updatedAt moves): seen at the next refresh.
    await Account.updateOne({ _id: customer.accountId }, { $set: { status: 'suspended' } });
    const topUp = { amountMinor: 50_000, currency: 'NGN', description: 'top-up' } as const;
    await credit(member.accountId, { ...topUp, key: 'topup:cache-test' }, { clock });
    await addSeat(owner.accountId, member.accountId, {}, { clock });
    await cache.refresh();
    expect(facts(customer.accountId)?.accountStatus).toBe('suspended');
    expect(facts(member.accountId)?.seat?.ownerAccountId).toBe(owner.accountId);
    expect(facts(owner.accountId)?.team?.accountIds).toEqual([owner.accountId, member.accountId]);
    // A seat change marks both accounts as written, so the next refresh reads them.
    await setSeatCaps(owner.accountId, member.accountId, { maxConnections: 2 }, { clock });
    await cache.refresh();
    expect(facts(member.accountId)?.seat?.maxConnections).toBe(2);
    // A removed seat leaves no document of its own to find by date: the same.
    await removeSeat(owner.accountId, member.accountId);
    await cache.refresh();
    expect(facts(member.accountId)?.seat ?? null).toBeNull();
    expect(facts(owner.accountId)?.team?.accountIds ?? [owner.accountId]).toEqual([
      owner.accountId,
    ]);
    expect(facts(member.accountId)?.wallet?.balanceMinor).toBe(50_000);

    // A hand edit that bypasses updatedAt: the accounts that did not change
    // are not read again at every refresh...
    await Account.collection.updateOne(
      { _id: new Types.ObjectId(customer.accountId) },
      { $set: { status: 'active' } },
    );
    await cache.refresh();
    expect(facts(customer.accountId)?.accountStatus).toBe('suspended');
    // ...but every account is read whole within the sweep (10 refreshes here).
    for (let i = 0; i < 10; i++) await cache.refresh();
    expect(facts(customer.accountId)?.accountStatus).toBe('active');
  });
});
