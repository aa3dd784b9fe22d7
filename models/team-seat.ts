import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';

const wholeNumber = {
  validator: (value: unknown) =>
    value === undefined || value === null || Number.isSafeInteger(value),
  message: '{PATH} must be a whole number',
};

/**
 * One member of a team plan: an account of its own (its own proxy
 * credentials, refusals and usage) that draws on the owner's subscription and
 * pooled quota. The owner is not stored as a seat but counts as one, so a
 * plan with `seats: 5` has the owner and at most four of these.
 *
 * `slot` (1 .. seats - 1) is unique per owner, so two members added at the
 * same moment cannot both take the last seat: the unique index decides, no
 * transaction needed. `memberAccountId` is unique: an account is a seat of
 * one team at most.
 *
 * The optional caps bind the seat alone, inside the team's own limits:
 * `capBytes` per quota window (counted on the member's own quota counter, see
 * core/team.ts) and `maxConnections` open at once.
 */
const teamSeatSchema = new Schema(
  {
    ownerAccountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    memberAccountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    slot: { type: Number, required: true, min: 1, validate: wholeNumber },
    /** Bytes the seat may use per quota window; absent = the team's pool only. */
    capBytes: { type: Number, min: 0, validate: wholeNumber },
    /** Connections the seat may have open at once; absent = the team's limit only. */
    maxConnections: { type: Number, min: 1, validate: wholeNumber },
  },
  { timestamps: true, strict: 'throw' },
);

teamSeatSchema.index({ memberAccountId: 1 }, { unique: true });
teamSeatSchema.index({ ownerAccountId: 1, slot: 1 }, { unique: true });

export type TeamSeatData = InferSchemaType<typeof teamSeatSchema>;
export type TeamSeatDocument = HydratedDocument<TeamSeatData>;

export const TeamSeat = mongoose.model('TeamSeat', teamSeatSchema);
export type TeamSeatModel = typeof TeamSeat;

/** The TeamSeat model on another connection (tests use it to act as a second process). */
export function teamSeatModelOn(connection: Connection): TeamSeatModel {
  if (connection === mongoose.connection) return TeamSeat;
  return (
    (connection.models.TeamSeat as TeamSeatModel | undefined) ??
    connection.model('TeamSeat', teamSeatSchema)
  );
}
