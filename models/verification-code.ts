import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/** What a code proves: an email address ('email') or the right to link to an account ('link'). */
export const verificationPurposes = ['email', 'link'] as const;
export type VerificationPurpose = (typeof verificationPurposes)[number];

/** How long a document outlives its code, so a late attempt is told "expired", not "unknown". */
export const VERIFICATION_CODE_KEEP_SECONDS = 3_600;

/**
 * A one-time code sent to or shown to a customer (core/accounts): an email
 * verification code or an account-link code. One document per account and
 * purpose: a new code replaces the previous one, so only the latest works.
 *
 * The code itself is never stored: `codeHash` is scrypt of the code with the
 * document's own random `salt`. A link code is redeemed without knowing the
 * account, so its first characters are kept in `lookup` to find the few
 * candidates to check (see core/accounts/codes.ts for why that is safe).
 * `attempts` counts checks of this code; `usedAt` is set by the one
 * conditional update that redeems it. A TTL index removes the document
 * VERIFICATION_CODE_KEEP_SECONDS after the code expired.
 */
const verificationCodeSchema = new Schema(
  {
    purpose: { type: String, enum: verificationPurposes, required: true },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** purpose 'email': the address the code verifies (set on the account once confirmed). */
    email: { type: String, trim: true, lowercase: true, maxlength: 254 },
    /** purpose 'link': the code's first characters, to find it without the account. */
    lookup: { type: String, maxlength: 8 },
    /** scrypt(code, salt), hex. */
    codeHash: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    salt: { type: String, required: true, match: /^[0-9a-f]{32}$/ },
    /** When the code was issued, by the business clock. */
    issuedAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    attempts: { type: Number, required: true, min: 0, default: 0 },
    usedAt: { type: Date },
  },
  { timestamps: true, strict: 'throw' },
);

verificationCodeSchema.index({ accountId: 1, purpose: 1 }, { unique: true });
verificationCodeSchema.index(
  { purpose: 1, lookup: 1 },
  { partialFilterExpression: { lookup: { $exists: true } } },
);
verificationCodeSchema.index(
  { expiresAt: 1 },
  { expireAfterSeconds: VERIFICATION_CODE_KEEP_SECONDS },
);

export type VerificationCodeData = InferSchemaType<typeof verificationCodeSchema>;
export type VerificationCodeRecord = VerificationCodeData & { _id: mongoose.Types.ObjectId };

export const VerificationCode = mongoose.model('VerificationCode', verificationCodeSchema);
