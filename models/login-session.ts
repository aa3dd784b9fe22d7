import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/** Why a login session ended (kept so support can tell a customer what happened). */
export const loginSessionEndReasons = [
  'logout',
  'logout_all',
  'revoked',
  'refresh_reuse',
  'password_changed',
  'password_reset',
  'account_deleted',
  'account_suspended',
] as const;
export type LoginSessionEndReason = (typeof loginSessionEndReasons)[number];

/** How many spent refresh tokens of a session are remembered to detect their reuse. */
export const SPENT_TOKENS_KEPT = 50;

/**
 * A login session of the REST API: one refresh-token family. Logging in
 * creates one; every refresh swaps `tokenHash` for the next token's and
 * remembers the spent one in `spentHashes`, so presenting a spent token
 * (a stolen copy racing its owner) ends the whole session. Tokens are stored
 * as SHA-256 hashes (they are 256-bit random secrets: a slow hash adds
 * nothing). Access tokens name the session (`sid`), so ending it stops them at
 * once. A TTL index removes the document a while after it expired or ended.
 */
const loginSessionSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** SHA-256 (hex) of the current refresh token's secret part. */
    tokenHash: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    spentHashes: { type: [String], required: true, default: () => [] },
    /** How many times the token was rotated. */
    generation: { type: Number, required: true, min: 0, default: 0 },
    createdAt: { type: Date, required: true },
    lastUsedAt: { type: Date, required: true },
    /** The refresh token (and with it the session) is good until then. */
    expiresAt: { type: Date, required: true },
    endedAt: { type: Date },
    endReason: { type: String, enum: loginSessionEndReasons },
    /** Where the login came from, for the customer's session list. */
    ip: { type: String, maxlength: 64 },
    userAgent: { type: String, maxlength: 300 },
    /** Removal by TTL: the later of expiry and end, plus the keep period. */
    purgeAt: { type: Date, required: true },
  },
  { strict: 'throw', versionKey: false },
);

loginSessionSchema.index({ accountId: 1, endedAt: 1, createdAt: -1 });
loginSessionSchema.index({ purgeAt: 1 }, { expireAfterSeconds: 0 });

export type LoginSessionData = InferSchemaType<typeof loginSessionSchema>;
export type LoginSessionRecord = LoginSessionData & { _id: mongoose.Types.ObjectId };

export const LoginSession = mongoose.model('LoginSession', loginSessionSchema);
