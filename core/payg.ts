/**
 * Pay as you go: the wallet pays each connected hour when it starts (the
 * gateway debits it, proxy/access-controller.ts, once per account and hour
 * under paygHourKey).
 *
 * Per-GB charging (a plan rate's `perGbRateMinor`; off on the default plans):
 * data is bought from the wallet in blocks as it is used. Each hour has a
 * counter of its own (a quota window from the hour's start to its end, limit
 * 0 until data is bought), and the gateways' byte leases (proxy/leases.ts)
 * spend from it exactly as they spend a plan's quota, so no byte is relayed
 * that the wallet did not pay for. buyPaygData adds one block (or what the
 * balance still buys) under a ledger key per (account, hour, block number).
 * After the hour, closePaygHours gives back what was bought and not used,
 * and writes the hour's statement (models/payg-hour.ts) next to what the
 * usage buckets say was relayed.
 *
 * Ledger keys, all starting with `payg`:
 *   payg:<account>:<hour ISO>[:retryN]             the connected hour
 *   payg-data:<account>:<hour ISO>:<n>[:retryN]    data block n of the hour
 *   payg-data-return:<account>:<hour ISO>          unused data given back
 */
import type { Connection, Types } from 'mongoose';
import mongoose from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { isDomainError } from '../lib/errors.js';
import { isDuplicateKeyError } from '../models/errors.js';
import { formatMoney, type Currency } from '../lib/money.js';
import { ledgerEntryModelOn, type LedgerEntryData } from '../models/ledger-entry.js';
import { PaygHour, type PaygHourData } from '../models/payg-hour.js';
import { quotaUsageModelOn } from '../models/quota-usage.js';
import { usageBucketModelOn, ALL_LOCATIONS } from '../models/usage-bucket.js';
import { toAccountId, type AccountId } from './account-id.js';
import { addQuotaBytes, openQuotaPeriod } from './quota.js';
import { hourStart } from './usage.js';
import { credit, debit, getWallet } from './wallet.js';

const HOUR_MS = 3_600_000;
const GB = 1_000_000_000;
/** Data bought per block when per-GB charging is on (100 MB), unless the gateway says otherwise. */
export const PAYG_DATA_BLOCK_BYTES = 100_000_000;
/** Keys tried per block when a debit is refused before a top-up (as for connected hours). */
const MAX_KEY_ATTEMPTS = 5;

export interface PaygDatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

/** The ledger key of the charge for the hour starting at `hour` (retries add `:retryN`). */
export function paygHourKey(accountId: AccountId, hour: Date): string {
  return `payg:${String(accountId)}:${hour.toISOString()}`;
}

/** The ledger key of data block `n` (0-based) bought in the hour starting at `hour`. */
export function paygDataKey(accountId: AccountId, hour: Date, n: number): string {
  return `payg-data:${String(accountId)}:${hour.toISOString()}:${n}`;
}

/** The ledger key that gives back the unused data bought in the hour starting at `hour`. */
export function paygDataReturnKey(accountId: AccountId, hour: Date): string {
  return `payg-data-return:${String(accountId)}:${hour.toISOString()}`;
}

/** What `bytes` cost at `perGbRateMinor`, rounded up to the minor unit. */
export function paygDataCost(bytes: number, perGbRateMinor: number): number {
  return Math.ceil((bytes * perGbRateMinor) / GB);
}

/** The bytes `amountMinor` buys at `perGbRateMinor` (rounded down: never more than paid for). */
export function paygDataBytesFor(amountMinor: number, perGbRateMinor: number): number {
  return Math.floor((amountMinor * GB) / perGbRateMinor);
}

export interface BuyPaygDataRequest {
  /** The moment of the purchase: the block goes into the counter of its hour. */
  now: Date;
  perGbRateMinor: number;
  currency: Currency;
  /** Bytes per block (default PAYG_DATA_BLOCK_BYTES). */
  blockBytes?: number;
}

/**
 * Makes sure the account's counter for the current hour has bytes to lease:
 * opens the hour's counter, and when nothing is left in it, buys one block
 * from the wallet (or the part of a block the balance pays for). Resolves to
 * the bytes now available in the hour (0: the wallet cannot pay for more).
 *
 * Safe with several gateways and with crashes: block `n` (the counter's
 * purchases so far) is debited under its own key and added to the counter
 * under the same key, so two gateways buying at once buy one block, and a run
 * that died between the debit and the addition finishes it on the next call
 * (the debit found under the key is reused as it was).
 */
