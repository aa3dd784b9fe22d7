/**
 * Acceptance of the terms of service. The version is the date the current
 * terms took effect; a change of terms gets a new version, and an account
 * whose `termsVersion` differs is asked again.
 */
import type { Clock } from '../../lib/clock.js';
import { Account } from '../../models/account.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { activeAccount, toAccountView, type AccountView } from './view.js';

export const TERMS_VERSION = '2026-01-15';

/**
 * Records that the customer accepted the current terms now. Accepting the
 * same version again keeps the first time; accepting a newer one moves it.
 */
export async function acceptTerms(
  ctx: { clock: Clock },
  accountId: AccountId,
): Promise<AccountView> {
  const id = toAccountId(accountId);
  await activeAccount(id);
  await Account.updateOne(
    { _id: id, status: 'active', termsVersion: { $ne: TERMS_VERSION } },
    { $set: { termsAcceptedAt: ctx.clock.now(), termsVersion: TERMS_VERSION } },
  );
  return toAccountView(await activeAccount(id));
}

/** True when the account accepted the terms in force now (not only an older version). */
export function hasAcceptedCurrentTerms(account: Pick<AccountView, 'termsVersion'>): boolean {
  return account.termsVersion === TERMS_VERSION;
}
