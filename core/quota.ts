/**
 * The quota-period counter: how many bytes an account may still relay in its
 * current period. Billing opens periods (a reset is the next period), the
 * gateway leases bytes and settles them, purchases and admin grants add bytes.
 *
 * Every write is one atomic update of one QuotaUsage document that moves
 * `availableBytes` (= limit - used - leased) together with the fields it is made
 * of, so a lease is a guarded decrement and `usedBytes + leasedBytes` never
 * passes `limitBytes` through leases, however many gateways ask at once. Usage
 * booked without a lease (`recordUsage`) or beyond its lease (`settleLease`) is
 * counted as it happened, even past the limit: the bytes were relayed.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import mongoose, { Types, type Connection } from 'mongoose';
import { DomainError } from '../lib/errors.js';
import {
  quotaUsageModelOn,
  type QuotaUsageData,
  type QuotaUsageModel,
} from '../models/quota-usage.js';

/** An account `_id`, as an ObjectId or its hex string (the same as core/wallet.ts). */
type AccountId = string | Types.ObjectId;

export interface QuotaDatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

export interface QuotaPeriodView {
  accountId: string;
  periodStart: Date;
  periodEnd: Date;
  limitBytes: number;
  carryOverBytes: number;
  addedBytes: number;
  usedBytes: number;
  leasedBytes: number;
  /** What can still be leased or used: limit - used - leased, never below 0. */
  remainingBytes: number;
}

export interface QuotaLease {
  /** Possibly less than asked for; 0 when the period is spent. */
  grantedBytes: number;
  /** Pass it back to settleLease. */
  periodStart: Date;
  periodEnd: Date;
}

type QuotaRecord = QuotaUsageData & { _id: Types.ObjectId };

/** Leases retry only when another caller took bytes between the read and the update. */
const MAX_LEASE_ATTEMPTS = 50;

function model(options: QuotaDatabaseOption): QuotaUsageModel {
  return quotaUsageModelOn(options.connection ?? mongoose.connection);
}

function toAccountId(accountId: AccountId): Types.ObjectId {
  if (accountId instanceof Types.ObjectId) return accountId;
  if (!Types.ObjectId.isValid(accountId)) {
    throw new DomainError('VALIDATION_FAILED', 'That is not an account id.', {
      details: { field: 'accountId', accountId },
    });
  }
  return new Types.ObjectId(accountId);
}

function checkBytes(value: number, field: string, { positive = false } = {}): number {
  if (!Number.isSafeInteger(value) || value < 0 || (positive && value === 0)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `${field} must be a ${positive ? 'positive' : 'non-negative'} whole number of bytes.`,
      { details: { field, value } },
    );
  }
  return value;
}

function view(record: QuotaRecord): QuotaPeriodView {
  return {
    accountId: String(record.accountId),
    periodStart: record.periodStart,
    periodEnd: record.periodEnd,
    limitBytes: record.limitBytes,
    carryOverBytes: record.carryOverBytes,
    addedBytes: record.addedBytes,
    usedBytes: record.usedBytes,
    leasedBytes: record.leasedBytes,
    remainingBytes: Math.max(0, record.availableBytes),
  };
}

/** The period of `accountId` that contains `now` (start inclusive, end exclusive). */
function containing(accountId: Types.ObjectId, now: Date) {
  return { accountId, periodStart: { $lte: now }, periodEnd: { $gt: now } };
}

const latestFirst = { periodStart: -1 } as const;

export interface OpenQuotaPeriodRequest {
  periodStart: Date;
  periodEnd: Date;
  /** The plan's allowance for the period. */
  limitBytes: number;
  /** Unused bytes brought over from the previous period (default 0), added to the limit. */
  carryOverBytes?: number;
}

/**
 * Opens the period starting at `periodStart`, or returns it unchanged if it is
 * already open (the first call's figures win), so a billing job can rerun.
 */
export async function openQuotaPeriod(
  accountId: AccountId,
  request: OpenQuotaPeriodRequest,
  options: QuotaDatabaseOption = {},
): Promise<QuotaPeriodView> {
  const QuotaUsage = model(options);
  const account = toAccountId(accountId);
  const limitBytes = checkBytes(request.limitBytes, 'limitBytes');
  const carryOverBytes = checkBytes(request.carryOverBytes ?? 0, 'carryOverBytes');
  if (!(request.periodEnd.getTime() > request.periodStart.getTime())) {
    throw new DomainError('VALIDATION_FAILED', 'A quota period must end after it starts.', {
      details: { field: 'periodEnd' },
    });
  }
  const totalBytes = checkBytes(limitBytes + carryOverBytes, 'limitBytes');
  const open = () =>
    QuotaUsage.findOneAndUpdate(
      { accountId: account, periodStart: request.periodStart },
      {
        $setOnInsert: {
          periodEnd: request.periodEnd,
          limitBytes: totalBytes,
          carryOverBytes,
          addedBytes: 0,
          usedBytes: 0,
          leasedBytes: 0,
          availableBytes: totalBytes,
        },
      },
      { upsert: true, returnDocument: 'after' },
    )
      .lean<QuotaRecord>()
      .orFail();
  try {
    return view(await open());
  } catch (error) {
    // A racing opener inserted it first; now the upsert finds it.
    if (!isDuplicateKeyError(error)) throw error;
    return view(await open());
  }
}

