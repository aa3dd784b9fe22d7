/**
 * Business settings: one MongoDB document, seeded with the defaults below on
 * first read, edited by admins, cached per process for `refreshMs`.
 *
 * An update is read -> merge -> validate -> write conditional on `version`; a
 * lost race re-reads and re-applies the same changes on the newer settings, so
 * two admins changing different fields at once both keep their change (and two
 * changing the same field end with the later one, each recorded in `history`).
 */
import { isDuplicateKeyError } from '../models/errors.js';
import mongoose, { type Connection } from 'mongoose';
import { z } from 'zod';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { CURRENCIES } from '../lib/money.js';
import {
  BUSINESS_SETTINGS_ID,
  SETTINGS_HISTORY_LIMIT,
  settingsModelOn,
  trialDepositRefundModes,
  cancellationRefundModes,
  downgradeTimings,
  type SettingsData,
  type SettingsModel,
} from '../models/settings.js';

function isIncreasing(values: readonly number[]): boolean {
  return values.every((value, i) => i === 0 || value > (values[i - 1] ?? value));
}

const vatSchema = z.strictObject({
  enabled: z.boolean(),
  /** Basis points: 750 = 7.5 %. */
  rateBps: z.int().min(0).max(10_000),
});

const businessSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  address: z.string().trim().max(500),
  email: z.union([z.literal(''), z.email()]),
  taxId: z.string().trim().min(1).max(64).optional(),
});

/** Every business setting with its rule; units are in the names. */
export const businessSettingsSchema = z.strictObject({
  /** The currency prices, deposits and wallets use. */
  currency: z.enum(CURRENCIES),
  /** The refundable trial deposit, in minor units of `currency`. */
  trialDepositMinor: z.int().min(0),
  /** Where a trial deposit goes back at the end: to the card, or into the wallet. */
  trialDepositRefund: z.enum(trialDepositRefundModes),
  /**
   * Cancelling at once: the unused part of the period goes to the wallet, back
   * to the card that paid the period (what that payment can still give back;
   * any rest to the wallet), or nowhere.
   */
  cancellationRefund: z.enum(cancellationRefundModes),
  /** A downgrade takes effect at the end of the period (default), or at once with the credit to the wallet. */
  downgradeTiming: z.enum(downgradeTimings),
  /** One extra-data purchase adds this many GB (10^9 bytes) to the current quota window. */
  dataTopUpGb: z.int().min(1).max(10_000),
  /** Its price in minor units of `currency`; 0 takes extra data off sale. */
  dataTopUpPriceMinor: z.int().min(0),
  vat: vatSchema,
  /** The seller on invoices. */
  business: businessSchema,
  /** A "wallet low" notice goes out when the PAYG balance falls below this. */
  walletLowThresholdMinor: z.int().min(0),
  /** A payment still pending after this long is verified with Paystack again. */
  pendingPaymentReverifyAfterMinutes: z.int().min(1).max(10_080),
  /** Days a lapsed subscription keeps working while renewal is retried. */
  graceDays: z.int().min(0).max(60),
  /** Hours after a failed renewal at which it is retried, increasing. */
  dunningOffsetsHours: z
    .array(
      z
        .int()
        .min(1)
        .max(24 * 60),
    )
    .max(10)
    .refine(isIncreasing, 'must be in increasing order'),
  /** Days before a renewal at which the customer is reminded. */
  renewalReminderDays: z.int().min(0).max(60),
  /** Percentages of the quota at which the customer is told, increasing. */
  usageThresholdsPct: z
    .array(z.int().min(1).max(100))
    .min(1)
    .max(10)
    .refine(isIncreasing, 'must be in increasing order'),
  /** Stored Paystack webhook events are deleted after this many days. */
  webhookRetentionDays: z.int().min(1).max(3_650),
  /**
   * Notifications delivered (or skipped) everywhere are deleted after this many
   * days. At least 7: an item's dedup key is what keeps a reminder from going
   * out twice, so it must outlive the windows the reminder passes look back on.
   */
  notificationRetentionDays: z.int().min(7).max(3_650),
  /** Notifications with a failed delivery are kept this long instead, for support to read. */
  failedNotificationRetentionDays: z.int().min(7).max(3_650),
});

export type BusinessSettings = z.infer<typeof businessSettingsSchema>;

export const DEFAULT_SETTINGS: Readonly<BusinessSettings> = Object.freeze({
  currency: 'NGN',
  trialDepositMinor: 200_000,
  trialDepositRefund: 'refund',
  cancellationRefund: 'wallet',
  downgradeTiming: 'period_end',
  dataTopUpGb: 5,
  dataTopUpPriceMinor: 150_000,
  vat: { enabled: false, rateBps: 750 },
  business: { name: 'Atlantic', address: '', email: '' },
  walletLowThresholdMinor: 50_000,
  pendingPaymentReverifyAfterMinutes: 10,
  graceDays: 3,
  dunningOffsetsHours: [24, 72],
  renewalReminderDays: 3,
  usageThresholdsPct: [50, 80, 95, 100],
  webhookRetentionDays: 90,
  notificationRetentionDays: 90,
  failedNotificationRetentionDays: 365,
});

/** The settings as the business reads them, with the version of the document. */
export interface Settings extends BusinessSettings {
  version: number;
  updatedAt: Date | undefined;
  updatedBy: string | undefined;
}

/** An admin's edit: any top-level setting, and any part of `vat` or `business`. */
export type SettingsChanges = {
  [K in keyof BusinessSettings]?: K extends 'vat' | 'business'
    ? Partial<BusinessSettings[K]>
    : BusinessSettings[K];
};

