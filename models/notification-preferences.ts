import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';
import { notificationEvents } from './notification.js';

/**
 * What one account wants to hear and where. No document means the defaults:
 * every channel on, no event muted. Mandatory events (receipts, failed
 * payments) ignore `mutedEvents`; core/notifications.ts decides which.
 */
const notificationPreferencesSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    channels: {
      telegram: { type: Boolean, required: true, default: true },
      whatsapp: { type: Boolean, required: true, default: true },
      email: { type: Boolean, required: true, default: true },
    },
    mutedEvents: {
      type: [{ type: String, enum: notificationEvents }],
      required: true,
      default: () => [],
    },
  },
  { timestamps: true, strict: 'throw' },
);

notificationPreferencesSchema.index({ accountId: 1 }, { unique: true });

export type NotificationPreferencesData = InferSchemaType<typeof notificationPreferencesSchema>;
export type NotificationPreferencesDocument = HydratedDocument<NotificationPreferencesData>;

export const NotificationPreferences = mongoose.model(
  'NotificationPreferences',
  notificationPreferencesSchema,
);
