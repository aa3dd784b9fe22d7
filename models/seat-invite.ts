import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const wholeNumber = {
  validator: (value: unknown) =>
    value === undefined || value === null || Number.isSafeInteger(value),
  message: '{PATH} must be a whole number',
};

/**
 * An invitation to a team seat (core/team-invites.ts): a short code the owner
 * passes on in chat, used once, until it expires or the owner revokes it.
 * `usedBy` is set by one conditional update when someone joins with it.
 */
const seatInviteSchema = new Schema(
  {
    code: { type: String, required: true, maxlength: 32 },
    ownerAccountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** The caps the new seat gets (core/team.ts SeatCaps). */
    capBytes: { type: Number, min: 0, validate: wholeNumber },
    maxConnections: { type: Number, min: 1, validate: wholeNumber },
    expiresAt: { type: Date, required: true },
    usedBy: { type: Schema.Types.ObjectId, ref: 'Account' },
    usedAt: { type: Date },
    revokedAt: { type: Date },
  },
  { timestamps: true, strict: 'throw' },
);

seatInviteSchema.index({ code: 1 }, { unique: true });
seatInviteSchema.index({ ownerAccountId: 1, createdAt: -1 });

export type SeatInviteData = InferSchemaType<typeof seatInviteSchema>;
export type SeatInviteRecord = SeatInviteData & { _id: mongoose.Types.ObjectId };

export const SeatInvite = mongoose.model('SeatInvite', seatInviteSchema);
