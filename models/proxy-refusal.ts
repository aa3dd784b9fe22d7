import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';
import { protocols } from './plan.js';

/** How long refusals are kept ("why did my proxy fail?" looks at the last few). */
export const PROXY_REFUSAL_TTL_SECONDS = 30 * 86_400;

/**
 * A connection the gateway refused or cut for an authenticated account, with
 * the reason as the customer was told it: the bots answer "why did my proxy
 * fail?" from the latest of these. Repeats of the same reason within a few
 * seconds are folded into one record (`count`).
 */
const proxyRefusalSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** An entitlement RefusalCode, or a gateway code (DISCONNECTED, CREDENTIALS_ROTATED, ...). */
    code: { type: String, required: true, maxlength: 64 },
    message: { type: String, required: true, maxlength: 1000 },
    /** `refused` at authorization; `cut` when a live tunnel was closed. */
    stage: { type: String, enum: ['refused', 'cut'], required: true },
    protocol: { type: String, enum: protocols },
    port: { type: Number, min: 0, max: 65_535 },
    location: { type: String, maxlength: 32 },
    count: { type: Number, required: true, min: 1, default: 1 },
    at: { type: Date, required: true },
  },
  { strict: 'throw', versionKey: false },
);

proxyRefusalSchema.index({ accountId: 1, at: -1 });
proxyRefusalSchema.index({ at: 1 }, { expireAfterSeconds: PROXY_REFUSAL_TTL_SECONDS });

export type ProxyRefusalData = InferSchemaType<typeof proxyRefusalSchema>;
export type ProxyRefusalDocument = HydratedDocument<ProxyRefusalData>;

export const ProxyRefusal = mongoose.model('ProxyRefusal', proxyRefusalSchema);
export type ProxyRefusalModel = typeof ProxyRefusal;

/** The ProxyRefusal model on another connection. */
export function proxyRefusalModelOn(connection: Connection): ProxyRefusalModel {
  if (connection === mongoose.connection) return ProxyRefusal;
  return (
    (connection.models.ProxyRefusal as ProxyRefusalModel | undefined) ??
    connection.model('ProxyRefusal', proxyRefusalSchema)
  );
}
