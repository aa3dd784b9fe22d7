import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';
import { channels } from './channel-identity.js';

/**
 * Where a conversation stands, per chat identity (bot/core): the step a
 * half-finished conversation waits at with what it gathered so far, and the
 * menu last shown (so a numbered reply or an old button resolves to the
 * choice it named). Written with a version check, so two instances handling
 * the same chat never overwrite each other silently; kept for `expiresAt`
 * after the last message (a TTL index removes it).
 */
const menuItemSchema = new Schema(
  {
    label: { type: String, required: true, maxlength: 200 },
    action: { type: String, required: true, maxlength: 200 },
  },
  { _id: false },
);

const chatStateSchema = new Schema(
  {
    channel: { type: String, enum: channels, required: true },
    externalId: { type: String, required: true, trim: true, maxlength: 64 },
    accountId: { type: Schema.Types.ObjectId, ref: 'Account' },
    /** The step waiting for the customer's next message, or null at the main menu. */
    step: { type: String, default: null, maxlength: 100 },
    /** What the current conversation gathered (an email, a quote id, a chosen location). */
    data: { type: Schema.Types.Mixed, default: () => ({}) },
    /** The last menu shown, flattened in order (numbered replies count from 1). */
    menu: { type: [menuItemSchema], default: () => [] },
    language: { type: String, default: 'en', maxlength: 10 },
    version: { type: Number, required: true, default: 0, min: 0 },
    expiresAt: { type: Date, required: true },
  },
  { timestamps: true, strict: 'throw', minimize: false },
);

chatStateSchema.index({ channel: 1, externalId: 1 }, { unique: true });
chatStateSchema.index({ accountId: 1 });
chatStateSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });

export type ChatStateData = InferSchemaType<typeof chatStateSchema>;
export type ChatStateDocument = HydratedDocument<ChatStateData>;

export const ChatState = mongoose.model('ChatState', chatStateSchema);
