import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/**
 * One gateway process's share of `leasedBytes`: moved in the same update as
 * the counter, and renewed (`renewedAt`) while the gateway lives, so the bytes
 * of a gateway that died can be given back (core/quota.ts reclaimStaleLeases).
 * The sum of `bytes` over the array never exceeds `leasedBytes`; leases taken
 * without a gateway id are counted in `leasedBytes` only.
 */
const gatewayLeaseSchema = new Schema(
  {
    gatewayId: { type: String, required: true, maxlength: 64 },
    bytes: { type: Number, required: true, min: 0 },
    renewedAt: { type: Date, required: true },
  },
  { _id: false, strict: 'throw' },
);

/**
 * The data counter of one account for one quota period (a trial's 3 days, a
 * Starter week, a monthly plan's month). Billing opens a period, the gateway
 * leases bytes from it and books what it relayed, purchases add bytes.
 *
 * `availableBytes` is `limitBytes - usedBytes - leasedBytes`, kept in step by
 * every update in core/quota.ts (each moves the fields together with one `$inc`),
 * so a lease is one guarded decrement (`availableBytes >= n`): the pattern the
 * contract suite pins, and no `$expr` or pipeline update needed. It goes below
 * zero only when usage booked without a lease overshoots the limit.
 */
const quotaUsageSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** Inclusive start and exclusive end, UTC. */
    periodStart: { type: Date, required: true },
    periodEnd: { type: Date, required: true },
    /** Everything the period allows: plan bytes + carry-over + purchases and grants. */
    limitBytes: { type: Number, required: true, min: 0 },
    /** Part of limitBytes carried over from the previous period. */
    carryOverBytes: { type: Number, required: true, min: 0, default: 0 },
    /** Part of limitBytes added during the period (extra data, admin grants). */
    addedBytes: { type: Number, required: true, min: 0, default: 0 },
    /** Keys of the additions counted in addedBytes (payment references), so each counts once. */
    addedRefs: { type: [String], default: undefined },
    usedBytes: { type: Number, required: true, min: 0, default: 0 },
    /** Handed to gateway processes and not yet settled. */
    leasedBytes: { type: Number, required: true, min: 0, default: 0 },
    availableBytes: { type: Number, required: true },
    /** Who holds the leased bytes (see gatewayLeaseSchema). */
    leases: { type: [gatewayLeaseSchema], default: undefined },
  },
  // updatedAt: gateways re-read the access facts of accounts written lately (core/proxy-credentials.ts).
  { strict: 'throw', versionKey: false, timestamps: { createdAt: false, updatedAt: true } },
);

quotaUsageSchema.index({ updatedAt: 1 });
quotaUsageSchema.index({ accountId: 1, periodStart: 1 }, { unique: true });
quotaUsageSchema.index({ accountId: 1, periodEnd: 1 });
// The reclaim job looks for leases not renewed lately; gateways touch their own.
quotaUsageSchema.index({ 'leases.renewedAt': 1 });
quotaUsageSchema.index({ 'leases.gatewayId': 1 });

export type QuotaUsageData = InferSchemaType<typeof quotaUsageSchema>;
export type QuotaUsageDocument = HydratedDocument<QuotaUsageData>;

export const QuotaUsage = mongoose.model('QuotaUsage', quotaUsageSchema);
export type QuotaUsageModel = typeof QuotaUsage;

/** The QuotaUsage model on another connection (tests use it to act as a second process). */
export function quotaUsageModelOn(connection: Connection): QuotaUsageModel {
  if (connection === mongoose.connection) return QuotaUsage;
  return (
    (connection.models.QuotaUsage as QuotaUsageModel | undefined) ??
    connection.model('QuotaUsage', quotaUsageSchema)
  );
}
