/**
 * Which exit a tunnel leaves through: picked from the pools of the locations
 * the request may use (the one named by `-country-`, else every location the
 * plan allows).
 *
 *   healthy candidates (failing exits skipped; all of them if all are failing)
 *     -> `-session-<id>` and the plan has sticky sessions: the exit kept for
 *        that session id, for `stickyLifetimeMs` from first use
 *     -> the plan has rotation: the next exit, round robin
 *     -> neither: one exit per account, the same on every gateway
 *
 * Choices that must agree across gateways (sticky, per account) are a hash of
 * the account, the session and the credential's `exitEpoch`, so two gateways
 * pick alike without talking. "Give me a new IP" (rotate) moves the epoch in
 * the database, which changes every such choice on every gateway.
 *
 * A failed dial marks the exit unhealthy here at once and in the database for
 * the other gateways (they skip it after their next refresh), until its retry
 * time.
 */
import { createHash } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import {
  DEFAULT_EXIT_RETRY_MS,
  markExitHealth,
  type ExitView,
  type LocationView,
} from '../core/locations.js';
import { requestNewExit } from '../core/proxy-credentials.js';
import type { ExitHealthSample } from './access-metrics.js';
import type { ExitRoute } from './access.js';

export interface ExitPickerOptions {
  clock: Clock;
  /** Defaults to mongoose's default connection. */
  connection?: Connection;
  logger?: Logger;
  /** The locations and their pools as the gateway last loaded them. */
  locations: () => readonly LocationView[];
  /** A `-session-<id>` keeps its exit this long from first use (default 10 min). */
  stickyLifetimeMs?: number;
  /** Skip an exit whose dial failed for this long (default 30 s). */
  exitRetryMs?: number;
}

export interface ExitRequest {
  accountId: string;
  /** The location named in the username, or null for any the plan allows. */
  location: string | null;
  sessionId: string | null;
  allowedLocations: readonly string[];
  rotation: boolean;
  stickySessions: boolean;
  /** The credential's exit epoch (moved by rotate()). */
  exitEpoch: number;
}

export interface ExitChoice {
  location: string;
  route: ExitRoute;
}

interface Candidate {
  location: string;
  exit: ExitView;
}

interface StickyExit {
  exitKey: string;
  /** The exit epoch it was chosen under: a rotation makes it void. */
  epoch: number;
  expiresAtMs: number;
}

const ROTATION_WRAP = 1_000_000_007;

export class ExitPicker {
  private readonly options: ExitPickerOptions;
  private readonly stickyLifetimeMs: number;
  private readonly exitRetryMs: number;
  /** `account|location|session` -> the exit it keeps. */
  private readonly sticky = new Map<string, StickyExit>();
  /** Exits this process saw fail: exit key -> clock ms until which they are skipped. */
  private readonly failedUntil = new Map<string, number>();
  private rotationCounter = 0;

  constructor(options: ExitPickerOptions) {
    this.options = options;
    this.stickyLifetimeMs = options.stickyLifetimeMs ?? 600_000;
    this.exitRetryMs = options.exitRetryMs ?? DEFAULT_EXIT_RETRY_MS;
  }

  /** The exit for a new tunnel, or null when no location the request may use has one. */
  choose(request: ExitRequest): ExitChoice | null {
    const candidates = this.candidatesFor(request);
    if (candidates.length === 0) return null;
    const picked = this.pick(request, candidates);
    return picked ? { location: picked.location, route: toRoute(picked) } : null;
  }

  /** A dial through `choice` failed: skip it here now, and on every gateway after its refresh. */
  failed(choice: ExitChoice, error: Error): void {
    const key = choice.route.id;
    this.failedUntil.set(key, this.nowMs() + this.exitRetryMs);
    this.forgetStickyExitsUsing(key);
    const exitId = key.slice(choice.location.length + 1);
    markExitHealth(
      choice.location,
      exitId,
      { healthy: false, error: error.message, retryMs: this.exitRetryMs },
      { clock: this.options.clock, connection: this.options.connection },
    ).catch((failure: unknown) =>
      this.options.logger?.warn({ err: failure, exitId: key }, 'proxy.exit_health_failed'),
    );
  }

