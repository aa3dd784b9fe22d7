/**
 * Everything the gateway needs to authenticate and entitle a connection, in
 * memory: every proxy credential, the plans, the locations, and the facts
 * (account status, subscription, wallet, quota counter) of the accounts this
 * process is serving. A refresh loop keeps it fresh:
 *
 * - credentials written since the last refresh began (`updatedAt`, with an
 *   overlap for writers' clock skew), plus a full reload now and then to
 *   catch deletions;
 * - plans and locations in full (small collections);
 * - the facts of "hot" accounts (seen recently or with open tunnels) that
 *   changed: the account, subscription, wallet and quota documents written
 *   in the same window (a seat added, removed or changed marks its owner's
 *   and member's accounts as written, core/team.ts, since a removed seat
 *   leaves nothing of its own to find by date; the members of a team whose
 *   owner changed are read again too), and every account whose quota period
 *   has ended;
 * - and, in slices, every hot account's facts in full once per `factsSweepMs`
 *   (default 10 s), for writes that bypass `updatedAt` (a hand edit in the
 *   database shell).
 *
 * So revocation and entitlement changes made through the application (the
 * bots, the API, jobs, or mongoose directly, as the tests do) take effect
 * within about a second (every `refreshMs`, default 500 ms), other writes
 * within the sweep, and the hot path (a connection of an account already
 * being served) makes no database round trip. A refresh costs in proportion
 * to what changed, not to the accounts served: a gateway holding thousands of
 * quiet customers does not re-read them all twice a second. The first
 * connection of an account this process has not seen lately loads its facts
 * once (`loadAccount`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Connection } from 'mongoose';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { listLocations, type LocationView } from '../core/locations.js';
import {
  listAccessFactChangesSince,
  listProxyCredentialsChangedSince,
  loadAccessFacts,
  loadPlansForAccess,
  type AccessFactChange,
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
  /** Re-read writes this long before the last refresh began (default 5 s). */
  overlapMs?: number;
  /** An account stays hot this long after its last connection (default 2 min). */
  hotForMs?: number;
  /** Every hot account's facts are re-read in full at least this often (default 10 s). */
  factsSweepMs?: number;
  /** Accounts to keep hot whatever their last use (those with open tunnels). */
  busyAccounts?: () => Iterable<string>;
  /**
   * The refresh loop's own bookkeeping (hot accounts, full reloads) runs on
   * real timers, so it reads real time even when `clock` is a test clock.
   */
  timerClock?: Clock;
}

