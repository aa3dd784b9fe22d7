/**
 * Everything the gateway needs to authenticate and entitle a connection, in
 * memory: every proxy credential, the plans, the locations, and the facts
 * (account status, subscription, wallet, quota counter) of the accounts this
 * process is serving. A refresh loop keeps it fresh:
 *
 * - credentials changed since the last mark (`updatedAt`, with an overlap for
 *   writers' clock skew), plus a full reload now and then to catch deletions;
 * - plans and locations in full (small collections);
 * - the facts of "hot" accounts (seen recently or with open tunnels) in full,
 *   so changes made by any writer, even directly in the database, show up on
 *   the next refresh (every `refreshMs`, default 500 ms).
 *
 * So revocation and entitlement changes take effect within about a second,
 * and the hot path (a connection of an account already being served) makes
 * no database round trip. The first connection of an account this process has
 * not seen lately loads its facts once (`loadAccount`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Connection } from 'mongoose';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { listLocations, type LocationView } from '../core/locations.js';
import {
  listProxyCredentialsChangedSince,
  loadAccessFacts,
  loadPlansForAccess,
  type AccessFacts,
  type ProxyCredentialRecord,
} from '../core/proxy-credentials.js';
import type { PlanRecord } from '../models/plan.js';

export interface CachedCredential extends ProxyCredentialRecord {
  hash: Buffer;
}

export interface CredentialCacheOptions {
  clock: Clock;
  connection?: Connection;
  logger?: Logger;
  /** Default 500 ms. */
  refreshMs?: number;
  /** Full reload of every credential this often (default 60 s). */
  fullReloadMs?: number;
  /** Re-read credentials changed this long before the last mark (default 5 s). */
  overlapMs?: number;
  /** An account stays hot this long after its last connection (default 2 min). */
  hotForMs?: number;
  /** Accounts to keep hot whatever their last use (those with open tunnels). */
  busyAccounts?: () => Iterable<string>;
  /**
   * The refresh loop's own bookkeeping (hot accounts, full reloads) runs on
   * real timers, so it reads real time even when `clock` is a test clock.
   */
  timerClock?: Clock;
}

/** Hashes compared against when the username is unknown, so timing does not tell. */
const DUMMY_HASH = createHash('sha256').update('no such user').digest();

export class CredentialCache {
  private readonly clock: Clock;
  private readonly connection: Connection | undefined;
  private readonly logger: Logger | undefined;
  private readonly refreshMs: number;
  private readonly fullReloadMs: number;
  private readonly overlapMs: number;
  private readonly hotForMs: number;
  private readonly busyAccounts: () => Iterable<string>;
  private readonly timerClock: Clock;

  private readonly byUsername = new Map<string, CachedCredential>();
  private readonly byAccount = new Map<string, CachedCredential>();
  private readonly facts = new Map<string, AccessFacts>();
  /** Real time (ms) of each account's last use, for "hot". */
  private readonly lastUsedMs = new Map<string, number>();
  private readonly loading = new Map<string, Promise<AccessFacts>>();
  private plans = new Map<string, PlanRecord>();
  private locationList: LocationView[] = [];
  private mark: Date | null = null;
  private lastFullReloadMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly listeners: (() => void)[] = [];

  constructor(options: CredentialCacheOptions) {
    this.clock = options.clock;
    this.connection = options.connection;
    this.logger = options.logger;
    this.refreshMs = options.refreshMs ?? 500;
    this.fullReloadMs = options.fullReloadMs ?? 60_000;
    this.overlapMs = options.overlapMs ?? 5_000;
    this.hotForMs = options.hotForMs ?? 120_000;
    this.busyAccounts = options.busyAccounts ?? (() => []);
    this.timerClock = options.timerClock ?? systemClock;
  }

