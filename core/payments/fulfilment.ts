/**
 * Fulfilment: money confirmed by Paystack becomes what the customer bought,
 * exactly once, whoever asks first (the callback page, a webhook, the
 * re-verification job) and however often.
 *
 *   verify with Paystack (never fulfil on doubt) -> amount/currency/reference must
 *   match, else flag for admins -> ONE conditional update to `paid` -> effects,
 *   each keyed by the payment reference: save the card, start the subscription /
 *   trial / credit the wallet, issue the invoice, announce it -> `fulfilledAt`.
 *
 * A run that dies after `paid` leaves `fulfilledAt` unset; the next run skips the
 * verify and redoes the effects, each of which is a no-op the second time.
 */
import { isDuplicateKeyError } from '../../models/errors.js';
import { findOneByKey, updateOne } from '../../models/batching.js';
import { Payment, type PaymentRecord } from '../../models/payment.js';
import { PaymentMethod } from '../../models/payment-method.js';
import { isDomainError } from '../../lib/errors.js';
import type { VerifiedTransaction } from '../../lib/payment-provider.js';
import {
  activateFromPayment,
  cancel,
  getLiveSubscription,
  getSubscription,
  recoverFromPastDue,
  renewPeriod,
} from '../subscriptions.js';
import { credit } from '../wallet.js';
import { issueInvoice } from '../invoices.js';
import { notify, notifyAdmins } from '../notifications.js';
import { gbText, getPlan } from '../plans.js';
import { addPaidData } from './data-topup.js';
import { claimTrial, refundDeposit, refundDepositOfRunningTrial } from './trial.js';
import type { PaymentsContext } from './context.js';
import { applyPlanChange } from './plan-change.js';

export type FulfilmentOutcome =
  /** Paid and everything it bought is in place (now or by an earlier run). */
  | { state: 'fulfilled'; reference: string }
  /** Paystack has no final answer yet (the customer has not paid, or it is processing). */
  | { state: 'pending'; reference: string }
  /** Paystack says the payment failed. */
  | { state: 'failed'; reference: string; reason: string }
  /** Paystack reported a success that does not match what we asked for; an admin decides. */
  | { state: 'flagged'; reference: string; reason: string }
  /** Paystack could not be asked (timeout, 5xx): nothing changed, ask again later. */
  | { state: 'retry_later'; reference: string; reason: string }
  /** No payment of ours has this reference. */
  | { state: 'unknown_reference'; reference: string };

export async function fulfilPayment(
  ctx: PaymentsContext,
  reference: string,
): Promise<FulfilmentOutcome> {
  let payment = await findOneByKey<PaymentRecord>(Payment, 'reference', reference);
  if (!payment) return { state: 'unknown_reference', reference };
  if (payment.status === 'flagged') {
    return { state: 'flagged', reference, reason: payment.flagReason ?? 'flagged' };
  }

  if (payment.status !== 'paid') {
    const verdict = await verify(ctx, payment);
    if (verdict.state !== 'success') return verdict.outcome;
    const now = ctx.clock.now();
    // The one conditional update to `paid` (batched with the others of this turn);
    // whoever then reads `paid` applies the effects, each of which happens once.
    await updateOne(Payment, {
      filter: { _id: payment._id, status: { $in: ['pending', 'failed', 'abandoned'] } },
      update: {
        $set: {
          status: 'paid',
          paidAt: verdict.transaction.paidAt ?? now,
          verifiedAt: now,
          providerTransactionId: verdict.transaction.id,
          ...(verdict.transaction.authorization
            ? { authorization: verdict.transaction.authorization }
            : {}),
        },
        $unset: { openCheckoutKey: 1, lastVerifyError: 1 },
        $inc: { verifyAttempts: 1 },
      },
    });
    ctx.faults.reach('fulfil.marked_paid');
    // Paid by us, or moved first by a concurrent run (to paid, or flagged).
    payment = await findOneByKey<PaymentRecord>(Payment, 'reference', reference);
    if (!payment) return { state: 'unknown_reference', reference };
    if (payment.status !== 'paid') {
      // Flagged by a concurrent run between our verify and our update.
      return { state: 'flagged', reference, reason: payment.flagReason ?? 'flagged' };
    }
  }
  if (payment.fulfilledAt) return { state: 'fulfilled', reference };

  if (payment.needsReviewAt) {
    return { state: 'flagged', reference, reason: payment.flagReason ?? 'needs review' };
  }
  try {
    await applyEffects(ctx, payment);
  } catch (err) {
    if (!isDomainError(err, 'CONFLICT')) throw err;
    return holdForReview(ctx, payment, err.message);
  }
  await updateOne(Payment, {
    filter: { _id: payment._id, fulfilledAt: { $exists: false } },
    update: { $set: { fulfilledAt: ctx.clock.now() } },
  });
  ctx.logger.info(
    { reference, accountId: String(payment.accountId), purpose: payment.purpose },
    'payment.fulfilled',
  );
  return { state: 'fulfilled', reference };
}

