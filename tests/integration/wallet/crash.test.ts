/**
 * Crash-and-resume: the process dies at every gap between two writes of a
 * credit or a debit; then the caller retries, or the recovery job runs. Money
 * is neither lost nor applied twice.
 */
import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import { SimulatedCrash, crashAt, recordSteps, type FaultPoints } from '../../../lib/faults.js';
import {
  credit,
  debit,
  getWallet,
  recoverPendingEntries,
  reconcileWallets,
} from '../../../core/wallet.js';
import { LedgerEntry } from '../../../models/ledger-entry.js';
import { WALLET_DECISION_WINDOW, Wallet } from '../../../models/wallet.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
const clock = new TestClock('2026-03-01T10:00:00Z');

function newAccount(): string {
  return new Types.ObjectId().toHexString();
}

async function fund(accountId: string, amountMinor: number): Promise<void> {
  await credit(
    accountId,
    { amountMinor, currency: 'NGN', key: `seed:${accountId}`, description: 'Seed' },
    { clock },
  );
}

type Flow = (accountId: string, faults: FaultPoints) => Promise<{ ok: boolean }>;

const flows: Record<string, { flow: Flow; seedMinor: number; expectedMinor: number; ok: boolean }> =
  {
    'a top-up': {
      flow: (accountId, faults) =>
        credit(
          accountId,
          {
            amountMinor: 2_000,
            currency: 'NGN',
            key: `topup:${accountId}`,
            kind: 'topup',
            reference: 'ref_1',
            description: 'Top-up',
          },
          { clock, faults },
        ),
      seedMinor: 500,
      expectedMinor: 2_500,
      ok: true,
    },
    'a debit': {
      flow: (accountId, faults) =>
        debit(
          accountId,
          { amountMinor: 300, currency: 'NGN', key: `hour:${accountId}`, description: 'Hour' },
          { clock, faults },
        ),
      seedMinor: 500,
      expectedMinor: 200,
      ok: true,
    },
    'a refused debit': {
      flow: (accountId, faults) =>
        debit(
          accountId,
          { amountMinor: 900, currency: 'NGN', key: `hour:${accountId}`, description: 'Hour' },
          { clock, faults },
        ),
      seedMinor: 500,
      expectedMinor: 500,
      ok: false,
    },
  };

async function stepsOf(flow: Flow, seedMinor: number): Promise<string[]> {
  const accountId = newAccount();
  await fund(accountId, seedMinor);
  const steps = recordSteps();
  await flow(accountId, steps);
  return steps.seen;
}

async function expectSettled(accountId: string, expectedMinor: number): Promise<void> {
  expect((await getWallet(accountId)).balanceMinor).toBe(expectedMinor);
  expect(await LedgerEntry.countDocuments({ accountId })).toBe(2);
  expect(await LedgerEntry.countDocuments({ accountId, status: 'pending' })).toBe(0);
  const report = await reconcileWallets({ fix: false });
  expect(report.drifts.filter((d) => d.accountId === accountId)).toEqual([]);
}

describe.each(Object.entries(flows))(
  'crashing %s',
  (_name, { flow, seedMinor, expectedMinor, ok }) => {
    it('passes the named steps in order', async () => {
      expect(await stepsOf(flow, seedMinor)).toEqual(['wallet.entry_recorded', 'wallet.decided']);
    });

    it.each(['wallet.entry_recorded', 'wallet.decided'])(
      'at %s, then retrying with the same key, moves the money once',
      async (step) => {
        const accountId = newAccount();
        await fund(accountId, seedMinor);
        const faults = crashAt(step);
        await expect(flow(accountId, faults)).rejects.toBeInstanceOf(SimulatedCrash);

        const retried = await flow(accountId, faults);
        expect(retried.ok).toBe(ok);
        const again = await flow(accountId, faults);
        expect(again).toEqual(retried);
        await expectSettled(accountId, expectedMinor);
      },
    );

    it.each(['wallet.entry_recorded', 'wallet.decided'])(
      'at %s, then running the recovery, moves the money once',
      async (step) => {
        const accountId = newAccount();
        await fund(accountId, seedMinor);
        await expect(flow(accountId, crashAt(step))).rejects.toBeInstanceOf(SimulatedCrash);

        // Both recoveries race, as on two workers; the second run finds nothing to do.
        const reports = await Promise.all([
          recoverPendingEntries(clock),
          recoverPendingEntries(clock),
        ]);
        expect(reports.every((r) => r.unresolved.length === 0)).toBe(true);
        expect((await recoverPendingEntries(clock)).applied).toBe(0);
        await expectSettled(accountId, expectedMinor);

        // A late retry by the original caller changes nothing either.
        expect((await flow(accountId, crashAt('none'))).ok).toBe(ok);
        await expectSettled(accountId, expectedMinor);
      },
    );
  },
);