export async function buyPaygData(
  accountId: AccountId,
  request: BuyPaygDataRequest,
  options: PaygDatabaseOption & { clock: Clock },
): Promise<number> {
  const account = toAccountId(accountId);
  const { connection = mongoose.connection } = options;
  const QuotaUsage = quotaUsageModelOn(connection);
  const LedgerEntry = ledgerEntryModelOn(connection);
  const hour = hourStart(request.now);
  const blockBytes = request.blockBytes ?? PAYG_DATA_BLOCK_BYTES;
  await openQuotaPeriod(
    account,
    { periodStart: hour, periodEnd: new Date(hour.getTime() + HOUR_MS), limitBytes: 0 },
    { connection },
  );
  const counter = await QuotaUsage.findOne({ accountId: account, periodStart: hour })
    .lean<{ availableBytes: number; addedRefs?: string[] | null }>()
    .orFail();
  if (counter.availableBytes > 0) return counter.availableBytes;
  const base = paygDataKey(account, hour, counter.addedRefs?.length ?? 0);
  let conflicts = 0;
  for (let attempt = 0; attempt < MAX_KEY_ATTEMPTS; attempt++) {
    const key = attempt === 0 ? base : `${base}:retry${attempt}`;
    const earlier = await LedgerEntry.findOne({ idempotencyKey: key }).lean<LedgerEntryData>();
    if (earlier?.status === 'rejected') continue;
    let amountMinor: number;
    if (earlier) {
      amountMinor = -earlier.amountMinor;
    } else {
      const wallet = await getWallet(account, { connection, currency: request.currency });
      amountMinor = Math.min(paygDataCost(blockBytes, request.perGbRateMinor), wallet.balanceMinor);
      if (amountMinor < 1) return 0;
    }
    let paid: boolean;
    try {
      const result = await debit(
        account,
        {
          amountMinor,
          currency: request.currency,
          key,
          description: `PAYG data bought in the hour from ${hour.toISOString()}`,
        },
        { clock: options.clock, connection },
      );
      paid = result.ok;
    } catch (error) {
      // Another gateway recorded this key with another amount between our read
      // and our debit: read it again (the same attempt).
      if (!isDomainError(error, 'CONFLICT') || ++conflicts > 3) throw error;
      attempt -= 1;
      continue;
    }
    if (!paid) continue;
    const bytes = paygDataBytesFor(amountMinor, request.perGbRateMinor);
    const added = await addQuotaBytes(account, bytes, hour, { connection, key });
    return added?.remainingBytes ?? 0;
  }
  return 0;
}

export interface PaygCostSoFar {
  /** Charged for the hour containing `now`: connected hour plus data, less data given back. */
  hourMinor: number;
  /** Charged since 00:00 UTC today, this hour included. */
  todayMinor: number;
  /** Charged since the first of this month (UTC), today included. */
  monthMinor: number;
  /** Of todayMinor: data bought, less what was given back. */
  dataTodayMinor: number;
  /** Connected hours charged today. */
  hoursToday: number;
  currency: Currency | null;
  /** "₦300.00 today (2 connected hours), ₦150.00 this hour, ₦4,500.00 this month". */
  summary: string;
}

/**
 * What pay as you go has cost the account this hour, today and this month
 * (UTC), from the ledger: connected hours, data bought, and data given back
 * by the closing pass. Data bought in the current hour counts in full until
 * its hour is closed.
 */
export async function paygCostSoFar(
  accountId: AccountId,
  now: Date,
  options: PaygDatabaseOption = {},
): Promise<PaygCostSoFar> {
  const account = toAccountId(accountId);
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const thisHour = hourStart(now).getTime();
  const entries = await ledgerEntryModelOn(options.connection ?? mongoose.connection)
    .find(
      {
        accountId: account,
        status: 'applied',
        // A data return is written after its hour ends: look a day past the month's start.
        createdAt: { $gte: new Date(monthStart.getTime() - HOUR_MS) },
        idempotencyKey: { $regex: '^payg' },
      },
      { idempotencyKey: 1, amountMinor: 1, currency: 1 },
    )
    .lean<{ idempotencyKey: string; amountMinor: number; currency: Currency }[]>();
  let hourMinor = 0;
  let todayMinor = 0;
  let monthMinor = 0;
  let dataTodayMinor = 0;
  let hoursToday = 0;
  let currency: Currency | null = null;
  for (const entry of entries) {
    const parsed = parsePaygKey(entry.idempotencyKey);
    if (!parsed || parsed.accountId !== String(account)) continue;
    const at = parsed.hour.getTime();
    if (at < monthStart.getTime() || at > now.getTime()) continue;
    currency ??= entry.currency;
    // Debits are negative in the ledger and returns positive: the cost is the negation.
    const cost = -entry.amountMinor;
    monthMinor += cost;
    if (at >= dayStart.getTime()) {
      todayMinor += cost;
      if (parsed.kind === 'hour') hoursToday += 1;
      else dataTodayMinor += cost;
    }
    if (at === thisHour) hourMinor += cost;
  }
  const money = (amountMinor: number): string =>
    currency ? formatMoney({ amountMinor, currency }) : '0';
  return {
    hourMinor,
    todayMinor,
    monthMinor,
    dataTodayMinor,
    hoursToday,
    currency,
    summary:
      monthMinor === 0
        ? 'Nothing charged this month.'
        : `${money(todayMinor)} today (${hoursToday} connected hour${hoursToday === 1 ? '' : 's'}), ${money(hourMinor)} this hour, ${money(monthMinor)} this month.`,
  };
}

