import { randomBytes } from 'node:crypto';
import { activateFromPayment } from '../../core/subscriptions.js';
import type { Clock } from '../../lib/clock.js';
import { Account } from '../../models/account.js';

/** A new account with nothing else, as an id. */
export async function newAccountId(): Promise<string> {
  return String((await Account.create({}))._id);
}

/** A new account whose `planCode` subscription was paid now (a made-up payment reference). */
export async function accountOnPlan(planCode: string, clock: Clock): Promise<string> {
  const accountId = await newAccountId();
  await activateFromPayment({
    accountId,
    planCode,
    paymentRef: `ref_${randomBytes(6).toString('hex')}`,
    clock,
  });
  return accountId;
}
