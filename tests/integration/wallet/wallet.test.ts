import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import { credit, debit, getWallet, listLedger, reconcileWallets } from '../../../core/wallet.js';
import { LedgerEntry } from '../../../models/ledger-entry.js';
import { Wallet } from '../../../models/wallet.js';
import { useTestDatabase } from '../../support/database.js';
import { pick, useExtraConnections } from './connections.js';

const database = useTestDatabase();
const extra = useExtraConnections(database);
const clock = new TestClock('2026-03-01T10:00:00Z');

function newAccount(): string {
  return new Types.ObjectId().toHexString();
}

async function topUp(accountId: string, amountMinor: number, key = `topup:${newAccount()}`) {
  return credit(
    accountId,
    { amountMinor, currency: 'NGN', key, kind: 'topup', reference: key, description: 'Top-up' },
    { clock },
  );
}

describe('wallet', () => {
  it('creates one empty NGN wallet on first use, even when two first reads race', async () => {
    const accountId = newAccount();
    const [a, b] = await Promise.all([getWallet(accountId), getWallet(accountId)]);
    expect(a).toEqual({ accountId, currency: 'NGN', balanceMinor: 0 });
    expect(b).toEqual(a);
    expect(await Wallet.countDocuments({ accountId })).toBe(1);
  });

  it('credits a top-up once however often the same payment is reported', async () => {
    const accountId = newAccount();
    const first = await topUp(accountId, 500_000, 'topup:ref_once');
    const again = await topUp(accountId, 500_000, 'topup:ref_once');
    expect(first).toMatchObject({ ok: true, balanceMinor: 500_000 });
    expect(again).toEqual(first);
    expect((await getWallet(accountId)).balanceMinor).toBe(500_000);
    expect(await LedgerEntry.countDocuments({ accountId })).toBe(1);
  });

  it('gives exactly floor(balance / amount) of 100 concurrent debits from 3 connections', async () => {
    const accountId = newAccount();
    await topUp(accountId, 1_000);
    const connections = await extra.open(3);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        debit(
          accountId,
          { amountMinor: 30, currency: 'NGN', key: `hour:${accountId}:${i}`, description: 'Hour' },
          { clock, connection: pick(connections, i) },
        ),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(33);
    expect(results.filter((r) => !r.ok)).toHaveLength(67);
    expect(results.find((r) => !r.ok)).toMatchObject({ code: 'INSUFFICIENT_BALANCE' });
    expect((await getWallet(accountId)).balanceMinor).toBe(10);

    // Every decision has its own place in the ledger: 1 top-up + 100 debits, 1..101.
    const { entries } = await listLedger(accountId, { limit: 500, includeRejected: true });
    expect(entries.map((e) => e.seq).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual(
      Array.from({ length: 101 }, (_, i) => i + 1),
    );
    expect(await LedgerEntry.countDocuments({ accountId, status: 'pending' })).toBe(0);
    expect((await reconcileWallets({ fix: false })).drifts).toEqual([]);
  });

  it('applies a key once when 20 calls with it race over 3 connections', async () => {
    const accountId = newAccount();
    await topUp(accountId, 10_000);
    const connections = await extra.open(3);
    const race = <T>(call: (i: number) => Promise<T>) =>
      Promise.all(Array.from({ length: 20 }, (_, i) => call(i)));

    const credits = await race((i) =>
      credit(
        accountId,
        { amountMinor: 2_500, currency: 'NGN', key: 'topup:ref_race', description: 'Top-up' },
        { clock, connection: pick(connections, i) },
      ),
    );
    const debits = await race((i) =>
      debit(
        accountId,
        { amountMinor: 700, currency: 'NGN', key: 'hour:race', description: 'Hour' },
        { clock, connection: pick(connections, i) },
      ),
    );

    expect(new Set(credits.map((r) => r.entryId)).size).toBe(1);
    expect(new Set(debits.map((r) => r.entryId)).size).toBe(1);
    expect(debits.every((r) => r.ok)).toBe(true);
    expect((await getWallet(accountId)).balanceMinor).toBe(10_000 + 2_500 - 700);
    expect(await LedgerEntry.countDocuments({ accountId, status: 'applied' })).toBe(3);
  });

  it('refuses a debit the balance cannot cover, and keeps that answer for the key', async () => {
    const accountId = newAccount();
    await topUp(accountId, 1_000);
    const request = { amountMinor: 1_500, currency: 'NGN', key: 'hour:big', description: 'Hour' };
    const refused = await debit(accountId, { ...request, currency: 'NGN' }, { clock });
    expect(refused).toMatchObject({ ok: false, code: 'INSUFFICIENT_BALANCE', balanceMinor: 1_000 });

    await topUp(accountId, 5_000);
    const retried = await debit(accountId, { ...request, currency: 'NGN' }, { clock });
    expect(retried).toMatchObject({ ok: false, code: 'INSUFFICIENT_BALANCE' });
    expect((await getWallet(accountId)).balanceMinor).toBe(6_000);

    const fresh = await debit(
      accountId,
      { ...request, currency: 'NGN', key: 'hour:big:2' },
      { clock },
    );
    expect(fresh).toMatchObject({ ok: true, balanceMinor: 4_500 });
  });

  it('refuses money in a currency other than the wallet’s', async () => {
    const accountId = newAccount();
    await topUp(accountId, 1_000);
    const attempt = credit(
      accountId,
      { amountMinor: 100, currency: 'USD', key: 'topup:usd', description: 'Top-up' },
      { clock },
    );
    await expect(attempt).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'currency', walletCurrency: 'NGN', currency: 'USD' },
    });
    await expect(
      debit(
        accountId,
        { amountMinor: 100, currency: 'GHS', key: 'hour:ghs', description: 'Hour' },
        { clock },
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await LedgerEntry.countDocuments({ accountId })).toBe(1);
    expect((await getWallet(accountId)).balanceMinor).toBe(1_000);
  });

  it('refuses to reuse a key for a different amount', async () => {
    const accountId = newAccount();
    await topUp(accountId, 1_000, 'topup:ref_reused');
    await expect(topUp(accountId, 2_000, 'topup:ref_reused')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect((await getWallet(accountId)).balanceMinor).toBe(1_000);
  });

  it('refuses amounts that are not positive whole minor units', async () => {
    const accountId = newAccount();
    for (const amountMinor of [0, -5, 1.5, Number.NaN]) {
      await expect(topUp(accountId, amountMinor)).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        details: { field: 'amountMinor' },
      });
    }
  });

  it('lists the ledger newest first, a page at a time', async () => {
    const accountId = newAccount();
    await topUp(accountId, 10_000, 'topup:list');
    for (let i = 0; i < 4; i++) {
      clock.advanceBy({ hours: 1 });
      await debit(
        accountId,
        { amountMinor: 100 * (i + 1), currency: 'NGN', key: `hour:list:${i}`, description: 'Hour' },
        { clock },
      );
    }
    const first = await listLedger(accountId, { limit: 3 });
    expect(first.entries.map((e) => e.amountMinor)).toEqual([-400, -300, -200]);
    expect(first.entries[0]).toMatchObject({
      kind: 'debit',
      status: 'applied',
      currency: 'NGN',
      balanceAfterMinor: 10_000 - 100 - 200 - 300 - 400,
      description: 'Hour',
    });
    const second = await listLedger(accountId, { limit: 3, before: first.nextBefore ?? 0 });
    expect(second.entries.map((e) => e.amountMinor)).toEqual([-100, 10_000]);
    expect(second.entries[1]).toMatchObject({ kind: 'topup', reference: 'topup:list' });
    expect(second.nextBefore).toBeNull();
  });
});
