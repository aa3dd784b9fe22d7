import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

/**
 * Every event core may raise. A closed list: an issue that adds an event adds
 * it here (and its texts in each channel's renderer).
 */
export const notificationEvents = [
  'welcome',
  'payment_confirmed',
  'payment_failed',
  'payment_flagged',
  'trial_started',
  /** A trial deposit was paid but this person (card, email, chat identity) already had a trial. */
  'trial_refused',
  'trial_ending',
  'deposit_refunded',
  'deposit_refund_failed',
  /** A refund (other than a trial deposit's) reached the customer's card or wallet. */
  'refund_processed',
  /** Paystack failed a refund or needs an operator for it (admins only). */
  'refund_failed',
  'renewal_due',
  'usage_50',
  'usage_80',
  'usage_95',
  'usage_100',
  'wallet_low',
  /** PAYG stopped: the wallet cannot pay for the next connected hour or more data. */
  'wallet_empty',
  'cancelled',
  'dispute_opened',
  /** Every exit of a location is failing (admins only). */
  'exit_pool_down',
  /** Wallet balances that do not match their ledgers (admins only). */
  'ledger_drift',
  'weekly_summary',
  'usage_forecast',
  'wallet_forecast',
  /** A plan ended unpaid after its grace period. */
  'expired',
  /** A plan change took effect (now, or at the renewal it was scheduled for). */
  'plan_changed',
  /** The customer was added to / removed from a team. */
  'seat_added',
  'seat_removed',
  /** A message an admin sent to many customers at once (core/admin/broadcast.ts). */
  'broadcast',
] as const;
export type NotificationEvent = (typeof notificationEvents)[number];

/** Where a notification can go: the chat channels plus email. */
export const notificationChannels = ['telegram', 'whatsapp', 'email'] as const;
export type NotificationChannel = (typeof notificationChannels)[number];

export const notificationAudiences = ['customer', 'admins'] as const;
export type NotificationAudience = (typeof notificationAudiences)[number];

/**
 * pending: waiting for its channel (from `nextAttemptAt`); sending: claimed by
 * a worker until `leaseUntil`; sent; failed: gave up; skipped: not delivered on
 * purpose (preferences, no recipient on that channel).
 */
export const deliveryStatuses = ['pending', 'sending', 'sent', 'failed', 'skipped'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

const deliverySchema = new Schema(
  {
    channel: { type: String, enum: notificationChannels, required: true },
    status: { type: String, enum: deliveryStatuses, required: true, default: 'pending' },
    /** Claims so far (each claim is one attempt, so a worker that dies mid-send counts too). */
    attempts: { type: Number, required: true, min: 0, default: 0 },
    nextAttemptAt: { type: Date, required: true },
    leaseUntil: { type: Date, default: null },
    claimedBy: { type: String, default: null, maxlength: 200 },
    lastError: { type: String, default: null, maxlength: 1000 },
    sentAt: { type: Date, default: null },
  },
  { _id: false },
);

/**
 * One outbox item: an event for one account (or for the admins), written once
 * per dedup key, with one delivery slot per channel, kept under the channel's
 * name (`deliveries.telegram`). Slots are keyed rather than kept in an array
 * so a claim updates plain paths (`deliveries.telegram.status`) without the
 * positional operator, and each channel's queue has its own index.
 * The process running a channel claims that channel's due slots atomically
 * (core/notifications.ts).
 */
const notificationSchema = new Schema(
  {
    audience: { type: String, enum: notificationAudiences, required: true },
    /** Required for the customer audience; absent for admin alerts. */
    accountId: {
      type: Schema.Types.ObjectId,
      ref: 'Account',
      required(this: { audience?: string }) {
        return this.audience === 'customer';
      },
    },
    event: { type: String, enum: notificationEvents, required: true },
    /** What makes a repeat of the event a new notification (a month, a payment reference). */
    period: { type: String, maxlength: 200 },
    /** `<accountId>:<event>:<period>` for customers, `admins:<key>` for admin alerts. */
    dedupKey: { type: String, required: true, maxlength: 500 },
    /** Facts the renderers need (amounts, plan names, dates); no secrets. */
    data: { type: Schema.Types.Mixed, default: () => ({}) },
    deliveries: {
      telegram: { type: deliverySchema },
      whatsapp: { type: deliverySchema },
      email: { type: deliverySchema },
    },
  },
  { timestamps: true, strict: 'throw', minimize: false },
);

notificationSchema.index({ dedupKey: 1 }, { unique: true });
for (const channel of notificationChannels) {
  // Each channel's queue: claimNext asks for this channel's pending or expired slots, oldest first.
  notificationSchema.index({ [`deliveries.${channel}.status`]: 1, createdAt: 1 });
}
notificationSchema.index({ accountId: 1, createdAt: -1 });

export type NotificationData = InferSchemaType<typeof notificationSchema>;
export type NotificationDocument = HydratedDocument<NotificationData>;

export const Notification = mongoose.model('Notification', notificationSchema);
