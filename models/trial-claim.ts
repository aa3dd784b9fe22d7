import mongoose, { Schema, type InferSchemaType } from 'mongoose';

export const trialClaimKinds = ['account', 'email', 'telegram', 'whatsapp', 'card'] as const;
export type TrialClaimKind = (typeof trialClaimKinds)[number];

/**
 * One trial per person: each thing that identifies a person who had a trial (the
 * account, its email, its chat identities, the card's Paystack signature) is
 * claimed once, under a unique (kind, value). A claim by another account means
 * this person already had a trial.
 */
const trialClaimSchema = new Schema(
  {
    kind: { type: String, enum: trialClaimKinds, required: true },
    value: { type: String, required: true },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    paymentReference: { type: String, required: true },
  },
  { timestamps: true, strict: 'throw' },
);

trialClaimSchema.index({ kind: 1, value: 1 }, { unique: true });

export type TrialClaimData = InferSchemaType<typeof trialClaimSchema>;

export const TrialClaim = mongoose.model('TrialClaim', trialClaimSchema);
