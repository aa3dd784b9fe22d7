import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

export const webhookEventStatuses = [
  'received',
  'processing',
  'processed',
  'ignored',
  'failed',
] as const;
export type WebhookEventStatus = (typeof webhookEventStatuses)[number];

/**
 * Every accepted (correctly signed) Paystack webhook, stored once under a unique
 * key before it is acknowledged, then processed idempotently by whichever process
 * claims it. Paystack sends no event id, so the key is built from what identifies
 * the event (see core/payments/webhooks.ts).
 */
const webhookEventSchema = new Schema(
  {
    provider: { type: String, enum: ['paystack'], required: true },
    eventKey: { type: String, required: true },
    event: { type: String, required: true },
    payload: { type: Schema.Types.Mixed, required: true },
    status: { type: String, enum: webhookEventStatuses, required: true, default: 'received' },
    receivedAt: { type: Date, required: true },
    /** How many times this event arrived (Paystack retries; 2 or more means duplicates). */
    deliveries: { type: Number, required: true, default: 1 },
    attempts: { type: Number, required: true, default: 0 },
    /** A claim by one processor; an expired lease may be claimed again. */
    leaseUntil: { type: Date },
    nextAttemptAt: { type: Date, required: true },
    processedAt: { type: Date },
    outcome: { type: String },
    lastError: { type: String },
  },
  { timestamps: true, strict: 'throw' },
);

webhookEventSchema.index({ provider: 1, eventKey: 1 }, { unique: true });
webhookEventSchema.index({ status: 1, nextAttemptAt: 1 });

export type WebhookEventData = InferSchemaType<typeof webhookEventSchema>;
export type WebhookEventDocument = HydratedDocument<WebhookEventData>;

export const WebhookEvent = mongoose.model('WebhookEvent', webhookEventSchema);
