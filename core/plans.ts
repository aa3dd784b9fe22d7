/**
 * The plan catalogue: defaults seeded once, then owned by admins.
 *
 * Editing a plan bumps its `version` and applies to new subscriptions; a running
 * subscription keeps the price (and version) it was bought at until it renews,
 * when `priceForRenewal` reads the plan as it is then.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import { findOneByKey } from '../models/batching.js';
import { Error as MongooseError } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { formatMoney, type Currency } from '../lib/money.js';
import {
  Plan,
  type BillingPeriod,
  type PaygRate,
  type PlanData,
  type PlanLocations,
  type PlanQuota,
  type PlanRecord,
  type PlanTrial,
  type Protocol,
  type QuotaPeriod,
} from '../models/plan.js';

const GB = 1_000_000_000;

/** The fields of a default plan (version and editor are set by the seed). */
export type PlanDefinition = Omit<PlanData, 'version' | 'editedBy'>;

/**
 * The catalogue Atlantic starts with (ARCHITECTURE.md, "Plans and entitlements").
 * Prices in NGN, chosen for the Nigerian market and editable by admins:
 * - trial: no price here; the refundable deposit is a business setting (`trialDepositMinor`);
 * - starter: ₦3,500.00 a month (350,000 kobo);
 * - personal: ₦15,000.00 a month (1,500,000 kobo);
 * - team: ₦60,000.00 a month (6,000,000 kobo) for 5 seats;
 * - payg: ₦150.00 per connected hour (15,000 kobo), per-GB charge off.
 */
export const DEFAULT_PLANS: readonly PlanDefinition[] = [
  {
    code: 'trial',
    name: 'Trial',
    description: '1 GB for 3 days over HTTPS in one location, against a refundable deposit.',
    kind: 'trial',
    prices: [],
    quota: { bytes: 1 * GB, period: 'trial', rolling: true, pooled: false },
    protocols: ['https'],
    portRule: 'any',
    locations: { kind: 'choose', max: 1 },
    maxConnections: 2,
    features: { rotation: false, stickySessions: false },
    trial: { durationDays: 3, dataBytes: 1 * GB },
    isOnSale: true,
  },
  {
    code: 'starter',
    name: 'Starter',
    description:
      '10 GB every week (rolling from the day you start), HTTPS to web ports, one location.',
    kind: 'recurring',
    prices: [{ currency: 'NGN', amountMinor: 350_000 }],
    billingPeriod: { unit: 'month', count: 1 },
    quota: { bytes: 10 * GB, period: 'week', rolling: true, pooled: false },
    protocols: ['https'],
    portRule: 'https_only',
    locations: { kind: 'choose', max: 1 },
    maxConnections: 2,
    features: { rotation: false, stickySessions: false },
    isOnSale: true,
  },
  {
    code: 'personal',
    name: 'Personal',
    description:
      '100 GB a month, HTTP, HTTPS and SOCKS5, every location, rotation and sticky sessions.',
    kind: 'recurring',
    prices: [{ currency: 'NGN', amountMinor: 1_500_000 }],
    billingPeriod: { unit: 'month', count: 1 },
    quota: { bytes: 100 * GB, period: 'month', rolling: true, pooled: false },
    protocols: ['http', 'https', 'socks5'],
    portRule: 'any',
    locations: { kind: 'all' },
    maxConnections: 10,
    features: { rotation: true, stickySessions: true },
    isOnSale: true,
  },
  {
    code: 'team',
    name: 'Team',
    description: '500 GB a month shared by 5 members, every protocol and location.',
    kind: 'recurring',
    prices: [{ currency: 'NGN', amountMinor: 6_000_000 }],
    billingPeriod: { unit: 'month', count: 1 },
    quota: { bytes: 500 * GB, period: 'month', rolling: true, pooled: true },
    protocols: ['http', 'https', 'socks5'],
    portRule: 'any',
    locations: { kind: 'all' },
    maxConnections: 50,
    seats: 5,
    features: { rotation: true, stickySessions: true },
    isOnSale: true,
  },
  {
    code: 'payg',
    name: 'Pay as you go',
    description: 'Every protocol and location, charged per connected hour from your wallet.',
    kind: 'payg',
    prices: [],
    protocols: ['http', 'https', 'socks5'],
    portRule: 'any',
    locations: { kind: 'all' },
    maxConnections: 20,
    features: { rotation: true, stickySessions: true },
    payg: { rates: [{ currency: 'NGN', hourlyRateMinor: 15_000 }] },
    isOnSale: true,
  },
];