type PaygKeyKind = 'hour' | 'data' | 'data-return';

/** The parts of a `payg…` ledger key, or null for any other key. */
export function parsePaygKey(
  key: string,
): { kind: PaygKeyKind; accountId: string; hour: Date } | null {
  const match =
    /^(payg|payg-data|payg-data-return):([0-9a-f]{24}):(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)(?::|$)/.exec(
      key,
    );
  if (!match) return null;
  const hour = new Date(match[3] ?? '');
  if (Number.isNaN(hour.getTime())) return null;
  const kind: PaygKeyKind =
    match[1] === 'payg' ? 'hour' : match[1] === 'payg-data' ? 'data' : 'data-return';
  return { kind, accountId: match[2] ?? '', hour };
}

export interface ClosePaygHoursOptions extends PaygDatabaseOption {
  clock: Clock;
  /** Close only hours that ended at least this long ago (default 5 minutes). */
  graceMs?: number;
  /** Look back this far for hours not yet closed (default 48 hours). */
  lookbackMs?: number;
}

export interface ClosePaygHoursReport {
  closed: number;
  /** Hours left for a later pass: a gateway still holds bytes of them. */
  waiting: number;
  returnedMinor: number;
}

/**
 * The hourly closing pass: every PAYG hour (an hour with a connected-hour
 * charge or bought data) that ended `graceMs` ago and is not closed yet gets
 * its statement. Bought data left unused goes back to the wallet (bought
 * data cost x unused / bought, rounded in the customer's favour, under one
 * key per hour), and the statement records it beside the usage buckets'
 * bytes and connected seconds. An hour whose counter a gateway still holds
 * bytes of (a lease not yet given back) waits for a later pass. Safe to run
 * again and from several processes: the return is keyed and the statement
 * is unique per (account, hour).
 */
export async function closePaygHours(
  options: ClosePaygHoursOptions,
): Promise<ClosePaygHoursReport> {
  const connection = options.connection ?? mongoose.connection;
  const now = options.clock.now();
  const closeBefore = now.getTime() - (options.graceMs ?? 5 * 60_000);
  const since = new Date(now.getTime() - (options.lookbackMs ?? 48 * HOUR_MS));
  const entries = await ledgerEntryModelOn(connection)
    .find(
      { status: 'applied', createdAt: { $gte: since }, idempotencyKey: { $regex: '^payg' } },
      { idempotencyKey: 1, amountMinor: 1, currency: 1 },
    )
    .lean<{ idempotencyKey: string; amountMinor: number; currency: Currency }[]>();
  const hours = new Map<string, HourCharges>();
  for (const entry of entries) {
    const parsed = parsePaygKey(entry.idempotencyKey);
    if (!parsed || parsed.hour.getTime() + HOUR_MS > closeBefore) continue;
    const id = `${parsed.accountId}:${parsed.hour.toISOString()}`;
    let hour = hours.get(id);
    if (!hour) {
      hour = {
        accountId: parsed.accountId,
        hour: parsed.hour,
        currency: entry.currency,
        connectedMinor: 0,
        dataPaidMinor: 0,
      };
      hours.set(id, hour);
    }
    if (parsed.kind === 'hour') hour.connectedMinor += -entry.amountMinor;
    else if (parsed.kind === 'data') hour.dataPaidMinor += -entry.amountMinor;
  }
  const report: ClosePaygHoursReport = { closed: 0, waiting: 0, returnedMinor: 0 };
  if (hours.size === 0) return report;
  const closed = new Set(
    (
      await PaygHour.find(
        {
          accountId: { $in: [...new Set([...hours.values()].map((h) => h.accountId))] },
          hourStart: { $gte: since },
        },
        { accountId: 1, hourStart: 1 },
      ).lean<{ accountId: Types.ObjectId; hourStart: Date }[]>()
    ).map((row) => `${String(row.accountId)}:${row.hourStart.toISOString()}`),
  );
  for (const [id, hour] of hours) {
    if (closed.has(id)) continue;
    const outcome = await closeHour(hour, { connection, clock: options.clock });
    if (outcome === 'waiting') {
      report.waiting += 1;
    } else {
      report.closed += 1;
      report.returnedMinor += outcome.dataReturnedMinor;
    }
  }
  return report;
}

