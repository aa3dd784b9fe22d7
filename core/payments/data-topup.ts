/**
 * Extra data for the current quota window: a one-off purchase of the
 * business's data pack (settings `dataTopUpGb` for `dataTopUpPriceMinor`),
 * paid with the saved card or a payment link (card-or-link.ts), added to the
 * window that contains the moment of payment when it is paid (fulfilment.ts),
 * once per payment. A plan without a data quota (pay as you go) has nothing
 * to top up; a window that ended before the payment arrived gets nothing
 * and the money goes to the wallet.
 */
import { randomBytes } from 'node:crypto';
import { DomainError } from '../../lib/errors.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { getPlan } from '../plans.js';
import { addQuotaBytes, openQuotaPeriod, planWindowRequest } from '../quota.js';
import { currentQuotaWindow, getLiveSubscription } from '../subscriptions.js';
import { chargeCardOrLink, type ChargeOutcome } from './card-or-link.js';
import type { PaymentsContext } from './context.js';

const GB = 1_000_000_000;

export interface DataTopUpOutcome {
  bytes: number;
  amountMinor: number;
  payment: ChargeOutcome;
}

/**
 * Buys one data pack. `requestId` (letters, digits, dashes) makes a retried
 * request the same purchase; without it every call is a new one.
 */
export async function buyDataTopUp(
  ctx: PaymentsContext,
  input: { accountId: AccountId; requestId?: string },
): Promise<DataTopUpOutcome> {
  const accountId = toAccountId(input.accountId);
  const sub = await getLiveSubscription(accountId);
  const plan = sub ? await getPlan(sub.planCode) : null;
  if (!sub || !plan?.quota || sub.status !== 'active') {
    throw new DomainError(
      'CONFLICT',
      'Extra data is for a running plan with a data allowance; pay as you go has no cap to raise.',
    );
  }
  const settings = await ctx.settings.get();
  if (settings.dataTopUpPriceMinor === 0) {
    throw new DomainError('UNSUPPORTED', 'Extra data is not on sale at the moment.');
  }
  const requestId = input.requestId ?? randomBytes(8).toString('hex');
  if (!/^[A-Za-z0-9-]{1,64}$/.test(requestId)) {
    throw new DomainError('VALIDATION_FAILED', 'requestId: letters, digits and dashes only.', {
      details: { field: 'requestId' },
    });
  }
  const bytes = settings.dataTopUpGb * GB;
  const payment = await chargeCardOrLink(ctx, {
    accountId,
    amountMinor: settings.dataTopUpPriceMinor,
    currency: settings.currency,
    referenceBase: `dtu-${String(accountId)}-${requestId}`,
    purpose: 'data_topup',
    planCode: sub.planCode,
    metadata: { bytes: String(bytes) },
    faultPrefix: 'data_topup',
  });
  return { bytes, amountMinor: settings.dataTopUpPriceMinor, payment };
}

/**
 * Fulfilment of a paid data pack: the bytes go to the window containing
 * `paidAt` (opened from the plan if the gateway has not yet), once per
 * `reference`. False when there is no such window any more (the caller
 * credits the wallet).
 */
export async function addPaidData(
  accountId: string,
  bytes: number,
  paidAt: Date,
  reference: string,
): Promise<boolean> {
  const sub = await getLiveSubscription(accountId);
  const plan = sub ? await getPlan(sub.planCode) : null;
  const window = sub && plan?.quota ? currentQuotaWindow(sub, paidAt) : null;
  if (window && plan?.quota) {
    await openQuotaPeriod(accountId, planWindowRequest(window, plan.quota));
  }
  const added = await addQuotaBytes(accountId, bytes, paidAt, { key: reference });
  return added !== null;
}
