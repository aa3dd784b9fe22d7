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
 *
 * Crash safety: a gateway names itself when it leases (`gatewayId`), and the
 * same update moves its entry in the document's `leases` array. A live gateway
 * renews all its entries at once every few seconds (renewGatewayLeases, its
 * heartbeat); reclaimStaleLeases gives back the bytes of entries not renewed
 * for a while, so a gateway that died does not keep a customer's quota until
 * the period ends. Each reclaim is one conditional update that matches the
 * entry exactly as it was read, so a gateway leasing or settling at that
 * moment keeps it.
 *
 * Leases and settles move an entry's bytes with `$inc` only and leave its
 * `renewedAt` to the heartbeat: one update may touch an array element through
 * one operator only on the in-process engine (mingo), and one writer of
 * `renewedAt` is simpler to reason about anyway.
 */
import { toAccountId, type AccountId } from './account-id.js';
import { isDuplicateKeyError } from '../models/errors.js';
import type { Types } from 'mongoose';
import mongoose, { type Connection } from 'mongoose';
import { DomainError } from '../lib/errors.js';
import {
  quotaUsageModelOn,
  type QuotaUsageData,
  type QuotaUsageModel,
} from '../models/quota-usage.js';

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

/** A gateway process's share of the leased bytes, as stored. */
interface GatewayLeaseRecord {
  gatewayId: string;
  bytes: number;
  renewedAt: Date;
}

type QuotaRecord = Omit<QuotaUsageData, 'leases'> & {
  _id: Types.ObjectId;
  leases?: GatewayLeaseRecord[] | null;
};

/** The gateway holding a lease and the time it took it (a new entry's `renewedAt`). */
interface LeaseHolder {
  gatewayId: string;
  now: Date;
}

/** Leases retry only when another caller took bytes between the read and the update. */
const MAX_LEASE_ATTEMPTS = 50;

function model(options: QuotaDatabaseOption): QuotaUsageModel {
  return quotaUsageModelOn(options.connection ?? mongoose.connection);
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
  /**
   * Roll-over, instead of `carryOverBytes`: bring over what the window that
   * ended when this one starts left unused, at most `capBytes`. Unused means
   * available on that counter when this one opens: bytes a gateway still held
   * in a lease then, and gives back later, stay behind. No counter for that
   * window (the customer never connected in it) carries nothing.
   */
  rollover?: { capBytes: number };
}

/**
 * The request that opens a plan's quota window: the plan's allowance, or a
 * seat's cap when given (a cap counter never rolls over), with the plan's
 * roll-over when it has one. The one place that decides it, for the gateway
 * (first connection in a window) and for purchases that find no window yet.
 */
