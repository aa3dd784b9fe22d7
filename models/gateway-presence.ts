import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/**
 * One document per running gateway process, rewritten every half second with
 * its open tunnels per account, so each gateway can count an account's
 * connections across all of them without a database read per connection.
 * A document whose `heartbeatAt` is stale belongs to a gateway that died and
 * is ignored (and removed by the next gateway that notices).
 */
const gatewayPresenceSchema = new Schema(
  {
    _id: { type: String, required: true },
    heartbeatAt: { type: Date, required: true },
    /** Accounts with at least one open tunnel on this gateway. */
    openTunnels: {
      type: [
        new Schema(
          {
            accountId: { type: String, required: true },
            count: { type: Number, required: true, min: 1 },
          },
          { _id: false },
        ),
      ],
      required: true,
      default: () => [],
    },
  },
  { strict: 'throw', versionKey: false },
);

export type GatewayPresenceData = InferSchemaType<typeof gatewayPresenceSchema>;
export type GatewayPresenceDocument = HydratedDocument<GatewayPresenceData>;

export const GatewayPresence = mongoose.model('GatewayPresence', gatewayPresenceSchema);
export type GatewayPresenceModel = typeof GatewayPresence;

/** The GatewayPresence model on another connection. */
export function gatewayPresenceModelOn(connection: Connection): GatewayPresenceModel {
  if (connection === mongoose.connection) return GatewayPresence;
  return (
    (connection.models.GatewayPresence as GatewayPresenceModel | undefined) ??
    connection.model('GatewayPresence', gatewayPresenceSchema)
  );
}
