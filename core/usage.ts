/**
 * What the gateway records about use, for billing, the customer's history and
 * the bots' "why did my proxy fail?" and "who tried my credentials?":
 *
 * - hourly usage buckets (account, hour, location): bytes, tunnels opened,
 *   and connected time on the account's ALL_LOCATIONS row;
 * - usage sessions (a stretch with at least one open tunnel on one gateway);
 * - refusals and cuts per account, with the reason the customer was given;
 * - failed proxy logins per username, with the source address;
 * - each gateway's open tunnels per account (presence), so connection limits
 *   hold across gateways.
 *
 * Gateways batch these in memory and flush every second or so; every write is
 * an `$inc` / `$addToSet` upsert or an insert, so flushes from several
 * gateways add up without reading first.
 */
import mongoose, { Types, type Connection } from 'mongoose';
import type { Protocol } from '../models/plan.js';
import { gatewayPresenceModelOn } from '../models/gateway-presence.js';
import {
  proxyAuthFailureModelOn,
  type ProxyAuthFailureReason,
} from '../models/proxy-auth-failure.js';
import { proxyRefusalModelOn } from '../models/proxy-refusal.js';
import { ALL_LOCATIONS, usageBucketModelOn } from '../models/usage-bucket.js';
import { usageSessionModelOn } from '../models/usage-session.js';

export { ALL_LOCATIONS };

export interface UsageDatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

const HOUR_MS = 3_600_000;

/** Start of the UTC hour containing `at`. */
export function hourStart(at: Date): Date {
  return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
}

/**
 * The end of the hour holding `at`: the `to` of a bucket range that must hold
 * everything booked so far (a range ending at `at` itself would leave out the
 * hour that began at `at`, on the dot).
 */
export function hourEnd(at: Date): Date {
  return new Date(hourStart(at).getTime() + HOUR_MS);
}

function connectionOf(options: UsageDatabaseOption): Connection {
  return options.connection ?? mongoose.connection;
}

function objectId(id: string): Types.ObjectId {
  return new Types.ObjectId(id);
}

// ---------------------------------------------------------------------------
// Hourly buckets
// ---------------------------------------------------------------------------

export interface UsageBucketIncrement {
  accountId: string;
  hourStart: Date;
  /** A location code, or ALL_LOCATIONS for connected time. */
  location: string;
  bytesUp?: number;
  bytesDown?: number;
  connectedSeconds?: number;
  connections?: number;
}

/** Adds the increments to their buckets (one bulk write of upserts). */
export async function addToUsageBuckets(
  increments: readonly UsageBucketIncrement[],
  options: UsageDatabaseOption = {},
): Promise<void> {
  if (increments.length === 0) return;
  await usageBucketModelOn(connectionOf(options)).bulkWrite(
    increments.map((row) => ({
      updateOne: {
        filter: {
          accountId: objectId(row.accountId),
          hourStart: row.hourStart,
          location: row.location,
        },
        update: {
          $inc: {
            bytesUp: row.bytesUp ?? 0,
            bytesDown: row.bytesDown ?? 0,
            connectedSeconds: row.connectedSeconds ?? 0,
            connections: row.connections ?? 0,
          },
        },
        upsert: true,
      },
    })),
    { ordered: false },
  );
}

export interface UsageBucketView {
  hourStart: Date;
  location: string;
  bytesUp: number;
  bytesDown: number;
  connectedSeconds: number;
  connections: number;
}

/** The account's buckets with `hourStart` in [from, to), oldest first. */
export async function listUsageBuckets(
  accountId: string,
  range: { from: Date; to: Date },
  options: UsageDatabaseOption = {},
): Promise<UsageBucketView[]> {
  const rows = await usageBucketModelOn(connectionOf(options))
    .find({ accountId: objectId(accountId), hourStart: { $gte: range.from, $lt: range.to } })
    .sort({ hourStart: 1, location: 1 })
    .lean<UsageBucketView[]>();
  return rows.map(
    ({ hourStart: start, location, bytesUp, bytesDown, connectedSeconds, connections }) => ({
      hourStart: start,
      location,
      bytesUp,
      bytesDown,
      connectedSeconds,
      connections,
    }),
  );
}

// ---------------------------------------------------------------------------
// Usage sessions
// ---------------------------------------------------------------------------

export interface UsageSessionUpdate {
  /** Chosen by the gateway when the session starts (an ObjectId hex). */
  sessionId: string;
  accountId: string;
  gatewayId: string;
  startedAt: Date;
  /** Now, for a session still open. */
  lastSeenAt: Date;
  /** Set once the session is over. */
  endedAt?: Date;
  bytesUp: number;
  bytesDown: number;
  connections: number;
  locations: readonly string[];
  protocols: readonly Protocol[];
}