interface HourCharges {
  accountId: string;
  hour: Date;
  currency: Currency;
  connectedMinor: number;
  dataPaidMinor: number;
}

async function closeHour(
  charges: HourCharges,
  options: { connection: Connection; clock: Clock },
): Promise<'waiting' | PaygHourData> {
  const { connection, clock } = options;
  const account = toAccountId(charges.accountId);
  const counter = await quotaUsageModelOn(connection)
    .findOne({ accountId: account, periodStart: charges.hour })
    .lean<{ addedBytes: number; usedBytes: number; leasedBytes: number }>();
  if (counter && counter.leasedBytes > 0) return 'waiting';
  const dataBoughtBytes = counter?.addedBytes ?? 0;
  const dataUsedBytes = Math.min(counter?.usedBytes ?? 0, dataBoughtBytes);
  const dataCostMinor =
    dataBoughtBytes === 0
      ? 0
      : Math.ceil((charges.dataPaidMinor * dataUsedBytes) / dataBoughtBytes);
  const dataReturnedMinor = charges.dataPaidMinor - dataCostMinor;
  if (dataReturnedMinor > 0) {
    await credit(
      account,
      {
        amountMinor: dataReturnedMinor,
        currency: charges.currency,
        key: paygDataReturnKey(account, charges.hour),
        kind: 'refund',
        description: `Unused PAYG data of the hour from ${charges.hour.toISOString()} given back`,
      },
      { clock, connection },
    );
  }
  const buckets = await usageBucketModelOn(connection)
    .find({ accountId: account, hourStart: charges.hour })
    .lean<{ location: string; bytesUp: number; bytesDown: number; connectedSeconds: number }[]>();
  let bucketBytes = 0;
  let connectedSeconds = 0;
  for (const bucket of buckets) {
    if (bucket.location === ALL_LOCATIONS) connectedSeconds += bucket.connectedSeconds;
    else bucketBytes += bucket.bytesUp + bucket.bytesDown;
  }
  const statement: PaygHourData = {
    accountId: account,
    hourStart: charges.hour,
    currency: charges.currency,
    connectedMinor: charges.connectedMinor,
    dataBoughtBytes,
    dataPaidMinor: charges.dataPaidMinor,
    dataUsedBytes,
    dataCostMinor,
    dataReturnedMinor,
    totalMinor: charges.connectedMinor + dataCostMinor,
    bucketBytes,
    connectedSeconds,
    closedAt: clock.now(),
  };
  // The first writer wins; a second pass racing this one writes the same figures.
  await PaygHour.updateOne(
    { accountId: account, hourStart: charges.hour },
    { $setOnInsert: statement },
    { upsert: true },
  ).catch((error: unknown) => {
    if (!isDuplicateKeyError(error)) throw error;
  });
  return statement;
}

export interface PaygHourView {
  hourStart: Date;
  currency: Currency;
  connectedMinor: number;
  dataUsedBytes: number;
  dataCostMinor: number;
  dataReturnedMinor: number;
  totalMinor: number;
  bucketBytes: number;
  connectedSeconds: number;
}

/** The account's closed PAYG hours with `hourStart` in [from, to), newest first. */
export async function listPaygHours(
  accountId: AccountId,
  range: { from: Date; to: Date },
): Promise<PaygHourView[]> {
  const rows = await PaygHour.find({
    accountId: toAccountId(accountId),
    hourStart: { $gte: range.from, $lt: range.to },
  })
    .sort({ hourStart: -1 })
    .lean<PaygHourData[]>();
  return rows.map((row) => ({
    hourStart: row.hourStart,
    currency: row.currency,
    connectedMinor: row.connectedMinor,
    dataUsedBytes: row.dataUsedBytes,
    dataCostMinor: row.dataCostMinor,
    dataReturnedMinor: row.dataReturnedMinor,
    totalMinor: row.totalMinor,
    bucketBytes: row.bucketBytes,
    connectedSeconds: row.connectedSeconds,
  }));
}
