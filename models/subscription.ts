import mongoose, { Schema, type HydratedDocument, type Types } from 'mongoose';
import { CURRENCIES, type Currency } from '../lib/money.js';
import {
  billingUnits,
  planKinds,
  quotaPeriods,
  type BillingPeriod,
  type PlanKind,
  type QuotaPeriod,
} from './plan.js';

/**
 * pending_payment: chosen at checkout, not paid yet (no access).
 * trialing: a deposit-backed trial until `trialEndsAt`.
 * active: paid up to `periodEnd` (PAYG: open-ended, access from the wallet).
 *   With `cancelAtPeriodEnd` it runs to `periodEnd` and then ends as `cancelled`.
 * past_due: the period ended and the renewal charge failed; access continues
 *   until `graceEndsAt`, then it expires.
 * cancelled: ended by the customer or an admin (terminal).
 * expired: ran out (trial over, grace over, checkout abandoned) (terminal).
 */
export const subscriptionStatuses = [
  'pending_payment',
  'trialing',
  'active',
  'past_due',
  'cancelled',
  'expired',
] as const;
export type SubscriptionStatus = (typeof subscriptionStatuses)[number];

/** The statuses in which a subscription occupies its account's one live slot. */
export const liveSubscriptionStatuses = [
  'pending_payment',
  'trialing',
  'active',
  'past_due',
] as const satisfies readonly SubscriptionStatus[];

export function isLiveStatus(status: SubscriptionStatus): boolean {
  return (liveSubscriptionStatuses as readonly SubscriptionStatus[]).includes(status);
}

export interface SubscriptionTransition {
  /** null for the creation of the subscription. */
  from: SubscriptionStatus | null;
  to: SubscriptionStatus;
  at: Date;
  reason: string;
}

export interface SubscriptionData {
  accountId: Types.ObjectId;
  planCode: string;
  /** Plan version the current price and terms were taken from. */
  planVersion: number;
  planKind: PlanKind;
  /** Price of the current billing period as bought (0 for trial and PAYG). */
  priceMinor: number;
  currency: Currency;
  /** The plan's billing period when the current period was bought (recurring plans). */
  billingPeriod?: BillingPeriod | undefined;
  /** How quota windows are cut (none for PAYG). */
  quotaPeriod?: QuotaPeriod | undefined;
  status: SubscriptionStatus;
  /** Equal to accountId while the status is live, absent otherwise: one live subscription per account. */
  liveAccountId?: Types.ObjectId | undefined;
  activatedAt?: Date | undefined;
  /** Billing periods are cut from here (same day of month, clamped to short months). */
  billingAnchorAt?: Date | undefined;
  /** Quota windows roll from here (activation). */
  quotaAnchorAt?: Date | undefined;
  periodStart?: Date | undefined;
  /** End of the paid period (exclusive); none for PAYG. */
  periodEnd?: Date | undefined;
  quotaPeriodStart?: Date | undefined;
  quotaPeriodEnd?: Date | undefined;
  cancelAtPeriodEnd: boolean;
  /** A downgrade confirmed for the period end: the renewal moves to this plan. */
  scheduledPlanCode?: string | undefined;
  trialEndsAt?: Date | undefined;
  graceEndsAt?: Date | undefined;
  /** When the subscription stopped (cancelled or expired). */
  endedAt?: Date | undefined;
  /** The payment that started it; starting from the same payment twice finds this one. */
  activatedByPaymentRef?: string | undefined;
  /** Payments that renewed it, one period each; a repeated renewal with one of these is a no-op. */
  renewalPaymentRefs: string[];
  /** Locations the customer picked, for plans that let them choose (lower-case codes). */
  chosenLocations: string[];
  /** Bumped by every write; each transition is conditional on the revision it read. */
  revision: number;
  history: SubscriptionTransition[];
}

export interface SubscriptionRecord extends SubscriptionData {
  _id: Types.ObjectId;
  createdAt: Date;
  updatedAt: Date;
}

const billingPeriodSchema = new Schema<BillingPeriod>(
  {
    unit: { type: String, enum: billingUnits, required: true },
    count: { type: Number, required: true, min: 1 },
  },
  { _id: false, strict: 'throw' },
);

const transitionSchema = new Schema<SubscriptionTransition>(
  {
    from: { type: String, enum: [...subscriptionStatuses, null], default: null },
    to: { type: String, enum: subscriptionStatuses, required: true },
    at: { type: Date, required: true },
    reason: { type: String, required: true, maxlength: 500 },
  },
  { _id: false, strict: 'throw' },
);

/**
 * An account's right to use a plan over time. Moves only through the
 * transition functions in core/subscriptions.ts, each one conditional update.
 */
const subscriptionSchema = new Schema<SubscriptionData>(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    planCode: { type: String, required: true },
    planVersion: { type: Number, required: true, min: 1 },
    planKind: { type: String, enum: planKinds, required: true },
    priceMinor: {
      type: Number,
      required: true,
      min: 0,
      validate: { validator: Number.isSafeInteger, message: 'priceMinor must be a whole number' },
    },
    currency: { type: String, enum: CURRENCIES, required: true },
    billingPeriod: { type: billingPeriodSchema },
    quotaPeriod: { type: String, enum: quotaPeriods },
    status: { type: String, enum: subscriptionStatuses, required: true },
    liveAccountId: { type: Schema.Types.ObjectId },
    activatedAt: { type: Date },
    billingAnchorAt: { type: Date },
    quotaAnchorAt: { type: Date },
    periodStart: { type: Date },
    periodEnd: { type: Date },
    quotaPeriodStart: { type: Date },
    quotaPeriodEnd: { type: Date },
    cancelAtPeriodEnd: { type: Boolean, required: true, default: false },
    /** A downgrade confirmed for the end of the period: the renewal moves to this plan. */
    scheduledPlanCode: { type: String },
    trialEndsAt: { type: Date },
    graceEndsAt: { type: Date },
    endedAt: { type: Date },
    activatedByPaymentRef: { type: String },
    renewalPaymentRefs: { type: [String], required: true, default: () => [] },
    chosenLocations: { type: [String], required: true, default: () => [] },
    revision: { type: Number, required: true, default: 0 },
    history: { type: [transitionSchema], required: true, default: () => [] },
  },
  { timestamps: true, strict: 'throw' },
);

// At most one live subscription per account (partial filters: equality and $exists only).
subscriptionSchema.index(
  { liveAccountId: 1 },
  { unique: true, partialFilterExpression: { liveAccountId: { $exists: true } } },
);
subscriptionSchema.index(
  { activatedByPaymentRef: 1 },
  { unique: true, partialFilterExpression: { activatedByPaymentRef: { $exists: true } } },
);
subscriptionSchema.index({ accountId: 1, createdAt: -1 });
subscriptionSchema.index({ status: 1, periodEnd: 1 });
subscriptionSchema.index({ status: 1, trialEndsAt: 1 });
subscriptionSchema.index({ status: 1, graceEndsAt: 1 });
// Gateways re-read the access facts of accounts written lately (core/proxy-credentials.ts).
subscriptionSchema.index({ updatedAt: 1 });

export type SubscriptionDocument = HydratedDocument<SubscriptionData>;

export const Subscription = mongoose.model<SubscriptionData>('Subscription', subscriptionSchema);
