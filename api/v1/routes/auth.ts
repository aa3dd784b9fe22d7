/**
 * /api/v1/auth: registering with an email and a password, verifying the
 * email (code or link), logging in, refresh-token rotation, logging out,
 * login sessions, forgotten passwords; and POST /me/password.
 *
 * Decisions:
 * - Registering with an address that has an account answers 409 EMAIL_TAKEN.
 *   Registering logs the new account in (it answers tokens), so a "same
 *   answer either way" could not hide which addresses exist without handing
 *   out fake tokens; the per-IP and per-email limits bound how fast anyone
 *   can ask. Login and forgot-password do not tell whether an address exists.
 *   An address someone registered without owning it is won back by its owner
 *   with "forgot password" (a reset proves the mailbox, ends the squatter's
 *   sessions and verifies the address).
 * - Suspended accounts may log in, so they can see their account and
 *   invoices; core refuses their changes as the bots do. Deleted accounts
 *   cannot (deletion erases the email and the password).
 * - Forgot-password does its work after answering, so neither the answer nor
 *   its timing says whether the address has an account.
 */
import { z } from 'zod';
import {
  changePassword,
  checkPassword,
  confirmEmailCode,
  endAllLoginSessions,
  endLoginSession,
  getAccountView,
  listLoginSessions,
  normaliseEmail,
  registerWithPassword,
  requestPasswordReset,
  resetPasswordWithLink,
  rotateRefreshToken,
  sendVerificationEmail,
  startLoginSession,
  type IssuedRefreshToken,
} from '../../../core/accounts/index.js';
import { DomainError, isDomainError } from '../../../lib/errors.js';
import { emptyRoute, jsonRoute, type AnyRoute, type ApiDeps } from '../route.js';
import { objectId } from '../schemas.js';
import { accountView } from './account.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * Limits per client IP are loose: many customers reach us through mobile
 * carriers' shared addresses (CGNAT). The limits per email address are the
 * tight ones; they hold however many addresses an attacker has.
 */
export const AUTH_LIMITS = {
  registerPerIp: [
    { max: 10, windowMs: 10 * MINUTE },
    { max: 100, windowMs: 24 * HOUR },
  ],
  registerPerEmail: [{ max: 3, windowMs: HOUR }],
  loginPerIp: [
    { max: 20, windowMs: MINUTE },
    { max: 300, windowMs: HOUR },
  ],
  loginPerEmail: [{ max: 10, windowMs: 15 * MINUTE }],
  forgotPerIp: [
    { max: 10, windowMs: 15 * MINUTE },
    { max: 100, windowMs: 24 * HOUR },
  ],
  forgotPerEmail: [
    { max: 3, windowMs: HOUR },
    { max: 10, windowMs: 24 * HOUR },
  ],
} as const;

const email = z.string().max(254).describe('The account email address (any case).');
/** Strength is checked by core, which names the rule broken; here only the bounds. */
const password = z.string().min(1).max(1_000);

const tokens = z.object({
  accessToken: z.string().describe('JWT for `Authorization: Bearer`, valid 15 minutes.'),
  accessTokenExpiresAt: z.date(),
  refreshToken: z
    .string()
    .describe('Spend it at POST /auth/refresh for new tokens; it works once.'),
  refreshTokenExpiresAt: z.date(),
  sessionId: z.string(),
});

const loggedIn = tokens.extend({ account: accountView });

const message = z.object({ message: z.string() });