/** Paid, but what it bought clashes with the account's state: keep the money, ask an admin. */
async function holdForReview(
  ctx: PaymentsContext,
  payment: PaymentRecord,
  reason: string,
): Promise<FulfilmentOutcome> {
  await Payment.updateOne(
    { _id: payment._id, needsReviewAt: { $exists: false } },
    { $set: { needsReviewAt: ctx.clock.now(), flagReason: reason } },
  );
  ctx.logger.warn({ reference: payment.reference, reason }, 'payment.needs_review');
  await notifyAdmins(
    {
      event: 'payment_flagged',
      dedupKey: `payment_flagged:${payment.reference}`,
      data: paymentSummary(payment, { reason, paid: true }),
    },
    { clock: ctx.clock },
  );
  return { state: 'flagged', reference: payment.reference, reason };
}

type Verdict =
  | { state: 'success'; transaction: VerifiedTransaction }
  | { state: 'other'; outcome: FulfilmentOutcome };

async function verify(ctx: PaymentsContext, payment: PaymentRecord): Promise<Verdict> {
  const { reference } = payment;
  let transaction: VerifiedTransaction;
  try {
    transaction = await ctx.provider.verifyTransaction(reference);
  } catch (err) {
    if (!isDomainError(err, ['PAYMENT_REJECTED', 'UPSTREAM_FAILED'])) throw err;
    const reason = err.message;
    await Payment.updateOne(
      { _id: payment._id },
      { $set: { lastVerifyError: reason }, $inc: { verifyAttempts: 1 } },
    );
    if (isDomainError(err, 'PAYMENT_REJECTED')) {
      // Paystack does not know the transaction yet (the link was never opened): not paid.
      return { state: 'other', outcome: { state: 'pending', reference } };
    }
    ctx.logger.warn({ reference, err }, 'payment.verify_failed');
    return { state: 'other', outcome: { state: 'retry_later', reference, reason } };
  }
  // Each verify is counted; the success path counts it in its own update to `paid`.
  if (transaction.status !== 'success') {
    await Payment.updateOne({ _id: payment._id }, { $inc: { verifyAttempts: 1 } });
  }

  switch (transaction.status) {
    case 'success': {
      const mismatch = mismatchOf(payment, transaction);
      if (mismatch) return { state: 'other', outcome: await flag(ctx, payment, mismatch) };
      return { state: 'success', transaction };
    }
    case 'failed': {
      // Announced first under its dedup key, then recorded: a crash in between loses nothing.
      if (payment.status === 'pending') {
        await notify(
          {
            accountId: String(payment.accountId),
            event: 'payment_failed',
            period: reference,
            data: paymentSummary(payment, { reason: transaction.gatewayResponse }),
          },
          { clock: ctx.clock },
        );
      }
      await Payment.updateOne(
        { _id: payment._id, status: 'pending' },
        { $set: { status: 'failed' }, $unset: { openCheckoutKey: 1 } },
      );
      return {
        state: 'other',
        outcome: { state: 'failed', reference, reason: transaction.gatewayResponse ?? 'failed' },
      };
    }
    case 'reversed':
      return {
        state: 'other',
        outcome: await flag(ctx, payment, 'Paystack reports this transaction as reversed'),
      };
    default:
      return { state: 'other', outcome: { state: 'pending', reference } };
  }
}

function mismatchOf(payment: PaymentRecord, transaction: VerifiedTransaction): string | null {
  if (transaction.reference !== payment.reference) {
    return `reference ${transaction.reference} does not match ${payment.reference}`;
  }
  if (transaction.currency !== payment.currency) {
    return `paid in ${transaction.currency}, expected ${payment.currency}`;
  }
  if (transaction.amountMinor !== payment.amountMinor) {
    return `paid ${transaction.amountMinor} minor units, expected ${payment.amountMinor}`;
  }
  return null;
}

