import mongoose, { Schema, type HydratedDocument, type Types } from 'mongoose';
import { CURRENCIES, type Currency } from '../lib/money.js';

/** `http` = plain forwarding, `https` = CONNECT through the HTTP proxy, `socks5` = SOCKS5 CONNECT. */
export const protocols = ['http', 'https', 'socks5'] as const;
export type Protocol = (typeof protocols)[number];

export const planKinds = ['trial', 'recurring', 'payg'] as const;
/** trial: deposit-backed trial; recurring: paid per billing period; payg: billed hourly from a wallet. */
export type PlanKind = (typeof planKinds)[number];

export const billingUnits = ['day', 'week', 'month'] as const;
export type BillingUnit = (typeof billingUnits)[number];

export const quotaPeriods = ['week', 'month', 'trial'] as const;
export type QuotaPeriod = (typeof quotaPeriods)[number];

/**
 * Which destination ports a plan may reach: `https_only` = only the ports in
 * `HTTPS_ONLY_PORTS` (Starter), `any` = any port except the blocked ones.
 */
export const portRules = ['https_only', 'any'] as const;
export type PortRule = (typeof portRules)[number];

export interface PlanPrice {
  currency: Currency;
  /** Price of one billing period, in minor units of `currency`. */
  amountMinor: number;
}

export interface BillingPeriod {
  unit: BillingUnit;
  count: number;
}

export interface PlanQuota {
  /** Data allowance per quota period, in bytes (GB = 10^9 bytes). */
  bytes: number;
  period: QuotaPeriod;
  /** Windows roll from the subscription's activation, not from calendar boundaries. */
  rolling: boolean;
  /** One allowance shared by every seat of the subscription (team). */
  pooled: boolean;
  /**
   * Roll-over: at most this many unused bytes of a window are added to the
   * next one (core/quota.ts openQuotaPeriod). Absent or 0: no roll-over (the
   * default plans have none).
   */
  rolloverCapBytes?: number;
}

export type PlanLocations = { kind: 'all' } | { kind: 'choose'; max: number };

export interface PlanFeatures {
  /** A new exit per connection from the location's pool. */
  rotation: boolean;
  /** `-session-<id>` in the username keeps one exit. */
  stickySessions: boolean;
}

export interface PaygRate {
  currency: Currency;
  /** Charged when each connected hour starts. */
  hourlyRateMinor: number;
  /** Optional per-GB (10^9 bytes) charge on top; unset = off. */
  perGbRateMinor?: number | undefined;
}

export interface PlanTrial {
  durationDays: number;
  dataBytes: number;
}

/** A plan as stored, without the database envelope. */
export interface PlanData {
  code: string;
  name: string;
  description: string;
  kind: PlanKind;
  /** NGN first. Empty for trial (deposit lives in settings) and payg (rates in `payg`). */
  prices: PlanPrice[];
  billingPeriod?: BillingPeriod | undefined;
  quota?: PlanQuota | undefined;
  protocols: Protocol[];
  portRule: PortRule;
  locations: PlanLocations;
  maxConnections: number;
  seats?: number | undefined;
  features: PlanFeatures;
  payg?: { rates: PaygRate[] } | undefined;
  trial?: PlanTrial | undefined;
  isOnSale: boolean;
  /** Incremented on every edit; subscriptions record the version they were bought at. */
  version: number;
  /** Who made the last edit (an admin id, or `seed`). */
  editedBy: string;
}

export interface PlanRecord extends PlanData {
  _id: Types.ObjectId;
  createdAt: Date;
  updatedAt: Date;
}

const wholeNumber = {
  validator: (value: unknown) => value === undefined || Number.isSafeInteger(value),
  message: '{PATH} must be a whole number',
};

const priceSchema = new Schema<PlanPrice>(
  {
    currency: { type: String, enum: CURRENCIES, required: true },
    amountMinor: { type: Number, required: true, min: 0, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

const billingPeriodSchema = new Schema<BillingPeriod>(
  {
    unit: { type: String, enum: billingUnits, required: true },
    count: { type: Number, required: true, min: 1, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

const quotaSchema = new Schema<PlanQuota>(
  {
    bytes: { type: Number, required: true, min: 0, validate: wholeNumber },
    period: { type: String, enum: quotaPeriods, required: true },
    rolling: { type: Boolean, required: true, default: true },
    pooled: { type: Boolean, required: true, default: false },
    rolloverCapBytes: { type: Number, min: 0, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

const locationsSchema = new Schema(
  {
    kind: { type: String, enum: ['all', 'choose'], required: true },
    max: { type: Number, min: 1, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

const featuresSchema = new Schema<PlanFeatures>(
  {
    rotation: { type: Boolean, required: true, default: false },
    stickySessions: { type: Boolean, required: true, default: false },
  },
  { _id: false, strict: 'throw' },
);

const paygRateSchema = new Schema<PaygRate>(
  {
    currency: { type: String, enum: CURRENCIES, required: true },
    hourlyRateMinor: { type: Number, required: true, min: 0, validate: wholeNumber },
    perGbRateMinor: { type: Number, min: 0, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

const trialSchema = new Schema<PlanTrial>(
  {
    durationDays: { type: Number, required: true, min: 1, validate: wholeNumber },
    dataBytes: { type: Number, required: true, min: 0, validate: wholeNumber },
  },
  { _id: false, strict: 'throw' },
);

/**
 * One product in the catalogue. Seeded from defaults (core/plans.ts) and then
 * owned by admins: every edit bumps `version`. A subscription keeps the price
 * and version it was bought at until it renews.
 */
const planSchema = new Schema<PlanData>(
  {
    code: {
      type: String,
      required: true,
      trim: true,
      lowercase: true,
      match: /^[a-z][a-z0-9_-]{0,31}$/,
    },
    name: { type: String, required: true, trim: true, maxlength: 64 },
    description: { type: String, required: true, default: '', maxlength: 1000 },
    kind: { type: String, enum: planKinds, required: true },
    prices: { type: [priceSchema], required: true, default: () => [] },
    billingPeriod: { type: billingPeriodSchema },
    quota: { type: quotaSchema },
    protocols: {
      type: [{ type: String, enum: protocols }],
      required: true,
      validate: {
        validator: (value: unknown[]) => value.length > 0 && new Set(value).size === value.length,
        message: 'protocols must list at least one protocol, each once',
      },
    },
    portRule: { type: String, enum: portRules, required: true, default: 'any' },
    locations: { type: locationsSchema, required: true },
    maxConnections: { type: Number, required: true, min: 1, validate: wholeNumber },
    seats: { type: Number, min: 1, validate: wholeNumber },
    features: { type: featuresSchema, required: true, default: () => ({}) },
    payg: {
      type: new Schema(
        { rates: { type: [paygRateSchema], required: true } },
        { _id: false, strict: 'throw' },
      ),
    },
    trial: { type: trialSchema },
    isOnSale: { type: Boolean, required: true, default: true },
    version: { type: Number, required: true, min: 1, default: 1, validate: wholeNumber },
    editedBy: { type: String, required: true, default: 'seed' },
  },
  { timestamps: true, strict: 'throw' },
);

planSchema.index({ code: 1 }, { unique: true });

export type PlanDocument = HydratedDocument<PlanData>;

export const Plan = mongoose.model<PlanData>('Plan', planSchema);
