import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import { SimulatedCrash, crashAt } from '../../../lib/faults.js';
import { credit, debit, getWallet, reconcileWallets } from '../../../core/wallet.js';
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

async function fund(accountId: string, amountMinor: number, key = `seed:${accountId}`) {
  await credit(accountId, { amountMinor, currency: 'NGN', key, description: 'Seed' }, { clock });
}

async function spend(accountId: string, amountMinor: number, key: string) {
  return debit(accountId, { amountMinor, currency: 'NGN', key, description: 'Hour' }, { clock });
}

async function appliedSum(accountId: string): Promise<number> {
  const entries = await LedgerEntry.find({ accountId, status: 'applied' });
  return entries.reduce((total, e) => total + e.amountMinor, 0);
}

describe('reconcileWallets', () => {
  it('finds a balance that drifted from its ledger and rebuilds it, once', async () => {
    const healthy = newAccount();
    const drifted = newAccount();
    await fund(healthy, 5_000);
    await fund(drifted, 5_000);
    await spend(drifted, 1_200, 'hour:d1');
    await Wallet.updateOne({ accountId: drifted }, { $inc: { balanceMinor: 777 } });

    const dryRun = await reconcileWallets({ fix: false });
    expect(dryRun.checkedWallets).toBeGreaterThanOrEqual(2);
    expect(dryRun.drifts).toEqual([
      expect.objectContaining({
        accountId: drifted,
        balanceMinor: 4_577,
        ledgerBalanceMinor: 3_800,
        driftMinor: 777,
        fixed: false,
      }),
    ]);
    expect((await getWallet(drifted)).balanceMinor).toBe(4_577);

    const [a, b] = await Promise.all([
      reconcileWallets({ fix: true }),
      reconcileWallets({ fix: true }),
    ]);
    const fixes = [...a.drifts, ...b.drifts].filter((d) => d.fixed);
    expect(fixes).toHaveLength(1);
    expect((await getWallet(drifted)).balanceMinor).toBe(3_800);
    expect((await reconcileWallets({ fix: true })).drifts).toEqual([]);
  });

  it('counts an entry a crash left applied but unmarked as applied, not as drift', async () => {
    const accountId = newAccount();
    await fund(accountId, 5_000);
    await expect(
      debit(
        accountId,
        { amountMinor: 700, currency: 'NGN', key: 'hour:unmarked', description: 'Hour' },
        { clock, faults: crashAt('wallet.decided') },
      ),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    const report = await reconcileWallets({ fix: true });
    expect(report.drifts).toEqual([]);
    expect((await getWallet(accountId)).balanceMinor).toBe(4_300);
  });

  it('keeps the balance equal to the ledger while fixing alongside concurrent debits', async () => {
    const accountId = newAccount();
    await fund(accountId, 10_000);
    await Wallet.updateOne({ accountId }, { $inc: { balanceMinor: -2_000 } });
    const connections = await extra.open(3);

    const debits = Array.from({ length: 40 }, (_, i) =>
      debit(
        accountId,
        { amountMinor: 100, currency: 'NGN', key: `hour:c${i}`, description: 'Hour' },
        { clock, connection: pick(connections, i) },
      ),
    );
    const fixes = Array.from({ length: 3 }, (_, i) =>
      reconcileWallets({ fix: true, connection: pick(connections, i) }),
    );
    await Promise.all([...debits, ...fixes]);

    const settle = await reconcileWallets({ fix: true });
    expect(settle.drifts.every((d) => d.fixed || d.driftMinor === 0)).toBe(true);
    const wallet = await getWallet(accountId);
    expect(wallet.balanceMinor).toBe(await appliedSum(accountId));
    expect(wallet.balanceMinor).toBeGreaterThanOrEqual(0);
    expect((await reconcileWallets({ fix: false })).drifts).toEqual([]);
  });

  it('reports but does not fix a ledger that sums below zero', async () => {
    const accountId = newAccount();
    await fund(accountId, 1_000);
    // A balance wrongly raised, then spent: the ledger now owes more than it holds.
    await Wallet.updateOne({ accountId }, { $inc: { balanceMinor: 5_000 } });
    expect(await spend(accountId, 4_000, 'hour:overspent')).toMatchObject({ ok: true });

    const report = await reconcileWallets({ fix: true });
    expect(report.drifts).toEqual([
      expect.objectContaining({
        accountId,
        ledgerBalanceMinor: -3_000,
        driftMinor: 5_000,
        fixed: false,
      }),
    ]);
    expect(report.drifts[0]?.note).toMatch(/less than zero/);
    expect((await getWallet(accountId)).balanceMinor).toBe(2_000);
  });
});