export interface SettingsStore {
  /** The settings, from this process's cache when it is younger than `refreshMs`. */
  get(): Promise<Settings>;
  /**
   * Applies an admin's changes, validated as a whole; an invalid value is
   * VALIDATION_FAILED with `details.field` naming it (`vat.rateBps`).
   */
  update(changes: SettingsChanges, by: { actor: string }): Promise<Settings>;
}

export interface SettingsStoreOptions {
  clock: Clock;
  /** How long a read is served from the cache, in ms (default 5000). */
  refreshMs?: number;
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

/** An update retries only when another update landed between its read and its write. */
const MAX_UPDATE_ATTEMPTS = 10;

type StoredSettings = SettingsData & { _id: string };

function validationError(error: z.ZodError, prefix: string): DomainError {
  const issue = error.issues[0];
  const path = issue?.path.map(String) ?? [];
  if (issue?.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  const field = path.join('.') || '(settings)';
  return new DomainError('VALIDATION_FAILED', `${prefix} ${field}: ${issue?.message ?? ''}`, {
    details: {
      field,
      issues: error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    },
  });
}

/** Stored values over the defaults (so settings added later read as their default). */
function toSettings(stored: StoredSettings): Settings {
  const { _id, version, updatedAt, updatedBy, history: _history, ...fields } = stored;
  const merged = {
    ...DEFAULT_SETTINGS,
    ...fields,
    vat: { ...DEFAULT_SETTINGS.vat, ...fields.vat },
    business: { ...DEFAULT_SETTINGS.business, ...withoutEmpty(fields.business ?? {}) },
  };
  const parsed = businessSettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const problem = validationError(parsed.error, 'The stored settings are invalid at');
    throw new DomainError('INTERNAL', problem.message, {
      details: { ...problem.details, id: _id },
    });
  }
  return {
    ...parsed.data,
    version,
    updatedAt: updatedAt ?? undefined,
    updatedBy: updatedBy ?? undefined,
  };
}

/** Drops the null / undefined fields a lean read may carry for absent optional values. */
function withoutEmpty<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== null && v !== undefined),
  ) as Partial<T>;
}

function applyChanges(current: BusinessSettings, changes: SettingsChanges): BusinessSettings {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    throw new DomainError('VALIDATION_FAILED', 'Settings changes must be an object.', {
      details: { field: '(settings)' },
    });
  }
  const nested = (key: 'vat' | 'business'): unknown => {
    const change: unknown = changes[key];
    if (change === undefined) return current[key];
    // A non-object is left for zod to name the field.
    if (typeof change !== 'object' || change === null || Array.isArray(change)) return change;
    return { ...current[key], ...change };
  };
  const merged = { ...current, ...changes, vat: nested('vat'), business: nested('business') };
  const parsed = businessSettingsSchema.safeParse(merged);
  if (!parsed.success) throw validationError(parsed.error, 'Invalid setting');
  return parsed.data;
}

function businessFields(settings: Settings): BusinessSettings {
  const { version: _v, updatedAt: _at, updatedBy: _by, ...fields } = settings;
  return fields;
}

async function loadSettings(Model: SettingsModel): Promise<Settings> {
  const found = await Model.findById(BUSINESS_SETTINGS_ID).lean<StoredSettings>();
  if (found) return toSettings(found);
  const seed = () =>
    Model.findOneAndUpdate(
      { _id: BUSINESS_SETTINGS_ID },
      { $setOnInsert: { ...DEFAULT_SETTINGS, version: 1, history: [] } },
      { upsert: true, returnDocument: 'after' },
    )
      .lean<StoredSettings>()
      .orFail();
  try {
    return toSettings(await seed());
  } catch (error) {
    // Two processes seeded at once; the loser's upsert now finds the winner's document.
    if (!isDuplicateKeyError(error)) throw error;
    return toSettings(await seed());
  }
}

/** A settings store for one process; create one at start-up and share it. */
export function createSettingsStore(options: SettingsStoreOptions): SettingsStore {
  const { clock } = options;
  const refreshMs = options.refreshMs ?? 5_000;
  const Model = settingsModelOn(options.connection ?? mongoose.connection);
  let cached: { value: Settings; readAtMs: number } | undefined;
  let loading: Promise<Settings> | undefined;

  const remember = (value: Settings): Settings => {
    cached = { value, readAtMs: clock.now().getTime() };
    return value;
  };

  return {
    get() {
      if (cached && clock.now().getTime() - cached.readAtMs < refreshMs) {
        return Promise.resolve(cached.value);
      }
      // Concurrent readers share one database read.
      loading ??= loadSettings(Model)
        .then(remember)
        .finally(() => {
          loading = undefined;
        });
      return loading;
    },

    async update(changes, { actor }) {
      if (typeof actor !== 'string' || actor.trim().length === 0) {
        throw new DomainError('VALIDATION_FAILED', 'A settings change needs an actor.', {
          details: { field: 'actor' },
        });
      }
      for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
        const current = await loadSettings(Model);
        const next = applyChanges(businessFields(current), changes);
        const at = clock.now();
        const version = current.version + 1;
        const written = await Model.findOneAndUpdate(
          { _id: BUSINESS_SETTINGS_ID, version: current.version },
          {
            $set: { ...next, version, updatedAt: at, updatedBy: actor },
            $push: {
              history: {
                $each: [{ at, actor, version, changes }],
                $slice: -SETTINGS_HISTORY_LIMIT,
              },
            },
          },
          { returnDocument: 'after' },
        ).lean<StoredSettings>();
        if (written) return remember(toSettings(written));
        // Another update won the race: apply these changes on top of it.
      }
      throw new DomainError('CONFLICT', 'The settings are being changed by others; try again.');
    },
  };
}
