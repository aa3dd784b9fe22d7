/**
 * Single-use link tokens (models/auth-token.ts): the link in the sign-up
 * mail that verifies an address, and the links that let someone choose a
 * password (forgot password, or asked for from chat).
 *
 * - A token is 256 random bits (43 base64url characters), stored as its
 *   SHA-256, found by that hash; guessing one is hopeless, so the pages it
 *   opens need no rate limit of their own beyond the API's.
 * - It is spent by one conditional update (unused and unexpired -> used), so
 *   two clicks at once use it once.
 * - It works only while the account still has the address it was sent for,
 *   and is not deleted.
 * - Issuing a token of a purpose removes the account's unused ones of that
 *   purpose: only the newest link works.
 */
import { createHash } from 'node:crypto';
import type { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import { newSecret } from '../../lib/ids.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { Account } from '../../models/account.js';
import { AuthToken, type AuthTokenPurpose, type AuthTokenRecord } from '../../models/auth-token.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { requestEmailCode } from './email.js';
import { type AccountRecord } from './view.js';

/** How long the one-click link in a sign-up mail works (the code in it: 15 minutes). */
export const EMAIL_LINK_TTL_MS = 24 * 3_600_000;

export interface AuthLinkContext {
  clock: Clock;
  mailer: Mailer;
  logger?: Logger | undefined;
  /** Where the pages the links open are served (PUBLIC_URL). */
  publicUrl: string;
}

/** Why a link token does not work (the pages and the API say it in words and in `details.reason`). */
export type LinkRefusal = 'LINK_INVALID' | 'LINK_EXPIRED' | 'LINK_USED';

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function sha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function linkRefused(reason: LinkRefusal): DomainError {
  const message =
    reason === 'LINK_EXPIRED'
      ? 'This link has expired. Ask for a new one.'
      : reason === 'LINK_USED'
        ? 'This link was already used. Ask for a new one if you still need it.'
        : 'This link is not valid: it may be incomplete, or a newer link replaced it.';
  return new DomainError('VALIDATION_FAILED', message, { details: { field: 'token', reason } });
}

/** The page a link of this purpose opens. */
export function linkUrl(publicUrl: string, purpose: AuthTokenPurpose, token: string): string {
  const page = purpose === 'email_verify' ? 'verify-email' : 'reset-password';
  return `${publicUrl.replace(/\/+$/, '')}/account/${page}?token=${encodeURIComponent(token)}`;
}

/** A new token for `purpose`, replacing the account's unused ones of that purpose. */
export async function issueLinkToken(
  ctx: { clock: Clock },
  input: { accountId: AccountId; purpose: AuthTokenPurpose; email: string; ttlMs: number },
): Promise<{ token: string; expiresAt: Date }> {
  const accountId = toAccountId(input.accountId);
  const now = ctx.clock.now();
  const token = newSecret(32);
  const expiresAt = new Date(now.getTime() + input.ttlMs);
  await AuthToken.deleteMany({ accountId, purpose: input.purpose, usedAt: { $exists: false } });
  await AuthToken.create({
    purpose: input.purpose,
    accountId,
    tokenHash: sha256(token),
    email: input.email,
    issuedAt: now,
    expiresAt,
  });
  return { token, expiresAt };
}

export interface LiveLinkToken {
  id: Types.ObjectId;
  accountId: string;
  purpose: AuthTokenPurpose;
  email: string;
  expiresAt: Date;
}

/**
 * The token's facts if it would work now (for a page that shows a form
 * before spending it); VALIDATION_FAILED with details.reason LINK_INVALID /
 * LINK_EXPIRED / LINK_USED otherwise.
 */
export async function inspectLinkToken(
  ctx: { clock: Clock },
  token: string,
  purposes: readonly AuthTokenPurpose[],
): Promise<LiveLinkToken> {
  if (!TOKEN_PATTERN.test(token)) throw linkRefused('LINK_INVALID');
  const stored = await AuthToken.findOne({
    tokenHash: sha256(token),
    purpose: { $in: [...purposes] },
  }).lean<AuthTokenRecord>();
  if (!stored) throw linkRefused('LINK_INVALID');
  if (stored.usedAt) throw linkRefused('LINK_USED');
  if (stored.expiresAt <= ctx.clock.now()) throw linkRefused('LINK_EXPIRED');
  const account = await Account.findById(stored.accountId, { email: 1, status: 1 }).lean<
    Pick<AccountRecord, 'email' | 'status'>
  >();
  // The address changed or the account went since the link was sent: it proves nothing now.
  if (!account || account.status === 'deleted' || account.email !== stored.email) {
    throw linkRefused('LINK_INVALID');
  }
  return {
    id: stored._id,
    accountId: String(stored.accountId),
    purpose: stored.purpose,
    email: stored.email,
    expiresAt: stored.expiresAt,
  };
}

/** Checks the token as inspectLinkToken does, then spends it (once, even against a racing click). */
export async function spendLinkToken(
  ctx: { clock: Clock },
  token: string,
  purposes: readonly AuthTokenPurpose[],
): Promise<LiveLinkToken> {
  const live = await inspectLinkToken(ctx, token, purposes);
  const now = ctx.clock.now();
  const spent = await AuthToken.updateOne(
    { _id: live.id, usedAt: { $exists: false }, expiresAt: { $gt: now } },
    { $set: { usedAt: now } },
  );
  if (spent.modifiedCount === 0) throw linkRefused('LINK_USED');
  return live;
}

// --- email verification ----------------------------------------------------------

/**
 * Mails the account's (unverified) address a 6-digit code (core email codes,
 * with their send limits) and a one-click link to GET /account/verify-email.
 * CONFLICT (ALREADY_VERIFIED) when the address is verified already;
 * VALIDATION_FAILED (NO_EMAIL) when the account has none.
 */
export async function sendVerificationEmail(
  ctx: AuthLinkContext,
  accountId: AccountId,
): Promise<{ sentTo: string; expiresAt: Date; linkExpiresAt: Date }> {
  const id = toAccountId(accountId);
  const account = await Account.findById(id, {
    email: 1,
    emailVerifiedAt: 1,
    status: 1,
  }).lean<Pick<AccountRecord, 'email' | 'emailVerifiedAt' | 'status'>>();
  if (!account?.email || account.status === 'deleted') {
    throw new DomainError('VALIDATION_FAILED', 'This account has no email address to verify.', {
      details: { field: 'email', reason: 'NO_EMAIL' },
    });
  }
  if (account.emailVerifiedAt) {
    throw new DomainError('CONFLICT', `${account.email} is already verified.`, {
      details: { reason: 'ALREADY_VERIFIED' },
    });
  }
  const link = await issueLinkToken(ctx, {
    accountId: id,
    purpose: 'email_verify',
    email: account.email,
    ttlMs: EMAIL_LINK_TTL_MS,
  });
  try {
    const sent = await requestEmailCode(ctx, id, account.email, {
      link: { url: linkUrl(ctx.publicUrl, 'email_verify', link.token), expiresAt: link.expiresAt },
    });
    return { ...sent, linkExpiresAt: link.expiresAt };
  } catch (error) {
    // Not mailed (too soon, mail server down): the link must not outlive its mail unseen.
    await AuthToken.deleteOne({ tokenHash: sha256(link.token) });
    throw error;
  }
}

/**
 * Verifies the address a sign-up link was mailed to. Returns the address and
 * whether it was verified just now (false: it already was). Refusals as
 * inspectLinkToken; a link whose address is verified already (a second
 * click) answers `{ alreadyVerified: true }` rather than LINK_USED.
 */
export async function verifyEmailByLink(
  ctx: { clock: Clock; logger?: Logger | undefined },
  token: string,
): Promise<{ email: string; alreadyVerified: boolean }> {
  let live: LiveLinkToken;
  try {
    live = await spendLinkToken(ctx, token, ['email_verify']);
  } catch (error) {
    const stored = TOKEN_PATTERN.test(token)
      ? await AuthToken.findOne({
          tokenHash: sha256(token),
          purpose: 'email_verify',
        }).lean<AuthTokenRecord>()
      : null;
    if (stored?.usedAt) {
      const verified = await Account.exists({
        _id: stored.accountId,
        email: stored.email,
        emailVerifiedAt: { $exists: true },
      });
      if (verified) return { email: stored.email, alreadyVerified: true };
    }
    throw error;
  }
  const now = ctx.clock.now();
  const updated = await Account.updateOne(
    { _id: toAccountId(live.accountId), email: live.email, emailVerifiedAt: { $exists: false } },
    { $set: { emailVerifiedAt: now }, $unset: { emailFailingSince: 1, emailFailingReason: 1 } },
  );
  ctx.logger?.info({ accountId: live.accountId }, 'account.email_verified_by_link');
  return { email: live.email, alreadyVerified: updated.modifiedCount === 0 };
}
