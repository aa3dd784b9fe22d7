/**
 * The access layer behind every tunnel (proxy/access.ts is the seam with the
 * wire protocols). Per connection, from memory:
 *
 *   authorize(request)
 *     parse the username options -> source-IP backoff -> check the secret
 *     (constant time, SHA-256) -> username backoff on failure -> paused?
 *     -> per-account connection rate -> computeEntitlements + checkConnection
 *        (protocol, port, location, open connections on every gateway)
 *     -> choose an exit (proxy/exits.ts) -> PAYG: the current hour is charged
 *        (first tunnel of the hour only) / quota: a local lease holds bytes
 *        (proxy/leases.ts, first tunnel only)
 *     -> a TunnelGrant
 *   grant.allow(n, direction)  spends the local lease synchronously, counts bytes
 *   grant.waitForAllowance()   after a short allow(): waits for the lease renewal
 *   grant.close()              frees the slot; connected time and the session move on
 *   authenticate(request)      the credential checks of authorize() alone (SOCKS5)
 *
 * Team seats (core/team.ts) are accounts of their own here (credentials,
 * refusals, usage, sessions), but their quota lease is the team OWNER's
 * counter (one lease per owner on this process, shared by every seat), a seat
 * with a data cap also spends a second lease from its own counter (its cap),
 * and the connection limit counts every open connection of the team. A seat
 * whose cap runs out is cut alone; a pool that runs out cuts the whole team.
 *
 * In the background: the credential cache refreshes every ~500 ms and, after
 * each refresh, live tunnels are re-checked (revoked, rotated, disconnected,
 * entitlements changed), presence is exchanged with the other gateways, and
 * PAYG hours are charged as they start; every ~1 s the usage meter
 * (proxy/usage-meter.ts) is flushed and the leases due are settled (each
 * account's at most every 10 s, proxy/leases.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import {
  checkConnection,
  computeEntitlements,
  SEAT_CAP_REACHED,
  type Entitlements,
  type QuotaState,
  type SeatState,
} from '../core/entitlements.js';
import {
  parseProxyUsername,
  setProxyAccess,
  type AccessFacts,
  type ParsedProxyUsername,
} from '../core/proxy-credentials.js';
import { buyPaygData, paygHourKey } from '../core/payg.js';
import { notify } from '../core/notifications.js';
import { openQuotaPeriod, planWindowRequest } from '../core/quota.js';
import { alertOnSettle } from '../core/usage-alerts.js';
import type { SettingsStore } from '../core/settings.js';
import { currentQuotaWindow } from '../core/subscriptions.js';
import {
  exchangeGatewayPresence,
  hourStart,
  removeGatewayPresence,
  type ProxyRefusalRecord,
} from '../core/usage.js';
import { debit, getWallet } from '../core/wallet.js';
import type { ProxyAuthFailureReason } from '../models/proxy-auth-failure.js';
import { AccessMetrics } from './access-metrics.js';
import type {
  AccessController,
  AccessDecision,
  AccessRefusal,
  AccessRefusalKind,
  AccessRequest,
  Protocol,
  TunnelGrant,
} from './access.js';
import { CredentialCache, type CachedCredential, type RefreshChanges } from './credential-cache.js';
import { ExitPicker, type ExitChoice } from './exits.js';
import { LeaseManager } from './leases.js';
import {
  ConnectionRateLimiter,
  FailureBackoff,
  type ConnectionRateLimiterOptions,
  type FailureBackoffOptions,
} from './rate-limit.js';
import { UsageMeter, type Direction, type TunnelUsage } from './usage-meter.js';

const HOUR_MS = 3_600_000;

/** Gateway refusal codes beside the entitlement RefusalCodes. */
export type GatewayRefusalCode =
  | 'BAD_CREDENTIALS'
  | 'TOO_MANY_ATTEMPTS'
  | 'CONNECTION_RATE_LIMITED'
  | 'DISCONNECTED'
  | 'LOCATION_UNAVAILABLE';

/**
 * Why a live tunnel was cut (passed to onCut): an entitlement RefusalCode, or
 * DISCONNECTED, CREDENTIALS_ROTATED, CREDENTIALS_REVOKED, SHUTDOWN.
 */
export type CutCode = string;

export interface AccessControllerOptions {
  clock: Clock;
  /** Defaults to mongoose's default connection; tests pass another to act as a second gateway. */
  connection?: Connection;
  logger?: Logger;
  /** Where the access metrics are registered (lib/metrics.ts); default a private registry. */
  metrics?: Registry;
  /** The business settings (usage-alert thresholds); the defaults without it. */
  settings?: Pick<SettingsStore, 'get'>;
  policy: { httpsOnlyPorts: readonly number[]; blockedPorts: readonly number[] };
  /** This process's id in the presence collection, usage sessions and lease entries (default: random). */
  gatewayId?: string;
  /** Cache refresh and live re-check period (default 500 ms). */
  refreshMs?: number;
  /** Usage flush and lease settle period (default 1000 ms). */
  flushMs?: number;
  /** Another gateway's presence older than this is ignored (default 3 s). */
  presenceStaleMs?: number;
  /** A `-session-<id>` keeps its exit this long from first use (default 10 min). */
  stickyLifetimeMs?: number;
  /** A usage session ends after this long with no open tunnel (default 30 s). */
  sessionGapMs?: number;
  /** Skip an exit whose dial failed for this long (default 30 s). */
  exitRetryMs?: number;
  leases?: {
    minLeaseBytes?: number;
    maxLeaseBytes?: number;
    idleReturnMs?: number;
    /** Lease entries are renewed at least this often (default 15 s), see reclaimStaleLeases. */
    heartbeatMs?: number;
  };
  authBackoff?: Omit<FailureBackoffOptions, 'clock'>;
  connectionRate?: Omit<ConnectionRateLimiterOptions, 'clock'>;
  /** Real time for the refresh bookkeeping (default the system clock). */
  timerClock?: Clock;
  /** PAYG per-GB charging: bytes bought from the wallet at a time (default 100 MB). */
  paygDataBlockBytes?: number;
}