  /** "Give me a new IP": new exits for the account's next tunnels, on every gateway. */
  async rotate(accountId: string): Promise<void> {
    await requestNewExit(accountId, { connection: this.options.connection });
    // Other gateways see the new epoch on their next refresh; this one forgets now.
    for (const key of this.sticky.keys()) {
      if (key.startsWith(`${accountId}|`)) this.sticky.delete(key);
    }
  }

  /** Every exit of every location, and whether a tunnel would be sent through it now. */
  health(): ExitHealthSample[] {
    const nowMs = this.nowMs();
    return this.allCandidates(this.options.locations()).map((candidate) => ({
      location: candidate.location,
      exit: exitKey(candidate.location, candidate.exit.exitId),
      healthy: this.isUsable(candidate, nowMs),
    }));
  }

  /** Forgets expired sticky sessions and failures, so a long-running gateway does not grow. */
  prune(): void {
    const nowMs = this.nowMs();
    for (const [key, sticky] of this.sticky) {
      if (sticky.expiresAtMs <= nowMs) this.sticky.delete(key);
    }
    for (const [key, untilMs] of this.failedUntil) {
      if (untilMs <= nowMs) this.failedUntil.delete(key);
    }
  }

  private nowMs(): number {
    return this.options.clock.now().getTime();
  }

  private candidatesFor(request: ExitRequest): Candidate[] {
    const wanted = request.location;
    const locations = this.options
      .locations()
      .filter((location) =>
        wanted !== null
          ? location.code === wanted
          : request.allowedLocations.includes(location.code),
      );
    return this.healthyCandidates(locations);
  }

  private pick(request: ExitRequest, candidates: readonly Candidate[]): Candidate | undefined {
    if (request.stickySessions && request.sessionId !== null) {
      return this.stickyPick(request, request.sessionId, candidates);
    }
    if (request.rotation) {
      this.rotationCounter = (this.rotationCounter + 1) % ROTATION_WRAP;
      return candidates[this.rotationCounter % candidates.length];
    }
    // No rotation in the plan: one exit per account, the same on every gateway.
    return candidates[stableIndex(`${request.accountId}|${request.exitEpoch}`, candidates.length)];
  }

  private stickyPick(
    request: ExitRequest,
    sessionId: string,
    candidates: readonly Candidate[],
  ): Candidate | undefined {
    const nowMs = this.nowMs();
    const key = `${request.accountId}|${request.location ?? ''}|${sessionId}`;
    const remembered = this.sticky.get(key);
    if (remembered && remembered.expiresAtMs > nowMs && remembered.epoch === request.exitEpoch) {
      const still = candidates.find(
        (c) => exitKey(c.location, c.exit.exitId) === remembered.exitKey,
      );
      if (still) return still;
    }
    // First use, expired, rotated, or the exit went away: the same choice on
    // every gateway within one lifetime window.
    const window = Math.floor(nowMs / this.stickyLifetimeMs);
    const seed = `${key}|${request.exitEpoch}|${window}`;
    const picked = candidates[stableIndex(seed, candidates.length)];
    if (picked) {
      this.sticky.set(key, {
        exitKey: exitKey(picked.location, picked.exit.exitId),
        epoch: request.exitEpoch,
        expiresAtMs: nowMs + this.stickyLifetimeMs,
      });
    }
    return picked;
  }

  private allCandidates(locations: readonly LocationView[]): Candidate[] {
    return locations.flatMap((location) =>
      location.exits.map((exit) => ({ location: location.code, exit })),
    );
  }

  /** Exits not known to be failing; if every one is, all of them (better a retry than a refusal). */
  private healthyCandidates(locations: readonly LocationView[]): Candidate[] {
    const nowMs = this.nowMs();
    const all = this.allCandidates(locations);
    const healthy = all.filter((candidate) => this.isUsable(candidate, nowMs));
    return healthy.length > 0 ? healthy : all;
  }

  /** Not failed here lately, and healthy in the database or due for another try. */
  private isUsable({ location, exit }: Candidate, nowMs: number): boolean {
    const localUntil = this.failedUntil.get(exitKey(location, exit.exitId)) ?? 0;
    if (localUntil > nowMs) return false;
    return exit.healthy || (exit.retryAfter !== undefined && exit.retryAfter.getTime() <= nowMs);
  }

  private forgetStickyExitsUsing(key: string): void {
    for (const [stickyKey, sticky] of this.sticky) {
      if (sticky.exitKey === key) this.sticky.delete(stickyKey);
    }
  }
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