const DISPLAY_ORDER = DEFAULT_PLANS.map((plan) => plan.code);

/**
 * Inserts every default plan that is missing and leaves existing ones alone, so
 * an admin's edit survives restarts. Safe when several processes start at once:
 * each insert is an upsert on the unique code that only sets fields on insert.
 */
export async function seedPlans(clock: Clock): Promise<{ inserted: string[] }> {
  const now = clock.now();
  const inserted: string[] = [];
  for (const definition of DEFAULT_PLANS) {
    try {
      const result = await Plan.updateOne(
        { code: definition.code },
        {
          $setOnInsert: {
            ...definition,
            version: 1,
            editedBy: 'seed',
            createdAt: now,
            updatedAt: now,
          },
        },
        { upsert: true, timestamps: false, setDefaultsOnInsert: false },
      );
      if (result.upsertedCount === 1) inserted.push(definition.code);
    } catch (error) {
      // A racing process inserted it between our lookup and insert: it exists, as wanted.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
  return { inserted };
}

/** Every plan, in catalogue order (trial, starter, personal, team, payg, then others by code). */
export async function listPlans(options: { onSaleOnly?: boolean } = {}): Promise<PlanRecord[]> {
  const filter = options.onSaleOnly ? { isOnSale: true } : {};
  const plans = (await Plan.find(filter).lean<PlanRecord[]>()).map(normalise);
  return plans.sort((a, b) => rank(a.code) - rank(b.code) || a.code.localeCompare(b.code));
}

/** The plan with this code, on sale or not (running subscriptions still need it). */
export async function getPlan(code: string): Promise<PlanRecord> {
  // Batched with the other lookups of this turn: a burst of fulfilments asks for plans together.
  const plan = await findOneByKey<PlanRecord>(Plan, 'code', code.trim().toLowerCase());
  if (!plan) {
    throw new DomainError('PLAN_NOT_FOUND', `There is no plan called "${code}".`, {
      details: { planCode: code },
    });
  }
  return normalise(plan);
}

/** Like `getPlan`, for new purchases: a plan taken off sale is PLAN_NOT_FOUND. */
export async function getPlanForSale(code: string): Promise<PlanRecord> {
  const plan = await getPlan(code);
  if (!plan.isOnSale) {
    throw new DomainError('PLAN_NOT_FOUND', `The ${plan.name} plan is not on sale.`, {
      details: { planCode: plan.code },
    });
  }
  return plan;
}

/** Price of one billing period in `currency`; UNSUPPORTED when the plan has no price there. */
export function planPrice(
  plan: Pick<PlanData, 'code' | 'name' | 'prices'>,
  currency: Currency,
): number {
  const price = plan.prices.find((p) => p.currency === currency);
  if (!price) {
    throw new DomainError('UNSUPPORTED', `The ${plan.name} plan is not sold in ${currency}.`, {
      details: { planCode: plan.code, currency },
    });
  }
  return price.amountMinor;
}

export interface RenewalPrice {
  priceMinor: number;
  currency: Currency;
  planVersion: number;
}

/**
 * What the next period of a subscription costs: the plan's price as it is now,
 * in the currency the subscription was bought in.
 */
export async function priceForRenewal(subscription: {
  planCode: string;
  currency: Currency;
}): Promise<RenewalPrice> {
  const plan = await getPlan(subscription.planCode);
  if (plan.kind !== 'recurring') {
    throw new DomainError('UNSUPPORTED', `The ${plan.name} plan does not renew.`, {
      details: { planCode: plan.code },
    });
  }
  return {
    priceMinor: planPrice(plan, subscription.currency),
    currency: subscription.currency,
    planVersion: plan.version,
  };
}

/** What an admin may change; `null` removes an optional part. The code never changes. */
export interface PlanChanges {
  name?: string;
  description?: string;
  prices?: PlanData['prices'];
  billingPeriod?: BillingPeriod | null;
  quota?: PlanQuota | null;
  protocols?: Protocol[];
  portRule?: PlanData['portRule'];
  locations?: PlanLocations;
  maxConnections?: number;
  seats?: number | null;
  features?: PlanData['features'];
  payg?: { rates: PaygRate[] } | null;
  trial?: PlanTrial | null;
  isOnSale?: boolean;
}

const EDITABLE_KEYS = [
  'name',
  'description',
  'prices',
  'billingPeriod',
  'quota',
  'protocols',
  'portRule',
  'locations',
  'maxConnections',
  'seats',
  'features',
  'payg',
  'trial',
  'isOnSale',
] as const satisfies readonly (keyof PlanChanges)[];

const MAX_EDIT_ATTEMPTS = 5;

/**
 * Applies an admin's edit and bumps the version. The merged plan must still be
 * a valid plan of its kind (VALIDATION_FAILED lists every problem). With
 * `expectedVersion`, an edit made against a plan someone else changed since is
 * refused with CONFLICT; without it, a racing edit is merged and retried.
 */
export async function updatePlan(
  code: string,
  changes: PlanChanges,
  options: { actor: string; clock: Clock; expectedVersion?: number },
): Promise<PlanRecord> {
  const unknown = Object.keys(changes).filter(
    (key) => !(EDITABLE_KEYS as readonly string[]).includes(key),
  );
  if (unknown.length > 0) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `These plan fields cannot be edited: ${unknown.join(', ')}.`,
      {
        details: { fields: unknown },
      },
    );
  }
  for (let attempt = 0; attempt < MAX_EDIT_ATTEMPTS; attempt += 1) {
    const current = await getPlan(code);
    if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
      throw new DomainError(
        'CONFLICT',
        `The ${current.name} plan was changed by someone else (now version ${current.version}); reload and edit again.`,
        { details: { planCode: current.code, version: current.version } },
      );
    }
    const $set: Record<string, unknown> = {};
    const $unset: Record<string, ''> = {};
    const merged: Record<string, unknown> = { ...stripEnvelope(current) };
    for (const key of EDITABLE_KEYS) {
      if (!(key in changes)) continue;
      const value = changes[key];
      if (value === null || value === undefined) {
        $unset[key] = '';
        delete merged[key];
      } else {
        $set[key] = value;
        merged[key] = value;
      }
    }
    const problems = [
      ...(await schemaProblems(merged)),
      ...validatePlan(merged as unknown as PlanData),
    ];
    if (problems.length > 0) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `The plan change is not valid: ${problems.join('; ')}.`,
        {
          details: { planCode: current.code, problems },
        },
      );
    }
    const updated = await Plan.findOneAndUpdate(
      { code: current.code, version: current.version },
      {
        $set: {
          ...$set,
          version: current.version + 1,
          editedBy: options.actor,
          updatedAt: options.clock.now(),
        },
        ...(Object.keys($unset).length > 0 ? { $unset } : {}),
      },
      { returnDocument: 'after', timestamps: false, runValidators: false },
    ).lean<PlanRecord>();
    if (updated) return normalise(updated);
    if (options.expectedVersion !== undefined) {
      throw new DomainError(
        'CONFLICT',
        'The plan was changed by someone else; reload and edit again.',
        {
          details: { planCode: current.code },
        },
      );
    }
  }
  throw new DomainError('CONFLICT', 'The plan is being edited by someone else; try again.', {
    details: { planCode: code },
  });
}