/** Creates or adds to sessions (increments since the last flush). */
export async function saveUsageSessions(
  updates: readonly UsageSessionUpdate[],
  options: UsageDatabaseOption = {},
): Promise<void> {
  if (updates.length === 0) return;
  await usageSessionModelOn(connectionOf(options)).bulkWrite(
    updates.map((update) => ({
      updateOne: {
        filter: { _id: objectId(update.sessionId) },
        update: {
          $setOnInsert: {
            accountId: objectId(update.accountId),
            gatewayId: update.gatewayId,
            startedAt: update.startedAt,
          },
          $set: {
            lastSeenAt: update.lastSeenAt,
            ...(update.endedAt ? { endedAt: update.endedAt } : {}),
          },
          $inc: {
            bytesUp: update.bytesUp,
            bytesDown: update.bytesDown,
            connections: update.connections,
          },
          $addToSet: {
            locations: { $each: [...update.locations] },
            protocols: { $each: [...update.protocols] },
          },
        },
        upsert: true,
      },
    })),
    { ordered: false },
  );
}

export interface UsageSessionView {
  id: string;
  startedAt: Date;
  endedAt: Date | null;
  bytesUp: number;
  bytesDown: number;
  connections: number;
  locations: string[];
  protocols: Protocol[];
}

interface StoredSession {
  _id: Types.ObjectId;
  startedAt: Date;
  endedAt?: Date | null;
  bytesUp: number;
  bytesDown: number;
  connections: number;
  locations: string[];
  protocols: Protocol[];
}

/** The account's latest sessions, newest first. */
export async function listUsageSessions(
  accountId: string,
  options: UsageDatabaseOption & { limit?: number } = {},
): Promise<UsageSessionView[]> {
  const rows = await usageSessionModelOn(connectionOf(options))
    .find({ accountId: objectId(accountId) })
    .sort({ startedAt: -1 })
    .limit(Math.min(Math.max(options.limit ?? 20, 1), 200))
    .lean<StoredSession[]>();
  return rows.map((row) => ({
    id: String(row._id),
    startedAt: row.startedAt,
    endedAt: row.endedAt ?? null,
    bytesUp: row.bytesUp,
    bytesDown: row.bytesDown,
    connections: row.connections,
    locations: row.locations,
    protocols: row.protocols,
  }));
}

// ---------------------------------------------------------------------------
// Refusals ("why did my proxy fail?")
// ---------------------------------------------------------------------------

export interface ProxyRefusalRecord {
  accountId: string;
  code: string;
  message: string;
  stage: 'refused' | 'cut';
  protocol?: Protocol;
  port?: number;
  location?: string;
  /** Repeats folded into this record. */
  count: number;
  at: Date;
}

export async function recordProxyRefusals(
  records: readonly ProxyRefusalRecord[],
  options: UsageDatabaseOption = {},
): Promise<void> {
  if (records.length === 0) return;
  await proxyRefusalModelOn(connectionOf(options)).insertMany(
    records.map((record) => ({ ...record, accountId: objectId(record.accountId) })),
    { ordered: false },
  );
}

/** The account's latest refusals and cuts, newest first. */
export async function listRecentRefusals(
  accountId: string,
  options: UsageDatabaseOption & { limit?: number } = {},
): Promise<ProxyRefusalRecord[]> {
  const rows = await proxyRefusalModelOn(connectionOf(options))
    .find({ accountId: objectId(accountId) })
    .sort({ at: -1 })
    .limit(Math.min(Math.max(options.limit ?? 10, 1), 100))
    .lean<(Omit<ProxyRefusalRecord, 'accountId'> & { accountId: Types.ObjectId })[]>();
  return rows.map((row) => ({
    accountId: String(row.accountId),
    code: row.code,
    message: row.message,
    stage: row.stage,
    protocol: row.protocol ?? undefined,
    port: row.port ?? undefined,
    location: row.location ?? undefined,
    count: row.count,
    at: row.at,
  }));
}

// ---------------------------------------------------------------------------
// Failed logins ("who tried my credentials?")
// ---------------------------------------------------------------------------

export interface ProxyAuthFailureRecord {
  /** The username without options, lower-case (or as sent when it could not be parsed). */
  username: string;
  accountId?: string;
  sourceIp: string;
  reason: ProxyAuthFailureReason;
  attempts: number;
  at: Date;
}

