import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/**
 * The recent hits of one rate-limited action (core/accounts/rate-limit.ts),
 * e.g. email codes sent to one account or link codes tried by one chat
 * identity: their times, newest first, capped at the largest limit, so one
 * conditional update both checks the limits and records the hit. `key` names
 * the action and who does it; personal identifiers in it are hashed. A TTL
 * index removes the document once its newest hit has left every window.
 */
const rateLimitSchema = new Schema(
  {
    key: { type: String, required: true, maxlength: 200 },
    hits: { type: [Date], required: true, default: () => [] },
    expiresAt: { type: Date, required: true },
  },
  { strict: 'throw', versionKey: false },
);

rateLimitSchema.index({ key: 1 }, { unique: true });
rateLimitSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });

export type RateLimitData = InferSchemaType<typeof rateLimitSchema>;

export const RateLimit = mongoose.model('RateLimit', rateLimitSchema);