/**
 * Rules across fields that the schema alone cannot say; returns every problem
 * as a sentence (empty = valid).
 */
export function validatePlan(plan: PlanData): string[] {
  const problems: string[] = [];
  const currencies = plan.prices.map((p) => p.currency);
  if (new Set(currencies).size !== currencies.length)
    problems.push('each currency may have one price');
  if (
    plan.locations.kind === 'choose' &&
    !(Number.isSafeInteger(plan.locations.max) && plan.locations.max >= 1)
  ) {
    problems.push('a plan that lets the customer choose locations needs max of at least 1');
  }
  switch (plan.kind) {
    case 'recurring':
      if (plan.prices.length === 0) problems.push('a recurring plan needs a price');
      if (!plan.billingPeriod) problems.push('a recurring plan needs a billing period');
      if (!plan.quota) problems.push('a recurring plan needs a data quota');
      else if (plan.quota.period === 'trial')
        problems.push("only a trial has a 'trial' quota period");
      if (plan.payg) problems.push('a recurring plan has no pay-as-you-go rates');
      if (plan.trial) problems.push('a recurring plan has no trial settings');
      break;
    case 'trial':
      if (!plan.trial) problems.push('a trial plan needs its duration and data');
      if (plan.billingPeriod) problems.push('a trial plan has no billing period');
      if (!plan.quota || plan.quota.period !== 'trial')
        problems.push("a trial plan needs a quota with period 'trial'");
      else if (plan.trial && plan.quota.bytes !== plan.trial.dataBytes) {
        problems.push('the trial quota must equal the trial data allowance');
      }
      if (plan.payg) problems.push('a trial plan has no pay-as-you-go rates');
      break;
    case 'payg': {
      const rates = plan.payg?.rates ?? [];
      if (rates.length === 0) problems.push('a pay-as-you-go plan needs an hourly rate');
      const rateCurrencies = rates.map((r) => r.currency);
      if (new Set(rateCurrencies).size !== rateCurrencies.length) {
        problems.push('each currency may have one pay-as-you-go rate');
      }
      if (plan.billingPeriod) problems.push('a pay-as-you-go plan has no billing period');
      if (plan.quota) problems.push('a pay-as-you-go plan has no quota');
      if (plan.trial) problems.push('a pay-as-you-go plan has no trial settings');
      break;
    }
  }
  if (plan.quota?.pooled && !(plan.seats !== undefined && plan.seats > 1)) {
    problems.push('a pooled quota needs more than one seat');
  }
  return problems;
}

