/**
 * Email verification: a 6-digit code mailed to the address, entered back in
 * chat (or later the REST API). The address becomes the account's email only
 * when the code is confirmed, so changing email keeps the old, verified one
 * until the new one is proven.
 *
 * - One code per account at a time: asking again replaces it.
 * - Sending: at most one code per minute and five per hour per account
 *   (rate-limit.ts), so the bot cannot be used to flood a mailbox.
 * - Checking: five attempts per code (the right one included), counted with
 *   one conditional update so parallel guesses cannot exceed them; then the
 *   code is dead and a new one must be asked for. A code lives 15 minutes.
 */
import { newNumericCode } from '../../lib/ids.js';
import { DomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { VerificationCode, type VerificationCodeRecord } from '../../models/verification-code.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { codeMatches, hashCode, normaliseEmailCode } from './codes.js';
import { emailCodeLimitKey, takeRateLimit, type RateLimitRule } from './rate-limit.js';
import {
  activeAccount,
  toAccountView,
  type AccountRecord,
  type AccountView,
  type AccountsContext,
} from './view.js';

export const EMAIL_CODE_TTL_MS = 15 * 60_000;
export const EMAIL_CODE_MAX_ATTEMPTS = 5;
/** At most one code a minute and five an hour per account. */
export const EMAIL_CODE_SEND_LIMITS: readonly RateLimitRule[] = [
  { max: 1, windowMs: 60_000 },
  { max: 5, windowMs: 3_600_000 },
];

/**
 * A valid address, as HTML forms judge one
 * (https://html.spec.whatwg.org/multipage/input.html#valid-e-mail-address),
 * with a dot in the domain required: mail to `user@localhost` never reaches a customer.
 */
const EMAIL_PATTERN =
  /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** The address lower-cased and trimmed, or VALIDATION_FAILED. */
export function normaliseEmail(input: string): string {
  const email = String(input).trim().toLowerCase();
  const local = email.split('@')[0] ?? '';
  if (email.length > 254 || local.length > 64 || !EMAIL_PATTERN.test(email)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'That does not look like an email address. Check it and send it again.',
      { details: { field: 'email', reason: 'INVALID_EMAIL' } },
    );
  }
  return email;
}

/**
 * Sends a 6-digit code to `email` (also used for changing email: the new
 * address is only set once verified). Refuses an invalid address
 * (VALIDATION_FAILED) and an address verified by another account (CONFLICT,
 * details.reason 'EMAIL_TAKEN'). Resend limits: at most one code per 60 s and
 * 5 per hour per account (RATE_LIMITED with details.retryAfterSeconds).
 * A mail server that fails is UPSTREAM_FAILED (the attempt still counts).
 * `options.link`: a one-click link that confirms the same address (the REST
 * API's sign-up, core/accounts/auth-links.ts), mailed with the code.
 */
export async function requestEmailCode(
  ctx: AccountsContext,
  accountId: AccountId,
  email: string,
  options: { link?: { url: string; expiresAt: Date } } = {},
): Promise<{ sentTo: string; expiresAt: Date }> {
  const id = toAccountId(accountId);
  const address = normaliseEmail(email);
  await activeAccount(id);
  if (await Account.exists({ email: address, _id: { $ne: id } })) throw emailTaken(address);

  const now = ctx.clock.now();
  const limit = await takeRateLimit(emailCodeLimitKey(String(id)), EMAIL_CODE_SEND_LIMITS, now);
  if (!limit.ok) {
    throw new DomainError(
      'RATE_LIMITED',
      `Codes were asked for too often. You can ask for another in ${waitWords(limit.retryAfterSeconds)}.`,
      { details: { retryAfterSeconds: limit.retryAfterSeconds } },
    );
  }

  const code = newNumericCode(6);
  const expiresAt = new Date(now.getTime() + EMAIL_CODE_TTL_MS);
  await VerificationCode.findOneAndUpdate(
    { accountId: id, purpose: 'email' },
    {
      $set: { email: address, ...(await hashCode(code)), issuedAt: now, expiresAt, attempts: 0 },
      $unset: { usedAt: 1, lookup: 1 },
    },
    { upsert: true },
  );
  try {
    await ctx.mailer.send({
      to: address,
      subject: `Your Atlantic code: ${code}`,
      text: [
        `Your Atlantic verification code is ${code}.`,
        '',
        `Enter it where you asked for it to confirm ${address} as your email address.`,
        `It works for 15 minutes, until ${timeWords(expiresAt)}.`,
        ...(options.link
          ? [
              '',
              'Or confirm with one click (the link works once, until',
              `${timeWords(options.link.expiresAt)}):`,
              options.link.url,
            ]
          : []),
        '',
        'If you did not ask for this code, ignore this mail: nothing changes without it.',
      ].join('\n'),
    });
  } catch (error) {
    ctx.logger?.error({ err: error, accountId: String(id) }, 'account.email_code_not_sent');
    throw new DomainError(
      'UPSTREAM_FAILED',
      'The code could not be mailed just now. Try again in a minute.',
      { cause: error },
    );
  }
  ctx.logger?.info({ accountId: String(id) }, 'account.email_code_sent');
  return { sentTo: address, expiresAt };
}

