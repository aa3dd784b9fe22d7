/**
 * Trials held by a refundable deposit, one per person.
 *
 * Before payment: refuse when the account, its email or one of its chat
 * identities already had a trial. After payment, the card is known (Paystack's
 * `authorization.signature`): each of these is claimed under a unique key, and a
 * claim held by someone else means the deposit goes straight back with the reason.
 * At the end of the trial, or when a plan is bought during it, the deposit is
 * refunded to the card through Paystack (or credited to the wallet), and
 * Paystack's refund webhooks carry it to `processed`.
 */
import { isDuplicateKeyError } from '../../models/errors.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity } from '../../models/channel-identity.js';
import { Payment, type PaymentRecord, type RefundStatus } from '../../models/payment.js';
import { TrialClaim, type TrialClaimKind } from '../../models/trial-claim.js';
import { DomainError, isDomainError } from '../../lib/errors.js';
import { credit } from '../wallet.js';
import { notify, notifyAdmins } from '../notifications.js';
import { endTrial, getLiveSubscription, listDueTrials } from '../subscriptions.js';
import type { PaymentsContext } from './context.js';

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

export type RefundOutcome =
  | { state: 'requested' | 'pending' | 'processing' | 'processed'; method: 'card' | 'wallet' }
  | { state: 'failed' | 'needs-attention'; method: 'card' | 'wallet'; reason: string }
  | { state: 'retry_later'; method: 'card' | 'wallet'; reason: string };

/**
 * Returns a trial deposit, once. The refund is recorded on the payment before
 * anything moves; a run that died after that resumes from the record.
 */
export async function refundDeposit(
  ctx: PaymentsContext,
  reference: string,
  options: { reason: string; method?: 'card' | 'wallet' },
): Promise<RefundOutcome> {
  const found = await Payment.findOne({ reference });
  if (!found || found.purpose !== 'trial_deposit' || found.status !== 'paid') {
    throw new DomainError('CONFLICT', 'Only a paid trial deposit can be refunded this way.');
  }
  if (!found.refund) {
    const method = options.method ?? (await ctx.settings.get()).trialDepositRefund;
    const now = ctx.clock.now();
    await Payment.updateOne(
      { _id: found._id, refund: { $exists: false } },
      {
        $set: {
          refund: {
            status: 'requested',
            method: method === 'wallet' ? 'wallet' : 'card',
            amountMinor: found.amountMinor,
            reason: options.reason,
            requestedAt: now,
            updatedAt: now,
          },
        },
      },
    );
    ctx.faults.reach('refund.recorded');
  }
  const payment = await Payment.findOne({ reference });
  const refund = payment?.refund;
  if (!payment || !refund) throw new Error(`refund record of ${reference} vanished`);
  const method = refund.method;
  if (refund.status !== 'requested') return outcomeOf(refund.status, method);

  if (method === 'wallet') {
    await credit(
      String(payment.accountId),
      {
        amountMinor: refund.amountMinor,
        currency: payment.currency,
        key: `deposit-refund:${reference}`,
        kind: 'refund',
        reference,
        description: 'Trial deposit returned to the wallet',
      },
      { clock: ctx.clock, faults: ctx.faults },
    );
    ctx.faults.reach('refund.wallet_credited');
    await advanceRefund(ctx, payment, 'processed');
    return { state: 'processed', method };
  }

  try {
    // A run that died after Paystack took the refund left it `requested` here:
    // look before asking again, so the customer is never refunded twice.
    const [earlier] = (await ctx.provider.listRefunds({ reference })).filter(
      (r) => r.status !== 'failed',
    );
    if (earlier) {
      await advanceRefund(ctx, payment, earlier.status, String(earlier.id));
      return outcomeOf(earlier.status, method);
    }
    ctx.faults.reach('refund.checked_provider');
    const result = await ctx.provider.refund({
      reference,
      amountMinor: refund.amountMinor,
      currency: payment.currency,
      merchantNote: `Atlantic trial deposit: ${refund.reason}`,
      customerNote: 'Your Atlantic trial deposit',
    });
    ctx.faults.reach('refund.provider_called');
    await advanceRefund(ctx, payment, result.status, String(result.id));
    return outcomeOf(result.status, method);
  } catch (err) {
    // Only Paystack's own answers are outcomes here; anything else is a bug or a crash.
    if (!isDomainError(err, ['PAYMENT_REJECTED', 'UPSTREAM_FAILED'])) throw err;
    const reason = err.message;
    if (isDomainError(err, 'PAYMENT_REJECTED')) {
      const given = err.details?.providerMessage;
      const providerMessage = typeof given === 'string' ? given : reason;
      await advanceRefund(ctx, payment, 'failed');
      return { state: 'failed', method, reason: providerMessage };
    }
    ctx.logger.warn({ reference, err }, 'refund.provider_unreachable');
    return { state: 'retry_later', method, reason };
  }
}

const rank: Record<RefundStatus, number> = {
  requested: 0,
  pending: 1,
  processing: 2,
  processed: 3,
  failed: 3,
  'needs-attention': 3,
};

/**
 * Moves a refund forward only (Paystack's events may arrive late, twice or out
 * of order). A final state is announced before it is recorded, under a dedup
 * key, so a process that dies in between re-announces nothing and loses nothing.
 */
export async function advanceRefund(
  ctx: PaymentsContext,
  payment: PaymentRecord,
  status: RefundStatus,
  providerRefundId?: string,
): Promise<boolean> {
  const current = payment.refund?.status;
  if (current !== undefined && rank[current] >= rank[status]) return false;
  const accountId = String(payment.accountId);
  const data = {
    reference: payment.reference,
    amountMinor: payment.refund?.amountMinor ?? payment.amountMinor,
    currency: payment.currency,
    method: payment.refund?.method,
    reason: payment.refund?.reason,
  };
  if (status === 'processed') {
    await notify(
      { accountId, event: 'deposit_refunded', period: payment.reference, data },
      { clock: ctx.clock },
    );
  } else if (status === 'failed' || status === 'needs-attention') {
    await notifyAdmins(
      {
        event: 'deposit_refund_failed',
        dedupKey: `deposit_refund_failed:${payment.reference}:${status}`,
        data: { ...data, accountId, status },
      },
      { clock: ctx.clock },
    );
  }
  ctx.faults.reach('refund.announced');
  const earlier = (Object.keys(rank) as RefundStatus[]).filter((s) => rank[s] < rank[status]);
  const changed = await Payment.updateOne(
    { _id: payment._id, 'refund.status': { $in: earlier } },
    {
      $set: {
        'refund.status': status,
        'refund.updatedAt': ctx.clock.now(),
        ...(providerRefundId ? { 'refund.providerRefundId': providerRefundId } : {}),
      },
    },
  );
  return changed.modifiedCount === 1;
}

function outcomeOf(status: RefundStatus, method: 'card' | 'wallet'): RefundOutcome {
  if (status === 'failed' || status === 'needs-attention') {
    return { state: status, method, reason: 'refund did not go through' };
  }
  return { state: status, method };
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

/** Refunds stuck in `requested` (Paystack was unreachable) are tried again. */
export async function resumeRequestedRefunds(ctx: PaymentsContext): Promise<number> {
  const stuck = await Payment.find({ 'refund.status': 'requested' }).limit(100);
  for (const payment of stuck) {
    await refundDeposit(ctx, payment.reference, { reason: payment.refund?.reason ?? 'retry' });
  }
  return stuck.length;
}