export function planWindowRequest(
  window: { start: Date; end: Date },
  quota: { bytes: number; rolloverCapBytes?: number | undefined },
  seatCapBytes?: number,
): OpenQuotaPeriodRequest {
  return {
    periodStart: window.start,
    periodEnd: window.end,
    limitBytes: seatCapBytes ?? quota.bytes,
    ...(seatCapBytes === undefined && quota.rolloverCapBytes
      ? { rollover: { capBytes: quota.rolloverCapBytes } }
      : {}),
  };
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
  const carryOverBytes = checkBytes(
    request.rollover
      ? await rolloverInto(QuotaUsage, account, request.periodStart, request.rollover.capBytes)
      : (request.carryOverBytes ?? 0),
    'carryOverBytes',
  );
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

/**
 * A plan change applied at `at`: the window containing `at` ends there, and a
 * new one runs from `at` to `periodEnd` with the new plan's `limitBytes`,
 * the bytes already used in the ended window counted as used in it ("used
 * data carries over within a quota period"). Bytes gateways spend from leases
 * taken before `at` are booked on the ended window when they settle (never
 * against the new allowance). Idempotent for the same `at`: a rerun finds the
 * new window and returns it. No window containing `at` (the customer never
 * connected in it): the new one starts with nothing used.
 */
export async function switchQuotaWindow(
  accountId: AccountId,
  request: { at: Date; periodEnd: Date; limitBytes: number },
  options: QuotaDatabaseOption = {},
): Promise<QuotaPeriodView> {
  const QuotaUsage = model(options);
  const account = toAccountId(accountId);
  const limitBytes = checkBytes(request.limitBytes, 'limitBytes');
  if (!(request.periodEnd.getTime() > request.at.getTime())) {
    throw new DomainError('VALIDATION_FAILED', 'A quota period must end after it starts.', {
      details: { field: 'periodEnd' },
    });
  }
  // Windows begun before `at` and running past it; none on a rerun that already ended them.
  const overlapping = {
    accountId: account,
    periodStart: { $lt: request.at },
    periodEnd: { $gt: request.at },
  };
  const current = await QuotaUsage.findOne(overlapping).sort(latestFirst).lean<QuotaRecord>();
  const usedBytes = current?.usedBytes ?? 0;
  const opened = await QuotaUsage.findOneAndUpdate(
    { accountId: account, periodStart: request.at },
    {
      $setOnInsert: {
        periodEnd: request.periodEnd,
        limitBytes,
        carryOverBytes: 0,
        addedBytes: 0,
        usedBytes,
        leasedBytes: 0,
        availableBytes: limitBytes - usedBytes,
      },
    },
    { upsert: true, returnDocument: 'after' },
  )
    .lean<QuotaRecord>()
    .orFail();
  // After the new window exists, so a crash in between leaves a rerun to end the old.
  await QuotaUsage.updateMany(overlapping, { $set: { periodEnd: request.at } });
  return view(opened);
}

/** What the window ending at `periodStart` left unused, at most `capBytes` (0 when it has no counter). */
async function rolloverInto(
  QuotaUsage: QuotaUsageModel,
  account: Types.ObjectId,
  periodStart: Date,
  capBytes: number,
): Promise<number> {
  const cap = checkBytes(capBytes, 'rollover.capBytes');
  if (cap === 0) return 0;
  const previous = await QuotaUsage.findOne({ accountId: account, periodEnd: periodStart })
    .sort(latestFirst)
    .lean<QuotaRecord>();
  return previous ? Math.min(cap, Math.max(0, previous.availableBytes)) : 0;
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
 * admin grant). Returns the period, or null when none is open. With `key`
 * (the payment reference) the addition counts once however often it is
 * repeated; without one the caller makes it idempotent.
 */
export async function addQuotaBytes(
  accountId: AccountId,
  bytes: number,
  now: Date,
  options: QuotaDatabaseOption & { key?: string } = {},
): Promise<QuotaPeriodView | null> {
  checkBytes(bytes, 'bytes', { positive: true });
  const QuotaUsage = model(options);
  const filter = containing(toAccountId(accountId), now);
  const { key } = options;
  const record = await QuotaUsage.findOneAndUpdate(
    key === undefined ? filter : { ...filter, addedRefs: { $ne: key } },
    {
      $inc: { limitBytes: bytes, addedBytes: bytes, availableBytes: bytes },
      ...(key === undefined ? {} : { $push: { addedRefs: key } }),
    },
    { sort: latestFirst, returnDocument: 'after' },
  ).lean<QuotaRecord>();
  if (record) return view(record);
  if (key === undefined) return null;
  // Added before under this key, or no period open: the current one says which.
  const current = await QuotaUsage.findOne(filter).sort(latestFirst).lean<QuotaRecord>();
  return current?.addedRefs?.includes(key) ? view(current) : null;
}

/**
 * Leases up to `requestedBytes` from the period containing `now`: all of them
 * if they are available, else what is left, else 0. Null when no period is
 * open. A lease is held until settleLease returns what was not used. With
 * `gatewayId` the bytes are also booked to that gateway's entry (created
 * renewed at `now`), so they can be reclaimed if the gateway dies.
 */
export async function leaseBytes(
  accountId: AccountId,
  requestedBytes: number,
  now: Date,
  options: QuotaDatabaseOption & { gatewayId?: string } = {},
): Promise<QuotaLease | null> {
  checkBytes(requestedBytes, 'requestedBytes', { positive: true });
  const QuotaUsage = model(options);
  const filter = containing(toAccountId(accountId), now);
  const holder = options.gatewayId === undefined ? null : { gatewayId: options.gatewayId, now };
  const lease = (record: QuotaRecord, grantedBytes: number): QuotaLease => ({
    grantedBytes,
    periodStart: record.periodStart,
    periodEnd: record.periodEnd,
  });

  // The usual case in one round trip: everything asked for is available.
  const whole = await takeBytes(
    QuotaUsage,
    { ...filter, availableBytes: { $gte: requestedBytes } },
    requestedBytes,
    holder,
  );
  if (whole) return lease(whole, requestedBytes);

  for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS; attempt++) {
    const current = await QuotaUsage.findOne(filter).sort(latestFirst).lean<QuotaRecord>();
    if (!current) return null;
    const grantedBytes = Math.min(requestedBytes, current.availableBytes);
    if (grantedBytes <= 0) return lease(current, 0);
    const taken = await takeBytes(
      QuotaUsage,
      { _id: current._id, availableBytes: { $gte: grantedBytes } },
      grantedBytes,
      holder,
    );
    if (taken) return lease(current, grantedBytes);
    // Someone else leased or used bytes since the read: look again.
  }
  throw new DomainError('CONFLICT', 'The quota counter is busy; try again.', {
    details: { accountId: String(accountId) },
  });
}

