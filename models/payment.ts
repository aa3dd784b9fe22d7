import mongoose, {
  Schema,
  type InferSchemaType,
  type HydratedDocument,
  type Types,
} from 'mongoose';
import { CURRENCIES } from '../lib/money.js';
import { refundStatuses } from './refund.js';

export const paymentPurposes = [
  'plan',
  'trial_deposit',
  'wallet_topup',
  'plan_change',
  'renewal',
  'data_topup',
] as const;
export type PaymentPurpose = (typeof paymentPurposes)[number];

/**
 * pending: a checkout link exists, no money confirmed.
 * paid: Paystack's verify confirmed success with our amount and currency (terminal for money).
 * failed / abandoned: Paystack said so; a later verified success still moves it to paid
 *   (the customer may retry on the same checkout page), so no money is ever ignored.
 * flagged: Paystack reported a success that does not match (amount, currency); never
 *   fulfilled automatically, an admin decides.
 */
export const paymentStatuses = ['pending', 'paid', 'failed', 'abandoned', 'flagged'] as const;
export type PaymentStatus = (typeof paymentStatuses)[number];

const authorizationSchema = new Schema(
  {
    authorizationCode: { type: String, required: true },
    signature: { type: String },
    last4: { type: String },
    expMonth: { type: String },
    expYear: { type: String },
    brand: { type: String },
    bank: { type: String },
    cardType: { type: String },
    channel: { type: String },
    reusable: { type: Boolean, required: true },
  },
  { _id: false },
);

/** The one refund a payment could carry before refunds had their own records. */
const legacyRefundSchema = new Schema(
  {
    status: { type: String, enum: refundStatuses, required: true },
    /** 'card' through Paystack's refund API, or 'wallet' as a ledger credit. */
    method: { type: String, enum: ['card', 'wallet'], required: true },
    amountMinor: { type: Number, required: true, min: 0 },
    reason: { type: String, required: true },
    providerRefundId: { type: String },
    requestedAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { _id: false },
);

/**
 * One checkout: our own unique reference, what it buys, and where Paystack has
 * taken it. Fulfilment is the conditional move to `paid`; the effects that follow
 * (subscription, wallet credit, invoice, notification) are each keyed by the
 * reference, and `fulfilledAt` is set once all of them are done, so a run that
 * died half-way is resumed by the next callback, webhook or re-verification.
 */
const paymentSchema = new Schema(
  {
    reference: { type: String, required: true },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    purpose: { type: String, enum: paymentPurposes, required: true },
    planCode: { type: String },
    amountMinor: { type: Number, required: true, min: 1 },
    currency: { type: String, enum: CURRENCIES, required: true },
    email: { type: String, required: true },
    status: { type: String, enum: paymentStatuses, required: true, default: 'pending' },
    /** When the checkout was opened, by the business clock (re-verification ages from it). */
    openedAt: { type: Date, required: true },
    /**
     * `${accountId}:${purpose}` while a checkout is pending: a unique index keeps one
     * open checkout per account and purpose, so concurrent checkouts share one link.
     */
    openCheckoutKey: { type: String },
    authorizationUrl: { type: String },
    accessCode: { type: String },
    paidAt: { type: Date },
    verifiedAt: { type: Date },
    providerTransactionId: { type: Number },
    authorization: { type: authorizationSchema },
    fulfilledAt: { type: Date },
    flagReason: { type: String },
    /**
     * Set when a paid payment cannot be fulfilled automatically (it bought a plan
     * while another was running): the money is kept safe, an admin decides.
     */
    needsReviewAt: { type: Date },
    lastVerifyError: { type: String },
    verifyAttempts: { type: Number, required: true, default: 0 },
    /**
     * Minor units counted against this payment by its refunds (models/refund.ts)
     * that have not failed: what is left to refund is `amountMinor - refundedMinor`.
     * Moves only with `refundHolds`, in one conditional update (core/payments/refunds.ts).
     */
    refundedMinor: { type: Number, min: 0, default: 0 },
    /** Ids of the refunds counted in `refundedMinor`, so each is counted once. */
    refundHolds: { type: [String], default: () => [] },
    /** Ids of refunds counted once and released since (they failed): never counted again. */
    refundReleases: { type: [String], default: () => [] },
    /**
     * @deprecated Written by versions before refunds had their own records;
     * core/payments/refunds.ts (adoptLegacyRefunds) moves it to a Refund.
     */
    refund: { type: legacyRefundSchema },
    metadata: { type: Schema.Types.Mixed },
  },
  { timestamps: true, strict: 'throw' },
);

paymentSchema.index({ reference: 1 }, { unique: true });
paymentSchema.index(
  { openCheckoutKey: 1 },
  { unique: true, partialFilterExpression: { openCheckoutKey: { $exists: true } } },
);
paymentSchema.index({ accountId: 1, createdAt: -1 });
paymentSchema.index({ status: 1, openedAt: 1 });

export type PaymentData = InferSchemaType<typeof paymentSchema>;
export type PaymentDocument = HydratedDocument<PaymentData>;
/** A payment as stored (a lean read); a PaymentDocument is one too. */
export type PaymentRecord = PaymentData & { _id: Types.ObjectId };

export const Payment = mongoose.model('Payment', paymentSchema);
