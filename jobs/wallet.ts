/**
 * The wallets' safety net: every hour, each wallet's balance is checked
 * against its ledger (core/wallet.ts reconcileAndAlert); a drift that can be
 * fixed is fixed, and every drift found is reported to the admins.
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { reconcileAndAlert } from '../core/wallet.js';

export const walletJobNames = {
  reconcile: 'wallet.reconcile',
} as const;

export async function registerWalletJobs(
  agenda: Agenda,
  { clock, logger }: { clock: Clock; logger: Logger },
): Promise<void> {
  agenda.define(walletJobNames.reconcile, async () => {
    const report = await reconcileAndAlert({ clock });
    if (report.drifts.length > 0) {
      logger.warn({ checked: report.checkedWallets, drifts: report.drifts }, 'wallet.drift_found');
    }
  });
  await agenda.every('1 hour', walletJobNames.reconcile);
}
