import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

/**
 * A reusable Paystack authorization saved from a paid checkout, charged later for
 * renewals and auto top-ups with `charge_authorization`. Only what Paystack
 * returns for display and reuse is kept (no card number). The card saved or
 * used most recently (`updatedAt`) is the one charged by default.
 */
const paymentMethodSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    provider: { type: String, enum: ['paystack'], required: true },
    authorizationCode: { type: String, required: true },
    /** Paystack's card fingerprint: the same card on another account has the same one. */
    signature: { type: String },
    email: { type: String, required: true },
    last4: { type: String },
    expMonth: { type: String },
    expYear: { type: String },
    brand: { type: String },
    bank: { type: String },
    savedFromReference: { type: String, required: true },
  },
  { timestamps: true, strict: 'throw' },
);

paymentMethodSchema.index({ accountId: 1, authorizationCode: 1 }, { unique: true });
paymentMethodSchema.index({ accountId: 1, updatedAt: -1 });

export type PaymentMethodData = InferSchemaType<typeof paymentMethodSchema>;
export type PaymentMethodDocument = HydratedDocument<PaymentMethodData>;

export const PaymentMethod = mongoose.model('PaymentMethod', paymentMethodSchema);