export async function recordProxyAuthFailures(
  records: readonly ProxyAuthFailureRecord[],
  options: UsageDatabaseOption = {},
): Promise<void> {
  if (records.length === 0) return;
  await proxyAuthFailureModelOn(connectionOf(options)).insertMany(
    records.map((record) => ({
      ...record,
      username: record.username.slice(0, 255),
      accountId: record.accountId === undefined ? undefined : objectId(record.accountId),
    })),
    { ordered: false },
  );
}

/** Failed logins with the account's proxy username, newest first. */
export async function listAuthFailures(
  accountId: string,
  options: UsageDatabaseOption & { limit?: number } = {},
): Promise<ProxyAuthFailureRecord[]> {
  const rows = await proxyAuthFailureModelOn(connectionOf(options))
    .find({ accountId: objectId(accountId) })
    .sort({ at: -1 })
    .limit(Math.min(Math.max(options.limit ?? 20, 1), 200))
    .lean<(Omit<ProxyAuthFailureRecord, 'accountId'> & { accountId?: Types.ObjectId | null })[]>();
  return rows.map((row) => ({
    username: row.username,
    accountId: row.accountId ? String(row.accountId) : undefined,
    sourceIp: row.sourceIp,
    reason: row.reason,
    attempts: row.attempts,
    at: row.at,
  }));
}

// ---------------------------------------------------------------------------
// Gateway presence (connections per account across gateways)
// ---------------------------------------------------------------------------

/**
 * Writes this gateway's open tunnels per account (or, given null because
 * they did not change since the last write, only its heartbeat), then reads
 * the other gateways' (those with a heartbeat after `freshAfter`) and
 * removes the stale ones. Returns the other gateways' open tunnels summed per
 * account, and whether this gateway's document is stored (false: a heartbeat
 * found it gone, removed as stale by another gateway; write the counts again).
 */
export async function exchangeGatewayPresence(
  gatewayId: string,
  openTunnels: ReadonlyMap<string, number> | null,
  timing: { now: Date; freshAfter: Date },
  options: UsageDatabaseOption = {},
): Promise<{ others: Map<string, number>; stored: boolean }> {
  const Presence = gatewayPresenceModelOn(connectionOf(options));
  let stored = true;
  if (openTunnels === null) {
    const beat = await Presence.updateOne(
      { _id: gatewayId },
      { $set: { heartbeatAt: timing.now } },
    );
    stored = beat.matchedCount === 1;
  } else {
    const entries = [...openTunnels].filter(([, count]) => count > 0);
    await Presence.updateOne(
      { _id: gatewayId },
      {
        $set: {
          heartbeatAt: timing.now,
          openTunnels: entries.map(([accountId, count]) => ({ accountId, count })),
        },
      },
      { upsert: true },
    );
  }
  const others = await Presence.find({ _id: { $ne: gatewayId } }).lean<
    { _id: string; heartbeatAt: Date; openTunnels: { accountId: string; count: number }[] }[]
  >();
  const totals = new Map<string, number>();
  const stale: string[] = [];
  for (const other of others) {
    if (other.heartbeatAt.getTime() <= timing.freshAfter.getTime()) {
      stale.push(other._id);
      continue;
    }
    for (const { accountId, count } of other.openTunnels) {
      totals.set(accountId, (totals.get(accountId) ?? 0) + count);
    }
  }
  if (stale.length > 0) {
    await Presence.deleteMany({ _id: { $in: stale }, heartbeatAt: { $lte: timing.freshAfter } });
  }
  return { others: totals, stored };
}

/** A gateway that stops removes its presence, so others stop counting its tunnels at once. */
export async function removeGatewayPresence(
  gatewayId: string,
  options: UsageDatabaseOption = {},
): Promise<void> {
  await gatewayPresenceModelOn(connectionOf(options)).deleteOne({ _id: gatewayId });
}

/**
 * Connected seconds on the ALL_LOCATIONS rows of the hours that end after
 * `since` (the chat's Usage screen and GET /me/usage). The hour a plan was
 * activated in counts: it began before the period, but the time in it was
 * connected on this plan.
 */
export function connectedSecondsSince(
  rows: readonly { hourStart: Date; location: string; connectedSeconds: number }[],
  since: Date,
): number {
  const hourMs = 3_600_000;
  return Math.floor(
    rows
      .filter(
        (row) =>
          row.location === ALL_LOCATIONS && row.hourStart.getTime() + hourMs > since.getTime(),
      )
      .reduce((sum, row) => sum + row.connectedSeconds, 0),
  );
}
