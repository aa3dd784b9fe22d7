/**
 * What one gateway process records about use, kept in memory and written to
 * core/usage.ts every flush (and on close and shutdown):
 *
 * - bytes per tunnel, by direction (`up` = client to target, `down` = target
 *   to client), into hourly buckets per (account, hour, location);
 * - connected time per account: from the first open tunnel to the last close,
 *   split at hour boundaries, on the account's ALL_LOCATIONS bucket row;
 * - usage sessions: a stretch with at least one open tunnel, ending
 *   `sessionGapMs` after the last tunnel closed (a reconnect within the gap
 *   continues the session), with bytes, connections, locations, protocols;
 * - refusals and cuts ("why did my proxy fail?") and failed logins ("who
 *   tried my credentials?").
 *
 * Every write is an increment or an insert, so a failed flush keeps its batch
 * for the next one without counting anything twice.
 *
 * The background flush (`onlyDue`) writes an account only when something
 * happened (bytes, a tunnel opened or closed, its session ended) or when it
 * was last written QUIET_BOOK_MS ago: a gateway holding thousands of quiet
 * tunnels does not rewrite every account's bucket and session each second.
 * A crash therefore loses at most that long of a quiet account's connected
 * time (statistics only: PAYG hours are charged when they start).
 *
 * The hot path is the relay adding to a TunnelUsage's `up` / `down` fields:
 * no lookup, no allocation.
 */
