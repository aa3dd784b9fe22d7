import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

/** `direct`: this gateway host dials the target; `socks5` / `http`: through an upstream proxy. */
export const exitKinds = ['direct', 'socks5', 'http'] as const;
export type ExitKind = (typeof exitKinds)[number];

/**
 * Location codes are what customers type after `-country-` in the proxy
 * username, so letters and digits only (no `-`).
 */
export const LOCATION_CODE_PATTERN = /^[a-z][a-z0-9]{1,15}$/;

const exitSchema = new Schema(
  {
    /** Stable id within the location; tunnels and sticky sessions refer to it. */
    exitId: { type: String, required: true, match: /^[A-Za-z0-9_.:]{1,64}$/ },
    kind: { type: String, enum: exitKinds, required: true },
    /** Upstream proxy address (socks5/http only). */
    host: { type: String, trim: true, maxlength: 253 },
    port: { type: Number, min: 1, max: 65_535 },
    username: { type: String, maxlength: 255 },
    password: { type: String, maxlength: 255 },
    /** false after a failed dial; skipped until `retryAfter`, then tried again. */
    healthy: { type: Boolean, required: true, default: true },
    failures: { type: Number, required: true, min: 0, default: 0 },
    lastError: { type: String, maxlength: 500 },
    lastFailureAt: { type: Date },
    retryAfter: { type: Date },
  },
  { _id: false, strict: 'throw' },
);

/**
 * An exit location customers pick (`-country-ng`): a country, a city, a label
 * for menus, and a pool of exits the gateway rotates through. Admins manage it
 * through core/locations.ts; gateways poll it by `updatedAt`.
 */
const locationSchema = new Schema(
  {
    code: {
      type: String,
      required: true,
      lowercase: true,
      trim: true,
      match: LOCATION_CODE_PATTERN,
    },
    /** ISO 3166-1 alpha-2, lower-case. */
    countryCode: { type: String, required: true, lowercase: true, match: /^[a-z]{2}$/ },
    city: { type: String, trim: true, maxlength: 100 },
    label: { type: String, required: true, trim: true, maxlength: 100 },
    exits: { type: [exitSchema], required: true, default: () => [] },
  },
  { timestamps: true, strict: 'throw' },
);

locationSchema.index({ code: 1 }, { unique: true });

export type LocationData = InferSchemaType<typeof locationSchema>;
export type LocationExitData = LocationData['exits'][number];
export type LocationDocument = HydratedDocument<LocationData>;

export const Location = mongoose.model('Location', locationSchema);
export type LocationModel = typeof Location;

/** The Location model on another connection (tests use it to act as a second process). */
export function locationModelOn(connection: Connection): LocationModel {
  if (connection === mongoose.connection) return Location;
  return (
    (connection.models.Location as LocationModel | undefined) ??
    connection.model('Location', locationSchema)
  );
}
