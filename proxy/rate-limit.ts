/**
 * In-memory limits for one gateway process:
 *
 * - FailureBackoff: failed logins per key (a source IP, a username). After
 *   `freeFailures` failures within `windowMs`, each further failure blocks the
 *   key for twice as long as the last, from `baseBlockMs` up to `maxBlockMs`.
 * - ConnectionRateLimiter: new tunnels per account (token bucket), so one
 *   account cannot spend the gateway's connection budget for everyone.
 *
 * Per process on purpose: a database round trip per failed login would make
 * the limiter the cheapest way to load the database. An attacker spreading
 * over N gateways gets N times the budget, which the backoff still keeps small.
 */
import type { Clock } from '../lib/clock.js';

export interface FailureBackoffOptions {
  clock: Clock;
  /** Failures allowed in a window before blocking starts (default 5). */
  freeFailures?: number;
  /** A key's failures are forgotten after this long without one (default 10 min). */
  windowMs?: number;
  /** First block (default 1 s), doubled by each further failure. */
  baseBlockMs?: number;
  /** Longest block (default 15 min). */
  maxBlockMs?: number;
  /** Keys kept at most; the oldest are dropped beyond it (default 100,000). */
  maxKeys?: number;
}

interface FailureState {
  failures: number;
  lastFailureMs: number;
  blockedUntilMs: number;
  /** Attempts refused while blocked since the last report. */
  refusedWhileBlocked: number;
}

export class FailureBackoff {
  private readonly clock: Clock;
  private readonly freeFailures: number;
  private readonly windowMs: number;
  private readonly baseBlockMs: number;
  private readonly maxBlockMs: number;
  private readonly maxKeys: number;
  private readonly states = new Map<string, FailureState>();

  constructor(options: FailureBackoffOptions) {
    this.clock = options.clock;
    this.freeFailures = options.freeFailures ?? 5;
    this.windowMs = options.windowMs ?? 600_000;
    this.baseBlockMs = options.baseBlockMs ?? 1_000;
    this.maxBlockMs = options.maxBlockMs ?? 900_000;
    this.maxKeys = options.maxKeys ?? 100_000;
  }

  /** How long the key is still blocked, in ms (0 = not blocked). */
  blockedForMs(key: string): number {
    const state = this.states.get(key);
    if (!state) return 0;
    return Math.max(0, state.blockedUntilMs - this.clock.now().getTime());
  }

  /**
   * Counts a refused attempt while blocked; returns true for the first one of
   * a block, so the caller records one failed-login entry per block, not one
   * per attempt.
   */
  noteRefusedWhileBlocked(key: string): boolean {
    const state = this.states.get(key);
    if (!state) return false;
    state.refusedWhileBlocked += 1;
    return state.refusedWhileBlocked === 1;
  }

  /** Records a failure; returns the new block in ms (0 while still within the free failures). */
  fail(key: string): number {
    const nowMs = this.clock.now().getTime();
    let state = this.states.get(key);
    if (!state || nowMs - state.lastFailureMs > this.windowMs) {
      state = { failures: 0, lastFailureMs: nowMs, blockedUntilMs: 0, refusedWhileBlocked: 0 };
      this.remember(key, state);
    }
    state.failures += 1;
    state.lastFailureMs = nowMs;
    const over = state.failures - this.freeFailures;
    if (over <= 0) return 0;
    const blockMs = Math.min(this.maxBlockMs, this.baseBlockMs * 2 ** Math.min(over - 1, 30));
    state.blockedUntilMs = nowMs + blockMs;
    state.refusedWhileBlocked = 0;
    return blockMs;
  }

  /** A successful login clears the key's failures. */
  succeed(key: string): void {
    this.states.delete(key);
  }

  private remember(key: string, state: FailureState): void {
    this.states.delete(key);
    this.states.set(key, state);
    // Maps keep insertion order: the first keys are the least recently failed.
    while (this.states.size > this.maxKeys) {
      const oldest = this.states.keys().next();
      if (oldest.done === true) break;
      this.states.delete(oldest.value);
    }
  }
}

export interface ConnectionRateLimiterOptions {
  clock: Clock;
  /** New tunnels per second per account, sustained (default 100). */
  perSecond?: number;
  /** Burst allowed above the rate (default 200). */
  burst?: number;
}

interface Bucket {
  tokens: number;
  refilledAtMs: number;
}

export class ConnectionRateLimiter {
  private readonly clock: Clock;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: ConnectionRateLimiterOptions) {
    this.clock = options.clock;
    this.perSecond = options.perSecond ?? 100;
    this.burst = options.burst ?? 200;
  }

  /** Takes one new-tunnel token for the account; false when it is over its rate. */
  take(accountId: string): boolean {
    const nowMs = this.clock.now().getTime();
    const bucket = this.buckets.get(accountId) ?? { tokens: this.burst, refilledAtMs: nowMs };
    const elapsedMs = Math.max(0, nowMs - bucket.refilledAtMs);
    bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsedMs * this.perSecond) / 1_000);
    bucket.refilledAtMs = nowMs;
    this.buckets.set(accountId, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Drops full buckets (they hold no information); call now and then. */
  prune(): void {
    const nowMs = this.clock.now().getTime();
    for (const [accountId, bucket] of this.buckets) {
      const refilled = bucket.tokens + ((nowMs - bucket.refilledAtMs) * this.perSecond) / 1_000;
      if (refilled >= this.burst) this.buckets.delete(accountId);
    }
  }
}
