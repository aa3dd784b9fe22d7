/**
 * Passwords of the REST API: the strength rules, how a password is stored,
 * registering with one, checking one at login, and changing one.
 *
 * Storage: `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (salt and hash base64url),
 * so the cost travels with each hash and can be raised later: a login with a
 * hash made at an older cost stores a new one (`needsRehash`). The cost,
 * N = 2^15, r = 8, p = 3 (32 MiB, about 150 ms on one core), is one of the
 * equivalent settings OWASP lists for scrypt
 * (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#scrypt).
 *
 * A login with an unknown email, or an account without a password (chat
 * only), checks the password against a dummy hash of the same cost, so the
 * answer takes as long as a wrong password and tells nothing.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { Account } from '../../models/account.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { normaliseEmail } from './email.js';
import { endAllLoginSessions } from './login-sessions.js';
import { acceptTerms } from './terms.js';
import { accountNotFound, type AccountRecord, type AccountView } from './view.js';

export const PASSWORD_MIN_LENGTH = 10;
/** Long enough for any passphrase; bounds the work one login can ask of scrypt. */
export const PASSWORD_MAX_LENGTH = 128;

export interface PasswordContext {
  clock: Clock;
  mailer: Mailer;
  logger?: Logger | undefined;
}

/** Which strength rule a password broke (the API answers it in `details.reason`). */
export type WeakPasswordReason =
  | 'PASSWORD_TOO_SHORT'
  | 'PASSWORD_TOO_LONG'
  | 'PASSWORD_ONE_KIND'
  | 'PASSWORD_CONTAINS_EMAIL'
  | 'PASSWORD_TOO_COMMON';

/**
 * Passwords (and their stems, once digits and symbols around them are
 * stripped) that lists of leaked passwords put at the top. Short on purpose:
 * the length rule already turns away most of any longer list.
 */
const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  'password',
  'passw0rd',
  'p@ssw0rd',
  'p@ssword',
  'qwerty',
  'qwertyuiop',
  'qwertyuiop[]',
  'asdfghjkl',
  'zxcvbnm',
  'letmein',
  'welcome',
  'iloveyou',
  'admin',
  'administrator',
  'monkey',
  'dragon',
  'football',
  'baseball',
  'sunshine',
  'princess',
  'superman',
  'batman',
  'trustno',
  'master',
  'shadow',
  'changeme',
  'secret',
  'login',
  'abc',
  'abcdefghij',
  'atlantic',
  'proxy',
  '1q2w3e4r5t',
  'q1w2e3r4t5',
  '1qaz2wsx3edc',
  '1qaz2wsx',
  'zaq12wsx',
  'qazwsx',
]);

/**
 * Null when `password` may be used by the owner of `email`; otherwise the
 * first rule it breaks, with a sentence saying what to do.
 */
export function weakPassword(
  password: string,
  email: string | null | undefined,
): { reason: WeakPasswordReason; message: string } | null {
  if (password.length < PASSWORD_MIN_LENGTH) {
    return {
      reason: 'PASSWORD_TOO_SHORT',
      message: `Use at least ${PASSWORD_MIN_LENGTH} characters for your password.`,
    };
  }
  if (password.length > PASSWORD_MAX_LENGTH) {
    return {
      reason: 'PASSWORD_TOO_LONG',
      message: `Use at most ${PASSWORD_MAX_LENGTH} characters for your password.`,
    };
  }
  if (/^\p{L}+$/u.test(password) || /^\p{N}+$/u.test(password)) {
    return {
      reason: 'PASSWORD_ONE_KIND',
      message:
        'A password of only letters or only digits is easy to guess: mix in digits, letters or symbols.',
    };
  }
  const lower = password.toLowerCase();
  const local = email?.split('@')[0]?.toLowerCase() ?? '';
  if (local.length >= 3 && lower.includes(local)) {
    return {
      reason: 'PASSWORD_CONTAINS_EMAIL',
      message: 'Your password must not contain your email address or its first part.',
    };
  }
  const stem = lower.replace(/^[^\p{L}]+/u, '').replace(/[^\p{L}]+$/u, '');
  if (COMMON_PASSWORDS.has(lower) || COMMON_PASSWORDS.has(stem)) {
    return {
      reason: 'PASSWORD_TOO_COMMON',
      message:
        'That password is among the first that attackers try. Choose something less common, e.g. a few unrelated words with a digit.',
    };
  }
  return null;
}