/**
 * One guarded update moving `bytes` from available to leased in the document
 * `filter` matches (null when none does), and into the holder's entry: its
 * existing entry if it has one, else a new one (two shapes of update, because
 * one update cannot both find an array element and push it when missing).
 */
async function takeBytes(
  QuotaUsage: QuotaUsageModel,
  filter: Record<string, unknown>,
  bytes: number,
  holder: LeaseHolder | null,
): Promise<QuotaRecord | null> {
  const counters = { leasedBytes: bytes, availableBytes: -bytes };
  const options = { sort: latestFirst, returnDocument: 'after' as const };
  if (holder === null) {
    return QuotaUsage.findOneAndUpdate(filter, { $inc: counters }, options).lean<QuotaRecord>();
  }
  const added = await QuotaUsage.findOneAndUpdate(
    { ...filter, 'leases.gatewayId': holder.gatewayId },
    { $inc: { ...counters, 'leases.$.bytes': bytes } },
    options,
  ).lean<QuotaRecord>();
  if (added) return added;
  return QuotaUsage.findOneAndUpdate(
    { ...filter, 'leases.gatewayId': { $ne: holder.gatewayId } },
    {
      $inc: counters,
      $push: { leases: { gatewayId: holder.gatewayId, bytes, renewedAt: holder.now } },
    },
    options,
  ).lean<QuotaRecord>();
}

/**
 * Ends (part of) a lease: `leasedBytes` go back out of the leased total and the
 * `usedBytes` actually relayed are booked (they may exceed the lease by what a
 * gateway relayed between two renewals). Not idempotent: settle each lease once.
 * With `gatewayId`, the bytes come out of that gateway's entry, which must
 * still hold them: a lease reclaimed as stale is a CONFLICT with
 * `details.reason = 'LEASE_NOT_HELD'` (the caller books its usage with
 * recordUsage and takes a new lease).
 */
export async function settleLease(
  accountId: AccountId,
  periodStart: Date,
  settlement: { leasedBytes: number; usedBytes: number },
  options: QuotaDatabaseOption & { gatewayId?: string } = {},
): Promise<QuotaPeriodView> {
  const leasedBytes = checkBytes(settlement.leasedBytes, 'leasedBytes');
  const usedBytes = checkBytes(settlement.usedBytes, 'usedBytes');
  const QuotaUsage = model(options);
  const account = toAccountId(accountId);
  const counters = {
    leasedBytes: -leasedBytes,
    usedBytes,
    availableBytes: leasedBytes - usedBytes,
  };
  const filter = { accountId: account, periodStart, leasedBytes: { $gte: leasedBytes } };
  const { gatewayId } = options;
  const record = gatewayId
    ? await QuotaUsage.findOneAndUpdate(
        { ...filter, leases: { $elemMatch: { gatewayId, bytes: { $gte: leasedBytes } } } },
        { $inc: { ...counters, 'leases.$.bytes': -leasedBytes } },
        { returnDocument: 'after' },
      ).lean<QuotaRecord>()
    : await QuotaUsage.findOneAndUpdate(
        filter,
        { $inc: counters },
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
    details: {
      accountId: String(account),
      periodStart,
      leasedBytes,
      ...(gatewayId ? { reason: 'LEASE_NOT_HELD', gatewayId } : {}),
    },
  });
}

