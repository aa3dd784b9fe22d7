/**
 * Login sessions of the REST API: refresh-token families.
 *
 * A refresh token is `<session id>.<secret>`. Refreshing swaps the session's
 * token for a new one in one conditional update (only the holder of the
 * current token wins); a token that was already spent ends the whole session,
 * because then two parties hold it and one of them is not the customer. The
 * session's expiry slides with use (REFRESH_IDLE_MS) up to an absolute limit
 * (SESSION_MAX_MS), after which the customer logs in again.
 *
 * Access tokens name their session, and the API asks `isSessionLive` on every
 * request, so logging out (or a password reset) stops them at once rather than
 * when they expire.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import { newSecret } from '../../lib/ids.js';
import {
  LoginSession,
  SPENT_TOKENS_KEPT,
  type LoginSessionEndReason,
  type LoginSessionRecord,
} from '../../models/login-session.js';
import { toAccountId, type AccountId } from '../account-id.js';

/** A refresh token unused for this long stops working. */
export const REFRESH_IDLE_MS = 30 * 86_400_000;
/** No session lives longer than this, used or not. */
export const SESSION_MAX_MS = 90 * 86_400_000;
/** Ended and expired sessions stay listed for support this long, then go. */
const KEEP_ENDED_MS = 30 * 86_400_000;

export interface LoginSessionContext {
  clock: Clock;
}

export interface IssuedRefreshToken {
  accountId: string;
  sessionId: string;
  refreshToken: string;
  /** When the refresh token stops working if it is not used. */
  refreshExpiresAt: Date;
}

export interface LoginSessionView {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
}

/** Why a refresh token was refused (the API answers 401 with it in `details.reason`). */
export type RefreshRefusal = 'INVALID' | 'EXPIRED' | 'ENDED' | 'REUSED';