interface Tunnel {
  accountId: string;
  protocol: Protocol;
  port: number;
  exit: ExitChoice;
  secretVersion: number;
  /** Spends a byte lease: a quota plan, or PAYG with per-GB charging (data bought from the wallet). */
  metered: boolean;
  /** A PAYG account: each connected hour is charged as it starts. */
  payg: boolean;
  /** Whose quota counter the lease comes from: the account's own, or its team owner's. */
  quotaKey: string;
  /** A capped seat: its own counter (the cap), spent alongside quotaKey's; follows cap changes. */
  capKey: string | null;
  usage: TunnelUsage;
  cutCode: string | null;
  closed: boolean;
  cutListeners: ((code: string) => void)[];
}

interface LiveAccount {
  accountId: string;
  tunnels: Set<Tunnel>;
  /** Authorizations in flight that hold a connection slot. */
  pending: number;
  /** Clock ms at which the live tunnels are checked again unless something changes first. */
  recheckAtMs: number;
}

/** The first date after `nowMs` at which the account's entitlements may turn (Infinity: none). */
function nextDateOf(facts: AccessFacts, nowMs: number): number {
  const { subscription, quota } = facts;
  let next = Infinity;
  for (const date of [
    subscription?.periodEnd,
    subscription?.trialEndsAt,
    subscription?.graceEndsAt,
    quota?.periodEnd,
  ]) {
    const ms = date?.getTime();
    if (ms !== undefined && ms > nowMs && ms < next) next = ms;
  }
  return next;
}

interface ParsedOptions {
  location: string | null;
  sessionId: string | null;
}

type LoginRequest = Pick<AccessRequest, 'username' | 'password' | 'sourceIp'>;

type LoginOutcome =
  | { ok: true; credential: CachedCredential; options: ParsedOptions }
  | { ok: false; refusal: AccessRefusal };

export class GatewayAccessController implements AccessController {
  readonly gatewayId: string;
  private readonly clock: Clock;
  private readonly connection: Connection | undefined;
  private readonly logger: Logger | undefined;
  private readonly options: AccessControllerOptions;
  private readonly metrics: AccessMetrics;
  private readonly cache: CredentialCache;
  private readonly exits: ExitPicker;
  private readonly meter: UsageMeter;
  private readonly leases: LeaseManager;
  private readonly ipBackoff: FailureBackoff;
  private readonly userBackoff: FailureBackoff;
  private readonly connectionRate: ConnectionRateLimiter;

  private readonly live = new Map<string, LiveAccount>();
  /** Open tunnels spending each lease key (quotaKey or capKey), for the lease manager's "busy". */
  private readonly leaseUsers = new Map<string, number>();
  /** Other gateways' open tunnels per account, from the last presence exchange. */
  private remoteOpen = new Map<string, number>();
  /** A tunnel opened or closed since the presence document was last written. */
  private presenceChanged = true;
  /** PAYG: the hour (clock ms) each account has paid for, and charges in flight. */
  private readonly paidHour = new Map<string, number>();
  private readonly charging = new Map<string, Promise<boolean>>();

  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private exchanging: Promise<void> | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(options: AccessControllerOptions) {
    this.options = options;
    this.clock = options.clock;
    this.connection = options.connection;
    this.logger = options.logger;
    this.gatewayId = options.gatewayId ?? `gw_${randomBytes(6).toString('hex')}`;
    const shared = { clock: options.clock, connection: options.connection, logger: options.logger };
    this.metrics = new AccessMetrics(options.metrics);
    this.cache = new CredentialCache({
      ...shared,
      refreshMs: options.refreshMs,
      timerClock: options.timerClock,
      busyAccounts: () => this.live.keys(),
    });
    this.exits = new ExitPicker({
      ...shared,
      locations: () => this.cache.locations(),
      stickyLifetimeMs: options.stickyLifetimeMs,
      exitRetryMs: options.exitRetryMs,
    });
    this.metrics.readExitHealthFrom(() => this.exits.health());
    this.meter = new UsageMeter({
      ...shared,
      gatewayId: this.gatewayId,
      sessionGapMs: options.sessionGapMs,
    });
    this.leases = new LeaseManager({
      ...shared,
      ...options.leases,
      gatewayId: this.gatewayId,
      metrics: this.metrics,
      openPeriod: (accountId) => this.openQuotaPeriodFor(accountId),
      buyMore: (accountId) => this.buyPaygDataFor(accountId),
      onExhausted: (accountId) => queueMicrotask(() => this.cutForQuota(accountId)),
      // Usage alerts (usage_50 .. usage_100) go out as the settle crosses them, not at the next sweep.
      onSettled: (counter, bookedBytes) =>
        alertOnSettle(counter, bookedBytes, { ...shared, settings: options.settings }),
    });
    this.ipBackoff = new FailureBackoff({ clock: options.clock, ...options.authBackoff });
    this.userBackoff = new FailureBackoff({ clock: options.clock, ...options.authBackoff });
    this.connectionRate = new ConnectionRateLimiter({
      clock: options.clock,
      ...options.connectionRate,
    });
    this.cache.onRefresh((changed) => this.afterRefresh(changed));
  }

  /** Loads the cache, then refreshes and flushes in the background until stop(). */
  async start(): Promise<void> {
    await this.cache.start();
    this.started = true;
    this.scheduleFlush();
  }

  /**
   * Cuts the tunnels still open (the listeners drain them before calling
   * this), books their usage, returns every lease and leaves the presence
   * collection, so nothing relayed here is lost.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.started = false;
    this.cache.stop();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const account of this.live.values()) {
      for (const tunnel of [...account.tunnels]) this.cutTunnel(tunnel, 'SHUTDOWN', null);
    }
    await this.exchanging;
    await this.flush({ returnLeases: true, endSessions: true });
    await removeGatewayPresence(this.gatewayId, { connection: this.connection });
  }

  /** Open tunnels of the account on this gateway. */
  openTunnels(accountId: string): number {
    return this.live.get(accountId)?.tunnels.size ?? 0;
  }