const sessionView = z.object({
  id: z.string(),
  current: z.boolean().describe('True for the session of the token making this request.'),
  createdAt: z.date(),
  lastUsedAt: z.date(),
  expiresAt: z.date(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
});

/** What a login session gives the client. */
function tokensFor(deps: ApiDeps, issued: IssuedRefreshToken): z.input<typeof tokens> {
  const access = deps.tokens.issue({ accountId: issued.accountId, sessionId: issued.sessionId });
  return {
    accessToken: access.accessToken,
    accessTokenExpiresAt: access.expiresAt,
    refreshToken: issued.refreshToken,
    refreshTokenExpiresAt: issued.refreshExpiresAt,
    sessionId: issued.sessionId,
  };
}

function authContext(deps: ApiDeps, log: ApiDeps['logger']) {
  return { clock: deps.clock, mailer: deps.mailer, logger: log, publicUrl: deps.publicUrl };
}

/** The email named in a public request's body, for the per-email limits. */
const bodyEmail = (body: { email: string }): string => body.email.trim().toLowerCase();

export const authRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'register',
    method: 'post',
    path: '/auth/register',
    tag: 'Auth',
    summary: 'Open an account with an email and a password',
    description:
      'Password rules: at least 10 characters, not only letters or only digits, not containing the first part of the email, not a common password; a refusal names the rule in `details.reason` (PASSWORD_TOO_SHORT, PASSWORD_ONE_KIND, PASSWORD_CONTAINS_EMAIL, PASSWORD_TOO_COMMON, PASSWORD_TOO_LONG). The email starts unverified: a 6-digit code and a one-click link are mailed to it; send the code to POST /auth/verify-email with the access token answered here. An address that has an account answers 409 with reason EMAIL_TAKEN (log in or reset the password).',
    access: 'public',
    status: 201,
    rateLimit: {
      name: 'register',
      perIp: AUTH_LIMITS.registerPerIp,
      perAccount: { rules: AUTH_LIMITS.registerPerEmail, subject: bodyEmail },
    },
    body: z.object({
      email,
      password,
      acceptTerms: z
        .literal(true, { message: 'Accept the terms of service to open an account.' })
        .describe('Must be true: the customer accepts the current terms of service.'),
    }),
    response: loggedIn.extend({
      verificationEmailSent: z
        .boolean()
        .describe('False when the mail could not be sent now: call /auth/verify-email/resend.'),
    }),
    async handler({ body, deps, ip, userAgent, log }) {
      const ctx = authContext(deps, log);
      const account = await registerWithPassword(ctx, body);
      const session = await startLoginSession(account.id, { ip, userAgent }, ctx);
      let verificationEmailSent = true;
      try {
        await sendVerificationEmail(ctx, account.id);
      } catch (error) {
        if (!isDomainError(error, ['UPSTREAM_FAILED', 'RATE_LIMITED'])) throw error;
        verificationEmailSent = false;
      }
      return { ...tokensFor(deps, session), account, verificationEmailSent };
    },
  }),

  jsonRoute({
    operationId: 'verifyEmail',
    method: 'post',
    path: '/auth/verify-email',
    tag: 'Auth',
    summary: 'Verify the email address with the mailed 6-digit code',
    description:
      'Five tries per code; a wrong code answers 400 with `details.attemptsLeft`; reasons WRONG_CODE, CODE_EXPIRED, TOO_MANY_ATTEMPTS, NO_CODE.',
    access: 'customer',
    verifiedEmail: false,
    rateLimit: {
      name: 'verify-email',
      perIp: [{ max: 30, windowMs: 15 * MINUTE }],
      perAccount: { rules: [{ max: 10, windowMs: 15 * MINUTE }] },
    },
    body: z.object({ code: z.string().max(20).describe('The 6 digits from the mail.') }),
    response: accountView,
    async handler({ body, caller, deps, log }) {
      return confirmEmailCode(authContext(deps, log), caller.accountId, body.code);
    },
  }),

  jsonRoute({
    operationId: 'resendVerificationEmail',
    method: 'post',
    path: '/auth/verify-email/resend',
    tag: 'Auth',
    summary: 'Mail a new verification code and link',
    description:
      'At most one a minute and five an hour per account (429 with Retry-After). 409 ALREADY_VERIFIED when the address is verified.',
    access: 'customer',
    verifiedEmail: false,
    status: 202,
    rateLimit: {
      name: 'verify-resend',
      perIp: [{ max: 20, windowMs: HOUR }],
      perAccount: {
        rules: [
          { max: 1, windowMs: MINUTE },
          { max: 5, windowMs: HOUR },
        ],
      },
    },
    response: z.object({ sentTo: z.string(), codeExpiresAt: z.date(), linkExpiresAt: z.date() }),
    async handler({ caller, deps, log }) {
      const sent = await sendVerificationEmail(authContext(deps, log), caller.accountId);
      return {
        sentTo: sent.sentTo,
        codeExpiresAt: sent.expiresAt,
        linkExpiresAt: sent.linkExpiresAt,
      };
    },
  }),

  jsonRoute({
    operationId: 'login',
    method: 'post',
    path: '/auth/login',
    tag: 'Auth',
    summary: 'Log in with email and password',
    description:
      'A wrong email and a wrong password answer the same 401 (reason INVALID_CREDENTIALS). Starts a login session: the refresh token keeps it going for up to 90 days (30 idle).',
    access: 'public',
    rateLimit: {
      name: 'login',
      perIp: AUTH_LIMITS.loginPerIp,
      perAccount: { rules: AUTH_LIMITS.loginPerEmail, subject: bodyEmail },
    },
    body: z.object({ email, password }),
    response: loggedIn,
    async handler({ body, deps, ip, userAgent, log }) {
      const ctx = authContext(deps, log);
      const { accountId } = await checkPassword(ctx, body);
      const session = await startLoginSession(accountId, { ip, userAgent }, ctx);
      log.info({ accountId, sessionId: session.sessionId }, 'auth.login');
      return { ...tokensFor(deps, session), account: await getAccountView(accountId) };
    },
  }),

  jsonRoute({
    operationId: 'refreshTokens',
    method: 'post',
    path: '/auth/refresh',
    tag: 'Auth',
    summary: 'Swap a refresh token for new tokens',
    description:
      'Each refresh token works once. Presenting one that was already used ends its whole session (401 REFRESH_REUSED): someone else may hold a copy. Other refusals: REFRESH_INVALID, REFRESH_EXPIRED, REFRESH_ENDED.',
    access: 'public',
    rateLimit: { name: 'refresh', perIp: [{ max: 60, windowMs: MINUTE }] },
    body: z.object({ refreshToken: z.string().max(200) }),
    response: tokens,
    async handler({ body, deps, log }) {
      const issued = await rotateRefreshToken(body.refreshToken, { clock: deps.clock });
      const account = await getAccountView(issued.accountId).catch(() => null);
      if (!account || account.status === 'deleted') {
        await endAllLoginSessions(issued.accountId, 'account_deleted', deps);
        throw new DomainError('UNAUTHENTICATED', 'The session was ended. Log in again.', {
          details: { reason: 'REFRESH_ENDED' },
        });
      }
      log.info({ accountId: issued.accountId, sessionId: issued.sessionId }, 'auth.refreshed');
      return tokensFor(deps, issued);
    },
  }),

  emptyRoute({
    operationId: 'logout',
    method: 'post',
    path: '/auth/logout',
    tag: 'Auth',
    summary: 'End this login session',
    description: 'Its access and refresh tokens stop working at once.',
    access: 'customer',
    verifiedEmail: false,
    status: 204,
    async handler({ caller, deps }) {
      await endLoginSession(caller.accountId, caller.sessionId, 'logout', deps);
    },
  }),

  jsonRoute({
    operationId: 'logoutAll',
    method: 'post',
    path: '/auth/logout-all',
    tag: 'Auth',
    summary: 'End every login session of the account, this one included',
    access: 'customer',
    verifiedEmail: false,
    response: z.object({ sessionsEnded: z.number().int() }),
    async handler({ caller, deps }) {
      return {
        sessionsEnded: await endAllLoginSessions(caller.accountId, 'logout_all', deps),
      };
    },
  }),

  jsonRoute({
    operationId: 'listSessions',
    method: 'get',
    path: '/auth/sessions',
    tag: 'Auth',
    summary: 'The live login sessions of the account, newest first',
    access: 'customer',
    verifiedEmail: false,
    response: z.object({ sessions: z.array(sessionView) }),
    async handler({ caller, deps }) {
      const sessions = await listLoginSessions(caller.accountId, deps);
      return {
        sessions: sessions.map((session) => ({
          ...session,
          current: session.id === caller.sessionId,
        })),
      };
    },
  }),

  emptyRoute({
    operationId: 'endSession',
    method: 'delete',
    path: '/auth/sessions/:id',
    tag: 'Auth',
    summary: 'End one login session of the account (e.g. a lost phone)',
    description: 'A session that is not this account’s, or already ended, answers 404.',
    access: 'customer',
    verifiedEmail: false,
    status: 204,
    params: z.object({ id: objectId }),
    async handler({ caller, params, deps }) {
      await endLoginSession(caller.accountId, params.id, 'revoked', deps);
    },
  }),

  jsonRoute({
    operationId: 'forgotPassword',
    method: 'post',
    path: '/auth/forgot-password',
    tag: 'Auth',
    summary: 'Mail a link to choose a new password',
    description:
      'Always answers 202, whether or not the address has an account; if it has, a link that works once for 30 minutes is mailed to it.',
    access: 'public',
    status: 202,
    rateLimit: {
      name: 'forgot',
      perIp: AUTH_LIMITS.forgotPerIp,
      perAccount: { rules: AUTH_LIMITS.forgotPerEmail, subject: bodyEmail },
    },
    body: z.object({ email }),
    response: message,
    handler({ body, deps, log }) {
      const address = normaliseEmail(body.email);
      // Answered before the work is done, so the time taken does not tell
      // whether the address has an account.
      void requestPasswordReset(authContext(deps, log), address).catch((error: unknown) => {
        log.error({ err: error }, 'auth.forgot_password_failed');
      });
      return Promise.resolve({
        message:
          'If an account has this address, we mailed it a link to choose a new password. It works once, for 30 minutes.',
      });
    },
  }),

  emptyRoute({
    operationId: 'resetPassword',
    method: 'post',
    path: '/auth/reset-password',
    tag: 'Auth',
    summary: 'Choose a new password with the token from a reset link',
    description:
      'The token is the `token` parameter of the mailed link. Every login session of the account ends, and the address counts as verified. Refusals: 400 with reason LINK_INVALID, LINK_EXPIRED, LINK_USED or a password rule.',
    access: 'public',
    status: 204,
    rateLimit: { name: 'reset', perIp: [{ max: 20, windowMs: 15 * MINUTE }] },
    body: z.object({ token: z.string().max(200), password }),
    async handler({ body, deps, log }) {
      await resetPasswordWithLink(authContext(deps, log), body.token, body.password);
    },
  }),

  jsonRoute({
    operationId: 'changePassword',
    method: 'post',
    path: '/me/password',
    tag: 'Auth',
    summary: 'Change the password',
    description:
      'Needs the current password (400 WRONG_PASSWORD otherwise). Every other login session ends; this one goes on. The owner is told by email.',
    access: 'customer',
    verifiedEmail: false,
    rateLimit: { name: 'change-password', perAccount: { rules: [{ max: 10, windowMs: HOUR }] } },
    body: z.object({ currentPassword: password, newPassword: password }),
    response: z.object({ otherSessionsEnded: z.number().int() }),
    async handler({ body, caller, deps, log }) {
      return changePassword(authContext(deps, log), {
        accountId: caller.accountId,
        currentPassword: body.currentPassword,
        newPassword: body.newPassword,
        keepSessionId: caller.sessionId,
      });
    },
  }),
];
