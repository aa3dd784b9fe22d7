import mongoose, { Schema, type InferSchemaType, type Types } from 'mongoose';
import { CURRENCIES } from '../lib/money.js';
import { REFUND_STATUSES } from '../lib/payment-provider.js';
import { auditChannels } from './audit-entry.js';

/**
 * requested: recorded, Paystack does not have it yet (or we do not know that it does);
 * pending / processing / processed / failed / needs-attention: Paystack's states
 *   (a wallet refund goes from requested straight to processed);
 * refused: never started, final: it would have taken more than is left to refund, or
 *   the money to send back to the card had already been spent from the wallet.
 */
export const refundStatuses = ['requested', ...REFUND_STATUSES, 'refused'] as const;
export type RefundStatus = (typeof refundStatuses)[number];

/** 'card' through Paystack's refund API, or 'wallet' as a ledger credit. */
export const refundMethods = ['card', 'wallet'] as const;
export type RefundMethod = (typeof refundMethods)[number];

/** Why the refund exists: a trial deposit returned, a cancelled period, an admin's decision. */
export const refundKinds = ['deposit', 'cancellation', 'admin'] as const;
export type RefundKind = (typeof refundKinds)[number];

export const refundRefusals = ['EXCEEDS_REFUNDABLE', 'ALREADY_SPENT'] as const;
export type RefundRefusal = (typeof refundRefusals)[number];

const whole = (name: string) => ({
  validator: Number.isSafeInteger,
  message: `${name} must be a whole number of minor units`,
});

const requesterSchema = new Schema(
  {
    /** An admin's or customer's account id (hex), or 'system'. */
    actor: { type: String, required: true, maxlength: 64 },
    channel: { type: String, enum: auditChannels, required: true },
  },
  { _id: false, strict: 'throw' },
);

/**
 * One refund of (part of) one paid payment; a payment may have several. The
 * workflow is core/payments/refunds.ts: the record is written first, under the
 * caller's unique `idempotencyKey`, and everything after it is keyed by the
 * record's id, so a repeat or a resumed run finds it and moves it on. The
 * amount is counted against the payment (`Payment.refundedMinor`) with one
 * conditional update before any money moves.
 */
const refundSchema = new Schema(
  {
    idempotencyKey: { type: String, required: true, minlength: 1, maxlength: 200 },
    paymentReference: { type: String, required: true, maxlength: 200 },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    amountMinor: { type: Number, required: true, min: 1, validate: whole('amountMinor') },
    currency: { type: String, enum: CURRENCIES, required: true },
    method: { type: String, enum: refundMethods, required: true },
    kind: { type: String, enum: refundKinds, required: true },
    /** Why, in the words of whoever asked (shown to admins; the customer sees the kind). */
    reason: { type: String, required: true, maxlength: 500 },
    status: { type: String, enum: refundStatuses, required: true, default: 'requested' },
    refusal: { type: String, enum: refundRefusals },
    /** Paystack's refund id, once known (from its answer, a webhook or its refund list). */
    providerRefundId: { type: String, maxlength: 64 },
    requestedBy: { type: requesterSchema, required: true },
    /** The admin asked to stop the plan this payment bought as well. */
    endPlan: { type: Boolean, required: true, default: false },
    /** When it was asked for, and when its status last changed (business clock). */
    requestedAt: { type: Date, required: true },
    statusAt: { type: Date, required: true },
    /** While set and in the future, one process is talking to Paystack about this refund. */
    callLeaseUntil: { type: Date },
    /** When Paystack's refund list was last read for it (the safety net for lost webhooks). */
    checkedAt: { type: Date },
    /** The credit note issued against the payment's invoice when it was processed. */
    creditNoteNumber: { type: String, maxlength: 64 },
    processedAt: { type: Date },
    lastError: { type: String, maxlength: 1000 },
  },
  { timestamps: true, strict: 'throw' },
);

refundSchema.index({ idempotencyKey: 1 }, { unique: true });
// One Paystack refund is one of ours at most.
refundSchema.index(
  { providerRefundId: 1 },
  { unique: true, partialFilterExpression: { providerRefundId: { $exists: true } } },
);
refundSchema.index({ paymentReference: 1, createdAt: 1 });
refundSchema.index({ status: 1, statusAt: 1 });
refundSchema.index({ accountId: 1, createdAt: -1 });

export type RefundData = InferSchemaType<typeof refundSchema>;
export type RefundRecord = RefundData & { _id: Types.ObjectId; createdAt: Date; updatedAt: Date };

export const Refund = mongoose.model('Refund', refundSchema);