  /** Loads everything once, then refreshes every `refreshMs` until stop(). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Called after each refresh (the controller re-checks live tunnels then). */
  onRefresh(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** One refresh now (concurrent callers share it). */
  refresh(): Promise<void> {
    this.running ??= this.refreshOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * The credential for a username if `secret` matches it, compared in
   * constant time on SHA-256 digests; `undefined` for an unknown username or
   * a wrong secret (`known` tells which, for the failed-login record).
   */
  verify(username: string, secret: string): { credential?: CachedCredential; known: boolean } {
    const credential = this.byUsername.get(username);
    const given = createHash('sha256').update(secret, 'utf8').digest();
    const matches = timingSafeEqual(given, credential?.hash ?? DUMMY_HASH);
    if (!credential) return { known: false };
    return matches ? { credential, known: true } : { known: true };
  }

  findByUsername(username: string): CachedCredential | undefined {
    return this.byUsername.get(username);
  }

  credentialOf(accountId: string): CachedCredential | undefined {
    return this.byAccount.get(accountId);
  }

  /** The account's facts if cached (and marks it hot). */
  accountFacts(accountId: string): AccessFacts | undefined {
    this.lastUsedMs.set(accountId, this.timerClock.now().getTime());
    return this.facts.get(accountId);
  }

  /** The account's facts, loading them on first use (the cold path). */
  async loadAccount(accountId: string): Promise<AccessFacts> {
    const cached = this.accountFacts(accountId);
    if (cached) return cached;
    let pending = this.loading.get(accountId);
    if (!pending) {
      pending = this.fetchFacts([accountId]).then((loaded) => {
        const facts = loaded.get(accountId) ?? emptyFacts(accountId);
        this.facts.set(accountId, facts);
        return facts;
      });
      pending.finally(() => this.loading.delete(accountId)).catch(() => undefined);
      this.loading.set(accountId, pending);
    }
    return pending;
  }

  /** Replaces an account's wallet balance after this process moved it (a PAYG debit). */
  noteWalletBalance(accountId: string, balanceMinor: number): void {
    const facts = this.facts.get(accountId);
    if (facts?.wallet) facts.wallet = { ...facts.wallet, balanceMinor };
  }

  plan(code: string): PlanRecord | undefined {
    return this.plans.get(code);
  }

  locations(): readonly LocationView[] {
    return this.locationList;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.refresh()
        .catch((error: unknown) => this.logger?.warn({ err: error }, 'proxy.cache_refresh_failed'))
        .finally(() => this.schedule());
    }, this.refreshMs);
    this.timer.unref();
  }

  private async refreshOnce(): Promise<void> {
    const options = { connection: this.connection };
    const full = this.timerClock.now().getTime() - this.lastFullReloadMs >= this.fullReloadMs;
    const since =
      full || this.mark === null ? null : new Date(this.mark.getTime() - this.overlapMs);
    const hot = this.hotAccountIds();
    const [credentials, plans, locations, facts] = await Promise.all([
      listProxyCredentialsChangedSince(since, options),
      loadPlansForAccess(options),
      listLocations(options),
      this.fetchFacts(hot),
    ]);
    this.applyCredentials(credentials, full);
    if (full) this.lastFullReloadMs = this.timerClock.now().getTime();
    this.plans = new Map(plans.map((plan) => [plan.code, plan]));
    this.locationList = locations;
    for (const [accountId, accountFacts] of facts) this.facts.set(accountId, accountFacts);
    // Hot as of now, not as of the start: an account that came back (or was
    // loaded) while the queries ran must keep its facts, or its connection
    // finds none a moment later (and, with no quota period yet, cannot open one).
    this.forgetCold(new Set(this.hotAccountIds()));
    for (const listener of this.listeners) listener();
  }

  private fetchFacts(accountIds: readonly string[]): Promise<Map<string, AccessFacts>> {
    return loadAccessFacts(accountIds, this.clock.now(), { connection: this.connection });
  }

  private applyCredentials(credentials: readonly ProxyCredentialRecord[], full: boolean): void {
    if (full) {
      this.byUsername.clear();
      this.byAccount.clear();
    }
    for (const record of credentials) {
      const previous = this.byAccount.get(record.accountId);
      // A renamed username must stop working under its old name.
      if (previous && previous.username !== record.username)
        this.byUsername.delete(previous.username);
      const cached: CachedCredential = { ...record, hash: Buffer.from(record.secretHash, 'hex') };
      this.byUsername.set(record.username, cached);
      this.byAccount.set(record.accountId, cached);
      if (this.mark === null || record.updatedAt.getTime() > this.mark.getTime()) {
        this.mark = record.updatedAt;
      }
    }
  }

  private hotAccountIds(): string[] {
    const cutoffMs = this.timerClock.now().getTime() - this.hotForMs;
    const hot = new Set<string>();
    for (const [accountId, usedMs] of this.lastUsedMs) {
      if (usedMs >= cutoffMs) hot.add(accountId);
    }
    for (const accountId of this.busyAccounts()) hot.add(accountId);
    return [...hot];
  }

  /** Accounts neither hot nor busy are dropped, so a long-running gateway does not grow. */
  private forgetCold(hot: ReadonlySet<string>): void {
    for (const accountId of this.facts.keys()) {
      if (!hot.has(accountId) && !this.loading.has(accountId)) {
        this.facts.delete(accountId);
        this.lastUsedMs.delete(accountId);
      }
    }
  }
}

function emptyFacts(accountId: string): AccessFacts {
  return { accountId, accountStatus: 'deleted', subscription: null, wallet: null, quota: null };
}
