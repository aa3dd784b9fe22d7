/**
 * Sliding-window rate limits kept in MongoDB, so every process shares them.
 *
 * A limit document holds the times of the latest hits, newest first, capped
 * at the largest `max`. "At most `max` hits in `windowMs`" holds exactly when
 * the hit at position `max - 1` (the oldest one that would still count) is
 * missing or older than the window. That is a plain filter, so checking every
 * limit and recording the hit is ONE conditional update: two requests at the
 * same moment cannot both take the last slot.
 */
import { createHash } from 'node:crypto';
import { isDuplicateKeyError } from '../../models/errors.js';
import { RateLimit } from '../../models/rate-limit.js';

export interface RateLimitRule {
  /** Hits allowed inside the window. */
  max: number;
  windowMs: number;
}

export type RateLimitOutcome = { ok: true } | { ok: false; retryAfterSeconds: number };

const MAX_ATTEMPTS = 5;

/** A key naming a person by a hash, so limit documents hold no phone numbers or addresses. */
export function hashedRateLimitKey(action: string, subject: string): string {
  return `${action}:${createHash('sha256').update(subject, 'utf8').digest('hex').slice(0, 32)}`;
}

/** The key of email codes sent for an account. */
export function emailCodeLimitKey(accountId: string): string {
  return `email-code:${accountId}`;
}

/** The key of link codes tried by a chat identity (hashed: it may be a phone number). */
export function linkAttemptLimitKey(identity: { channel: string; externalId: string }): string {
  return hashedRateLimitKey('link-attempt', `${identity.channel}:${identity.externalId}`);
}

/** Records a hit under `key` if every rule allows one now; otherwise says when to come back. */
export async function takeRateLimit(
  key: string,
  rules: readonly RateLimitRule[],
  now: Date,
): Promise<RateLimitOutcome> {
  const cap = Math.max(...rules.map((rule) => rule.max));
  const longestMs = Math.max(...rules.map((rule) => rule.windowMs));
  const filter = {
    key,
    $and: rules.map((rule) => ({
      $or: [
        { [`hits.${rule.max - 1}`]: { $exists: false } },
        { [`hits.${rule.max - 1}`]: { $lte: new Date(now.getTime() - rule.windowMs) } },
      ],
    })),
  };
  const update = {
    $push: { hits: { $each: [now], $position: 0, $slice: cap } },
    $set: { expiresAt: new Date(now.getTime() + longestMs) },
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    try {
      const taken = await RateLimit.findOneAndUpdate(filter, update, {
        upsert: true,
        returnDocument: 'after',
      }).lean();
      if (taken) return { ok: true };
    } catch (error) {
      // The filter did not match an existing document, so the upsert tried to
      // insert a second one under the key: over a limit, or a first hit raced us.
      if (!isDuplicateKeyError(error)) throw error;
    }
    const current = await RateLimit.findOne({ key }).lean<{ hits: Date[] }>();
    const waitMs = current ? msUntilAllowed(current.hits, rules, now) : 0;
    if (waitMs > 0) return { ok: false, retryAfterSeconds: Math.ceil(waitMs / 1000) };
  }
  throw new Error(`rate limit ${key}: could not record a hit`);
}

/** Forgets the hits under these keys (an account's data being erased). */
export async function clearRateLimits(keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  const { deletedCount } = await RateLimit.deleteMany({ key: { $in: [...keys] } });
  return deletedCount;
}

function msUntilAllowed(hits: readonly Date[], rules: readonly RateLimitRule[], now: Date): number {
  let waitMs = 0;
  for (const rule of rules) {
    const oldestCounted = hits[rule.max - 1];
    if (oldestCounted === undefined) continue;
    waitMs = Math.max(waitMs, oldestCounted.getTime() + rule.windowMs - now.getTime());
  }
  return waitMs;
}