/** One plan as the bots and the API show it side by side. */
export interface PlanComparisonRow {
  code: string;
  name: string;
  description: string;
  kind: PlanData['kind'];
  /** Price per billing period in the asked currency; null for trial (deposit) and payg (rates below). */
  price: { amountMinor: number; currency: Currency; per: BillingPeriod } | null;
  /** PAYG rates in the asked currency, null otherwise. */
  payg: { hourlyRateMinor: number; perGbRateMinor: number | null; currency: Currency } | null;
  /** Data allowance; null = no quota (PAYG, metered from the wallet). */
  data: {
    bytes: number;
    period: QuotaPeriod;
    pooled: boolean;
    /** Unused data carried into the next window, at most this many bytes; 0: none. */
    rolloverCapBytes: number;
  } | null;
  /** Trial length in days, for the trial. */
  trialDays: number | null;
  protocols: Protocol[];
  /** 'all', or how many locations the customer picks. */
  locations: 'all' | number;
  maxConnections: number;
  seats: number;
  features: PlanData['features'];
  /** Ready-made short texts; edges may word their own from the numbers. */
  labels: { price: string; data: string; locations: string; protocols: string };
}

/**
 * The catalogue as a comparison table. A plan with no price in `currency` is
 * left out (it cannot be bought there), except trials, which have no price.
 */
