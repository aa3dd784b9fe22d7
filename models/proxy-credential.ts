import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/**
 * Proxy usernames: lower-case letters and digits only, because `-` separates
 * the options a client appends (`alice-country-ng-session-ab12`).
 */
export const PROXY_USERNAME_PATTERN = /^[a-z][a-z0-9]{2,31}$/;

/**
 * The proxy credentials of one account: a username and a random secret,
 * separate from any login. Only a SHA-256 of the secret is stored: the secret
 * is 256 random bits, so a fast hash is as strong as a slow KDF against
 * guessing, and the gateway can check it per connection without burning CPU.
 *
 * Gateways keep every credential in memory and poll for documents whose
 * `updatedAt` moved, so every change here must go through an update that
 * touches `updatedAt` (mongoose timestamps do). `secretVersion` tells a gateway
 * which open tunnels were opened with a secret that has since been rotated;
 * `exitEpoch` moves when the customer asks for a new IP; `accessPaused` is the
 * customer's Disconnect button.
 */
const proxyCredentialSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    username: {
      type: String,
      required: true,
      lowercase: true,
      trim: true,
      match: PROXY_USERNAME_PATTERN,
    },
    /** SHA-256 of the secret, hex. */
    secretHash: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    secretVersion: { type: Number, required: true, min: 1, default: 1 },
    secretRotatedAt: { type: Date },
    /** Set when the credentials must no longer work at all (account closed, admin action). */
    revokedAt: { type: Date },
    /** Disconnect: live tunnels close on every gateway and new ones are refused until Connect. */
    accessPaused: { type: Boolean, required: true, default: false },
    accessPausedAt: { type: Date },
    /** Bumped by "give me a new IP": sticky and per-account exits are chosen again. */
    exitEpoch: { type: Number, required: true, min: 0, default: 0 },
  },
  { timestamps: true, strict: 'throw' },
);

proxyCredentialSchema.index({ accountId: 1 }, { unique: true });
proxyCredentialSchema.index({ username: 1 }, { unique: true });
// Gateways poll "changed since" on this.
proxyCredentialSchema.index({ updatedAt: 1 });

export type ProxyCredentialData = InferSchemaType<typeof proxyCredentialSchema>;
export type ProxyCredentialDocument = HydratedDocument<ProxyCredentialData>;

export const ProxyCredential = mongoose.model('ProxyCredential', proxyCredentialSchema);
export type ProxyCredentialModel = typeof ProxyCredential;

/** The ProxyCredential model on another connection (tests use it to act as a second process). */
export function proxyCredentialModelOn(connection: Connection): ProxyCredentialModel {
  if (connection === mongoose.connection) return ProxyCredential;
  return (
    (connection.models.ProxyCredential as ProxyCredentialModel | undefined) ??
    connection.model('ProxyCredential', proxyCredentialSchema)
  );
}
