import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

/** The one settings document's `_id`. */
export const BUSINESS_SETTINGS_ID = 'business';

export const trialDepositRefundModes = ['refund', 'wallet'] as const;
export type TrialDepositRefundMode = (typeof trialDepositRefundModes)[number];

/**
 * Where the unused part of a period goes when a customer cancels at once: the
 * wallet; the card that paid the period (what that payment can still give
 * back, the rest to the wallet); or nowhere.
 */
export const cancellationRefundModes = ['wallet', 'card', 'none'] as const;
export type CancellationRefundMode = (typeof cancellationRefundModes)[number];

/** When a downgrade confirmed by a customer takes effect. */
export const downgradeTimings = ['period_end', 'now'] as const;
export type DowngradeTiming = (typeof downgradeTimings)[number];

/** How many past changes the settings document keeps for admins to read. */
export const SETTINGS_HISTORY_LIMIT = 50;

/**
 * Business settings, editable by admins: one document (`_id: 'business'`),
 * seeded with defaults by core/settings.ts on first read. The defaults and the
 * full validation (zod) live in core/settings.ts; this schema keeps the shapes.
 * `version` grows by one with each change; updates are conditional on it.
 */
const settingsSchema = new Schema(
  {
    _id: { type: String, required: true },
    currency: { type: String, enum: CURRENCIES, required: true },
    trialDepositMinor: { type: Number, required: true, min: 0 },
    trialDepositRefund: { type: String, enum: trialDepositRefundModes, required: true },
    // Not required: documents written before it existed read the default.
    cancellationRefund: { type: String, enum: cancellationRefundModes },
    downgradeTiming: { type: String, enum: downgradeTimings },
    dataTopUpGb: { type: Number, min: 1 },
    dataTopUpPriceMinor: { type: Number, min: 0 },
    vat: {
      enabled: { type: Boolean, required: true },
      /** 750 = 7.5 %. */
      rateBps: { type: Number, required: true, min: 0, max: 10_000 },
    },
    /** The seller's details printed on invoices. */
    business: {
      name: { type: String, required: true },
      address: { type: String },
      email: { type: String },
      taxId: { type: String },
    },
    walletLowThresholdMinor: { type: Number, required: true, min: 0 },
    pendingPaymentReverifyAfterMinutes: { type: Number, required: true, min: 1 },
    graceDays: { type: Number, required: true, min: 0 },
    dunningOffsetsHours: { type: [Number], required: true },
    renewalReminderDays: { type: Number, required: true, min: 0 },
    usageThresholdsPct: { type: [Number], required: true },
    webhookRetentionDays: { type: Number, required: true, min: 1 },
    // Not required: documents written before they existed read the default.
    notificationRetentionDays: { type: Number, min: 7 },
    failedNotificationRetentionDays: { type: Number, min: 7 },
    version: { type: Number, required: true, min: 1 },
    updatedAt: { type: Date },
    /** Who made the latest change (an admin's account or chat identity). */
    updatedBy: { type: String },
    /** The latest changes, oldest first, at most SETTINGS_HISTORY_LIMIT. */
    history: {
      type: [
        {
          _id: false,
          at: { type: Date, required: true },
          actor: { type: String, required: true },
          version: { type: Number, required: true },
          changes: { type: Schema.Types.Mixed, required: true },
        },
      ],
      default: () => [],
    },
  },
  { strict: 'throw', versionKey: false, collection: 'settings' },
);

export type SettingsData = InferSchemaType<typeof settingsSchema>;
export type SettingsDocument = HydratedDocument<SettingsData>;

export const SettingsRecord = mongoose.model('Settings', settingsSchema);
export type SettingsModel = typeof SettingsRecord;

/** The Settings model on another connection (tests use it to act as a second process). */
export function settingsModelOn(connection: Connection): SettingsModel {
  if (connection === mongoose.connection) return SettingsRecord;
  return (
    (connection.models.Settings as SettingsModel | undefined) ??
    connection.model('Settings', settingsSchema)
  );
}