export function comparePlans(
  plans: readonly PlanData[],
  options: { currency?: Currency } = {},
): PlanComparisonRow[] {
  const currency = options.currency ?? 'NGN';
  const rows: PlanComparisonRow[] = [];
  for (const plan of plans) {
    const price = plan.prices.find((p) => p.currency === currency);
    const rate = plan.payg?.rates.find((r) => r.currency === currency);
    if (plan.kind === 'recurring' && (!price || !plan.billingPeriod)) continue;
    if (plan.kind === 'payg' && !rate) continue;
    const row: PlanComparisonRow = {
      code: plan.code,
      name: plan.name,
      description: plan.description,
      kind: plan.kind,
      price:
        plan.kind === 'recurring' && price && plan.billingPeriod
          ? { amountMinor: price.amountMinor, currency, per: { ...plan.billingPeriod } }
          : null,
      payg: rate
        ? {
            hourlyRateMinor: rate.hourlyRateMinor,
            perGbRateMinor: rate.perGbRateMinor ?? null,
            currency,
          }
        : null,
      data: plan.quota
        ? {
            bytes: plan.quota.bytes,
            period: plan.quota.period,
            pooled: plan.quota.pooled,
            rolloverCapBytes: plan.quota.rolloverCapBytes ?? 0,
          }
        : null,
      trialDays: plan.trial?.durationDays ?? null,
      protocols: [...plan.protocols],
      locations: plan.locations.kind === 'all' ? 'all' : plan.locations.max,
      maxConnections: plan.maxConnections,
      seats: plan.seats ?? 1,
      features: { ...plan.features },
      labels: { price: '', data: '', locations: '', protocols: '' },
    };
    row.labels = labelsOf(row);
    rows.push(row);
  }
  return rows;
}

function labelsOf(row: PlanComparisonRow): PlanComparisonRow['labels'] {
  let price = 'refundable deposit';
  if (row.price) price = `${formatMoney(row.price)} per ${periodText(row.price.per)}`;
  if (row.payg) {
    price = `${formatMoney({ amountMinor: row.payg.hourlyRateMinor, currency: row.payg.currency })} per connected hour`;
    if (row.payg.perGbRateMinor !== null) {
      price += ` + ${formatMoney({ amountMinor: row.payg.perGbRateMinor, currency: row.payg.currency })} per GB`;
    }
  }
  let data = 'no data cap (paid from your wallet)';
  if (row.data) {
    const amount = gbText(row.data.bytes);
    const period =
      row.data.period === 'trial'
        ? `for ${row.trialDays ?? '?'} days`
        : `per ${row.data.period}${row.data.period === 'week' ? ', rolling' : ''}`;
    data = `${amount} ${period}${row.data.pooled ? ` shared by ${row.seats} members` : ''}`;
    if (row.data.rolloverCapBytes > 0) {
      data += `, unused data rolls over (up to ${gbText(row.data.rolloverCapBytes)})`;
    }
  }
  const locations =
    row.locations === 'all'
      ? 'all locations'
      : row.locations === 1
        ? 'one location'
        : `${row.locations} locations`;
  const protocols = row.protocols.map((p) => p.toUpperCase()).join(', ');
  return { price, data, locations, protocols };
}

function periodText(period: BillingPeriod): string {
  return period.count === 1 ? period.unit : `${period.count} ${period.unit}s`;
}

/** GB = 10^9 bytes, as shown to people; whole GB when exact, else one decimal. */
export function gbText(bytes: number): string {
  const tenths = Math.round(bytes / 100_000_000);
  return tenths % 10 === 0 ? `${tenths / 10} GB` : `${Math.floor(tenths / 10)}.${tenths % 10} GB`;
}

function rank(code: string): number {
  const index = DISPLAY_ORDER.indexOf(code);
  return index === -1 ? DISPLAY_ORDER.length : index;
}

/** Lean documents carry `__v` and loose sub-document shapes; give callers the plain PlanRecord. */
function normalise(raw: PlanRecord): PlanRecord {
  const { __v: _version, ...rest } = raw as PlanRecord & { __v?: number };
  const locations: PlanLocations =
    rest.locations.kind === 'choose'
      ? { kind: 'choose', max: rest.locations.max }
      : { kind: 'all' };
  return { ...rest, locations };
}

function stripEnvelope(plan: PlanRecord): PlanData {
  const { _id: _ignoredId, createdAt: _createdAt, updatedAt: _updatedAt, ...data } = plan;
  return data;
}

/** Schema problems (types, enums, ranges) of a merged plan, without writing it. */
async function schemaProblems(merged: Record<string, unknown>): Promise<string[]> {
  try {
    await new Plan(merged).validate();
    return [];
  } catch (error) {
    if (error instanceof MongooseError.ValidationError) {
      return Object.values(error.errors).map((e) => e.message);
    }
    if (
      error instanceof MongooseError.StrictModeError ||
      error instanceof MongooseError.CastError
    ) {
      return [error.message];
    }
    throw error;
  }
}
