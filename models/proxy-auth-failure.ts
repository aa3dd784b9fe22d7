import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/** BAD_SECRET: a known username with a wrong secret; UNKNOWN_USER; REVOKED; TOO_MANY_ATTEMPTS. */
export const proxyAuthFailureReasons = [
  'BAD_SECRET',
  'UNKNOWN_USER',
  'REVOKED',
  'MALFORMED_USERNAME',
  'TOO_MANY_ATTEMPTS',
] as const;
export type ProxyAuthFailureReason = (typeof proxyAuthFailureReasons)[number];

/** How long failed logins are kept (the bots show "who tried my credentials"). */
export const PROXY_AUTH_FAILURE_TTL_SECONDS = 30 * 86_400;

/**
 * A failed proxy login: which username (without options), from where, why.
 * `accountId` is set when the username belongs to an account. Attempts refused
 * by the rate limiter are recorded once per blocked window, not per attempt,
 * so a brute-force run cannot flood the collection.
 */
const proxyAuthFailureSchema = new Schema(
  {
    username: { type: String, required: true, maxlength: 255 },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account' },
    sourceIp: { type: String, required: true, maxlength: 64 },
    reason: { type: String, enum: proxyAuthFailureReasons, required: true },
    /** Attempts this record stands for (more than 1 for rate-limited bursts). */
    attempts: { type: Number, required: true, min: 1, default: 1 },
    at: { type: Date, required: true },
  },
  { strict: 'throw', versionKey: false },
);

proxyAuthFailureSchema.index({ accountId: 1, at: -1 });
proxyAuthFailureSchema.index({ username: 1, at: -1 });
proxyAuthFailureSchema.index({ at: 1 }, { expireAfterSeconds: PROXY_AUTH_FAILURE_TTL_SECONDS });

export type ProxyAuthFailureData = InferSchemaType<typeof proxyAuthFailureSchema>;
export type ProxyAuthFailureDocument = HydratedDocument<ProxyAuthFailureData>;

export const ProxyAuthFailure = mongoose.model('ProxyAuthFailure', proxyAuthFailureSchema);
export type ProxyAuthFailureModel = typeof ProxyAuthFailure;

/** The ProxyAuthFailure model on another connection. */
export function proxyAuthFailureModelOn(connection: Connection): ProxyAuthFailureModel {
  if (connection === mongoose.connection) return ProxyAuthFailure;
  return (
    (connection.models.ProxyAuthFailure as ProxyAuthFailureModel | undefined) ??
    connection.model('ProxyAuthFailure', proxyAuthFailureSchema)
  );
}