async function flag(
  ctx: PaymentsContext,
  payment: PaymentRecord,
  reason: string,
): Promise<FulfilmentOutcome> {
  const changed = await Payment.updateOne(
    { _id: payment._id, status: { $in: ['pending', 'failed', 'abandoned'] } },
    { $set: { status: 'flagged', flagReason: reason }, $unset: { openCheckoutKey: 1 } },
  );
  if (changed.modifiedCount === 1) {
    ctx.logger.warn({ reference: payment.reference, reason }, 'payment.flagged');
  }
  await notifyAdmins(
    {
      event: 'payment_flagged',
      dedupKey: `payment_flagged:${payment.reference}`,
      data: paymentSummary(payment, { reason }),
    },
    { clock: ctx.clock },
  );
  return { state: 'flagged', reference: payment.reference, reason };
}

/** Everything a paid payment buys; each step is keyed by the reference and safe to repeat. */
async function applyEffects(ctx: PaymentsContext, payment: PaymentRecord): Promise<void> {
  const accountId = String(payment.accountId);
  const { reference } = payment;
  await saveReusableCard(payment);
  ctx.faults.reach('fulfil.card_saved');

  let description: string;
  switch (payment.purpose) {
    case 'plan': {
      const plan = await getPlan(payment.planCode ?? '');
      await refundDepositOfRunningTrial(ctx, accountId, 'upgraded');
      ctx.faults.reach('fulfil.trial_closed');
      // A PAYG customer buying a plan: pay as you go ends as the plan starts.
      const live = await getLiveSubscription(accountId);
      if (live?.planKind === 'payg' && live.activatedByPaymentRef !== reference) {
        await cancel(live._id, {
          atPeriodEnd: false,
          clock: ctx.clock,
          reason: `moved to ${plan.code} (${reference})`,
        });
      }
      await activateFromPayment({
        accountId,
        planCode: plan.code,
        paymentRef: reference,
        clock: ctx.clock,
        // What the customer agreed to at checkout, even if an admin changed the
        // price since: a new price applies from the next renewal.
        currency: payment.currency,
        priceMinor: payment.amountMinor,
      });
      description = `${plan.name} plan`;
      break;
    }
    case 'trial_deposit': {
      const claim = await claimTrial(ctx, payment);
      if (claim.ok) {
        await activateFromPayment({
          accountId,
          planCode: 'trial',
          paymentRef: reference,
          clock: ctx.clock,
        });
        ctx.faults.reach('fulfil.trial_started');
        await notify(
          { accountId, event: 'trial_started', period: reference, data: { reference } },
          { clock: ctx.clock },
        );
      } else {
        await notify(
          {
            accountId,
            event: 'trial_refused',
            period: reference,
            data: { reference, alreadyUsed: claim.reason, depositMinor: payment.amountMinor },
          },
          { clock: ctx.clock },
        );
        ctx.faults.reach('fulfil.trial_refused');
        await refundDeposit(ctx, reference, {
          reason: `trial_already_used:${claim.reason}`,
          method: 'card',
        });
      }
      description = 'Refundable trial deposit';
      break;
    }
    case 'plan_change': {
      const given: unknown = (payment.metadata as { quoteId?: unknown } | undefined)?.quoteId;
      const quoteId = typeof given === 'string' ? given : '';
      const applied = await applyPlanChange(ctx, quoteId);
      const plan = await getPlan(payment.planCode ?? '');
      if (applied !== 'applied') {
        // Already applied by another payment of the same quote, or the plan
        // changed before this one was paid: the money is the customer's, in
        // the wallet, and nothing is applied twice.
        await creditInstead(
          ctx,
          payment,
          `Payment for a plan change that was ${applied === 'already' ? 'already made' : 'overtaken by another change'}`,
        );
      }
      description = `${plan.name} plan for the rest of the period (plan change)`;
      break;
    }
    case 'data_topup': {
      const given: unknown = (payment.metadata as { bytes?: unknown } | undefined)?.bytes;
      const bytes = typeof given === 'string' ? Number(given) : 0;
      const added = await addPaidData(
        accountId,
        bytes,
        payment.paidAt ?? ctx.clock.now(),
        reference,
      );
      if (!added) {
        await creditInstead(ctx, payment, 'Extra data paid after the plan or its window ended');
      }
      description = added
        ? `Extra data: ${gbText(bytes)} for the current period`
        : 'Extra data paid too late (credited to the wallet)';
      break;
    }
    case 'renewal': {
      const renewed = await renewFromPayment(ctx, payment);
      const plan = await getPlan(payment.planCode ?? '');
      description = renewed
        ? `${plan.name} plan, next period (renewal)`
        : 'Renewal paid after the period was settled (credited to the wallet)';
      break;
    }
    case 'wallet_topup': {
      await credit(
        accountId,
        {
          amountMinor: payment.amountMinor,
          currency: payment.currency,
          key: `topup:${reference}`,
          kind: 'topup',
          reference,
          description: 'Wallet top-up',
        },
        { clock: ctx.clock, faults: ctx.faults },
      );
      description = 'Wallet top-up';
      break;
    }
  }
  ctx.faults.reach('fulfil.purchase_applied');

  const settings = await ctx.settings.get();
  await issueInvoice(
    {
      accountId,
      paymentReference: reference,
      // The address the customer paid with (and Paystack sent its receipt to).
      customer: { email: payment.email },
      lines: [{ description, quantity: 1, unitMinor: payment.amountMinor }],
      currency: payment.currency,
      // Deposits and prepaid balances are not sales yet; VAT applies to plans only.
      vat:
        payment.purpose === 'plan' || payment.purpose === 'plan_change'
          ? settings.vat
          : { enabled: false, rateBps: 0 },
      business: settings.business,
      paidAt: payment.paidAt ?? ctx.clock.now(),
    },
    { clock: ctx.clock, faults: ctx.faults },
  );
  ctx.faults.reach('fulfil.invoice_issued');

  await notify(
    {
      accountId,
      event: 'payment_confirmed',
      period: reference,
      data: paymentSummary(payment, { description }),
    },
    { clock: ctx.clock },
  );
  ctx.faults.reach('fulfil.notified');
}