/** The period containing `now`, or null when the account has none. */
export async function getQuotaUsage(
  accountId: AccountId,
  now: Date,
  options: QuotaDatabaseOption = {},
): Promise<QuotaPeriodView | null> {
  const record = await model(options)
    .findOne(containing(toAccountId(accountId), now))
    .sort(latestFirst)
    .lean<QuotaRecord>();
  return record ? view(record) : null;
}

/**
 * Books bytes relayed without a lease into the period containing `now` (one
 * atomic `$inc`). Returns the new totals, or null when no period is open.
 */
export async function recordUsage(
  accountId: AccountId,
  bytes: number,
  now: Date,
  options: QuotaDatabaseOption = {},
): Promise<{ usedBytes: number; remainingBytes: number; periodStart: Date } | null> {
  checkBytes(bytes, 'bytes');
  const record = await model(options)
    .findOneAndUpdate(
      containing(toAccountId(accountId), now),
      { $inc: { usedBytes: bytes, availableBytes: -bytes } },
      { sort: latestFirst, returnDocument: 'after' },
    )
    .lean<QuotaRecord>();
  if (!record) return null;
  const { usedBytes, remainingBytes, periodStart } = view(record);
  return { usedBytes, remainingBytes, periodStart };
}

/**
 * Raises the limit of the period containing `now` (an extra data purchase, an
 * admin grant). Returns the period, or null when none is open. Callers make it
 * idempotent by keying the purchase (the payment reference) before calling.
 */
export async function addQuotaBytes(
  accountId: AccountId,
  bytes: number,
  now: Date,
  options: QuotaDatabaseOption = {},
): Promise<QuotaPeriodView | null> {
  checkBytes(bytes, 'bytes', { positive: true });
  const record = await model(options)
    .findOneAndUpdate(
      containing(toAccountId(accountId), now),
      { $inc: { limitBytes: bytes, addedBytes: bytes, availableBytes: bytes } },
      { sort: latestFirst, returnDocument: 'after' },
    )
    .lean<QuotaRecord>();
  return record ? view(record) : null;
}

/**
 * Leases up to `requestedBytes` from the period containing `now`: all of them
 * if they are available, else what is left, else 0. Null when no period is
 * open. A lease is held until settleLease returns what was not used.
 */
export async function leaseBytes(
  accountId: AccountId,
  requestedBytes: number,
  now: Date,
  options: QuotaDatabaseOption = {},
): Promise<QuotaLease | null> {
  checkBytes(requestedBytes, 'requestedBytes', { positive: true });
  const QuotaUsage = model(options);
  const filter = containing(toAccountId(accountId), now);
  const take = (bytes: number) => ({ $inc: { leasedBytes: bytes, availableBytes: -bytes } });
  const lease = (record: QuotaRecord, grantedBytes: number): QuotaLease => ({
    grantedBytes,
    periodStart: record.periodStart,
    periodEnd: record.periodEnd,
  });

  // The usual case in one round trip: everything asked for is available.
  const whole = await QuotaUsage.findOneAndUpdate(
    { ...filter, availableBytes: { $gte: requestedBytes } },
    take(requestedBytes),
    { sort: latestFirst, returnDocument: 'after' },
  ).lean<QuotaRecord>();
  if (whole) return lease(whole, requestedBytes);

  for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS; attempt++) {
    const current = await QuotaUsage.findOne(filter).sort(latestFirst).lean<QuotaRecord>();
    if (!current) return null;
    const grantedBytes = Math.min(requestedBytes, current.availableBytes);
    if (grantedBytes <= 0) return lease(current, 0);
    const result = await QuotaUsage.updateOne(
      { _id: current._id, availableBytes: { $gte: grantedBytes } },
      take(grantedBytes),
    );
    if (result.modifiedCount === 1) return lease(current, grantedBytes);
    // Someone else leased or used bytes since the read: look again.
  }
  throw new DomainError('CONFLICT', 'The quota counter is busy; try again.', {
    details: { accountId: String(accountId) },
  });
}

/**
 * Ends (part of) a lease: `leasedBytes` go back out of the leased total and the
 * `usedBytes` actually relayed are booked (they may exceed the lease by what a
 * gateway relayed between two renewals). Not idempotent: settle each lease once.
 */
export async function settleLease(
  accountId: AccountId,
  periodStart: Date,
  settlement: { leasedBytes: number; usedBytes: number },
  options: QuotaDatabaseOption = {},
): Promise<QuotaPeriodView> {
  const leasedBytes = checkBytes(settlement.leasedBytes, 'leasedBytes');
  const usedBytes = checkBytes(settlement.usedBytes, 'usedBytes');
  const QuotaUsage = model(options);
  const account = toAccountId(accountId);
  const record = await QuotaUsage.findOneAndUpdate(
    { accountId: account, periodStart, leasedBytes: { $gte: leasedBytes } },
    {
      $inc: {
        leasedBytes: -leasedBytes,
        usedBytes,
        availableBytes: leasedBytes - usedBytes,
      },
    },
    { returnDocument: 'after' },
  ).lean<QuotaRecord>();
  if (record) return view(record);
  const exists = await QuotaUsage.exists({ accountId: account, periodStart });
  if (!exists) {
    throw new DomainError('NOT_FOUND', 'That quota period does not exist.', {
      details: { accountId: String(account), periodStart },
    });
  }
  throw new DomainError('CONFLICT', 'A lease settled more bytes than are leased.', {
    details: { accountId: String(account), periodStart, leasedBytes },
  });
}