  /** Disconnect: every gateway closes the account's tunnels and refuses new ones until connect(). */
  async disconnect(accountId: string): Promise<void> {
    await setProxyAccess(accountId, 'paused', { clock: this.clock, connection: this.connection });
    this.cutAccount(accountId, 'DISCONNECTED', DISCONNECTED_MESSAGE);
    await this.cache.refresh();
  }

  async connect(accountId: string): Promise<void> {
    await setProxyAccess(accountId, 'connected', {
      clock: this.clock,
      connection: this.connection,
    });
    await this.cache.refresh();
  }

  /** "Give me a new IP": new exits for the account's next tunnels, on every gateway. */
  async rotate(accountId: string): Promise<void> {
    await this.exits.rotate(accountId);
    await this.cache.refresh();
  }

  /**
   * Books usage, refusals and failed logins now and settles every lease. The
   * same runs every flushMs in the background, where it settles only the
   * leases due (`onlyDueSettles`, see settleEveryMs in proxy/leases.ts).
   */
  flush(
    options: { returnLeases?: boolean; endSessions?: boolean; onlyDueSettles?: boolean } = {},
  ): Promise<void> {
    const run = (this.flushing ?? Promise.resolve()).then(() => this.flushOnce(options));
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Refreshes the cache now (tests; the loop does it every refreshMs). */
  refresh(): Promise<void> {
    return this.cache.refresh();
  }

  // -------------------------------------------------------------------------
  // authorize
  // -------------------------------------------------------------------------

  async authorize(request: AccessRequest): Promise<AccessDecision> {
    const parsed = parseProxyUsername(request.username);
    if (this.mayBeNewUsername(parsed, request)) await this.cache.refresh();
    const login = this.login(request, parsed);
    if (!login.ok) return login.refusal;
    return this.authorizeAccount(request, login.credential, login.options);
  }

  /**
   * Credentials alone, for SOCKS5's authentication step (RFC 1929) before the
   * client names a target. The same checks, backoff and records as authorize(),
   * which the listener calls next; a good login counts nothing, so nothing is
   * counted twice.
   */
  async authenticate(request: LoginRequest): Promise<AccessRefusal | undefined> {
    const parsed = parseProxyUsername(request.username);
    if (this.mayBeNewUsername(parsed, request)) await this.cache.refresh();
    const login = this.login(request, parsed);
    return login.ok ? undefined : login.refusal;
  }

  /**
   * A well-formed username the cache does not know may have been issued a
   * moment ago (the customer pasted it straight from the chat): the caller
   * refreshes once before judging. Refreshes are shared by every caller and
   * read only what changed, and an address in backoff gets none, so strangers
   * trying names cost little. A known username costs one map lookup.
   */
  private mayBeNewUsername(parsed: ParsedProxyUsername, request: LoginRequest): boolean {
    if (!parsed.ok || this.cache.findByUsername(parsed.username)) return false;
    return this.ipBackoff.blockedForMs(`ip:${request.sourceIp}`) === 0;
  }

  /** Username options, source-IP backoff, the secret, username backoff: all from memory. */
  private login(request: LoginRequest, parsed: ParsedProxyUsername): LoginOutcome {
    const ipKey = `ip:${request.sourceIp}`;
    if (this.ipBackoff.blockedForMs(ipKey) > 0) {
      const username = parsed.ok ? parsed.username : request.username;
      const record = this.ipBackoff.noteRefusedWhileBlocked(ipKey);
      this.loginFailed(request, username, 'TOO_MANY_ATTEMPTS', { record });
      return { ok: false, refusal: tooManyAttempts() };
    }
    if (!parsed.ok) {
      this.ipBackoff.fail(ipKey);
      this.loginFailed(request, request.username, 'MALFORMED_USERNAME', { record: true });
      const message = `Proxy login failed: ${parsed.message}`;
      return { ok: false, refusal: refusal('authentication', 'BAD_CREDENTIALS', message) };
    }
    const userKey = `user:${parsed.username}`;
    const { credential, known } = this.cache.verify(parsed.username, request.password);
    if (!credential || credential.revoked) {
      const reason = credential ? 'REVOKED' : known ? 'BAD_SECRET' : 'UNKNOWN_USER';
      const refused = this.refuseLogin(request, parsed.username, { ipKey, userKey, reason });
      return { ok: false, refusal: refused };
    }
    // The right secret gets in even while others' failures hold the username in
    // backoff: with 256-bit secrets the backoff is about load, and a stranger
    // must not be able to lock a customer out.
    this.userBackoff.succeed(userKey);
    return { ok: true, credential, options: parsed };
  }

  private refuseLogin(
    request: LoginRequest,
    username: string,
    failure: { ipKey: string; userKey: string; reason: ProxyAuthFailureReason },
  ): AccessRefusal {
    const { ipKey, userKey } = failure;
    const accountId = this.cache.findByUsername(username)?.accountId;
    this.ipBackoff.fail(ipKey);
    if (this.userBackoff.blockedForMs(userKey) > 0) {
      const record = this.userBackoff.noteRefusedWhileBlocked(userKey);
      this.loginFailed(request, username, 'TOO_MANY_ATTEMPTS', { record, accountId });
      return tooManyAttempts();
    }
    this.userBackoff.fail(userKey);
    this.loginFailed(request, username, failure.reason, { record: true, accountId });
    return refusal(
      'authentication',
      'BAD_CREDENTIALS',
      'Proxy login failed: wrong username or password.',
    );
  }

  /**
   * Counts every failed login in the metrics; `record` puts it in the
   * customer's history too (once per backoff block, so a flood is one line).
   */
  private loginFailed(
    request: LoginRequest,
    username: string,
    reason: ProxyAuthFailureReason,
    how: { record: boolean; accountId?: string },
  ): void {
    this.metrics.authFailure(reason);
    if (!how.record) return;
    this.meter.noteAuthFailure({
      username: username.toLowerCase(),
      accountId: how.accountId,
      sourceIp: request.sourceIp,
      reason,
      attempts: 1,
      at: this.clock.now(),
    });
  }

  private async authorizeAccount(
    request: AccessRequest,
    credential: CachedCredential,
    parsed: ParsedOptions,
  ): Promise<AccessDecision> {
    const { accountId } = credential;
    if (credential.accessPaused) {
      return this.refuse(accountId, request, parsed.location, 'DISCONNECTED', DISCONNECTED_MESSAGE);
    }
    if (!this.connectionRate.take(accountId)) {
      return this.refuse(
        accountId,
        request,
        parsed.location,
        'CONNECTION_RATE_LIMITED',
        'Too many new connections per second from this account. Slow down and try again.',
        'rate_limited',
      );
    }
    const facts = this.cache.accountFacts(accountId) ?? (await this.cache.loadAccount(accountId));
    const account = this.liveAccount(accountId);
    // Reserve the slot before any await, so concurrent authorizations count each other.
    const ownOpen = this.openConnectionsOf(accountId);
    const openConnections = facts.team
      ? facts.team.accountIds.reduce((sum, id) => sum + this.openConnectionsOf(id), 0)
      : ownOpen;
    account.pending += 1;
    try {
      return await this.admit(request, credential, parsed, facts, {
        openConnections,
        seatOpenConnections: ownOpen,
      });
    } finally {
      account.pending -= 1;
      this.dropIfIdle(account);
    }
  }

  private async admit(
    request: AccessRequest,
    credential: CachedCredential,
    parsed: ParsedOptions,
    facts: AccessFacts,
    open: { openConnections: number; seatOpenConnections: number },
  ): Promise<AccessDecision> {
    const { accountId } = credential;
    const entitlements = this.entitlementsFor(facts);
    const decision = checkConnection(entitlements, {
      protocol: request.protocol,
      port: request.port,
      location: parsed.location,
      ...open,
    });
    if (!decision.ok) {
      return this.refuse(accountId, request, parsed.location, decision.code, decision.message);
    }
    const exit = this.exits.choose({
      accountId,
      location: parsed.location,
      sessionId: parsed.sessionId,
      allowedLocations: entitlements.locations.allowed,
      rotation: entitlements.features.rotation,
      stickySessions: entitlements.features.stickySessions,
      exitEpoch: credential.exitEpoch,
    });
    if (!exit) {
      return this.refuse(
        accountId,
        request,
        parsed.location,
        'LOCATION_UNAVAILABLE',
        'No exit is available in that location right now. Try another location or try again later.',
      );
    }
    const metering = await this.secureMetering(facts, entitlements);
    if (metering !== true) {
      return this.refuse(accountId, request, exit.location, metering.code, metering.message);
    }
    // The account may have been disconnected or rotated while we waited.
    const current = this.cache.credentialOf(accountId);
    if (!current || current.revoked || current.accessPaused) {
      return this.refuse(accountId, request, exit.location, 'DISCONNECTED', DISCONNECTED_MESSAGE);
    }
    const tunnel = this.open(request, credential, exit, {
      metered: entitlements.remainingBytes !== null || entitlements.paygPerGbRateMinor !== null,
      payg: entitlements.paygHourlyRateMinor !== null,
      quotaKey: quotaKeyOf(facts),
      capKey: capKeyOf(facts),
    });
    return { ok: true, grant: this.grantFor(tunnel) };
  }

  /**
   * Quota plans: a local lease holds bytes. PAYG: the current hour is paid.
   * Only the first tunnel of an account (or of an hour) waits on the database.
   */
  private async secureMetering(
    facts: AccessFacts,
    entitlements: Entitlements,
  ): Promise<true | { code: string; message: string }> {
    const { accountId } = facts;
    if (entitlements.paygHourlyRateMinor !== null) {
      if (!(await this.ensureHourPaid(accountId, facts, entitlements))) {
        return this.entitlementRefusal(this.entitlementsFor(facts), 'WALLET_EMPTY');
      }
      if (entitlements.paygPerGbRateMinor === null || (await this.holdsBytes(accountId))) {
        return true;
      }
      return { code: 'WALLET_EMPTY', message: PAYG_DATA_UNPAID_MESSAGE };
    }
    if (entitlements.remainingBytes === null) return true;
    // A capped seat first: its cap refuses it alone, before it takes from the team's pool.
    const capKey = capKeyOf(facts);
    if (capKey !== null && !(await this.holdsBytes(capKey))) {
      return this.entitlementRefusal(
        this.entitlementsFor(facts, { capSpent: true }),
        'QUOTA_EXHAUSTED',
      );
    }
    if (await this.holdsBytes(quotaKeyOf(facts))) return true;
    return this.entitlementRefusal(
      this.entitlementsFor(facts, { quotaSpent: true }),
      'QUOTA_EXHAUSTED',
    );
  }

  /** Whether this process holds (or can lease now) bytes of the lease key. */
  private async holdsBytes(key: string): Promise<boolean> {
    if (this.leases.availableBytes(key) > 0) {
      this.leases.touch(key);
      return true;
    }
    return (await this.leases.ensure(key)) > 0;
  }

  /** Open connections of one account on every gateway, slots being authorized here included. */
  private openConnectionsOf(accountId: string): number {
    const account = this.live.get(accountId);
    const local = account ? account.tunnels.size + account.pending : 0;
    return local + (this.remoteOpen.get(accountId) ?? 0);
  }

  /** The entitlement function's own words for a refusal we learned from a counter. */
  private entitlementRefusal(
    entitlements: Entitlements,
    fallbackCode: string,
  ): { code: string; message: string } {
    if (!entitlements.access.on) {
      return { code: entitlements.access.code, message: entitlements.access.message };
    }
    return { code: fallbackCode, message: 'Your plan has no data or credit left right now.' };
  }

  /** Builds the entitlement input from cached facts and asks the one function. */
  private entitlementsFor(
    facts: AccessFacts,
    options: { quotaSpent?: boolean; capSpent?: boolean } = {},
  ): Entitlements {
    const now = this.clock.now();
    const subscription = facts.subscription;
    const plan = subscription ? (this.cache.plan(subscription.planCode) ?? null) : null;
    const paid = this.paidHour.get(facts.accountId);
    const currentHour = hourStart(now).getTime();
    return computeEntitlements({
      plan,
      subscription: plan ? subscription : null,
      account: { status: facts.accountStatus },
      wallet: facts.wallet,
      quota: this.quotaState(facts, options.quotaSpent === true),
      locations: this.cache.locations().map((location) => location.code),
      now,
      policy: this.options.policy,
      paygPaidUntil: paid === currentHour ? new Date(currentHour + HOUR_MS) : null,
      seat: this.seatState(facts, options.capSpent === true),
    });
  }

  /** A seat's caps and use as the entitlement function expects them (local cap lease counts as remaining). */
  private seatState(facts: AccessFacts, spent: boolean): SeatState | null {
    const seat = facts.seat;
    if (!seat) return null;
    const { capBytes, maxConnections } = seat;
    if (capBytes === null) return { capBytes, usedBytes: 0, maxConnections };
    if (spent) return { capBytes, usedBytes: capBytes, maxConnections };
    const counter = seat.capCounter;
    if (!counter) return { capBytes, usedBytes: 0, maxConnections };
    const remaining = counter.availableBytes + this.leases.availableBytes(facts.accountId);
    return { capBytes, usedBytes: Math.max(0, capBytes - remaining), maxConnections };
  }

  /**
   * The counter as the entitlement function expects it. Bytes this process
   * holds in its lease are still ours to spend, so they count as remaining
   * (the stored counter already counts them as leased).
   */
  private quotaState(facts: AccessFacts, spent: boolean): QuotaState | null {
    const quota = facts.quota;
    if (!quota) {
      if (!spent) return null;
      const window = facts.subscription
        ? currentQuotaWindow(facts.subscription, this.clock.now())
        : null;
      if (!window) return null;
      return { usedBytes: 1, limitBytes: 0, periodStart: window.start, periodEnd: window.end };
    }
    const remaining = spent
      ? 0
      : quota.availableBytes + this.leases.availableBytes(quotaKeyOf(facts));
    return {
      limitBytes: quota.limitBytes,
      usedBytes: Math.max(0, quota.limitBytes - remaining),
      periodStart: quota.periodStart,
      periodEnd: quota.periodEnd,
    };
  }

  private refuse(
    accountId: string,
    request: AccessRequest,
    location: string | null,
    code: string,
    message: string,
    kind: AccessRefusalKind = 'entitlement',
  ): AccessRefusal {
    this.recordRefusal({
      accountId,
      code,
      message,
      stage: 'refused',
      protocol: request.protocol,
      port: request.port,
      location: location ?? undefined,
      count: 1,
      at: this.clock.now(),
    });
    return refusal(kind, code, message);
  }

  // -------------------------------------------------------------------------
  // Tunnels
  // -------------------------------------------------------------------------

  private liveAccount(accountId: string): LiveAccount {
    let account = this.live.get(accountId);
    if (!account) {
      account = { accountId, tunnels: new Set(), pending: 0, recheckAtMs: 0 };
      this.live.set(accountId, account);
    }
    return account;
  }

  private dropIfIdle(account: LiveAccount): void {
    if (account.tunnels.size === 0 && account.pending === 0) this.live.delete(account.accountId);
  }

  private open(
    request: AccessRequest,
    credential: CachedCredential,
    exit: ExitChoice,
    metering: { metered: boolean; payg: boolean; quotaKey: string; capKey: string | null },
  ): Tunnel {
    const tunnel: Tunnel = {
      accountId: credential.accountId,
      protocol: request.protocol,
      port: request.port,
      exit,
      secretVersion: credential.secretVersion,
      ...metering,
      usage: this.meter.open(credential.accountId, exit.location, request.protocol),
      cutCode: null,
      closed: false,
      cutListeners: [],
    };
    this.liveAccount(tunnel.accountId).tunnels.add(tunnel);
    this.presenceChanged = true;
    this.useLeaseKey(tunnel.quotaKey, 1);
    if (tunnel.capKey !== null) this.useLeaseKey(tunnel.capKey, 1);
    return tunnel;
  }

  private useLeaseKey(key: string, change: 1 | -1): void {
    const users = (this.leaseUsers.get(key) ?? 0) + change;
    if (users > 0) this.leaseUsers.set(key, users);
    else this.leaseUsers.delete(key);
  }

  /** A seat's cap was set, changed or lifted: its live tunnels follow. */
  private setCapKey(tunnel: Tunnel, capKey: string | null): void {
    if (tunnel.capKey === capKey) return;
    if (tunnel.capKey !== null) this.useLeaseKey(tunnel.capKey, -1);
    tunnel.capKey = capKey;
    if (capKey !== null) this.useLeaseKey(capKey, 1);
  }

  private grantFor(tunnel: Tunnel): TunnelGrant {
    return {
      accountId: tunnel.accountId,
      exit: tunnel.exit.route,
      // Without a direction (an older caller), bytes count as `down`, the bulk of most traffic.
      allow: (bytes: number, direction: Direction = 'down') => this.allow(tunnel, bytes, direction),
      waitForAllowance: () => this.waitForAllowance(tunnel),
      onCut: (listener) => {
        if (tunnel.cutCode !== null) listener(tunnel.cutCode);
        else tunnel.cutListeners.push(listener);
      },
      exitFailed: (error) => this.exits.failed(tunnel.exit, error),
      targetRefused: (code, message) =>
        this.recordRefusal({
          accountId: tunnel.accountId,
          code,
          message,
          stage: 'refused',
          protocol: tunnel.protocol,
          port: tunnel.port,
          location: tunnel.exit.location,
          count: 1,
          at: this.clock.now(),
        }),
      close: () => this.close(tunnel),
    };
  }

  /** The hot path: no I/O, no allocation beyond the counters. */
  private allow(tunnel: Tunnel, bytes: number, direction: Direction): number {
    if (tunnel.cutCode !== null || tunnel.closed || !(bytes > 0)) return 0;
    let granted = bytes;
    if (tunnel.metered) {
      const { capKey } = tunnel;
      // A capped seat spends the same bytes from its cap and from the team's pool.
      const capped = capKey === null ? bytes : Math.min(bytes, this.leases.availableBytes(capKey));
      if (capKey !== null && capped === 0) {
        // Nothing left under the cap here: spend() renews it, or reports it spent.
        granted = this.leases.spend(capKey, bytes);
      } else {
        granted = this.leases.spend(tunnel.quotaKey, capped);
        if (capKey !== null && granted > 0) this.leases.spend(capKey, granted);
      }
    }
    if (direction === 'up') tunnel.usage.up += granted;
    else tunnel.usage.down += granted;
    return granted;
  }

  /**
   * After a short allow(): true once the lease was renewed, false when the
   * quota is spent or the tunnel was cut meanwhile. PAYG tunnels are never
   * short unless cut, so there is nothing to wait for.
   */
  private async waitForAllowance(tunnel: Tunnel): Promise<boolean> {
    const open = () => tunnel.cutCode === null && !tunnel.closed;
    if (!open()) return false;
    if (!tunnel.metered) return true;
    const { capKey } = tunnel;
    if (capKey !== null && this.leases.availableBytes(capKey) <= 0) {
      if (!(await this.leases.waitForBytes(capKey, open))) return false;
    }
    const more = await this.leases.waitForBytes(tunnel.quotaKey, open);
    return more && open();
  }

  private close(tunnel: Tunnel): void {
    if (tunnel.closed) return;
    tunnel.closed = true;
    this.meter.close(tunnel.usage);
    this.useLeaseKey(tunnel.quotaKey, -1);
    if (tunnel.capKey !== null) this.useLeaseKey(tunnel.capKey, -1);
    const account = this.live.get(tunnel.accountId);
    if (!account) return;
    account.tunnels.delete(tunnel);
    this.presenceChanged = true;
    this.dropIfIdle(account);
  }

  private cutTunnel(tunnel: Tunnel, code: string, message: string | null): void {
    if (tunnel.cutCode !== null || tunnel.closed) return;
    tunnel.cutCode = code;
    const listeners = tunnel.cutListeners.splice(0);
    for (const listener of listeners) {
      try {
        listener(code);
      } catch (error) {
        this.logger?.error(
          { err: error, accountId: tunnel.accountId },
          'proxy.cut_listener_failed',
        );
      }
    }
    if (message !== null) {
      this.recordRefusal({
        accountId: tunnel.accountId,
        code,
        message,
        stage: 'cut',
        protocol: tunnel.protocol,
        port: tunnel.port,
        location: tunnel.exit.location,
        count: 1,
        at: this.clock.now(),
      });
    }
    // The listener calls close() after closing its sockets; until then the slot stays taken.
  }

  /** Counts a refusal or cut in the metrics and keeps it for the customer's history. */
  private recordRefusal(record: ProxyRefusalRecord): void {
    this.metrics.refusal(record.code, record.stage);
    this.meter.noteRefusal(record);
  }

  private cutAccount(accountId: string, code: string, message: string): void {
    const account = this.live.get(accountId);
    if (!account) return;
    for (const tunnel of [...account.tunnels]) this.cutTunnel(tunnel, code, message);
  }

  /**
   * A lease key ran dry: a team pool (or an account's own counter) cuts every
   * tunnel spending it, a seat's cap cuts that seat's tunnels only.
   */
  private cutForQuota(key: string): void {
    if (!this.leases.isExhausted(key)) return;
    for (const account of [...this.live.values()]) {
      const hit = [...account.tunnels].filter((t) => t.quotaKey === key || t.capKey === key);
      if (hit.length === 0) continue;
      const facts = this.cache.accountFacts(account.accountId);
      const capSpent = hit.some((t) => t.quotaKey !== key);
      const refusal = capSpent
        ? SEAT_CAP_REACHED
        : hit.some((t) => t.payg)
          ? { code: 'WALLET_EMPTY', message: PAYG_DATA_UNPAID_MESSAGE }
          : facts
            ? this.entitlementRefusal(
                this.entitlementsFor(facts, { quotaSpent: true }),
                'QUOTA_EXHAUSTED',
              )
            : {
                code: 'QUOTA_EXHAUSTED',
                message: 'Data limit reached. Upgrade or wait for reset.',
              };
      for (const tunnel of hit) this.cutTunnel(tunnel, refusal.code, refusal.message);
      if (refusal.code === 'WALLET_EMPTY') this.tellWalletEmpty(account.accountId);
    }
  }

  /** The customer hears once per hour that PAYG stopped for want of money. */
  private tellWalletEmpty(accountId: string): void {
    const facts = this.cache.accountFacts(accountId);
    const wallet = facts?.wallet;
    notify(
      {
        accountId,
        event: 'wallet_empty',
        period: hourStart(this.clock.now()).toISOString(),
        data: wallet ? { balanceMinor: wallet.balanceMinor, currency: wallet.currency } : {},
      },
      { clock: this.clock },
    ).catch((error: unknown) =>
      this.logger?.warn({ err: error, accountId }, 'proxy.notify_wallet_empty_failed'),
    );
  }

  // -------------------------------------------------------------------------
  // After each cache refresh: re-check live tunnels, presence, PAYG hours
  // -------------------------------------------------------------------------

  /**
   * Live tunnels are checked again when their account's credential or facts
   * changed, and when a date their entitlements turn on has passed (a
   * period, trial or grace end): not every account at every refresh.
   */
  private afterRefresh(changed: RefreshChanges): void {
    const nowMs = this.clock.now().getTime();
    for (const account of [...this.live.values()]) {
      if (account.tunnels.size === 0) continue;
      if (changed === 'all' || changed.has(account.accountId) || nowMs >= account.recheckAtMs) {
        this.recheckAccount(account);
      }
    }
    this.exchanging ??= this.exchangePresence()
      .catch((error: unknown) => this.logger?.warn({ err: error }, 'proxy.presence_failed'))
      .finally(() => {
        this.exchanging = undefined;
      });
    this.chargeOpenHours();
  }

  private recheckAccount(account: LiveAccount): void {
    const { accountId } = account;
    const credential = this.cache.credentialOf(accountId);
    if (!credential || credential.revoked) {
      this.cutAccount(accountId, 'CREDENTIALS_REVOKED', 'Your proxy credentials were revoked.');
      return;
    }
    if (credential.accessPaused) {
      this.cutAccount(accountId, 'DISCONNECTED', DISCONNECTED_MESSAGE);
      return;
    }
    const facts = this.cache.accountFacts(accountId);
    const entitlements = facts ? this.entitlementsFor(facts) : null;
    account.recheckAtMs = facts ? nextDateOf(facts, this.clock.now().getTime()) : 0;
    for (const tunnel of [...account.tunnels]) {
      if (facts && tunnel.metered && quotaKeyOf(facts) !== tunnel.quotaKey) {
        // Taken off a team (or the team changed): the tunnel's lease is not theirs any more.
        this.cutTunnel(tunnel, SEAT_REMOVED.code, SEAT_REMOVED.message);
        continue;
      }
      if (facts) this.setCapKey(tunnel, capKeyOf(facts));
      if (tunnel.secretVersion < credential.secretVersion) {
        this.cutTunnel(
          tunnel,
          'CREDENTIALS_ROTATED',
          'Your proxy password was changed; reconnect with the new one.',
        );
        continue;
      }
      if (!entitlements) continue;
      const decision = checkConnection(entitlements, {
        protocol: tunnel.protocol,
        port: tunnel.port,
        location: tunnel.exit.location,
        openConnections: 0,
      });
      // Data and credit are enforced by the leases and the hourly charge, which
      // see the counter itself; the cached copy may lag behind a renewal.
      if (!decision.ok && decision.code !== 'QUOTA_EXHAUSTED' && decision.code !== 'WALLET_EMPTY') {
        this.cutTunnel(tunnel, decision.code, decision.message);
      }
    }
  }

  /** Publishes this gateway's open tunnels per account (only a heartbeat when they did not change). */
  private async exchangePresence(): Promise<void> {
    let counts: Map<string, number> | null = null;
    if (this.presenceChanged) {
      this.presenceChanged = false;
      counts = new Map();
      for (const [accountId, account] of this.live) counts.set(accountId, account.tunnels.size);
    }
    const now = this.clock.now();
    const staleMs = this.options.presenceStaleMs ?? 3_000;
    const { others, stored } = await exchangeGatewayPresence(
      this.gatewayId,
      counts,
      { now, freshAfter: new Date(now.getTime() - staleMs) },
      { connection: this.connection },
    );
    this.remoteOpen = others;
    if (!stored) this.presenceChanged = true;
  }

  // -------------------------------------------------------------------------
  // PAYG: each connected hour is charged when it starts
  // -------------------------------------------------------------------------

  private chargeOpenHours(): void {
    const currentHour = hourStart(this.clock.now()).getTime();
    for (const account of this.live.values()) {
      if (account.tunnels.size === 0) continue;
      const tunnel = account.tunnels.values().next().value;
      if (!tunnel?.payg) continue;
      // Data bought in an hour that has ended stays with it: the next bytes
      // come from the new hour's counter (and its purchases).
      if (tunnel.metered) {
        this.leases.release(account.accountId, { periodBefore: new Date(currentHour) });
      }
      if (this.paidHour.get(account.accountId) === currentHour) continue;
      const facts = this.cache.accountFacts(account.accountId);
      if (!facts) continue;
      const entitlements = this.entitlementsFor(facts);
      if (entitlements.paygHourlyRateMinor === null && entitlements.access.on) continue;
      this.ensureHourPaid(account.accountId, facts, entitlements)
        .then((paid) => {
          if (!paid) {
            const words = this.entitlementRefusal(this.entitlementsFor(facts), 'WALLET_EMPTY');
            this.cutAccount(account.accountId, words.code, words.message);
            this.tellWalletEmpty(account.accountId);
          }
        })
        .catch((error: unknown) =>
          this.logger?.warn(
            { err: error, accountId: account.accountId },
            'proxy.payg_charge_failed',
          ),
        );
    }
  }

  /** Charges the current hour once per account (shared by concurrent callers). */
  private ensureHourPaid(
    accountId: string,
    facts: AccessFacts,
    entitlements: Entitlements,
  ): Promise<boolean> {
    const hour = hourStart(this.clock.now());
    if (this.paidHour.get(accountId) === hour.getTime()) return Promise.resolve(true);
    const rate = entitlements.paygHourlyRateMinor;
    const currency = entitlements.paygCurrency ?? facts.subscription?.currency;
    if (rate === null || currency === undefined || currency === null) return Promise.resolve(false);
    const key = `${accountId}:${hour.getTime()}`;
    let charge = this.charging.get(key);
    if (!charge) {
      charge = this.chargeHour(accountId, hour, rate, currency)
        .then(
          (paid) => {
            this.metrics.paygCharge(paid ? 'charged' : 'refused');
            return paid;
          },
          (error: unknown) => {
            this.metrics.paygCharge('error');
            throw error;
          },
        )
        .finally(() => this.charging.delete(key));
      this.charging.set(key, charge);
    }
    return charge;
  }

  /**
   * One debit per account and hour, key `payg:<accountId>:<hour ISO>`, so every
   * gateway charging the same hour makes one ledger entry. A refused key is
   * final in the wallet; if it was refused before a top-up (the balance now
   * covers the hour), the charge is retried under `...:retry<n>`, walking the
   * same sequence on every gateway, so still at most one entry per hour is
   * applied.
   */
  private async chargeHour(
    accountId: string,
    hour: Date,
    rateMinor: number,
    currency: NonNullable<Entitlements['paygCurrency']>,
  ): Promise<boolean> {
    const base = paygHourKey(accountId, hour);
    for (let attempt = 0; attempt < MAX_PAYG_KEY_ATTEMPTS; attempt++) {
      const result = await debit(
        accountId,
        {
          amountMinor: rateMinor,
          currency,
          key: attempt === 0 ? base : `${base}:retry${attempt}`,
          description: `PAYG connected hour from ${hour.toISOString()}`,
        },
        { clock: this.clock, connection: this.connection },
      );
      this.cache.noteWalletBalance(accountId, result.balanceMinor);
      if (result.ok) {
        this.paidHour.set(accountId, hour.getTime());
        return true;
      }
      if (result.balanceMinor < rateMinor) return false;
    }
    return false;
  }

  // -------------------------------------------------------------------------
  // Flushing
  // -------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (!this.started) return;
    this.flushTimer = setTimeout(() => {
      this.flush({ onlyDueSettles: true })
        .catch((error: unknown) => this.logger?.warn({ err: error }, 'proxy.flush_failed'))
        .finally(() => this.scheduleFlush());
    }, this.options.flushMs ?? 1_000);
    this.flushTimer.unref();
  }

