import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

/** What a quote is for. */
export const billingQuoteKinds = ['cancel_now', 'cancel_at_period_end', 'plan_change'] as const;
export type BillingQuoteKind = (typeof billingQuoteKinds)[number];

/**
 * open: shown to the customer, may be confirmed until `expiresAt`;
 * confirming: confirmed, being carried out (a retry resumes it);
 * done: carried out (`outcome` says what happened);
 * stale: the subscription changed after the quote, so it was refused.
 */
export const billingQuoteStatuses = ['open', 'confirming', 'done', 'stale'] as const;
export type BillingQuoteStatus = (typeof billingQuoteStatuses)[number];

/** 'card': `cardRefundMinor` to the card that paid the period, the rest of `refundMinor` to the wallet. */
export const refundDestinations = ['wallet', 'card', 'none'] as const;
export type RefundDestination = (typeof refundDestinations)[number];

/**
 * An amount shown to a customer before they confirm something that moves
 * money (core/cancellation.ts): what they saw is what is carried out, once.
 * It is tied to the subscription's `revision` when quoted; a change since
 * makes it stale.
 */
const billingQuoteSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    subscriptionId: { type: Schema.Types.ObjectId, ref: 'Subscription', required: true },
    subscriptionRevision: { type: Number, required: true, min: 0 },
    kind: { type: String, enum: billingQuoteKinds, required: true },
    status: { type: String, enum: billingQuoteStatuses, required: true, default: 'open' },
    currency: { type: String, enum: CURRENCIES, required: true },
    /** Money back to the customer, in minor units. */
    refundMinor: {
      type: Number,
      required: true,
      min: 0,
      validate: { validator: Number.isSafeInteger, message: 'refundMinor must be whole' },
    },
    refundTo: { type: String, enum: refundDestinations, required: true },
    /** refundTo 'card': the part that goes back to the card, and the payment it is refunded from. */
    cardRefundMinor: {
      type: Number,
      min: 0,
      validate: { validator: Number.isSafeInteger, message: 'cardRefundMinor must be whole' },
    },
    refundPaymentRef: { type: String },
    /** When the plan ends (a cancellation) or the new plan applies (a plan change). */
    endsAt: { type: Date, required: true },
    /** A plan change: the plan moved to, charged now, and what renewals will cost. */
    toPlanCode: { type: String },
    effective: { type: String, enum: ['now', 'period_end'] },
    dueNowMinor: {
      type: Number,
      min: 0,
      validate: { validator: Number.isSafeInteger, message: 'dueNowMinor must be whole' },
    },
    newPriceMinor: { type: Number, min: 0 },
    /** The quote in the customer's words. */
    lines: { type: [String], required: true },
    expiresAt: { type: Date, required: true },
    confirmedAt: { type: Date },
    doneAt: { type: Date },
  },
  { timestamps: true, strict: 'throw' },
);

billingQuoteSchema.index({ accountId: 1, createdAt: -1 });

export type BillingQuoteData = InferSchemaType<typeof billingQuoteSchema>;
export type BillingQuoteRecord = BillingQuoteData & { _id: mongoose.Types.ObjectId };

export const BillingQuote = mongoose.model('BillingQuote', billingQuoteSchema);
