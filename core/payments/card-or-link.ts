/**
 * Taking money the customer already agreed to (a plan change, a renewal):
 * the saved card first, a Paystack payment link when the card cannot be
 * charged without the customer.
 *
 *   saved card -> charge_authorization (reference `<base>-card`)
 *     success           -> fulfilment (fulfilment.ts applies what was bought)
 *     failed / needs the customer (OTP, bank page, paused) -> the link below
 *     no answer (timeout, 5xx) -> 'processing': no link, since the charge may
 *                          have gone through; re-verification settles it
 *   no card, or after the above -> a link (reference `<base>-link`)
 *
 * Each reference is one Payment, created once (its unique index), so a retry
 * of the same step reuses it: Paystack refuses a second charge with a
 * reference it has seen, and a link already made is handed out again.
 */
import { DomainError, isDomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import { Account } from '../../models/account.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { Payment, type PaymentPurpose, type PaymentRecord } from '../../models/payment.js';
import { PaymentMethod } from '../../models/payment-method.js';
import type { Types } from 'mongoose';
import type { PaymentsContext } from './context.js';
import { fulfilPayment } from './fulfilment.js';

export interface AgreedCharge {
  accountId: Types.ObjectId;
  amountMinor: number;
  currency: Currency;
  /** `<base>-card` and `<base>-link` are the references; letters, digits and `-` only. */
  referenceBase: string;
  purpose: PaymentPurpose;
  planCode?: string;
  metadata: Record<string, string>;
  /** Fault point names are `<faultPrefix>.card_charged`. */
  faultPrefix: string;
}

export type ChargeOutcome =
  | { state: 'paid'; reference: string; fulfilled: boolean }
  | { state: 'processing'; reference: string }
  | { state: 'payment_link'; reference: string; authorizationUrl: string; cardDeclined: boolean };

export async function chargeCardOrLink(
  ctx: PaymentsContext,
  charge: AgreedCharge,
): Promise<ChargeOutcome> {
  const email = await emailOf(charge);
  const card = await chargeSavedCard(ctx, charge);
  if (card.state === 'paid' || card.state === 'processing') return card;
  const cardDeclined = card.state === 'not_charged' && card.reason === 'declined';
  const reference = `${charge.referenceBase}-link`;
  const payment = await pendingPayment(ctx, charge, reference, email);
  if (payment.authorizationUrl) {
    return {
      state: 'payment_link',
      reference,
      authorizationUrl: payment.authorizationUrl,
      cardDeclined,
    };
  }
  const link = await ctx.provider.initializeTransaction({
    reference,
    amountMinor: charge.amountMinor,
    currency: charge.currency,
    email,
    callbackUrl: `${ctx.publicUrl}/payments/callback`,
    metadata: { purpose: charge.purpose, ...charge.metadata },
  });
  await Payment.updateOne(
    { reference },
    { $set: { authorizationUrl: link.authorizationUrl, accessCode: link.accessCode } },
  );
  return {
    state: 'payment_link',
    reference,
    authorizationUrl: link.authorizationUrl,
    cardDeclined,
  };
}

export type CardOutcome =
  | { state: 'paid'; reference: string; fulfilled: boolean }
  | { state: 'processing'; reference: string }
  | { state: 'not_charged'; reason: 'no_card' | 'declined' | 'needs_customer' };

/** The saved card alone (unattended charges such as auto top-ups): no link. */
export async function chargeSavedCard(
  ctx: PaymentsContext,
  charge: AgreedCharge,
): Promise<CardOutcome> {
  await emailOf(charge);
  const card = await PaymentMethod.findOne({ accountId: charge.accountId })
    .sort({ updatedAt: -1 })
    .lean<{ authorizationCode: string; email: string }>();
  if (!card) return { state: 'not_charged', reason: 'no_card' };
  const reference = `${charge.referenceBase}-card`;
  const payment = await pendingPayment(ctx, charge, reference, card.email);
  if (payment.status === 'paid') {
    const outcome = await fulfilPayment(ctx, reference);
    return { state: 'paid', reference, fulfilled: outcome.state === 'fulfilled' };
  }
  if (payment.status !== 'pending') return { state: 'not_charged', reason: 'declined' };
  try {
    const charged = await ctx.provider.chargeAuthorization({
      reference,
      amountMinor: charge.amountMinor,
      currency: charge.currency,
      email: card.email,
      authorizationCode: card.authorizationCode,
      metadata: { purpose: charge.purpose, ...charge.metadata },
    });
    ctx.faults.reach(`${charge.faultPrefix}.card_charged`);
    if (charged.status === 'success') {
      const outcome = await fulfilPayment(ctx, reference);
      return { state: 'paid', reference, fulfilled: outcome.state === 'fulfilled' };
    }
    if (charged.status === 'pending' || charged.status === 'processing') {
      return { state: 'processing', reference };
    }
    if (charged.status === 'failed') {
      // Declined for good: this payment is over (a later attempt has a reference of its own).
      await Payment.updateOne({ reference, status: 'pending' }, { $set: { status: 'failed' } });
      return { state: 'not_charged', reason: 'declined' };
    }
    return { state: 'not_charged', reason: 'needs_customer' };
  } catch (error) {
    // Charged or not, we do not know: no link (it could charge twice).
    if (isDomainError(error, 'UPSTREAM_FAILED')) return { state: 'processing', reference };
    // A repeat of a charge Paystack already saw: its fate is for verification.
    if (
      isDomainError(error, 'PAYMENT_REJECTED') &&
      error.details?.providerCode === 'duplicate_reference'
    ) {
      return { state: 'processing', reference };
    }
    if (isDomainError(error, 'PAYMENT_REJECTED'))
      return { state: 'not_charged', reason: 'declined' };
    throw error;
  }
}

async function emailOf(charge: AgreedCharge): Promise<string> {
  const account = await Account.findById(charge.accountId, { email: 1 }).lean<{
    email?: string;
  }>();
  if (!account?.email) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'Add your email address first: Paystack sends the receipt there.',
      { details: { field: 'email' } },
    );
  }
  return account.email;
}

/** The payment of one attempt, created once per reference. */
async function pendingPayment(
  ctx: PaymentsContext,
  charge: AgreedCharge,
  reference: string,
  email: string,
): Promise<PaymentRecord> {
  try {
    await Payment.create({
      reference,
      accountId: charge.accountId,
      purpose: charge.purpose,
      ...(charge.planCode ? { planCode: charge.planCode } : {}),
      amountMinor: charge.amountMinor,
      currency: charge.currency,
      email,
      openedAt: ctx.clock.now(),
      metadata: charge.metadata,
    });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
  return Payment.findOne({ reference }).lean<PaymentRecord>().orFail();
}
