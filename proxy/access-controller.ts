/**
 * The access layer behind every tunnel (proxy/access.ts is the seam with the
 * wire protocols). Per connection, from memory:
 *
 *   authorize(request)
 *     parse the username options -> source-IP backoff -> check the secret
 *     (constant time, SHA-256) -> username backoff on failure -> paused?
 *     -> per-account connection rate -> computeEntitlements + checkConnection
 *        (protocol, port, location, open connections on every gateway)
 *     -> choose an exit -> PAYG: the current hour is charged (first tunnel of
 *        the hour only) / quota: a local lease holds bytes (first tunnel only)
 *     -> a TunnelGrant
 *   grant.allow(n)   spends the local lease synchronously, counts bytes
 *   grant.close()    frees the slot; connected time and the session move on
 *
 * In the background: the credential cache refreshes every ~500 ms and, after
 * each refresh, live tunnels are re-checked (revoked, rotated, disconnected,
 * entitlements changed), presence is exchanged with the other gateways, and
 * PAYG hours are charged as they start; every ~1 s usage is flushed (hourly
 * buckets, sessions, refusals, failed logins) and leases are settled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Types, type Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import {
  checkConnection,
  computeEntitlements,
  type Entitlements,
  type QuotaState,
} from '../core/entitlements.js';
import { markExitHealth, type ExitView, type LocationView } from '../core/locations.js';
import {
  parseProxyUsername,
  requestNewExit,
  setProxyAccess,
  type AccessFacts,
} from '../core/proxy-credentials.js';
import { openQuotaPeriod } from '../core/quota.js';
import { currentQuotaWindow } from '../core/subscriptions.js';
import {
  ALL_LOCATIONS,
  addToUsageBuckets,
  exchangeGatewayPresence,
  hourStart,
  recordProxyAuthFailures,
  recordProxyRefusals,
  removeGatewayPresence,
  saveUsageSessions,
  type ProxyAuthFailureRecord,
  type ProxyRefusalRecord,
  type UsageBucketIncrement,
  type UsageSessionUpdate,
} from '../core/usage.js';
import { debit } from '../core/wallet.js';
import type { ProxyAuthFailureReason } from '../models/proxy-auth-failure.js';
import type {
  AccessController,
  AccessDecision,
  AccessRefusal,
  AccessRefusalKind,
  AccessRequest,
  ExitRoute,
  Protocol,
  TunnelGrant,
} from './access.js';
import { CredentialCache, type CachedCredential } from './credential-cache.js';
import { LeaseManager } from './leases.js';
import {
  ConnectionRateLimiter,
  FailureBackoff,
  type ConnectionRateLimiterOptions,
  type FailureBackoffOptions,
} from './rate-limit.js';

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
  policy: { httpsOnlyPorts: readonly number[]; blockedPorts: readonly number[] };
  /** This process's id in the presence collection and usage sessions (default: random). */
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
  leases?: { minLeaseBytes?: number; maxLeaseBytes?: number; idleReturnMs?: number };
  authBackoff?: Omit<FailureBackoffOptions, 'clock'>;
  connectionRate?: Omit<ConnectionRateLimiterOptions, 'clock'>;
  /** Real time for the refresh bookkeeping (default the system clock). */
  timerClock?: Clock;
}

type Direction = 'up' | 'down';

interface Tunnel {
  accountId: string;
  protocol: Protocol;
  port: number;
  location: string;
  exit: ExitRoute;
  secretVersion: number;
  /** Spends the quota lease (false: PAYG, billed by the hour). */
  metered: boolean;
  /** Bytes not yet flushed to buckets and the session. */
  pendingUp: number;
  pendingDown: number;
  cutCode: string | null;
  closed: boolean;
  cutListeners: ((code: string) => void)[];
}

interface UsageSessionState {
  id: string;
  startedAt: Date;
  endedAt: Date | null;
  bytesUp: number;
  bytesDown: number;
  connections: number;
  locations: Set<string>;
  protocols: Set<Protocol>;
}

