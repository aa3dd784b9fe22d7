/**
 * Trials held by a refundable deposit, one per person.
 *
 * Before payment: refuse when the account, its email or one of its chat
 * identities already had a trial. After payment, the card is known (Paystack's
 * `authorization.signature`): each of these is claimed under a unique key, and a
 * claim held by someone else means the deposit goes straight back with the reason.
 * At the end of the trial, or when a plan is bought during it, the deposit is
 * refunded to the card through Paystack (or credited to the wallet) by the one
 * refund flow of core/payments/refunds.ts, and Paystack's refund webhooks
 * carry it to `processed`.
 */
import { isDuplicateKeyError } from '../../models/errors.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity } from '../../models/channel-identity.js';
import { Payment, type PaymentRecord } from '../../models/payment.js';
import type { RefundMethod } from '../../models/refund.js';
import { TrialClaim, type TrialClaimKind } from '../../models/trial-claim.js';
import { DomainError } from '../../lib/errors.js';
import { endTrial, getLiveSubscription, listDueTrials } from '../subscriptions.js';
import type { PaymentsContext } from './context.js';
import { getRefundByKey, requestRefund, type RefundOutcome } from './refunds.js';

export type TrialRefusal = 'account' | 'email' | 'telegram' | 'whatsapp' | 'card';

const refusalText: Record<TrialRefusal, string> = {
  account: 'This account has already had a trial.',
  email: 'This email address has already had a trial.',
  telegram: 'This Telegram account has already had a trial.',
  whatsapp: 'This WhatsApp number has already had a trial.',
  card: 'This card has already been used for a trial, so the deposit is refunded.',
};

/** The claims that identify the person behind an account (without the card, unknown before payment). */
async function identityClaims(
  accountId: string,
): Promise<{ kind: TrialClaimKind; value: string }[]> {
  const account = await Account.findById(accountId);
  const claims: { kind: TrialClaimKind; value: string }[] = [{ kind: 'account', value: accountId }];
  if (account?.email) claims.push({ kind: 'email', value: account.email });
  const identities = await ChannelIdentity.find({ accountId });
  for (const identity of identities)
    claims.push({ kind: identity.channel, value: identity.externalId });
  return claims;
}

/** Refuses a trial deposit checkout for someone who already had a trial. */
export async function assertTrialAllowed(accountId: string): Promise<void> {
  const claims = await identityClaims(accountId);
  const taken = await TrialClaim.findOne({
    $or: claims.map(({ kind, value }) => ({ kind, value })),
  });
  if (taken) {
    throw new DomainError('TRIAL_NOT_ALLOWED', refusalText[taken.kind], {
      details: { claim: taken.kind },
    });
  }
}

/**
 * Claims everything that identifies this person for the trial paid by `payment`.
 * Safe to repeat for the same payment; `ok: false` names what someone else claimed.
 */
export async function claimTrial(
  ctx: PaymentsContext,
  payment: PaymentRecord,
): Promise<{ ok: true } | { ok: false; reason: TrialRefusal }> {
  const accountId = String(payment.accountId);
  const claims = await identityClaims(accountId);
  const signature = payment.authorization?.signature;
  if (signature) claims.push({ kind: 'card', value: signature });

  for (const { kind, value } of claims) {
    try {
      await TrialClaim.create({ kind, value, accountId, paymentReference: payment.reference });
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const holder = await TrialClaim.findOne({ kind, value });
      if (holder && holder.paymentReference !== payment.reference) {
        ctx.logger.info(
          { reference: payment.reference, claim: kind },
          'trial.refused_after_payment',
        );
        return { ok: false, reason: kind };
      }
    }
  }
  return { ok: true };
}

/**
 * Returns a trial deposit, once (core/payments/refunds.ts does the refunding,
 * keyed `deposit:<reference>`): to the card, or to the wallet when the
 * business says so (`trialDepositRefund`) or the caller asks.
 */
export async function refundDeposit(
  ctx: PaymentsContext,
  reference: string,
  options: { reason: string; method?: RefundMethod },
): Promise<RefundOutcome> {
  const found = await Payment.findOne({ reference }, { purpose: 1, status: 1 }).lean();
  if (!found || found.purpose !== 'trial_deposit' || found.status !== 'paid') {
    throw new DomainError('CONFLICT', 'Only a paid trial deposit can be refunded this way.');
  }
  const key = `deposit:${reference}`;
  // Asked again (a resumed run, a later setting): the way chosen the first time stands.
  const method =
    (await getRefundByKey(key))?.method ??
    options.method ??
    ((await ctx.settings.get()).trialDepositRefund === 'wallet' ? 'wallet' : 'card');
  const outcome = await requestRefund(ctx, {
    key,
    paymentReference: reference,
    method,
    kind: 'deposit',
    reason: options.reason,
    requestedBy: { actor: 'system', channel: 'system' },
  });
  if (outcome.state === 'refused') {
    // An admin refunded it already: there is nothing left to return.
    ctx.logger.info({ reference, refusal: outcome.refusal }, 'trial.deposit_not_refunded');
  }
  return outcome;
}

/** When a plan is bought during a trial: end the trial now and return its deposit. */
export async function refundDepositOfRunningTrial(
  ctx: PaymentsContext,
  accountId: string,
  reason: string,
): Promise<void> {
  // A running trial is live, so the live subscription is the one to look at.
  const subscription = await getLiveSubscription(accountId);
  if (!subscription || subscription.status !== 'trialing') return;
  await endTrial(String(subscription._id), { clock: ctx.clock, reason });
  ctx.faults.reach('trial.ended');
  const depositRef = subscription.activatedByPaymentRef;
  if (depositRef) await refundDeposit(ctx, depositRef, { reason });
}

/** Ends every trial whose time is up and returns its deposit (the jobs issue schedules it). */
export async function finishDueTrials(ctx: PaymentsContext): Promise<{ ended: number }> {
  let ended = 0;
  for (const subscription of await listDueTrials(ctx.clock.now())) {
    await endTrial(String(subscription._id), { clock: ctx.clock, reason: 'trial_ended' });
    ctx.faults.reach('trial.ended');
    if (subscription.activatedByPaymentRef) {
      await refundDeposit(ctx, subscription.activatedByPaymentRef, { reason: 'trial_ended' });
    }
    ended += 1;
  }
  return { ended };
}
