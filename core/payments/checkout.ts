/**
 * Checkout: turns "I want to buy X" into a Paystack payment link.
 *
 *   account checks -> amount from the plan / settings -> Payment (pending, our
 *   reference, one open checkout per account and purpose) -> transaction/initialize
 *   -> the link is stored on the payment and returned for the bot to send.
 *
 * Two checkouts racing for the same account and purpose share one payment and
 * one link. A checkout that died before Paystack answered is retired and
 * replaced on the next attempt.
 */
import { isDuplicateKeyError } from '../../models/errors.js';
import { Account } from '../../models/account.js';
import { Payment, type PaymentDocument, type PaymentPurpose } from '../../models/payment.js';
import { DomainError } from '../../lib/errors.js';
import { newReference } from '../../lib/ids.js';
import { formatMoney, type Currency } from '../../lib/money.js';
import { getPlanForSale, planPrice } from '../plans.js';
import { getLiveSubscription } from '../subscriptions.js';
import { getSeat } from '../team.js';
import { assertTrialAllowed } from './trial.js';
import type { PaymentsContext } from './context.js';

export interface CheckoutRequest {
  accountId: string;
  purpose: PaymentPurpose;
  /** The plan bought (purpose `plan`). */
  planCode?: string;
  /** The top-up amount (purpose `wallet_topup`). */
  amountMinor?: number;
  currency?: Currency;
}

export interface Checkout {
  reference: string;
  authorizationUrl: string;
  amountMinor: number;
  currency: Currency;
  /** True when an open checkout for the same thing already existed and its link is reused. */
  reused: boolean;
}

/** Top-ups below this are refused (Paystack's own floor is far lower; fees make tiny top-ups pointless). */
export const MIN_TOPUP_MINOR = 10_000;
export const MAX_TOPUP_MINOR = 100_000_000;

export async function createCheckout(
  ctx: PaymentsContext,
  request: CheckoutRequest,
): Promise<Checkout> {
  const account = await Account.findById(request.accountId);
  if (!account || account.status === 'deleted') {
    throw new DomainError('NOT_FOUND', 'No such account.');
  }
  if (account.status !== 'active') {
    throw new DomainError('FORBIDDEN', 'This account is suspended; contact support.');
  }
  if (!account.email) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'Add your email address first: Paystack sends the receipt there.',
      { details: { field: 'email' } },
    );
  }
  const settings = await ctx.settings.get();
  const currency = request.currency ?? settings.currency;
  const { amountMinor, planCode } = await priceOf(ctx, request, currency);
  if (request.purpose === 'trial_deposit') await assertTrialAllowed(request.accountId);
  if (request.purpose === 'plan' || request.purpose === 'trial_deposit') {
    await assertNoPaidPlanRunning(request.accountId);
  }

  const openCheckoutKey = `${request.accountId}:${request.purpose}`;
  let existing = await Payment.findOne({ openCheckoutKey });
  if (existing && !existing.authorizationUrl && isInFlight(existing, ctx)) {
    // Another request is talking to Paystack for this checkout right now.
    existing = await awaitLink(openCheckoutKey);
  }
  if (existing) {
    if (
      existing.authorizationUrl &&
      existing.amountMinor === amountMinor &&
      existing.currency === currency &&
      (existing.planCode ?? undefined) === planCode
    ) {
      return toCheckout(existing, true);
    }
    // A different thing is being bought now, or the earlier checkout never got its
    // link: retire it. It stays payable: if the customer pays the old link anyway,
    // fulfilment still finds it by reference, so no money is ever ignored.
    await Payment.updateOne(
      { _id: existing._id, openCheckoutKey },
      { $unset: { openCheckoutKey: 1 } },
    );
  }

  let payment: PaymentDocument;
  try {
    payment = await Payment.create({
      reference: newReference('atl', ctx.clock),
      accountId: account._id,
      purpose: request.purpose,
      planCode,
      amountMinor,
      currency,
      email: account.email,
      openCheckoutKey,
      openedAt: ctx.clock.now(),
    });
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
    // Another checkout for the same account and purpose won the race: share its link.
    const winner = await awaitLink(openCheckoutKey);
    if (winner?.authorizationUrl) return toCheckout(winner, true);
    throw new DomainError('CONFLICT', 'A checkout is already being prepared; try again.', {
      cause: err,
    });
  }
  ctx.faults.reach('checkout.payment_created');

  try {
    const link = await ctx.provider.initializeTransaction({
      reference: payment.reference,
      amountMinor,
      currency,
      email: account.email,
      callbackUrl: `${ctx.publicUrl}/payments/callback`,
      metadata: {
        accountId: String(account._id),
        purpose: request.purpose,
        ...(planCode ? { planCode } : {}),
      },
    });
    ctx.faults.reach('checkout.initialized');
    await Payment.updateOne(
      { _id: payment._id },
      { $set: { authorizationUrl: link.authorizationUrl, accessCode: link.accessCode } },
    );
    payment.authorizationUrl = link.authorizationUrl;
  } catch (err) {
    // No link reached the customer, so nothing can be paid: free the slot for a new try.
    await Payment.updateOne(
      { _id: payment._id, status: 'pending' },
      { $set: { status: 'abandoned' }, $unset: { openCheckoutKey: 1 } },
    );
    throw err;
  }
  ctx.logger.info(
    {
      reference: payment.reference,
      accountId: request.accountId,
      purpose: request.purpose,
      amount: formatMoney({ amountMinor, currency }),
    },
    'payment.checkout_created',
  );
  return toCheckout(payment, false);
}