  private async flushOnce(options: {
    returnLeases?: boolean;
    endSessions?: boolean;
    onlyDueSettles?: boolean;
  }): Promise<void> {
    const [usage] = await Promise.allSettled([
      this.meter.flush({
        endSessions: options.endSessions,
        onlyDue: options.onlyDueSettles === true,
      }),
      this.leases.settleAll({
        isBusy: (key) => (this.leaseUsers.get(key) ?? 0) > 0,
        returnAll: options.returnLeases === true,
        onlyDue: options.onlyDueSettles === true,
      }),
    ]);
    this.connectionRate.prune();
    this.exits.prune();
    // Lease settling logs its own failures; a usage write that failed is kept and retried.
    if (usage.status === 'rejected') throw toError(usage.reason);
  }

  // -------------------------------------------------------------------------
  // Quota periods
  // -------------------------------------------------------------------------

  /**
   * Opens the account's current quota window when none is open (billing may
   * not have yet): idempotent, the first opener's figures win.
   */
  private async openQuotaPeriodFor(key: string): Promise<boolean> {
    const facts = this.factsForLeaseKey(key);
    const subscription = facts?.subscription;
    const plan = subscription ? this.cache.plan(subscription.planCode) : undefined;
    if (facts && plan?.kind === 'payg') return this.buyPaygDataFor(key);
    if (!facts || !subscription || !plan?.quota) return false;
    const window = currentQuotaWindow(subscription, this.clock.now());
    if (!window) return false;
    // A seat's own key is its cap's counter, for the team's window.
    const capBytes = facts.seat && facts.accountId === key ? facts.seat.capBytes : undefined;
    if (capBytes === null) return false;
    await openQuotaPeriod(key, planWindowRequest(window, plan.quota, capBytes), {
      connection: this.connection,
    });
    return true;
  }