describe('recovery', () => {
  it('finishes a crashed debit correctly after many other movements of the wallet', async () => {
    const accountId = newAccount();
    await fund(accountId, 10_000);
    await expect(
      debit(
        accountId,
        { amountMinor: 1_000, currency: 'NGN', key: 'hour:crashed', description: 'Hour' },
        { clock, faults: crashAt('wallet.decided') },
      ),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    for (let i = 0; i < 30; i++) {
      await debit(
        accountId,
        { amountMinor: 10, currency: 'NGN', key: `hour:after:${i}`, description: 'Hour' },
        { clock },
      );
    }
    const report = await recoverPendingEntries(clock);
    expect(report).toEqual({ applied: 1, rejected: 0, unresolved: [] });
    expect((await getWallet(accountId)).balanceMinor).toBe(10_000 - 1_000 - 300);
    const entry = await LedgerEntry.findOne({ idempotencyKey: 'hour:crashed' });
    expect(entry?.status).toBe('applied');
    expect(entry?.seq).toBe(2);
  });

  it('leaves only entries younger than the grace period for their caller to finish', async () => {
    const accountId = newAccount();
    await fund(accountId, 1_000);
    await expect(
      debit(
        accountId,
        { amountMinor: 100, currency: 'NGN', key: 'hour:young', description: 'Hour' },
        { clock, faults: crashAt('wallet.entry_recorded') },
      ),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    expect(await recoverPendingEntries(clock, { olderThanMs: 60_000 })).toMatchObject({
      applied: 0,
    });
    clock.advanceBy({ minutes: 2 });
    expect(await recoverPendingEntries(clock, { olderThanMs: 60_000 })).toMatchObject({
      applied: 1,
    });
    expect((await getWallet(accountId)).balanceMinor).toBe(900);
  });

  it('refuses to guess about an entry left undecided past the wallet’s memory', async () => {
    const accountId = newAccount();
    await fund(accountId, 10_000);
    const request = {
      amountMinor: 1_000,
      currency: 'NGN' as const,
      key: 'hour:forgotten',
      description: 'Hour',
    };
    await expect(
      debit(accountId, request, { clock, faults: crashAt('wallet.decided') }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    // The wallet then moves more times than it remembers (as if by other debits).
    await Wallet.updateOne(
      { accountId },
      {
        $inc: { decisionSeq: WALLET_DECISION_WINDOW },
        $push: {
          recentDecisions: {
            $each: Array.from({ length: WALLET_DECISION_WINDOW }, (_, i) => `-other${i}`),
            $slice: -WALLET_DECISION_WINDOW,
          },
        },
      },
    );
    const wallet = await Wallet.findOne({ accountId });
    expect(wallet?.recentDecisions).toHaveLength(WALLET_DECISION_WINDOW);

    await expect(debit(accountId, request, { clock })).rejects.toMatchObject({ code: 'INTERNAL' });
    const report = await recoverPendingEntries(clock);
    expect(report.unresolved).toHaveLength(1);
    expect((await getWallet(accountId)).balanceMinor).toBe(9_000);

    const reconciled = await reconcileWallets({ fix: true });
    const mine = reconciled.drifts.find((d) => d.accountId === accountId);
    expect(mine?.unresolvedEntryIds).toHaveLength(1);
    expect(mine?.fixed).toBe(false);
    expect((await getWallet(accountId)).balanceMinor).toBe(9_000);
  });
});