interface LiveAccount {
  accountId: string;
  tunnels: Set<Tunnel>;
  /** Authorizations in flight that hold a connection slot. */
  pending: number;
  /** Clock ms from which connected time is still to be booked; null with no open tunnel. */
  connectedSinceMs: number | null;
  lastClosedMs: number;
  session: UsageSessionState | null;
  exitEpoch: number;
}

interface StickyExit {
  exitKey: string;
  expiresAtMs: number;
}

interface Candidate {
  location: string;
  exit: ExitView;
}

export class GatewayAccessController implements AccessController {
  readonly gatewayId: string;
  private readonly clock: Clock;
  private readonly connection: Connection | undefined;
  private readonly logger: Logger | undefined;
  private readonly options: AccessControllerOptions;
  private readonly cache: CredentialCache;
  private readonly leases: LeaseManager;
  private readonly ipBackoff: FailureBackoff;
  private readonly userBackoff: FailureBackoff;
  private readonly connectionRate: ConnectionRateLimiter;

  private readonly live = new Map<string, LiveAccount>();
  /** Other gateways' open tunnels per account, from the last presence exchange. */
  private remoteOpen = new Map<string, number>();
  /** PAYG: the hour (clock ms) each account has paid for, and charges in flight. */
  private readonly paidHour = new Map<string, number>();
  private readonly charging = new Map<string, Promise<boolean>>();
  private readonly sticky = new Map<string, StickyExit>();
  /** Exits this process saw fail: key -> clock ms until which they are skipped. */
  private readonly failedExits = new Map<string, number>();
  private rotationCounter = 0;