import { Types, type Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import {
  ALL_LOCATIONS,
  addToUsageBuckets,
  hourStart,
  recordProxyAuthFailures,
  recordProxyRefusals,
  saveUsageSessions,
  type ProxyAuthFailureRecord,
  type ProxyRefusalRecord,
  type UsageBucketIncrement,
  type UsageSessionUpdate,
} from '../core/usage.js';
import type { Protocol } from './access.js';

/** `up` = client to target, `down` = target to client. */
export type Direction = 'up' | 'down';

/** One open tunnel's bytes not yet flushed. */
export interface TunnelUsage {
  readonly accountId: string;
  readonly location: string;
  up: number;
  down: number;
}

export interface UsageMeterOptions {
  clock: Clock;
  /** Defaults to mongoose's default connection. */
  connection?: Connection;
  logger?: Logger;
  /** Written on each usage session, so a session cut short by a crash can be told apart. */
  gatewayId: string;
  /** A usage session ends after this long with no open tunnel (default 30 s). */
  sessionGapMs?: number;
}

interface SessionState {
  id: string;
  startedAt: Date;
  endedAt: Date | null;
  bytesUp: number;
  bytesDown: number;
  connections: number;
  locations: Set<string>;
  protocols: Set<Protocol>;
}

interface AccountUsage {
  accountId: string;
  tunnels: Set<TunnelUsage>;
  /** Clock ms from which connected time is still to be booked; null with no open tunnel. */
  connectedSinceMs: number | null;
  lastClosedMs: number;
  session: SessionState | null;
  /** Something to write since the last collect: bytes, a tunnel opened or closed. */
  changed: boolean;
  /** Clock ms of the last collect that wrote this account. */
  writtenMs: number;
}

const HOUR_MS = 3_600_000;
/** A quiet account (open tunnels, nothing moving) is written this often by the background flush. */
export const QUIET_BOOK_MS = 60_000;
/** The same refusal again within this long is one record with a count. */
const REFUSAL_FOLD_MS = 5_000;
/** Failed logins held between flushes at most (a flood is recorded in part, not in memory). */
const MAX_PENDING_AUTH_FAILURES = 10_000;

type BucketCounts = Partial<
  Pick<UsageBucketIncrement, 'bytesUp' | 'bytesDown' | 'connectedSeconds' | 'connections'>
>;

export class UsageMeter {
  private readonly options: UsageMeterOptions;
  private readonly accounts = new Map<string, AccountUsage>();
  private buckets = new Map<string, UsageBucketIncrement>();
  private sessionUpdates: UsageSessionUpdate[] = [];
  private refusals: ProxyRefusalRecord[] = [];
  private lastRefusal = new Map<string, { record: ProxyRefusalRecord; atMs: number }>();
  private authFailures: ProxyAuthFailureRecord[] = [];

  constructor(options: UsageMeterOptions) {
    this.options = options;
  }

  /** A tunnel opened: counts the connection, starts connected time and the session if idle. */
  open(accountId: string, location: string, protocol: Protocol): TunnelUsage {
    const now = this.options.clock.now();
    const account = this.accountOf(accountId);
    if (account.tunnels.size === 0) account.connectedSinceMs = now.getTime();
    account.changed = true;
    const usage: TunnelUsage = { accountId, location, up: 0, down: 0 };
    account.tunnels.add(usage);
    const session = (account.session ??= newSession(now));
    session.endedAt = null;
    session.connections += 1;
    session.locations.add(location);
    session.protocols.add(protocol);
    this.addToBucket(accountId, now, location, { connections: 1 });
    return usage;
  }

  /** A tunnel closed: books its bytes; the last one stops connected time. */
  close(usage: TunnelUsage): void {
    const account = this.accounts.get(usage.accountId);
    if (!account?.tunnels.delete(usage)) return;
    const now = this.options.clock.now();
    account.changed = true;
    this.collectBytes(account, usage, now);
    if (account.tunnels.size > 0) return;
    this.bookConnectedTime(account, now.getTime());
    account.connectedSinceMs = null;
    account.lastClosedMs = now.getTime();
    if (account.session) account.session.endedAt = now;
  }

  noteRefusal(record: ProxyRefusalRecord): void {
    // A client retrying in a loop makes one record with a count, not a flood.
    const key = `${record.accountId}|${record.code}|${record.stage}`;
    const nowMs = record.at.getTime();
    const last = this.lastRefusal.get(key);
    if (last && nowMs - last.atMs < REFUSAL_FOLD_MS && this.refusals.includes(last.record)) {
      last.record.count += 1;
      return;
    }
    this.refusals.push(record);
    this.lastRefusal.set(key, { record, atMs: nowMs });
  }

  noteAuthFailure(record: ProxyAuthFailureRecord): void {
    if (this.authFailures.length >= MAX_PENDING_AUTH_FAILURES) return;
    this.authFailures.push(record);
  }

  /**
   * Writes everything counted since the last flush. `endSessions` (shutdown)
   * ends every session with no open tunnel now instead of after the gap;
   * `onlyDue` (the background flush) leaves quiet accounts for a later one
   * (see QUIET_BOOK_MS). Rejects when a write failed; its batch is kept for
   * the next flush.
   */
  async flush(options: { endSessions?: boolean; onlyDue?: boolean } = {}): Promise<void> {
    this.collect(options.endSessions === true, options.onlyDue === true);
    const batch = {
      buckets: [...this.buckets.values()],
      sessions: this.sessionUpdates,
      refusals: this.refusals,
      authFailures: this.authFailures,
    };
    this.buckets = new Map();
    this.sessionUpdates = [];
    this.refusals = [];
    this.lastRefusal = new Map();
    this.authFailures = [];
    const db = { connection: this.options.connection };
    const results = await Promise.allSettled([
      addToUsageBuckets(batch.buckets, db),
      saveUsageSessions(batch.sessions, db),
      recordProxyRefusals(batch.refusals, db),
      recordProxyAuthFailures(batch.authFailures, db),
    ]);
    this.requeueFailed(results, batch);
  }

  private accountOf(accountId: string): AccountUsage {
    let account = this.accounts.get(accountId);
    if (!account) {
      account = {
        accountId,
        tunnels: new Set(),
        connectedSinceMs: null,
        lastClosedMs: 0,
        session: null,
        changed: false,
        writtenMs: this.options.clock.now().getTime(),
      };
      this.accounts.set(accountId, account);
    }
    return account;
  }

  private addToBucket(accountId: string, at: Date, location: string, counts: BucketCounts): void {
    const hour = hourStart(at);
    const key = `${accountId}|${hour.getTime()}|${location}`;
    const row = this.buckets.get(key) ?? { accountId, hourStart: hour, location };
    row.bytesUp = (row.bytesUp ?? 0) + (counts.bytesUp ?? 0);
    row.bytesDown = (row.bytesDown ?? 0) + (counts.bytesDown ?? 0);
    row.connectedSeconds = (row.connectedSeconds ?? 0) + (counts.connectedSeconds ?? 0);
    row.connections = (row.connections ?? 0) + (counts.connections ?? 0);
    this.buckets.set(key, row);
  }

  private collectBytes(account: AccountUsage, usage: TunnelUsage, now: Date): void {
    const { up, down } = usage;
    if (up === 0 && down === 0) return;
    account.changed = true;
    usage.up = 0;
    usage.down = 0;
    this.addToBucket(account.accountId, now, usage.location, { bytesUp: up, bytesDown: down });
    if (account.session) {
      account.session.bytesUp += up;
      account.session.bytesDown += down;
    }
  }

  /** Books connected time from `connectedSinceMs` to `untilMs`, split at hour boundaries. */
  private bookConnectedTime(account: AccountUsage, untilMs: number): void {
    let fromMs = account.connectedSinceMs;
    if (fromMs === null || untilMs <= fromMs) return;
    while (fromMs < untilMs) {
      const endMs = Math.min(untilMs, hourStart(new Date(fromMs)).getTime() + HOUR_MS);
      this.addToBucket(account.accountId, new Date(fromMs), ALL_LOCATIONS, {
        connectedSeconds: (endMs - fromMs) / 1_000,
      });
      fromMs = endMs;
    }
    account.connectedSinceMs = untilMs;
  }

  /**
   * Moves every account's counters into the pending writes; ends sessions
   * idle past the gap. With `onlyDue`, an account with nothing new is left
   * alone until QUIET_BOOK_MS after it was last written.
   */
  private collect(endSessions: boolean, onlyDue: boolean): void {
    const now = this.options.clock.now();
    const nowMs = now.getTime();
    const gapMs = this.options.sessionGapMs ?? 30_000;
    for (const account of [...this.accounts.values()]) {
      for (const usage of account.tunnels) this.collectBytes(account, usage, now);
      const over =
        account.tunnels.size === 0 && (endSessions || nowMs - account.lastClosedMs >= gapMs);
      const due = !onlyDue || over || account.changed || nowMs - account.writtenMs >= QUIET_BOOK_MS;
      if (!due) continue;
      account.changed = false;
      account.writtenMs = nowMs;
      if (account.tunnels.size > 0) this.bookConnectedTime(account, nowMs);
      this.collectSession(account, now, over);
    }
  }

  private collectSession(account: AccountUsage, now: Date, over: boolean): void {
    const session = account.session;
    if (!session) return;
    this.sessionUpdates.push({
      sessionId: session.id,
      accountId: account.accountId,
      gatewayId: this.options.gatewayId,
      startedAt: session.startedAt,
      lastSeenAt: now,
      endedAt: over ? (session.endedAt ?? now) : undefined,
      bytesUp: session.bytesUp,
      bytesDown: session.bytesDown,
      connections: session.connections,
      locations: [...session.locations],
      protocols: [...session.protocols],
    });
    session.bytesUp = 0;
    session.bytesDown = 0;
    session.connections = 0;
    if (over) this.accounts.delete(account.accountId);
  }

  private requeueFailed(
    results: PromiseSettledResult<void>[],
    batch: {
      buckets: UsageBucketIncrement[];
      sessions: UsageSessionUpdate[];
      refusals: ProxyRefusalRecord[];
      authFailures: ProxyAuthFailureRecord[];
    },
  ): void {
    const [buckets, sessions, refusals, authFailures] = results;
    if (buckets?.status === 'rejected') {
      for (const row of batch.buckets)
        this.addToBucket(row.accountId, row.hourStart, row.location, row);
    }
    if (sessions?.status === 'rejected') this.sessionUpdates.unshift(...batch.sessions);
    if (refusals?.status === 'rejected') this.refusals.unshift(...batch.refusals);
    if (authFailures?.status === 'rejected') this.authFailures.unshift(...batch.authFailures);
    const failed = results.filter((result) => result.status === 'rejected');
    for (const result of failed) {
      this.options.logger?.warn({ err: result.reason as unknown }, 'proxy.flush_write_failed');
    }
    if (failed.length > 0) {
      throw new Error(`usage flush: ${failed.length} write(s) failed; kept for the next flush`);
    }
  }
}

function newSession(now: Date): SessionState {
  return {
    id: new Types.ObjectId().toHexString(),
    startedAt: now,
    endedAt: null,
    bytesUp: 0,
    bytesDown: 0,
    connections: 0,
    locations: new Set(),
    protocols: new Set(),
  };
}
