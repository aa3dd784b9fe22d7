import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/**
 * What an emailed (or chat-shown) link token lets its holder do:
 * - 'email_verify': prove the address it was mailed to (GET /account/verify-email);
 * - 'password_reset': choose a new password after "forgot password";
 * - 'password_set': choose a password for the REST API, asked for from chat.
 */
export const authTokenPurposes = ['email_verify', 'password_reset', 'password_set'] as const;
export type AuthTokenPurpose = (typeof authTokenPurposes)[number];

/** How long a document outlives its token, so a late click is told "expired", not "unknown". */
export const AUTH_TOKEN_KEEP_SECONDS = 86_400;

/**
 * A single-use token carried by a link (core/accounts/auth-links.ts). The
 * token is a 256-bit random secret; only its SHA-256 is stored (a slow hash
 * adds nothing to a secret that size), unique, so a token is found by its
 * hash alone. `email` is the address the link was sent for: the link works
 * only while the account still has that address. `usedAt` is set by the one
 * conditional update that spends it. A TTL index removes the document
 * AUTH_TOKEN_KEEP_SECONDS after it expired.
 */
const authTokenSchema = new Schema(
  {
    purpose: { type: String, enum: authTokenPurposes, required: true },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** SHA-256 (hex) of the token. */
    tokenHash: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    email: { type: String, required: true, trim: true, lowercase: true, maxlength: 254 },
    /** When the token was issued, by the business clock. */
    issuedAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    usedAt: { type: Date },
  },
  { strict: 'throw', versionKey: false },
);

authTokenSchema.index({ tokenHash: 1 }, { unique: true });
authTokenSchema.index({ accountId: 1, purpose: 1 });
authTokenSchema.index({ expiresAt: 1 }, { expireAfterSeconds: AUTH_TOKEN_KEEP_SECONDS });

export type AuthTokenData = InferSchemaType<typeof authTokenSchema>;
export type AuthTokenRecord = AuthTokenData & { _id: mongoose.Types.ObjectId };

export const AuthToken = mongoose.model('AuthToken', authTokenSchema);