/** VALIDATION_FAILED (details.field `field`, details.reason the rule) unless the password is strong enough. */
export function assertStrongPassword(
  password: string,
  email: string | null | undefined,
  field = 'password',
): void {
  const weak = weakPassword(password, email);
  if (weak) {
    throw new DomainError('VALIDATION_FAILED', weak.message, {
      details: { field, reason: weak.reason },
    });
  }
}

// --- storage ------------------------------------------------------------------

interface ScryptCost {
  logN: number;
  r: number;
  p: number;
}

const COST: ScryptCost = { logN: 15, r: 8, p: 3 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

function scryptKey(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.logN;
  return new Promise((resolve, reject) => {
    // scrypt needs 128 * N * r bytes; Node refuses above `maxmem` (32 MiB by default).
    const maxmem = 256 * N * cost.r;
    scrypt(
      password.normalize('NFKC'),
      salt,
      KEY_BYTES,
      { N, r: cost.r, p: cost.p, maxmem },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** A salted scrypt hash of `password`, with its cost, ready to store. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptKey(password, salt, COST);
  return [
    'scrypt',
    COST.logN,
    COST.r,
    COST.p,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

interface ParsedHash extends ScryptCost {
  salt: Buffer;
  key: Buffer;
}

const HASH_PATTERN = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([\w-]{16,64})\$([\w-]{32,128})$/;

function parseHash(stored: string): ParsedHash | null {
  const match = HASH_PATTERN.exec(stored);
  if (!match) return null;
  const [logN, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Bounds, so a damaged record cannot make one login take minutes or gigabytes.
  if (logN < 10 || logN > 20 || r < 1 || r > 16 || p < 1 || p > 16) return null;
  return {
    logN,
    r,
    p,
    salt: Buffer.from(match[4] as string, 'base64url'),
    key: Buffer.from(match[5] as string, 'base64url'),
  };
}

/** True when `password` is the one hashed into `stored`; compared in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await scryptKey(password, parsed.salt, parsed);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** True when `stored` was made at another cost than today's (store a new hash at the next login). */
export function needsRehash(stored: string): boolean {
  const parsed = parseHash(stored);
  return !parsed || parsed.logN !== COST.logN || parsed.r !== COST.r || parsed.p !== COST.p;
}

let dummyHash: Promise<string> | undefined;

/** Spends the time of one password check, for logins that have no hash to check against. */
async function checkAgainstDummy(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummyHash);
}

// --- accounts -----------------------------------------------------------------

function invalidCredentials(): DomainError {
  return new DomainError('UNAUTHENTICATED', 'That email and password do not match an account.', {
    details: { reason: 'INVALID_CREDENTIALS' },
  });
}

function emailTaken(): DomainError {
  return new DomainError(
    'CONFLICT',
    'An account with this email already exists. Log in, or reset your password if you forgot it (an account made in chat can set one from the bot: Account, then Set a password).',
    { details: { field: 'email', reason: 'EMAIL_TAKEN' } },
  );
}

type PasswordRecord = AccountRecord & { passwordHash?: string | null };

/**
 * Opens an account with an email (not yet verified) and a password, with the
 * current terms accepted. CONFLICT (EMAIL_TAKEN) when an account has the
 * address; VALIDATION_FAILED for a bad address or a weak password
 * (details.reason names the rule).
 */
export async function registerWithPassword(
  ctx: PasswordContext,
  input: { email: string; password: string },
): Promise<AccountView> {
  const email = normaliseEmail(input.email);
  assertStrongPassword(input.password, email);
  if (await Account.exists({ email })) throw emailTaken();
  const passwordHash = await hashPassword(input.password);
  let id;
  try {
    const account = await Account.create({
      email,
      passwordHash,
      passwordChangedAt: ctx.clock.now(),
    });
    id = account._id;
  } catch (error) {
    if (isDuplicateKeyError(error)) throw emailTaken();
    throw error;
  }
  ctx.logger?.info({ accountId: String(id) }, 'account.registered');
  return acceptTerms(ctx, id);
}

/**
 * The account whose email and password these are. A wrong password, an
 * unknown email, an account without a password and a deleted account all
 * answer the same UNAUTHENTICATED (details.reason INVALID_CREDENTIALS), in
 * the same time. Suspended accounts may log in: the API shows them their
 * account and refuses changes the way the bots do.
 */
export async function checkPassword(
  ctx: PasswordContext,
  input: { email: string; password: string },
): Promise<{ accountId: string }> {
  const email = input.email.trim().toLowerCase();
  const account = email
    ? await Account.findOne({ email, status: { $ne: 'deleted' } })
        .select('+passwordHash')
        .lean<PasswordRecord>()
    : null;
  const stored = account?.passwordHash;
  if (!account || !stored || input.password.length > PASSWORD_MAX_LENGTH) {
    await checkAgainstDummy(input.password.slice(0, PASSWORD_MAX_LENGTH));
    throw invalidCredentials();
  }
  if (!(await verifyPassword(input.password, stored))) throw invalidCredentials();
  if (needsRehash(stored)) {
    // Same password, today's cost; only if nobody changed it meanwhile.
    await Account.updateOne(
      { _id: account._id, passwordHash: stored },
      { $set: { passwordHash: await hashPassword(input.password) } },
    );
  }
  return { accountId: String(account._id) };
}

/**
 * Stores a new password for the account (already checked for strength by
 * the caller) and, when `emailVerified`, marks the address it was proven for
 * verified. NOT_FOUND for a deleted account.
 */
export async function storePassword(
  ctx: PasswordContext,
  accountId: AccountId,
  password: string,
  options: { verifiedEmail?: string } = {},
): Promise<void> {
  const id = toAccountId(accountId);
  const now = ctx.clock.now();
  const passwordHash = await hashPassword(password);
  const stored = await Account.updateOne(
    { _id: id, status: { $ne: 'deleted' } },
    { $set: { passwordHash, passwordChangedAt: now } },
  );
  if (stored.matchedCount === 0) throw accountNotFound(id);
  if (options.verifiedEmail) {
    await Account.updateOne(
      { _id: id, email: options.verifiedEmail, emailVerifiedAt: { $exists: false } },
      { $set: { emailVerifiedAt: now }, $unset: { emailFailingSince: 1, emailFailingReason: 1 } },
    );
  }
}

/**
 * Changes the password of a logged-in account after checking the current
 * one, and ends every other login session (`keepSessionId` stays). Wrong
 * current password: VALIDATION_FAILED (details.reason WRONG_PASSWORD); an
 * account without one: VALIDATION_FAILED NO_PASSWORD. The owner is told by email.
 */
export async function changePassword(
  ctx: PasswordContext,
  input: {
    accountId: AccountId;
    currentPassword: string;
    newPassword: string;
    keepSessionId: string;
  },
): Promise<{ otherSessionsEnded: number }> {
  const id = toAccountId(input.accountId);
  const account = await Account.findOne({ _id: id, status: { $ne: 'deleted' } })
    .select('+passwordHash')
    .lean<PasswordRecord>();
  if (!account) throw accountNotFound(id);
  if (!account.passwordHash) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'This account has no password yet. Use "forgot password" to set one.',
      { details: { field: 'currentPassword', reason: 'NO_PASSWORD' } },
    );
  }
  if (
    input.currentPassword.length > PASSWORD_MAX_LENGTH ||
    !(await verifyPassword(input.currentPassword, account.passwordHash))
  ) {
    throw new DomainError('VALIDATION_FAILED', 'Your current password is not right.', {
      details: { field: 'currentPassword', reason: 'WRONG_PASSWORD' },
    });
  }
  assertStrongPassword(input.newPassword, account.email, 'newPassword');
  if (input.newPassword === input.currentPassword) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'The new password is the same as the current one. Choose another.',
      { details: { field: 'newPassword', reason: 'PASSWORD_UNCHANGED' } },
    );
  }
  await storePassword(ctx, id, input.newPassword);
  const otherSessionsEnded = await endAllLoginSessions(
    id,
    'password_changed',
    ctx,
    input.keepSessionId,
  );
  ctx.logger?.info({ accountId: String(id), otherSessionsEnded }, 'account.password_changed');
  if (account.email) await tellPasswordChanged(ctx, account.email);
  return { otherSessionsEnded };
}

/** A note to the owner that the password changed, so a change they did not make is noticed. Best effort. */
export async function tellPasswordChanged(ctx: PasswordContext, email: string): Promise<void> {
  try {
    await ctx.mailer.send({
      to: email,
      subject: 'Your Atlantic password was changed',
      text: [
        'The password of your Atlantic account was just changed, and other logins to the API were ended.',
        '',
        'If you did not do this, reset your password at once ("forgot password") and contact Atlantic support.',
      ].join('\n'),
    });
  } catch (error) {
    ctx.logger?.warn({ err: error }, 'account.password_notice_not_sent');
  }
}