  /**
   * PAYG with per-GB charging: the hour's counter is empty, so buy data from
   * the wallet (core/payg.ts). False, without I/O, for every other account.
   */
  private async buyPaygDataFor(key: string): Promise<boolean> {
    const facts = this.cache.accountFacts(key);
    if (!facts) return false;
    const entitlements = this.entitlementsFor(facts);
    const rate = entitlements.paygPerGbRateMinor;
    const currency = entitlements.paygCurrency;
    if (rate === null || currency === null) return false;
    const bytes = await buyPaygData(
      key,
      {
        now: this.clock.now(),
        perGbRateMinor: rate,
        currency,
        blockBytes: this.options.paygDataBlockBytes,
      },
      { clock: this.clock, connection: this.connection },
    );
    const wallet = await getWallet(key, { connection: this.connection, currency });
    this.cache.noteWalletBalance(key, wallet.balanceMinor);
    return bytes > 0;
  }

  /**
   * Cached facts that say how to open a lease key's counter: the account's own
   * (an account, or a seat's cap), else those of a seat served here whose
   * team owner it is (the owner need not be connected itself).
   */
  private factsForLeaseKey(key: string): AccessFacts | undefined {
    const own = this.cache.accountFacts(key);
    if (own && (!own.seat || own.seat.capBytes !== null)) return own;
    for (const accountId of this.live.keys()) {
      const facts = this.cache.accountFacts(accountId);
      if (facts?.seat?.ownerAccountId === key) return facts;
    }
    return undefined;
  }
}

const DISCONNECTED_MESSAGE = 'Your proxy is disconnected. Press Connect to use it again.';
const PAYG_DATA_UNPAID_MESSAGE =
  'Your wallet cannot pay for more data this hour. Top up your wallet to continue.';
const SEAT_REMOVED = {
  code: 'NO_SUBSCRIPTION',
  message: 'You are no longer a member of this team. Ask your team owner, or choose a plan.',
};

/** Whose quota counter an account's tunnels lease from: its team owner's for a seat. */
function quotaKeyOf(facts: AccessFacts): string {
  return facts.seat?.ownerAccountId ?? facts.accountId;
}

/** A capped seat's own counter (its cap), else null. */
function capKeyOf(facts: AccessFacts): string | null {
  return facts.seat && facts.seat.capBytes !== null ? facts.accountId : null;
}
const MAX_PAYG_KEY_ATTEMPTS = 5;

function refusal(kind: AccessRefusalKind, code: string, message: string): AccessRefusal {
  return { ok: false, kind, code, message };
}

function tooManyAttempts(): AccessRefusal {
  return refusal(
    'rate_limited',
    'TOO_MANY_ATTEMPTS',
    'Too many failed proxy logins. Wait a little and check your username and password.',
  );
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