/** Accounts a refresh read anew (credential or facts), or 'all' of them. */
export type RefreshChanges = ReadonlySet<string> | 'all';

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
  private readonly factsSweepMs: number;
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
  /**
   * Where the last refresh's window of writes began (ms, before the
   * overlap): the earlier of the business clock and the wall clock then.
   * Writers stamp `updatedAt` with one or the other (mongoose's timestamps
   * use the wall clock; core/subscriptions.ts stamps business time), and in
   * production the two agree. What was loaded before is read whole.
   */
  private windowBasisMs: number;
  /** Fact writes already acted on (AccessFactChange.key), until they fall out of the overlap. */
  private readonly seenFactChanges = new Map<string, number>();
  /** Where the full sweep of hot accounts' facts goes on. */
  private sweepCursor = 0;
  /** Accounts the sweep owes (fractions carry over to the next refresh). */
  private sweepDue = 0;
  private lastFullReloadMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private stopped = true;
  private readonly listeners: ((changed: RefreshChanges) => void)[] = [];
  /** What plans and locations looked like at the last refresh, to tell whether they changed. */
  private catalogueSignature = '';

  constructor(options: CredentialCacheOptions) {
    this.clock = options.clock;
    this.connection = options.connection;
    this.logger = options.logger;
    this.refreshMs = options.refreshMs ?? 500;
    this.fullReloadMs = options.fullReloadMs ?? 60_000;
    this.overlapMs = options.overlapMs ?? 5_000;
    this.hotForMs = options.hotForMs ?? 120_000;
    this.factsSweepMs = options.factsSweepMs ?? 10_000;
    this.windowBasisMs = Math.min(this.clockNowMs(), Date.now());
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

  /**
   * Called after each refresh with the accounts whose credential or facts it
   * read anew, or 'all' (a full credential reload, or plans or locations
   * changed): the controller re-checks those accounts' live tunnels.
   */
  onRefresh(listener: (changed: RefreshChanges) => void): void {
    this.listeners.push(listener);
  }

  /**
   * A refresh that starts now, or right after the one under way (which may
   * have read before the caller's write); callers at the same time share it.
   * So what was written before the call is in the cache when it resolves.
   */
  refresh(): Promise<void> {
    if (this.running) {
      this.queued ??= this.running
        .catch(() => undefined)
        .then(() => {
          this.queued = undefined;
          return this.refresh();
        });
      return this.queued;
    }
    this.running = this.refreshOnce().finally(() => {
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
    const hot = this.hotAccountIds();
    // From where the previous window began: a write since then is inside
    // whichever clock stamped it (and the business clock may be set back).
    const basisMs = Math.min(this.clockNowMs(), Date.now());
    const windowSince = new Date(Math.min(this.windowBasisMs, basisMs) - this.overlapMs);
    this.windowBasisMs = basisMs;
    const [credentials, plans, locations, changes] = await Promise.all([
      listProxyCredentialsChangedSince(full ? null : windowSince, options),
      loadPlansForAccess(options),
      listLocations(options),
      listAccessFactChangesSince(windowSince, options),
    ]);
    const newCredentials = this.applyCredentials(credentials, full);
    if (full) this.lastFullReloadMs = this.timerClock.now().getTime();
    this.plans = new Map(plans.map((plan) => [plan.code, plan]));
    this.locationList = locations;
    const catalogue = JSON.stringify([plans, locations]);
    const catalogueChanged = catalogue !== this.catalogueSignature;
    this.catalogueSignature = catalogue;
    const stale = this.staleFacts(hot, changes, windowSince);
    const facts = stale.length > 0 ? await this.fetchFacts(stale) : new Map<string, AccessFacts>();
    for (const [accountId, accountFacts] of facts) this.facts.set(accountId, accountFacts);
    const changed: RefreshChanges =
      full || catalogueChanged ? 'all' : new Set([...newCredentials, ...facts.keys()]);
    // Hot as of now, not as of the start: an account that came back (or was
    // loaded) while the queries ran must keep its facts, or its connection
    // finds none a moment later (and, with no quota period yet, cannot open one).
    this.forgetCold(new Set(this.hotAccountIds()));
    for (const listener of this.listeners) listener(changed);
  }

  /**
   * The hot accounts whose facts must be read again: a fact document written
   * since the last look (or a team owner's, for its members), a quota period
   * that ended, and this refresh's slice of the full sweep.
   */
  private staleFacts(
    hot: readonly string[],
    changes: readonly AccessFactChange[],
    since: Date,
  ): string[] {
    const cached = (accountId: string): AccessFacts | undefined => this.facts.get(accountId);
    const stale = new Set<string>();
    const changed = new Set<string>();
    for (const change of changes) {
      const atMs = change.updatedAt.getTime();
      if (this.seenFactChanges.has(change.key)) continue;
      changed.add(change.accountId);
      // Facts being loaded may have been read before this write: look again next time.
      if (!this.loading.has(change.accountId)) this.seenFactChanges.set(change.key, atMs);
    }
    for (const [key, atMs] of this.seenFactChanges) {
      if (atMs < since.getTime()) this.seenFactChanges.delete(key);
    }
    const nowMs = this.clock.now().getTime();
    for (const accountId of hot) {
      const facts = cached(accountId);
      if (!facts) {
        // Hot without facts (a load that failed): read them now.
        if (!this.loading.has(accountId)) stale.add(accountId);
        continue;
      }
      // A seat's subscription, wallet and counter are its owner's.
      const owner = facts.seat?.ownerAccountId ?? facts.team?.ownerAccountId;
      if (
        changed.has(accountId) ||
        (owner !== undefined && changed.has(owner)) ||
        (facts.quota !== null && facts.quota.periodEnd.getTime() <= nowMs)
      ) {
        stale.add(accountId);
      }
    }
    // Every hot account once per factsSweepMs, spread evenly over the refreshes.
    const refreshesPerSweep = Math.max(1, this.factsSweepMs / this.refreshMs);
    this.sweepDue = Math.min(hot.length, this.sweepDue + hot.length / refreshesPerSweep);
    const slice = Math.floor(this.sweepDue);
    this.sweepDue -= slice;
    for (let i = 0; i < slice; i++) {
      this.sweepCursor = (this.sweepCursor + 1) % hot.length;
      const accountId = hot[this.sweepCursor];
      if (accountId !== undefined && cached(accountId)) stale.add(accountId);
    }
    return [...stale];
  }

  private clockNowMs(): number {
    return this.clock.now().getTime();
  }

  private fetchFacts(accountIds: readonly string[]): Promise<Map<string, AccessFacts>> {
    return loadAccessFacts(accountIds, this.clock.now(), { connection: this.connection });
  }

  /** Applies what was read; returns the accounts whose credential is new or different. */
  private applyCredentials(credentials: readonly ProxyCredentialRecord[], full: boolean): string[] {
    const previousOf = full ? new Map(this.byAccount) : this.byAccount;
    if (full) {
      this.byUsername.clear();
      this.byAccount.clear();
    }
    const changed: string[] = [];
    for (const record of credentials) {
      const previous = previousOf.get(record.accountId);
      // Read again within the overlap, unchanged: nothing to do.
      if (previous && sameCredential(previous, record) && !full) continue;
      if (!previous || !sameCredential(previous, record)) changed.push(record.accountId);
      // A renamed username must stop working under its old name.
      const current = this.byAccount.get(record.accountId);
      if (current && current.username !== record.username) this.byUsername.delete(current.username);
      const cached: CachedCredential = { ...record, hash: Buffer.from(record.secretHash, 'hex') };
      this.byUsername.set(record.username, cached);
      this.byAccount.set(record.accountId, cached);
    }
    return changed;
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

function sameCredential(a: ProxyCredentialRecord, b: ProxyCredentialRecord): boolean {
  return (
    a.updatedAt.getTime() === b.updatedAt.getTime() &&
    a.username === b.username &&
    a.secretHash === b.secretHash &&
    a.secretVersion === b.secretVersion &&
    a.revoked === b.revoked &&
    a.accessPaused === b.accessPaused &&
    a.exitEpoch === b.exitEpoch
  );
}

function emptyFacts(accountId: string): AccessFacts {
  return { accountId, accountStatus: 'deleted', subscription: null, wallet: null, quota: null };
}
