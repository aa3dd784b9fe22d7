/**
 * Choosing a password through a link: "forgot password" mails one to the
 * account's address; a chat customer asks the bot for one (so the password
 * is typed on our page, never into chat history). Both open
 * GET /account/reset-password, whose form spends the link
 * (or POST /api/v1/auth/reset-password for API clients).
 *
 * Setting a password this way ends every login session of the account (a
 * stolen session must not survive a reset) and, since only the owner of the
 * address could open a mailed link, marks the address verified.
 */
import { DomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import type { AuthTokenPurpose } from '../../models/auth-token.js';
import { toAccountId, type AccountId } from '../account-id.js';
import {
  inspectLinkToken,
  issueLinkToken,
  linkUrl,
  spendLinkToken,
  type AuthLinkContext,
  type LiveLinkToken,
} from './auth-links.js';
import { endAllLoginSessions } from './login-sessions.js';
import { assertStrongPassword, storePassword, tellPasswordChanged } from './passwords.js';
import { activeAccount, type AccountRecord } from './view.js';

/** How long a password link works. */
export const PASSWORD_LINK_TTL_MS = 30 * 60_000;

const PASSWORD_PURPOSES: readonly AuthTokenPurpose[] = ['password_reset', 'password_set'];

/**
 * Mails a reset link to `email` if an account (not deleted) has that
 * address; does nothing otherwise, so callers can answer the same either way.
 * A mail server that fails is logged, not thrown (the caller has answered already).
 */
export async function requestPasswordReset(ctx: AuthLinkContext, email: string): Promise<void> {
  const account = await Account.findOne({ email, status: { $ne: 'deleted' } }, { email: 1 }).lean<
    Pick<AccountRecord, '_id' | 'email'>
  >();
  if (!account?.email) {
    ctx.logger?.info('account.password_reset_unknown_email');
    return;
  }
  const link = await issueLinkToken(ctx, {
    accountId: account._id,
    purpose: 'password_reset',
    email: account.email,
    ttlMs: PASSWORD_LINK_TTL_MS,
  });
  const minutes = Math.round(PASSWORD_LINK_TTL_MS / 60_000);
  try {
    await ctx.mailer.send({
      to: account.email,
      subject: 'Reset your Atlantic password',
      text: [
        'Someone (we hope you) asked to reset the password of your Atlantic account.',
        '',
        `Open this link to choose a new password. It works once, for ${minutes} minutes:`,
        linkUrl(ctx.publicUrl, 'password_reset', link.token),
        '',
        'Choosing a new password logs you out of the API everywhere.',
        'If you did not ask for this, ignore this mail: your password stays as it is.',
      ].join('\n'),
    });
    ctx.logger?.info({ accountId: String(account._id) }, 'account.password_reset_sent');
  } catch (error) {
    ctx.logger?.error(
      { err: error, accountId: String(account._id) },
      'account.password_reset_not_sent',
    );
  }
}

/**
 * A link for a chat customer to choose an API password (shown in chat).
 * Needs a verified email: that address is the login. FORBIDDEN
 * (EMAIL_NOT_VERIFIED) otherwise; suspended accounts are refused as
 * everywhere in chat.
 */
export async function createPasswordLink(
  ctx: AuthLinkContext,
  accountId: AccountId,
): Promise<{ url: string; email: string; expiresAt: Date }> {
  const id = toAccountId(accountId);
  const account = await activeAccount(id);
  if (!account.email || !account.emailVerifiedAt) {
    throw new DomainError(
      'FORBIDDEN',
      'Verify your email address first: it becomes your login for the API.',
      { details: { reason: 'EMAIL_NOT_VERIFIED' } },
    );
  }
  const link = await issueLinkToken(ctx, {
    accountId: id,
    purpose: 'password_set',
    email: account.email,
    ttlMs: PASSWORD_LINK_TTL_MS,
  });
  ctx.logger?.info({ accountId: String(id) }, 'account.password_link_created');
  return {
    url: linkUrl(ctx.publicUrl, 'password_set', link.token),
    email: account.email,
    expiresAt: link.expiresAt,
  };
}

/** What a password link's page shows before the form is sent; refusals as inspectLinkToken. */
export function inspectPasswordLink(
  ctx: Pick<AuthLinkContext, 'clock'>,
  token: string,
): Promise<LiveLinkToken> {
  return inspectLinkToken(ctx, token, PASSWORD_PURPOSES);
}

/**
 * Sets the password chosen through a link: checks its strength first (a weak
 * one does not spend the link), spends the link, stores the password, marks
 * the address verified, ends every login session, and tells the owner.
 * Refusals: VALIDATION_FAILED with details.reason LINK_INVALID / LINK_EXPIRED
 * / LINK_USED or a password rule.
 */
export async function resetPasswordWithLink(
  ctx: AuthLinkContext,
  token: string,
  password: string,
): Promise<{ accountId: string; email: string; sessionsEnded: number }> {
  const before = await inspectLinkToken(ctx, token, PASSWORD_PURPOSES);
  assertStrongPassword(password, before.email);
  const live = await spendLinkToken(ctx, token, PASSWORD_PURPOSES);
  await storePassword(ctx, live.accountId, password, { verifiedEmail: live.email });
  const sessionsEnded = await endAllLoginSessions(live.accountId, 'password_reset', ctx);
  ctx.logger?.info(
    { accountId: live.accountId, purpose: live.purpose, sessionsEnded },
    'account.password_reset',
  );
  await tellPasswordChanged(ctx, live.email);
  return { accountId: live.accountId, email: live.email, sessionsEnded };
}