/**
 * The heartbeat of a live gateway: marks every entry of `gatewayId` renewed at
 * `now` (one update over all its counters), so reclaimStaleLeases leaves them
 * alone. Empty entries too: a lease adds to an existing entry without touching
 * its `renewedAt`, so an entry may not look older than one heartbeat while its
 * gateway lives. Returns how many counters it touched.
 */
export async function renewGatewayLeases(
  gatewayId: string,
  now: Date,
  options: QuotaDatabaseOption = {},
): Promise<number> {
  // Entries in ended periods are left to go stale: the reclaim clears them.
  const result = await model(options).updateMany(
    { 'leases.gatewayId': gatewayId, periodEnd: { $gt: now } },
    { $set: { 'leases.$.renewedAt': now } },
  );
  return result.modifiedCount;
}

/** A lease given back by reclaimStaleLeases. */
export interface ReclaimedLease {
  accountId: string;
  periodStart: Date;
  gatewayId: string;
  /** Leased, never settled, now available to the account again. */
  bytes: number;
}

/** Stale entries examined per call at most; the job runs again for the rest. */
const RECLAIM_BATCH = 500;

/**
 * Gives back the bytes leased by gateways that have not renewed their lease
 * for `staleAfterMs` (they died, or lost the database for that long): the
 * jobs role runs it every minute or so. `staleAfterMs` must be well above the
 * gateways' heartbeat (proxy/leases.ts renews every 15 s by default, at its
 * next usage flush); 2 min is a safe choice. Bytes a dead gateway relayed
 * after its last settle are lost to the count, at most one flush interval's
 * worth; the alternative is the customer losing the whole lease until the
 * period ends. Returns the leases that gave bytes back.
 */
export async function reclaimStaleLeases(
  now: Date,
  staleAfterMs: number,
  options: QuotaDatabaseOption = {},
): Promise<ReclaimedLease[]> {
  const QuotaUsage = model(options);
  const cutoff = new Date(now.getTime() - staleAfterMs);
  const records = await QuotaUsage.find({ 'leases.renewedAt': { $lt: cutoff } })
    .limit(RECLAIM_BATCH)
    .lean<QuotaRecord[]>();
  const reclaimed: ReclaimedLease[] = [];
  for (const record of records) {
    for (const entry of record.leases ?? []) {
      if (entry.renewedAt.getTime() >= cutoff.getTime()) continue;
      // Empty entries are removed too (a gateway that stopped cleanly leaves one).
      if ((await reclaimEntry(QuotaUsage, record, entry)) && entry.bytes > 0) {
        reclaimed.push({
          accountId: String(record.accountId),
          periodStart: record.periodStart,
          gatewayId: entry.gatewayId,
          bytes: entry.bytes,
        });
      }
    }
  }
  return reclaimed;
}

/** Removes the entry and frees its bytes, only if it is still exactly as read. */
async function reclaimEntry(
  QuotaUsage: QuotaUsageModel,
  record: QuotaRecord,
  entry: GatewayLeaseRecord,
): Promise<boolean> {
  const asRead = { gatewayId: entry.gatewayId, bytes: entry.bytes, renewedAt: entry.renewedAt };
  const result = await QuotaUsage.updateOne(
    { _id: record._id, leasedBytes: { $gte: entry.bytes }, leases: { $elemMatch: asRead } },
    {
      $inc: { leasedBytes: -entry.bytes, availableBytes: entry.bytes },
      $pull: { leases: asRead },
    },
  );
  return result.modifiedCount === 1;
}
