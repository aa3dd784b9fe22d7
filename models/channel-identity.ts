import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

export const channels = ['telegram', 'whatsapp'] as const;
export type Channel = (typeof channels)[number];

/**
 * One chat identity (a Telegram user id, a WhatsApp number) belonging to one
 * account. An account may have one identity per channel, linked by a one-time
 * code; an identity belongs to exactly one account.
 */
const channelIdentitySchema = new Schema(
  {
    channel: { type: String, enum: channels, required: true },
    /** Telegram user id as a decimal string, or WhatsApp number as E.164 digits. */
    externalId: { type: String, required: true, trim: true, maxlength: 64 },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    displayName: { type: String, maxlength: 256 },
    /**
     * Set when the channel refused a delivery for good (the customer blocked
     * the bot, the number is not on WhatsApp): notifications skip it until the
     * customer writes again, which clears it.
     */
    failingSince: { type: Date },
    failingReason: { type: String, maxlength: 500 },
  },
  { timestamps: true, strict: 'throw' },
);

channelIdentitySchema.index({ channel: 1, externalId: 1 }, { unique: true });
channelIdentitySchema.index({ accountId: 1, channel: 1 }, { unique: true });

export type ChannelIdentityData = InferSchemaType<typeof channelIdentitySchema>;
export type ChannelIdentityDocument = HydratedDocument<ChannelIdentityData>;

export const ChannelIdentity = mongoose.model('ChannelIdentity', channelIdentitySchema);