/**
 * Checks the code: right -> account email = that address, emailVerifiedAt
 * set, returns the view. Wrong -> VALIDATION_FAILED with
 * details.attemptsLeft; after 5 wrong attempts the code is dead (must request
 * a new one); expired (15 min) -> VALIDATION_FAILED details.reason
 * 'CODE_EXPIRED'. No code waiting -> VALIDATION_FAILED 'NO_CODE'; the
 * address verified by another account meanwhile -> CONFLICT 'EMAIL_TAKEN'.
 * When the email changed, the old address is told (best effort).
 */
export async function confirmEmailCode(
  ctx: AccountsContext,
  accountId: AccountId,
  code: string,
): Promise<AccountView> {
  const id = toAccountId(accountId);
  const before = await activeAccount(id);
  const now = ctx.clock.now();
  const stored = await VerificationCode.findOne({
    accountId: id,
    purpose: 'email',
  }).lean<VerificationCodeRecord>();
  if (!stored?.email || stored.usedAt) throw noCode();
  if (stored.expiresAt <= now) throw codeExpired();

  // Count the attempt first, on this very code, so parallel guesses share the five.
  const counted = await VerificationCode.findOneAndUpdate(
    {
      _id: stored._id,
      codeHash: stored.codeHash,
      usedAt: { $exists: false },
      attempts: { $lt: EMAIL_CODE_MAX_ATTEMPTS },
    },
    { $inc: { attempts: 1 } },
    { returnDocument: 'after' },
  ).lean<VerificationCodeRecord>();
  if (!counted) {
    const current = await VerificationCode.findById(stored._id).lean<VerificationCodeRecord>();
    if (!current || current.usedAt || current.codeHash !== stored.codeHash) throw noCode();
    throw tooManyAttempts();
  }

  const normalised = normaliseEmailCode(code);
  if (normalised === null || !(await codeMatches(normalised, stored))) {
    const attemptsLeft = Math.max(0, EMAIL_CODE_MAX_ATTEMPTS - counted.attempts);
    if (attemptsLeft === 0) throw tooManyAttempts();
    throw new DomainError(
      'VALIDATION_FAILED',
      `That code is not right. ${attemptsLeft === 1 ? 'One try' : `${attemptsLeft} tries`} left.`,
      { details: { field: 'code', reason: 'WRONG_CODE', attemptsLeft } },
    );
  }

  const used = await VerificationCode.updateOne(
    { _id: stored._id, codeHash: stored.codeHash, usedAt: { $exists: false } },
    { $set: { usedAt: now } },
  );
  if (used.modifiedCount === 0) throw noCode();

  const address = stored.email;
  let updated: AccountRecord | null;
  try {
    updated = await Account.findOneAndUpdate(
      { _id: id, status: 'active' },
      {
        $set: { email: address, emailVerifiedAt: now },
        $unset: { emailFailingSince: 1, emailFailingReason: 1 },
      },
      { returnDocument: 'after' },
    ).lean<AccountRecord>();
  } catch (error) {
    if (isDuplicateKeyError(error)) throw emailTaken(address);
    throw error;
  }
  if (!updated) {
    await activeAccount(id); // says why the account is no longer open
    throw new Error('account changed while its email was being confirmed');
  }

  ctx.logger?.info({ accountId: String(id) }, 'account.email_verified');
  if (before.email && before.email !== address) {
    await tellOldAddress(ctx, before.email, address);
  }
  return toAccountView(updated);
}

/** A note to the address that was replaced, so a hijacked chat cannot move the email silently. */
async function tellOldAddress(ctx: AccountsContext, oldAddress: string, newAddress: string) {
  try {
    await ctx.mailer.send({
      to: oldAddress,
      subject: 'Your Atlantic email address was changed',
      text: [
        `The email address of your Atlantic account is now ${newAddress}.`,
        'Receipts and notices go there from now on.',
        '',
        'If you did not make this change, contact Atlantic support at once.',
      ].join('\n'),
    });
  } catch (error) {
    ctx.logger?.warn({ err: error }, 'account.email_change_notice_not_sent');
  }
}

function emailTaken(address: string): DomainError {
  return new DomainError(
    'CONFLICT',
    `${address} already belongs to another Atlantic account. Use another address, or link this chat to that account instead.`,
    { details: { field: 'email', reason: 'EMAIL_TAKEN' } },
  );
}

function noCode(): DomainError {
  return new DomainError(
    'VALIDATION_FAILED',
    'There is no code waiting to be confirmed. Ask for a new one.',
    { details: { field: 'code', reason: 'NO_CODE', attemptsLeft: 0 } },
  );
}

function codeExpired(): DomainError {
  return new DomainError('VALIDATION_FAILED', 'That code has expired. Ask for a new one.', {
    details: { field: 'code', reason: 'CODE_EXPIRED', attemptsLeft: 0 },
  });
}

function tooManyAttempts(): DomainError {
  return new DomainError(
    'VALIDATION_FAILED',
    'That code was entered wrongly too many times and no longer works. Ask for a new one.',
    { details: { field: 'code', reason: 'TOO_MANY_ATTEMPTS', attemptsLeft: 0 } },
  );
}

function waitWords(seconds: number): string {
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/** `14:05 UTC on 2 March 2026`. */
function timeWords(at: Date): string {
  const months = [
    'January',
    'February',
    'March',
    'April',
    'May',
    'June',
    'July',
    'August',
    'September',
    'October',
    'November',
    'December',
  ];
  const hh = String(at.getUTCHours()).padStart(2, '0');
  const mm = String(at.getUTCMinutes()).padStart(2, '0');
  return `${hh}:${mm} UTC on ${at.getUTCDate()} ${months[at.getUTCMonth()]} ${at.getUTCFullYear()}`;
}
