import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';
import { protocols } from './plan.js';

/**
 * A usage session (ARCHITECTURE.md, "Words"): a stretch of time in which an
 * account had at least one open tunnel on one gateway process, shown to the
 * customer as their session history. Written by the gateway that served it:
 * created on its first flush, added to with `$inc` / `$addToSet`, closed with
 * `endedAt`. A session still open with a stale `lastSeenAt` was cut short by a
 * crash of its gateway.
 */
const usageSessionSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** The gateway process that served it. */
    gatewayId: { type: String, required: true },
    startedAt: { type: Date, required: true },
    endedAt: { type: Date },
    lastSeenAt: { type: Date, required: true },
    bytesUp: { type: Number, required: true, min: 0, default: 0 },
    bytesDown: { type: Number, required: true, min: 0, default: 0 },
    connections: { type: Number, required: true, min: 0, default: 0 },
    locations: { type: [String], required: true, default: () => [] },
    protocols: { type: [{ type: String, enum: protocols }], required: true, default: () => [] },
  },
  { strict: 'throw', versionKey: false },
);

usageSessionSchema.index({ accountId: 1, startedAt: -1 });

export type UsageSessionData = InferSchemaType<typeof usageSessionSchema>;
export type UsageSessionDocument = HydratedDocument<UsageSessionData>;

export const UsageSession = mongoose.model('UsageSession', usageSessionSchema);
export type UsageSessionModel = typeof UsageSession;

/** The UsageSession model on another connection (tests use it to act as a second process). */
export function usageSessionModelOn(connection: Connection): UsageSessionModel {
  if (connection === mongoose.connection) return UsageSession;
  return (
    (connection.models.UsageSession as UsageSessionModel | undefined) ??
    connection.model('UsageSession', usageSessionSchema)
  );
}