  private buckets = new Map<string, UsageBucketIncrement>();
  private refusals: ProxyRefusalRecord[] = [];
  private lastRefusal = new Map<string, { record: ProxyRefusalRecord; atMs: number }>();
  private authFailures: ProxyAuthFailureRecord[] = [];
  private sessionUpdates: UsageSessionUpdate[] = [];

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
    this.cache = new CredentialCache({
      clock: options.clock,
      connection: options.connection,
      logger: options.logger,
      refreshMs: options.refreshMs,
      timerClock: options.timerClock,
      busyAccounts: () => this.live.keys(),
    });
    this.leases = new LeaseManager({
      clock: options.clock,
      connection: options.connection,
      logger: options.logger,
      ...options.leases,
      openPeriod: (accountId) => this.openQuotaPeriodFor(accountId),
      onExhausted: (accountId) => queueMicrotask(() => this.cutForQuota(accountId)),
    });
    this.ipBackoff = new FailureBackoff({ clock: options.clock, ...options.authBackoff });
    this.userBackoff = new FailureBackoff({ clock: options.clock, ...options.authBackoff });
    this.connectionRate = new ConnectionRateLimiter({
      clock: options.clock,
      ...options.connectionRate,
    });
    this.cache.onRefresh(() => this.afterRefresh());
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
    await requestNewExit(accountId, { connection: this.connection });
    this.forgetStickyExits(accountId);
    await this.cache.refresh();
  }

  /** Books usage, refusals and failed logins now and settles leases (also runs every flushMs). */
  flush(options: { returnLeases?: boolean; endSessions?: boolean } = {}): Promise<void> {
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
    const ipKey = `ip:${request.sourceIp}`;
    if (this.ipBackoff.blockedForMs(ipKey) > 0) {
      if (this.ipBackoff.noteRefusedWhileBlocked(ipKey)) {
        this.noteAuthFailure(
          request,
          parsed.ok ? parsed.username : request.username,
          'TOO_MANY_ATTEMPTS',
        );
      }
      return tooManyAttempts();
    }
    if (!parsed.ok) {
      this.ipBackoff.fail(ipKey);
      this.noteAuthFailure(request, request.username, 'MALFORMED_USERNAME');
      return refusal('authentication', 'BAD_CREDENTIALS', `Proxy login failed: ${parsed.message}`);
    }
    const userKey = `user:${parsed.username}`;
    const { credential, known } = this.cache.verify(parsed.username, request.password);
    if (!credential || credential.revoked) {
      const reason = credential ? 'REVOKED' : known ? 'BAD_SECRET' : 'UNKNOWN_USER';
      return this.refuseLogin(request, parsed.username, { ipKey, userKey, reason });
    }
    // The right secret gets in even while others' failures hold the username in
    // backoff: with 256-bit secrets the backoff is about load, and a stranger
    // must not be able to lock a customer out.
    this.userBackoff.succeed(userKey);
    return this.authorizeAccount(request, credential, parsed);
  }

  private refuseLogin(
    request: AccessRequest,
    username: string,
    failure: { ipKey: string; userKey: string; reason: ProxyAuthFailureReason },
  ): AccessDecision {
    const { ipKey, userKey } = failure;
    if (this.userBackoff.blockedForMs(userKey) > 0) {
      if (this.userBackoff.noteRefusedWhileBlocked(userKey)) {
        this.noteAuthFailure(request, username, 'TOO_MANY_ATTEMPTS', this.accountIdOf(username));
      }
      this.ipBackoff.fail(ipKey);
      return tooManyAttempts();
    }
    this.ipBackoff.fail(ipKey);
    this.userBackoff.fail(userKey);
    this.noteAuthFailure(request, username, failure.reason, this.accountIdOf(username));
    return refusal(
      'authentication',
      'BAD_CREDENTIALS',
      'Proxy login failed: wrong username or password.',
    );
  }

  private accountIdOf(username: string): string | undefined {
    return this.cache.findByUsername(username)?.accountId;
  }

  private async authorizeAccount(
    request: AccessRequest,
    credential: CachedCredential,
    parsed: { location: string | null; sessionId: string | null },
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
    const openConnections =
      account.tunnels.size + account.pending + (this.remoteOpen.get(accountId) ?? 0);
    account.pending += 1;
    try {
      return await this.admit(request, credential, parsed, facts, openConnections);
    } finally {
      account.pending -= 1;
      this.dropIfIdle(account);
    }
  }

  private async admit(
    request: AccessRequest,
    credential: CachedCredential,
    parsed: { location: string | null; sessionId: string | null },
    facts: AccessFacts,
    openConnections: number,
  ): Promise<AccessDecision> {
    const { accountId } = credential;
    const entitlements = this.entitlementsFor(facts);
    const decision = checkConnection(entitlements, {
      protocol: request.protocol,
      port: request.port,
      location: parsed.location,
      openConnections,
    });
    if (!decision.ok) {
      return this.refuse(accountId, request, parsed.location, decision.code, decision.message);
    }
    const chosen = this.chooseExit(accountId, entitlements, parsed, credential.exitEpoch);
    if (!chosen) {
      return this.refuse(
        accountId,
        request,
        parsed.location,
        'LOCATION_UNAVAILABLE',
        'No exit is available in that location right now. Try another location or try again later.',
      );
    }
    const metering = await this.secureMetering(accountId, facts, entitlements);
    if (metering !== true) {
      return this.refuse(accountId, request, chosen.location, metering.code, metering.message);
    }
    // The account may have been disconnected or rotated while we waited.
    const current = this.cache.credentialOf(accountId);
    if (!current || current.revoked || current.accessPaused) {
      return this.refuse(accountId, request, chosen.location, 'DISCONNECTED', DISCONNECTED_MESSAGE);
    }
    const tunnel: Tunnel = {
      accountId,
      protocol: request.protocol,
      port: request.port,
      location: chosen.location,
      exit: chosen.route,
      secretVersion: credential.secretVersion,
      metered: entitlements.remainingBytes !== null,
      pendingUp: 0,
      pendingDown: 0,
      cutCode: null,
      closed: false,
      cutListeners: [],
    };
    this.open(tunnel);
    return { ok: true, grant: this.grantFor(tunnel) };
  }

  /**
   * Quota plans: a local lease holds bytes. PAYG: the current hour is paid.
   * Only the first tunnel of an account (or of an hour) waits on the database.
   */
  private async secureMetering(
    accountId: string,
    facts: AccessFacts,
    entitlements: Entitlements,
  ): Promise<true | { code: string; message: string }> {
    if (entitlements.paygHourlyRateMinor !== null) {
      if (await this.ensureHourPaid(accountId, facts, entitlements)) return true;
      return this.entitlementRefusal(this.entitlementsFor(facts), 'WALLET_EMPTY');
    }
    if (entitlements.remainingBytes === null) return true;
    if (this.leases.availableBytes(accountId) > 0) {
      this.leases.touch(accountId);
      return true;
    }
    if ((await this.leases.ensure(accountId)) > 0) return true;
    return this.entitlementRefusal(
      this.entitlementsFor(facts, { quotaSpent: true }),
      'QUOTA_EXHAUSTED',
    );
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
    options: { quotaSpent?: boolean } = {},
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
    });
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
      : quota.availableBytes + this.leases.availableBytes(facts.accountId);
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
    this.noteRefusal({
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
      account = {
        accountId,
        tunnels: new Set(),
        pending: 0,
        connectedSinceMs: null,
        lastClosedMs: 0,
        session: null,
        exitEpoch: this.cache.credentialOf(accountId)?.exitEpoch ?? 0,
      };
      this.live.set(accountId, account);
    }
    return account;
  }

  private dropIfIdle(account: LiveAccount): void {
    if (account.tunnels.size === 0 && account.pending === 0 && account.session === null) {
      this.live.delete(account.accountId);
    }
  }

  private open(tunnel: Tunnel): void {
    const account = this.liveAccount(tunnel.accountId);
    const nowMs = this.clock.now().getTime();
    if (account.tunnels.size === 0) account.connectedSinceMs = nowMs;
    account.tunnels.add(tunnel);
    account.session ??= {
      id: new Types.ObjectId().toHexString(),
      startedAt: new Date(nowMs),
      endedAt: null,
      bytesUp: 0,
      bytesDown: 0,
      connections: 0,
      locations: new Set(),
      protocols: new Set(),
    };
    account.session.endedAt = null;
    account.session.connections += 1;
    account.session.locations.add(tunnel.location);
    account.session.protocols.add(tunnel.protocol);
    this.addToBucket(tunnel.accountId, new Date(nowMs), tunnel.location, { connections: 1 });
  }

  private grantFor(tunnel: Tunnel): TunnelGrant {
    return {
      accountId: tunnel.accountId,
      exit: tunnel.exit,
      allow: (bytes: number, direction: Direction = 'down') => this.allow(tunnel, bytes, direction),
      onCut: (listener) => {
        if (tunnel.cutCode !== null) listener(tunnel.cutCode);
        else tunnel.cutListeners.push(listener);
      },
      exitFailed: (error) => this.exitFailed(tunnel, error),
      close: () => this.close(tunnel),
    };
  }

  /** The hot path: no I/O, no allocation beyond the counters. */
  private allow(tunnel: Tunnel, bytes: number, direction: Direction): number {
    if (tunnel.cutCode !== null || tunnel.closed || !(bytes > 0)) return 0;
    const granted = tunnel.metered ? this.leases.spend(tunnel.accountId, bytes) : bytes;
    if (direction === 'up') tunnel.pendingUp += granted;
    else tunnel.pendingDown += granted;
    return granted;
  }

  private close(tunnel: Tunnel): void {
    if (tunnel.closed) return;
    tunnel.closed = true;
    const account = this.live.get(tunnel.accountId);
    if (!account) return;
    const now = this.clock.now();
    this.collectTunnelBytes(account, tunnel, now);
    account.tunnels.delete(tunnel);
    if (account.tunnels.size === 0) {
      this.bookConnectedTime(account, now.getTime());
      account.connectedSinceMs = null;
      account.lastClosedMs = now.getTime();
      if (account.session) account.session.endedAt = now;
    }
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
      this.noteRefusal({
        accountId: tunnel.accountId,
        code,
        message,
        stage: 'cut',
        protocol: tunnel.protocol,
        port: tunnel.port,
        location: tunnel.location,
        count: 1,
        at: this.clock.now(),
      });
    }
    // The listener calls close() after closing its sockets; until then the slot stays taken.
  }

  private cutAccount(accountId: string, code: string, message: string): void {
    const account = this.live.get(accountId);
    if (!account) return;
    for (const tunnel of [...account.tunnels]) this.cutTunnel(tunnel, code, message);
  }

  private cutForQuota(accountId: string): void {
    if (!this.leases.isExhausted(accountId)) return;
    const facts = this.cache.accountFacts(accountId);
    const refusal = facts
      ? this.entitlementRefusal(
          this.entitlementsFor(facts, { quotaSpent: true }),
          'QUOTA_EXHAUSTED',
        )
      : { code: 'QUOTA_EXHAUSTED', message: 'Data limit reached. Upgrade or wait for reset.' };
    this.cutAccount(accountId, refusal.code, refusal.message);
  }

  // -------------------------------------------------------------------------
  // After each cache refresh: re-check live tunnels, presence, PAYG hours
  // -------------------------------------------------------------------------

  private afterRefresh(): void {
    for (const account of [...this.live.values()]) {
      if (account.tunnels.size > 0) this.recheckAccount(account);
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
    if (credential.exitEpoch !== account.exitEpoch) {
      account.exitEpoch = credential.exitEpoch;
      this.forgetStickyExits(accountId);
    }
    const facts = this.cache.accountFacts(accountId);
    const entitlements = facts ? this.entitlementsFor(facts) : null;
    for (const tunnel of [...account.tunnels]) {
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
        location: tunnel.location,
        openConnections: 0,
      });
      // Data and credit are enforced by the leases and the hourly charge, which
      // see the counter itself; the cached copy may lag behind a renewal.
      if (!decision.ok && decision.code !== 'QUOTA_EXHAUSTED' && decision.code !== 'WALLET_EMPTY') {
        this.cutTunnel(tunnel, decision.code, decision.message);
      }
    }
  }

  private async exchangePresence(): Promise<void> {
    const counts = new Map<string, number>();
    for (const [accountId, account] of this.live) counts.set(accountId, account.tunnels.size);
    const now = this.clock.now();
    const staleMs = this.options.presenceStaleMs ?? 3_000;
    this.remoteOpen = await exchangeGatewayPresence(
      this.gatewayId,
      counts,
      { now, freshAfter: new Date(now.getTime() - staleMs) },
      { connection: this.connection },
    );
  }

  // -------------------------------------------------------------------------
  // PAYG: each connected hour is charged when it starts
  // -------------------------------------------------------------------------

  private chargeOpenHours(): void {
    const currentHour = hourStart(this.clock.now()).getTime();
    for (const account of this.live.values()) {
      if (account.tunnels.size === 0) continue;
      const tunnel = account.tunnels.values().next().value;
      if (!tunnel || tunnel.metered) continue;
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
      charge = this.chargeHour(accountId, hour, rate, currency).finally(() =>
        this.charging.delete(key),
      );
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
    const base = `payg:${accountId}:${hour.toISOString()}`;
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
  // Exits
  // -------------------------------------------------------------------------

  private chooseExit(
    accountId: string,
    entitlements: Entitlements,
    parsed: { location: string | null; sessionId: string | null },
    exitEpoch: number,
  ): { location: string; route: ExitRoute } | null {
    const wanted = parsed.location;
    const locations = this.cache
      .locations()
      .filter((location) =>
        wanted !== null
          ? location.code === wanted
          : entitlements.locations.allowed.includes(location.code),
      );
    const candidates = this.healthyCandidates(locations);
    if (candidates.length === 0) return null;
    const { features } = entitlements;
    const nowMs = this.clock.now().getTime();
    let picked: Candidate | undefined;
    if (features.stickySessions && parsed.sessionId !== null) {
      picked = this.stickyPick(accountId, parsed.sessionId, wanted, candidates, exitEpoch, nowMs);
    } else if (features.rotation) {
      this.rotationCounter = (this.rotationCounter + 1) % 1_000_000_007;
      picked = candidates[this.rotationCounter % candidates.length];
    } else {
      // No rotation in the plan: one exit per account, the same on every gateway.
      picked = candidates[stableIndex(`${accountId}|${exitEpoch}`, candidates.length)];
    }
    if (!picked) return null;
    return { location: picked.location, route: toRoute(picked) };
  }

  private stickyPick(
    accountId: string,
    sessionId: string,
    location: string | null,
    candidates: readonly Candidate[],
    exitEpoch: number,
    nowMs: number,
  ): Candidate | undefined {
    const key = `${accountId}|${location ?? ''}|${sessionId}`;
    const remembered = this.sticky.get(key);
    if (remembered && remembered.expiresAtMs > nowMs) {
      const still = candidates.find(
        (c) => exitKey(c.location, c.exit.exitId) === remembered.exitKey,
      );
      if (still) return still;
    }
    // First use, expired, or the exit went away: the same choice on every
    // gateway within one lifetime window.
    const lifetimeMs = this.options.stickyLifetimeMs ?? 600_000;
    const window = Math.floor(nowMs / lifetimeMs);
    const picked = candidates[stableIndex(`${key}|${exitEpoch}|${window}`, candidates.length)];
    if (picked) {
      this.sticky.set(key, {
        exitKey: exitKey(picked.location, picked.exit.exitId),
        expiresAtMs: nowMs + lifetimeMs,
      });
    }
    return picked;
  }

  /** Exits not known to be failing; if every one is, all of them (better a retry than a refusal). */
  private healthyCandidates(locations: readonly LocationView[]): Candidate[] {
    const nowMs = this.clock.now().getTime();
    const all: Candidate[] = locations.flatMap((location) =>
      location.exits.map((exit) => ({ location: location.code, exit })),
    );
    const healthy = all.filter(({ location, exit }) => {
      const localUntil = this.failedExits.get(exitKey(location, exit.exitId)) ?? 0;
      if (localUntil > nowMs) return false;
      return exit.healthy || (exit.retryAfter !== undefined && exit.retryAfter.getTime() <= nowMs);
    });
    return healthy.length > 0 ? healthy : all;
  }

  private exitFailed(tunnel: Tunnel, error: Error): void {
    const exitId = tunnel.exit.id.slice(tunnel.location.length + 1);
    const retryMs = this.options.exitRetryMs ?? 30_000;
    this.failedExits.set(tunnel.exit.id, this.clock.now().getTime() + retryMs);
    this.forgetStickyExitsUsing(tunnel.exit.id);
    markExitHealth(
      tunnel.location,
      exitId,
      { healthy: false, error: error.message, retryMs },
      { clock: this.clock, connection: this.connection },
    ).catch((failure: unknown) =>
      this.logger?.warn({ err: failure, exitId: tunnel.exit.id }, 'proxy.exit_health_failed'),
    );
  }

  private forgetStickyExits(accountId: string): void {
    for (const key of this.sticky.keys()) {
      if (key.startsWith(`${accountId}|`)) this.sticky.delete(key);
    }
  }

  private forgetStickyExitsUsing(key: string): void {
    for (const [stickyKey, sticky] of this.sticky) {
      if (sticky.exitKey === key) this.sticky.delete(stickyKey);
    }
  }

  // -------------------------------------------------------------------------
  // Usage: buckets, connected time, sessions, refusals, failed logins
  // -------------------------------------------------------------------------

  private addToBucket(
    accountId: string,
    at: Date,
    location: string,
    increment: Partial<
      Pick<UsageBucketIncrement, 'bytesUp' | 'bytesDown' | 'connectedSeconds' | 'connections'>
    >,
  ): void {
    const hour = hourStart(at);
    const key = `${accountId}|${hour.getTime()}|${location}`;
    const row = this.buckets.get(key) ?? { accountId, hourStart: hour, location };
    row.bytesUp = (row.bytesUp ?? 0) + (increment.bytesUp ?? 0);
    row.bytesDown = (row.bytesDown ?? 0) + (increment.bytesDown ?? 0);
    row.connectedSeconds = (row.connectedSeconds ?? 0) + (increment.connectedSeconds ?? 0);
    row.connections = (row.connections ?? 0) + (increment.connections ?? 0);
    this.buckets.set(key, row);
  }

  private collectTunnelBytes(account: LiveAccount, tunnel: Tunnel, now: Date): void {
    const up = tunnel.pendingUp;
    const down = tunnel.pendingDown;
    if (up === 0 && down === 0) return;
    tunnel.pendingUp = 0;
    tunnel.pendingDown = 0;
    this.addToBucket(account.accountId, now, tunnel.location, { bytesUp: up, bytesDown: down });
    if (account.session) {
      account.session.bytesUp += up;
      account.session.bytesDown += down;
    }
  }

  /** Books connected time from `connectedSinceMs` to `untilMs`, split at hour boundaries. */
  private bookConnectedTime(account: LiveAccount, untilMs: number): void {
    let fromMs = account.connectedSinceMs;
    if (fromMs === null || untilMs <= fromMs) return;
    while (fromMs < untilMs) {
      const hourEndMs = hourStart(new Date(fromMs)).getTime() + HOUR_MS;
      const endMs = Math.min(untilMs, hourEndMs);
      this.addToBucket(account.accountId, new Date(fromMs), ALL_LOCATIONS, {
        connectedSeconds: (endMs - fromMs) / 1_000,
      });
      fromMs = endMs;
    }
    account.connectedSinceMs = untilMs;
  }

  /** Moves each account's counters into the pending writes; ends sessions idle past the gap. */
  private collectUsage(endSessions: boolean): void {
    const now = this.clock.now();
    const nowMs = now.getTime();
    const gapMs = this.options.sessionGapMs ?? 30_000;
    for (const account of [...this.live.values()]) {
      for (const tunnel of account.tunnels) this.collectTunnelBytes(account, tunnel, now);
      if (account.tunnels.size > 0) this.bookConnectedTime(account, nowMs);
      const session = account.session;
      if (!session) continue;
      const over =
        account.tunnels.size === 0 && (endSessions || nowMs - account.lastClosedMs >= gapMs);
      this.sessionUpdates.push({
        sessionId: session.id,
        accountId: account.accountId,
        gatewayId: this.gatewayId,
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
      if (over) {
        account.session = null;
        this.dropIfIdle(account);
      }
    }
  }

  private noteRefusal(record: ProxyRefusalRecord): void {
    // The same reason again within a few seconds is one record with a count,
    // so a client retrying in a loop does not flood the history.
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

  private noteAuthFailure(
    request: AccessRequest,
    username: string,
    reason: ProxyAuthFailureReason,
    accountId?: string,
  ): void {
    if (this.authFailures.length >= MAX_PENDING_AUTH_FAILURES) return;
    this.authFailures.push({
      username: username.toLowerCase(),
      accountId,
      sourceIp: request.sourceIp,
      reason,
      attempts: 1,
      at: this.clock.now(),
    });
  }

  private scheduleFlush(): void {
    if (!this.started) return;
    this.flushTimer = setTimeout(() => {
      this.flush()
        .catch((error: unknown) => this.logger?.warn({ err: error }, 'proxy.flush_failed'))
        .finally(() => this.scheduleFlush());
    }, this.options.flushMs ?? 1_000);
    this.flushTimer.unref();
  }

  private async flushOnce(options: {
    returnLeases?: boolean;
    endSessions?: boolean;
  }): Promise<void> {
    this.collectUsage(options.endSessions === true);
    const buckets = [...this.buckets.values()];
    const sessions = this.sessionUpdates;
    const refusals = this.refusals;
    const authFailures = this.authFailures;
    this.buckets = new Map();
    this.sessionUpdates = [];
    this.refusals = [];
    this.lastRefusal = new Map();
    this.authFailures = [];
    const db = { connection: this.connection };
    const results = await Promise.allSettled([
      addToUsageBuckets(buckets, db),
      saveUsageSessions(sessions, db),
      recordProxyRefusals(refusals, db),
      recordProxyAuthFailures(authFailures, db),
      this.leases.settleAll({
        isBusy: (accountId) => this.openTunnels(accountId) > 0,
        returnAll: options.returnLeases === true,
      }),
    ]);
    this.requeueFailed(results, { buckets, sessions, refusals, authFailures });
    this.connectionRate.prune();
  }

  /** A failed write is kept for the next flush (increments, so nothing is counted twice). */
  private requeueFailed(
    results: PromiseSettledResult<void>[],
    batch: {
      buckets: UsageBucketIncrement[];
      sessions: UsageSessionUpdate[];
      refusals: ProxyRefusalRecord[];
      authFailures: ProxyAuthFailureRecord[];
    },
  ): void {
    const [buckets, sessions, refusals, authFailures, leases] = results;
    if (buckets?.status === 'rejected') {
      for (const row of batch.buckets)
        this.addToBucket(row.accountId, row.hourStart, row.location, row);
    }
    if (sessions?.status === 'rejected') this.sessionUpdates.unshift(...batch.sessions);
    if (refusals?.status === 'rejected') this.refusals.unshift(...batch.refusals);
    if (authFailures?.status === 'rejected') this.authFailures.unshift(...batch.authFailures);
    const failed = [buckets, sessions, refusals, authFailures, leases].filter(
      (result) => result?.status === 'rejected',
    );
    for (const result of failed) {
      if (result?.status === 'rejected') {
        this.logger?.warn({ err: result.reason as unknown }, 'proxy.flush_write_failed');
      }
    }
    if (failed.length > 0) {
      throw new Error(`usage flush: ${failed.length} write(s) failed; kept for the next flush`);
    }
  }

  // -------------------------------------------------------------------------
  // Quota periods
  // -------------------------------------------------------------------------

  /**
   * Opens the account's current quota window when none is open (billing may
   * not have yet): idempotent, the first opener's figures win.
   */
  private async openQuotaPeriodFor(accountId: string): Promise<boolean> {
    const facts = this.cache.accountFacts(accountId);
    const subscription = facts?.subscription;
    const plan = subscription ? this.cache.plan(subscription.planCode) : undefined;
    if (!subscription || !plan?.quota) return false;
    const window = currentQuotaWindow(subscription, this.clock.now());
    if (!window) return false;
    await openQuotaPeriod(
      accountId,
      { periodStart: window.start, periodEnd: window.end, limitBytes: plan.quota.bytes },
      { connection: this.connection },
    );
    return true;
  }
}

const DISCONNECTED_MESSAGE = 'Your proxy is disconnected. Press Connect to use it again.';
const MAX_PAYG_KEY_ATTEMPTS = 5;
const REFUSAL_FOLD_MS = 5_000;
const MAX_PENDING_AUTH_FAILURES = 10_000;

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

function exitKey(location: string, exitId: string): string {
  return `${location}:${exitId}`;
}

function toRoute({ location, exit }: Candidate): ExitRoute {
  const id = exitKey(location, exit.exitId);
  if (exit.kind === 'direct' || exit.host === undefined || exit.port === undefined) {
    return { kind: 'direct', id };
  }
  return {
    kind: exit.kind,
    id,
    host: exit.host,
    port: exit.port,
    ...(exit.username !== undefined ? { username: exit.username } : {}),
    ...(exit.password !== undefined ? { password: exit.password } : {}),
  };
}

/** An index in [0, length) that every gateway computes alike for the same text. */
function stableIndex(text: string, length: number): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) % length;
}