/**
 * A second plan cannot be bought on top of a running one: that is a plan change
 * (prorated), not a purchase. A running trial or an unpaid checkout is fine.
 */
async function assertNoPaidPlanRunning(accountId: string): Promise<void> {
  // A team member's access is its owner's plan: a plan of its own would be a
  // second source of entitlements (core/team.ts: one account, one source).
  const seat = await getSeat(accountId);
  if (seat) {
    throw new DomainError(
      'CONFLICT',
      'You use a team plan through its owner. Ask them to remove you from the team before buying a plan of your own.',
      { details: { reason: 'TEAM_MEMBER', ownerAccountId: seat.ownerAccountId } },
    );
  }
  const live = await getLiveSubscription(accountId);
  // Pay as you go ends when the plan bought is paid (fulfilment.ts): it is how PAYG customers move to a plan.
  if (
    live &&
    live.planKind !== 'payg' &&
    (live.status === 'active' || live.status === 'past_due')
  ) {
    throw new DomainError(
      'CONFLICT',
      `You already have the ${live.planCode} plan. Change plans instead of buying a second one.`,
      { details: { planCode: live.planCode, status: live.status } },
    );
  }
}

async function priceOf(
  ctx: PaymentsContext,
  request: CheckoutRequest,
  currency: Currency,
): Promise<{ amountMinor: number; planCode: string | undefined }> {
  switch (request.purpose) {
    case 'plan': {
      if (!request.planCode) {
        throw new DomainError('VALIDATION_FAILED', 'Choose a plan.', {
          details: { field: 'planCode' },
        });
      }
      const plan = await getPlanForSale(request.planCode);
      if (plan.code === 'trial') {
        throw new DomainError('VALIDATION_FAILED', 'Start a trial with a deposit instead.');
      }
      if (plan.code === 'payg') {
        throw new DomainError(
          'VALIDATION_FAILED',
          'Pay-as-you-go needs a wallet top-up, not a plan purchase.',
        );
      }
      return { amountMinor: planPrice(plan, currency), planCode: plan.code };
    }
    case 'trial_deposit': {
      const settings = await ctx.settings.get();
      return { amountMinor: settings.trialDepositMinor, planCode: 'trial' };
    }
    case 'wallet_topup': {
      const amountMinor = request.amountMinor;
      if (
        amountMinor === undefined ||
        !Number.isSafeInteger(amountMinor) ||
        amountMinor < MIN_TOPUP_MINOR ||
        amountMinor > MAX_TOPUP_MINOR
      ) {
        throw new DomainError(
          'VALIDATION_FAILED',
          `Top up between ${formatMoney({ amountMinor: MIN_TOPUP_MINOR, currency })} and ${formatMoney({ amountMinor: MAX_TOPUP_MINOR, currency })}.`,
          { details: { field: 'amountMinor' } },
        );
      }
      return { amountMinor, planCode: undefined };
    }
    case 'plan_change':
    case 'renewal':
    case 'data_topup':
      // Charged by plan-change.ts, renewals.ts and data-topup.ts, never through a checkout.
      throw new DomainError('VALIDATION_FAILED', 'This payment is not bought through a checkout.');
  }
}

/**
 * The payment that won a checkout race may still be waiting for Paystack's
 * answer (possibly in another process): wait for its link, as long as a
 * Paystack call may take, checking every 50 ms.
 */
async function awaitLink(openCheckoutKey: string): Promise<PaymentDocument | null> {
  const deadline = Date.now() + LINK_WAIT_MS;
  for (;;) {
    const winner = await Payment.findOne({ openCheckoutKey });
    if (!winner || winner.authorizationUrl) return winner;
    if (Date.now() > deadline) return winner;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const LINK_WAIT_MS = 12_000;

/**
 * A checkout without a link, opened less time ago than a Paystack call can take,
 * is still being opened by someone; an older one belongs to a process that died.
 */
function isInFlight(payment: PaymentDocument, ctx: PaymentsContext): boolean {
  return ctx.clock.now().getTime() - payment.openedAt.getTime() < LINK_WAIT_MS;
}

function toCheckout(payment: PaymentDocument, reused: boolean): Checkout {
  if (!payment.authorizationUrl) throw new Error('checkout without a payment link');
  return {
    reference: payment.reference,
    authorizationUrl: payment.authorizationUrl,
    amountMinor: payment.amountMinor,
    currency: payment.currency,
    reused,
  };
}
