import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/**
 * The bucket row that holds an account's connected time for an hour. Connected
 * time is "at least one tunnel open, anywhere", which is not a sum over
 * locations, so it lives on its own row; byte and connection counts live on
 * the per-location rows (and are 0 here).
 */
export const ALL_LOCATIONS = '*';

/**
 * What an account relayed in one UTC hour at one location, added to by every
 * gateway with `$inc` upserts (so several gateways and retries of a flush add
 * up without read-modify-write). Billed bytes: payload after the handshake.
 */
const usageBucketSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** Start of the UTC hour. */
    hourStart: { type: Date, required: true },
    /** Location code, or ALL_LOCATIONS for the connected-time row. */
    location: { type: String, required: true },
    /** Client to target. */
    bytesUp: { type: Number, required: true, min: 0, default: 0 },
    /** Target to client. */
    bytesDown: { type: Number, required: true, min: 0, default: 0 },
    /** Seconds with at least one open tunnel (ALL_LOCATIONS row only). */
    connectedSeconds: { type: Number, required: true, min: 0, default: 0 },
    /** Tunnels opened in this hour. */
    connections: { type: Number, required: true, min: 0, default: 0 },
  },
  { strict: 'throw', versionKey: false },
);

usageBucketSchema.index({ accountId: 1, hourStart: 1, location: 1 }, { unique: true });

export type UsageBucketData = InferSchemaType<typeof usageBucketSchema>;
export type UsageBucketDocument = HydratedDocument<UsageBucketData>;

export const UsageBucket = mongoose.model('UsageBucket', usageBucketSchema);
export type UsageBucketModel = typeof UsageBucket;

/** The UsageBucket model on another connection (tests use it to act as a second process). */
export function usageBucketModelOn(connection: Connection): UsageBucketModel {
  if (connection === mongoose.connection) return UsageBucket;
  return (
    (connection.models.UsageBucket as UsageBucketModel | undefined) ??
    connection.model('UsageBucket', usageBucketSchema)
  );
}