const tokenPattern = /^([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;

function sha256(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function refused(reason: RefreshRefusal): DomainError {
  const message =
    reason === 'REUSED'
      ? 'This refresh token was already used, so the session was ended to be safe. Log in again.'
      : reason === 'EXPIRED'
        ? 'The session expired. Log in again.'
        : reason === 'ENDED'
          ? 'The session was ended. Log in again.'
          : 'That refresh token is not valid.';
  return new DomainError('UNAUTHENTICATED', message, { details: { reason: `REFRESH_${reason}` } });
}

function slidingExpiry(createdAt: Date, now: Date): Date {
  return new Date(Math.min(now.getTime() + REFRESH_IDLE_MS, createdAt.getTime() + SESSION_MAX_MS));
}

/** Starts a session for an account that has just proved who it is. */
export async function startLoginSession(
  accountId: AccountId,
  origin: { ip?: string | undefined; userAgent?: string | undefined },
  ctx: LoginSessionContext,
): Promise<IssuedRefreshToken> {
  const now = ctx.clock.now();
  const secret = newSecret(32);
  const expiresAt = slidingExpiry(now, now);
  const session = await LoginSession.create({
    accountId: toAccountId(accountId),
    tokenHash: sha256(secret),
    createdAt: now,
    lastUsedAt: now,
    expiresAt,
    purgeAt: new Date(expiresAt.getTime() + KEEP_ENDED_MS),
    ...(origin.ip ? { ip: origin.ip.slice(0, 64) } : {}),
    ...(origin.userAgent ? { userAgent: origin.userAgent.slice(0, 300) } : {}),
  });
  return {
    accountId: String(session.accountId),
    sessionId: String(session._id),
    refreshToken: `${String(session._id)}.${secret}`,
    refreshExpiresAt: expiresAt,
  };
}

/**
 * Spends `refreshToken` and returns the next one. Throws UNAUTHENTICATED with
 * `details.reason` REFRESH_INVALID / _EXPIRED / _ENDED / _REUSED; a reused
 * token ends the session first.
 */
export async function rotateRefreshToken(
  refreshToken: string,
  ctx: LoginSessionContext,
): Promise<IssuedRefreshToken> {
  const match = tokenPattern.exec(refreshToken);
  if (!match) throw refused('INVALID');
  const sessionId = new Types.ObjectId(match[1]);
  const spentHash = sha256(match[2] as string);
  const now = ctx.clock.now();
  const session = await LoginSession.findById(sessionId).lean<LoginSessionRecord>();
  if (!session) throw refused('INVALID');
  if (session.endedAt) throw refused('ENDED');
  if (!hashesEqual(session.tokenHash, spentHash)) {
    if (session.spentHashes.includes(spentHash)) {
      await endSessions({ _id: sessionId, endedAt: { $exists: false } }, 'refresh_reuse', now);
      throw refused('REUSED');
    }
    throw refused('INVALID');
  }
  if (session.expiresAt.getTime() <= now.getTime()) throw refused('EXPIRED');

  const secret = newSecret(32);
  const expiresAt = slidingExpiry(session.createdAt, now);
  const rotated = await LoginSession.findOneAndUpdate(
    { _id: sessionId, tokenHash: spentHash, endedAt: { $exists: false } },
    {
      $set: {
        tokenHash: sha256(secret),
        lastUsedAt: now,
        expiresAt,
        purgeAt: new Date(expiresAt.getTime() + KEEP_ENDED_MS),
      },
      $push: { spentHashes: { $each: [spentHash], $slice: -SPENT_TOKENS_KEPT } },
      $inc: { generation: 1 },
    },
    { returnDocument: 'after' },
  ).lean<LoginSessionRecord>();
  if (!rotated) {
    // Someone spent the same token a moment before us: that is a reuse.
    await endSessions({ _id: sessionId, endedAt: { $exists: false } }, 'refresh_reuse', now);
    throw refused('REUSED');
  }
  return {
    accountId: String(rotated.accountId),
    sessionId: String(rotated._id),
    refreshToken: `${String(rotated._id)}.${secret}`,
    refreshExpiresAt: expiresAt,
  };
}

function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Whether the session is live and the account's (for access tokens, checked per request). */
export async function isSessionLive(
  accountId: string,
  sessionId: string,
  now: Date,
): Promise<boolean> {
  if (!Types.ObjectId.isValid(sessionId) || !Types.ObjectId.isValid(accountId)) return false;
  const live = await LoginSession.exists({
    _id: new Types.ObjectId(sessionId),
    accountId: new Types.ObjectId(accountId),
    endedAt: { $exists: false },
    expiresAt: { $gt: now },
  });
  return live !== null;
}

/** The account's live sessions, newest first. */
export async function listLoginSessions(
  accountId: AccountId,
  ctx: LoginSessionContext,
): Promise<LoginSessionView[]> {
  const sessions = await LoginSession.find({
    accountId: toAccountId(accountId),
    endedAt: { $exists: false },
    expiresAt: { $gt: ctx.clock.now() },
  })
    .sort({ createdAt: -1 })
    .limit(100)
    .lean<LoginSessionRecord[]>();
  return sessions.map((s) => ({
    id: String(s._id),
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    expiresAt: s.expiresAt,
    ip: s.ip ?? null,
    userAgent: s.userAgent ?? null,
  }));
}

/** Ends one of the account's sessions; NOT_FOUND when it is not theirs or already ended. */
export async function endLoginSession(
  accountId: AccountId,
  sessionId: string,
  reason: LoginSessionEndReason,
  ctx: LoginSessionContext,
): Promise<void> {
  const ended = Types.ObjectId.isValid(sessionId)
    ? await endSessions(
        {
          _id: new Types.ObjectId(sessionId),
          accountId: toAccountId(accountId),
          endedAt: { $exists: false },
        },
        reason,
        ctx.clock.now(),
      )
    : 0;
  if (ended === 0) {
    throw new DomainError('NOT_FOUND', 'There is no such session on your account.', {
      details: { field: 'sessionId' },
    });
  }
}

/** Ends every live session of the account (but `exceptSessionId`); returns how many. */
export async function endAllLoginSessions(
  accountId: AccountId,
  reason: LoginSessionEndReason,
  ctx: LoginSessionContext,
  exceptSessionId?: string,
): Promise<number> {
  return endSessions(
    {
      accountId: toAccountId(accountId),
      endedAt: { $exists: false },
      ...(exceptSessionId && Types.ObjectId.isValid(exceptSessionId)
        ? { _id: { $ne: new Types.ObjectId(exceptSessionId) } }
        : {}),
    },
    reason,
    ctx.clock.now(),
  );
}

async function endSessions(
  filter: Record<string, unknown>,
  reason: LoginSessionEndReason,
  now: Date,
): Promise<number> {
  const { modifiedCount } = await LoginSession.updateMany(filter, {
    $set: { endedAt: now, endReason: reason, purgeAt: new Date(now.getTime() + KEEP_ENDED_MS) },
  });
  return modifiedCount;
}
