import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

export const accountStatuses = ['active', 'suspended', 'deleted'] as const;
export type AccountStatus = (typeof accountStatuses)[number];

export const accountRoles = ['customer', 'admin'] as const;
export type AccountRole = (typeof accountRoles)[number];

/**
 * A customer or an admin. Chat identities point here (ChannelIdentity); the
 * email is optional until the customer gives one during sign-up, and unique
 * among the accounts that have one.
 */
const accountSchema = new Schema(
  {
    email: {
      type: String,
      trim: true,
      lowercase: true,
      maxlength: 254,
      match: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
    },
    emailVerifiedAt: { type: Date },
    /**
     * The mail server refused this address for good (an SMTP 5xx for the
     * recipient): notify() skips email until the customer verifies an email again.
     */
    emailFailingSince: { type: Date },
    emailFailingReason: { type: String, maxlength: 500 },
    /**
     * The REST API login password as `scrypt$N$r$p$salt$hash` (core/accounts/passwords.ts);
     * absent for chat-only accounts. Never loaded unless asked for (`+passwordHash`).
     */
    passwordHash: { type: String, maxlength: 300, select: false },
    /** When the password was last set, changed or reset. */
    passwordChangedAt: { type: Date },
    /** When the customer accepted the terms of service, and which version (core/accounts). */
    termsAcceptedAt: { type: Date },
    termsVersion: { type: String, maxlength: 50 },
    /** Set when the account was deleted or retired (status 'deleted'); financial records stay under its id. */
    deletedAt: { type: Date },
    status: { type: String, enum: accountStatuses, required: true, default: 'active' },
    roles: {
      type: [{ type: String, enum: accountRoles }],
      required: true,
      default: () => ['customer'],
    },
    /** Things an admin should look at (a card dispute, a mismatched payment), newest last. */
    flags: {
      type: [
        new Schema(
          {
            kind: { type: String, required: true },
            reason: { type: String, required: true },
            reference: { type: String },
            at: { type: Date, required: true },
          },
          { _id: false },
        ),
      ],
      default: () => [],
    },
  },
  { timestamps: true, strict: 'throw' },
);

// Unique among accounts that have an email; chat-only accounts have none yet.
accountSchema.index(
  { email: 1 },
  { unique: true, partialFilterExpression: { email: { $exists: true } } },
);
accountSchema.index({ status: 1, createdAt: -1 });
// Gateways re-read the access facts of accounts written lately (core/proxy-credentials.ts).
accountSchema.index({ updatedAt: 1 });

export type AccountData = InferSchemaType<typeof accountSchema>;
export type AccountDocument = HydratedDocument<AccountData>;

export const Account = mongoose.model('Account', accountSchema);
