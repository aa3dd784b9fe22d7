/**
 * Auto top-up of the PAYG wallet with the saved card, off unless the customer
 * turns it on (setAutoTopUp): when the balance is below their threshold, one
 * unattended charge of their amount (card-or-link.ts chargeSavedCard, no
 * link: nobody is there to follow one). Paid, fulfilment credits the wallet
 * like any top-up.
 *
 * One charge per state of the wallet: the reference carries the wallet's
 * `decisionSeq` (it moves with every ledger entry), so a pass that runs again
 * before the balance changed reuses the same payment instead of charging
 * again, and a declined card is not retried until the wallet moves. A charge
 * that fails, or no saved card, tells the customer once per wallet state.
 */
import { DomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import { Wallet } from '../../models/wallet.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { notify } from '../notifications.js';
import { getWallet } from '../wallet.js';
import { chargeSavedCard, type CardOutcome } from './card-or-link.js';
import type { PaymentsContext } from './context.js';

export interface AutoTopUpSetting {
  thresholdMinor: number;
  amountMinor: number;
}

/** Turns auto top-up on with these figures, or off with null. */
export async function setAutoTopUp(
  accountId: AccountId,
  setting: AutoTopUpSetting | null,
): Promise<void> {
  const account = toAccountId(accountId);
  await getWallet(account); // the wallet exists from here on
  if (setting === null) {
    await Wallet.updateOne({ accountId: account }, { $unset: { autoTopUp: 1 } });
    return;
  }
  const whole = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;
  if (!whole(setting.thresholdMinor) || !whole(setting.amountMinor) || setting.amountMinor === 0) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'Give a threshold and an amount in whole minor units.',
    );
  }
  await Wallet.updateOne({ accountId: account }, { $set: { autoTopUp: setting } });
}

export interface AutoTopUpOutcome {
  accountId: string;
  outcome: CardOutcome;
}

/** One pass over the wallets with auto top-up on and below their threshold. */
export async function runAutoTopUps(ctx: PaymentsContext): Promise<AutoTopUpOutcome[]> {
  const low = await Wallet.find({
    autoTopUp: { $exists: true },
    $expr: { $lt: ['$balanceMinor', '$autoTopUp.thresholdMinor'] },
  }).lean<
    {
      accountId: AccountId;
      currency: Currency;
      balanceMinor: number;
      decisionSeq: number;
      autoTopUp: AutoTopUpSetting;
    }[]
  >();
  const outcomes: AutoTopUpOutcome[] = [];
  for (const wallet of low) {
    const accountId = toAccountId(wallet.accountId);
    const base = `atu-${String(accountId)}-${wallet.decisionSeq}`;
    const outcome = await chargeSavedCard(ctx, {
      accountId,
      amountMinor: wallet.autoTopUp.amountMinor,
      currency: wallet.currency,
      referenceBase: base,
      purpose: 'wallet_topup',
      metadata: { autoTopUp: 'true' },
      faultPrefix: 'auto_topup',
    });
    if (outcome.state === 'not_charged') {
      await notify(
        {
          accountId: String(accountId),
          event: 'wallet_low',
          period: base,
          data: {
            balanceMinor: wallet.balanceMinor,
            currency: wallet.currency,
            autoTopUpFailed: outcome.reason,
          },
        },
        { clock: ctx.clock },
      );
    }
    outcomes.push({ accountId: String(accountId), outcome });
  }
  return outcomes;
}
