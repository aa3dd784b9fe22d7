import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/**
 * "Only one process at a time does this" (Telegram long polling, the
 * WhatsApp connection): the holder renews its lease well before `expiresAt`;
 * when it dies, another process takes the lease once it has expired.
 */
const roleLeaseSchema = new Schema(
  {
    name: { type: String, required: true, maxlength: 100 },
    holder: { type: String, required: true, maxlength: 200 },
    expiresAt: { type: Date, required: true },
  },
  { timestamps: true, strict: 'throw' },
);

roleLeaseSchema.index({ name: 1 }, { unique: true });

export type RoleLeaseData = InferSchemaType<typeof roleLeaseSchema>;

export const RoleLease = mongoose.model('RoleLease', roleLeaseSchema);