/**
 * A paid renewal: the next period, once. Paid for a period that was renewed
 * meanwhile (another attempt went through) or for a plan that ended, the
 * money goes to the wallet instead. Returns whether it renewed.
 */
async function renewFromPayment(ctx: PaymentsContext, payment: PaymentRecord): Promise<boolean> {
  const metadata = (payment.metadata ?? {}) as { subscriptionId?: unknown; periodEnd?: unknown };
  const subscriptionId = typeof metadata.subscriptionId === 'string' ? metadata.subscriptionId : '';
  const forPeriodEnd = typeof metadata.periodEnd === 'string' ? metadata.periodEnd : '';
  const sub = await getSubscription(subscriptionId);
  const renewable = sub.status === 'active' || sub.status === 'past_due';
  const samePeriod = sub.periodEnd?.toISOString() === forPeriodEnd;
  if (sub.renewalPaymentRefs.includes(payment.reference)) return true;
  if (renewable && samePeriod) {
    if (sub.status === 'past_due') {
      await recoverFromPastDue(sub._id, { paymentRef: payment.reference, clock: ctx.clock });
    } else {
      await renewPeriod(sub._id, { paymentRef: payment.reference, clock: ctx.clock });
    }
    return true;
  }
  await creditInstead(ctx, payment, 'Renewal paid after the period was settled');
  return false;
}

/**
 * A paid payment whose purchase can no longer be applied (already applied by
 * another payment, overtaken, or too late): the money goes to the wallet,
 * once per payment.
 */
async function creditInstead(
  ctx: PaymentsContext,
  payment: PaymentRecord,
  description: string,
): Promise<void> {
  await credit(
    String(payment.accountId),
    {
      amountMinor: payment.amountMinor,
      currency: payment.currency,
      key: `unapplied:${payment.reference}`,
      kind: 'credit',
      reference: payment.reference,
      description,
    },
    { clock: ctx.clock, faults: ctx.faults },
  );
}

async function saveReusableCard(payment: PaymentRecord): Promise<void> {
  const card = payment.authorization;
  if (!card?.reusable) return;
  try {
    await updateOne(PaymentMethod, {
      filter: { accountId: payment.accountId, authorizationCode: card.authorizationCode },
      update: {
        $set: {
          provider: 'paystack',
          signature: card.signature,
          email: payment.email,
          last4: card.last4,
          expMonth: card.expMonth,
          expYear: card.expYear,
          brand: card.brand,
          bank: card.bank,
        },
        $setOnInsert: { savedFromReference: payment.reference },
      },
      upsert: true,
    });
  } catch (err) {
    // A concurrent run saved the same card first: that is the outcome we wanted.
    if (!isDuplicateKeyError(err)) throw err;
  }
}

export function paymentSummary(
  payment: PaymentRecord,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    reference: payment.reference,
    purpose: payment.purpose,
    planCode: payment.planCode,
    amountMinor: payment.amountMinor,
    currency: payment.currency,
    ...extra,
  };
}
