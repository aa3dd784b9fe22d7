/**
 * Server-rendered pages that links in emails (and the bot) land on:
 *
 *   GET  /account/verify-email?token=   verifies the address, says so
 *   GET  /account/reset-password?token= a form to choose a password
 *   POST /account/reset-password        sets it (the token rides in the form)
 *
 * Small plain HTML: every dynamic value escaped, no scripts, no outside
 * assets, a strict Content-Security-Policy of their own, never cached. The
 * form needs no CSRF token: the single-use link token in its body is the
 * only authority it carries, and a page on another site cannot know it.
 * Showing the form does not spend the token (mail scanners open links);
 * sending the form does.
 */
import express, { type Request, type Response } from 'express';
import {
  PASSWORD_MIN_LENGTH,
  inspectPasswordLink,
  resetPasswordWithLink,
  verifyEmailByLink,
} from '../../core/accounts/index.js';
import { hashedRateLimitKey, takeRateLimit } from '../../core/accounts/rate-limit.js';
import { isDomainError } from '../../lib/errors.js';
import { requestIdOf } from '../app.js';
import { unsubscribe } from '../../core/email/unsubscribe.js';
import type { ApiDeps } from './route.js';

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Form posts per IP: plenty for a person mistyping, little for a script. */
const FORM_LIMITS = [{ max: 20, windowMs: 15 * 60_000 }] as const;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

interface PageContent {
  /** Plain text (escaped here). */
  title: string;
  /** Plain text paragraphs (escaped here). */
  paragraphs: readonly string[];
  /** Already-escaped HTML after the paragraphs (a form). */
  html?: string;
  /** `data-outcome` on the heading, for tests and monitoring. */
  outcome: string;
}

function render(page: PageContent): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.title)} · Atlantic</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b2733}
h1{font-size:1.5rem}label{display:block;margin:1rem 0 .3rem}
input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.6rem 1rem;border:0;border-radius:.4rem;background:#0b5cad;color:#fff;font-size:1rem}
.error{color:#a40e26;font-weight:600}.hint{color:#5b6b7a;font-size:.9rem}
</style>
</head>
<body>
<h1 data-outcome="${escapeHtml(page.outcome)}">${escapeHtml(page.title)}</h1>
${page.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
${page.html ?? ''}
</body>
</html>
`;
}

function send(res: Response, status: number, page: PageContent): void {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('referrer-policy', 'no-referrer');
  res.status(status).type('html').send(render(page));
}

/** The text of a refused link, for people. */
function linkProblem(reason: unknown, what: 'verify' | 'password'): PageContent {
  const askAgain =
    what === 'verify'
      ? 'Log in to the app and ask for a new verification email.'
      : 'Ask for a new link: "Forgot password" in the app, or Account → Set a password in the chat.';
  if (reason === 'LINK_EXPIRED') {
    return {
      title: 'This link has expired',
      paragraphs: ['Links work for a limited time, to keep your account safe.', askAgain],
      outcome: 'expired',
    };
  }
  if (reason === 'LINK_USED') {
    return {
      title: 'This link was already used',
      paragraphs: ['Each link works once.', askAgain],
      outcome: 'used',
    };
  }
  return {
    title: 'This link does not work',
    paragraphs: [
      'It may be incomplete (copy the whole link from the message) or a newer link replaced it.',
      askAgain,
    ],
    outcome: 'invalid',
  };
}

function tokenOf(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, 200) : '';
}

function passwordForm(token: string, email: string, error?: string): string {
  return `${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/account/reset-password">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<input type="hidden" name="username" autocomplete="username" value="${escapeHtml(email)}">
<label for="password">New password</label>
<input id="password" type="password" name="password" autocomplete="new-password" required minlength="${PASSWORD_MIN_LENGTH}" maxlength="128">
<label for="confirm">The same password again</label>
<input id="confirm" type="password" name="confirm" autocomplete="new-password" required minlength="${PASSWORD_MIN_LENGTH}" maxlength="128">
<p class="hint">At least ${PASSWORD_MIN_LENGTH} characters, not only letters or only digits, without your email address, and not a common password.</p>
<button type="submit">Save password</button>
</form>`;
}

function passwordPage(
  purpose: 'password_reset' | 'password_set',
  token: string,
  email: string,
  error?: string,
): PageContent {
  return {
    title: purpose === 'password_set' ? 'Set a password for the API' : 'Choose a new password',
    paragraphs: [
      `Account: ${email}`,
      purpose === 'password_set'
        ? 'With it you log in to the Atlantic API with your email address. Saving it logs out any other API logins.'
        : 'Saving it logs you out of the API everywhere; log in again with the new password.',
    ],
    html: passwordForm(token, email, error),
    outcome: error ? 'retry' : 'form',
  };
}

export function accountPages(deps: ApiDeps): express.Router {
  const router = express.Router();
  const ctx = {
    clock: deps.clock,
    mailer: deps.mailer,
    logger: deps.logger,
    publicUrl: deps.publicUrl,
  };

  const failed = (req: Request, res: Response, error: unknown): void => {
    const requestId = requestIdOf(req);
    req.log.error({ err: error }, 'page.failed');
    send(res, 500, {
      title: 'Something went wrong',
      paragraphs: [`Please try again in a moment. If it keeps happening, quote ref ${requestId}.`],
      outcome: 'error',
    });
  };

  router.get('/account/verify-email', async (req, res) => {
    try {
      const verified = await verifyEmailByLink(ctx, tokenOf(req.query.token));
      send(res, 200, {
        title: verified.alreadyVerified ? 'Already verified' : 'Email verified',
        paragraphs: [
          verified.alreadyVerified
            ? `${verified.email} was already verified. Nothing more to do.`
            : `Thank you: ${verified.email} is verified. You can close this page and carry on in the app.`,
        ],
        outcome: verified.alreadyVerified ? 'already' : 'verified',
      });
    } catch (error) {
      if (isDomainError(error, 'VALIDATION_FAILED')) {
        send(res, 400, linkProblem(error.details?.reason, 'verify'));
        return;
      }
      failed(req, res, error);
    }
  });

  router.get('/account/reset-password', async (req, res) => {
    const token = tokenOf(req.query.token);
    try {
      const live = await inspectPasswordLink(ctx, token);
      const purpose = live.purpose === 'password_set' ? 'password_set' : 'password_reset';
      send(res, 200, passwordPage(purpose, token, live.email));
    } catch (error) {
      if (isDomainError(error, 'VALIDATION_FAILED')) {
        send(res, 400, linkProblem(error.details?.reason, 'password'));
        return;
      }
      failed(req, res, error);
    }
  });

  router.post(
    '/account/reset-password',
    express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }),
    async (req, res) => {
      const form = (req.body ?? {}) as Record<string, unknown>;
      const token = tokenOf(form.token);
      const password = typeof form.password === 'string' ? form.password : '';
      const confirm = typeof form.confirm === 'string' ? form.confirm : '';
      try {
        const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
        const limit = await takeRateLimit(
          hashedRateLimitKey('page-reset-password-ip', ip),
          FORM_LIMITS,
          deps.clock.now(),
        );
        if (!limit.ok) {
          res.setHeader('retry-after', String(limit.retryAfterSeconds));
          send(res, 429, {
            title: 'Too many attempts',
            paragraphs: [`Try again in ${Math.ceil(limit.retryAfterSeconds / 60)} minutes.`],
            outcome: 'rate_limited',
          });
          return;
        }
        const live = await inspectPasswordLink(ctx, token);
        const purpose = live.purpose === 'password_set' ? 'password_set' : 'password_reset';
        if (password !== confirm) {
          send(
            res,
            400,
            passwordPage(purpose, token, live.email, 'The two passwords are not the same.'),
          );
          return;
        }
        try {
          await resetPasswordWithLink(ctx, token, password);
        } catch (error) {
          const reason = isDomainError(error, 'VALIDATION_FAILED') ? error.details?.reason : '';
          if (typeof reason === 'string' && reason.startsWith('PASSWORD_')) {
            send(
              res,
              400,
              passwordPage(purpose, token, live.email, error instanceof Error ? error.message : ''),
            );
            return;
          }
          throw error;
        }
        send(res, 200, {
          title: 'Password saved',
          paragraphs: [
            `Log in to the Atlantic API as ${live.email} with your new password.`,
            'Every earlier API login has ended.',
          ],
          outcome: 'saved',
        });
      } catch (error) {
        if (isDomainError(error, 'VALIDATION_FAILED')) {
          send(res, 400, linkProblem(error.details?.reason, 'password'));
          return;
        }
        failed(req, res, error);
      }
    },
  );

  const links = deps.unsubscribe;
  if (links) {
    // One-click unsubscribe (core/email/unsubscribe.ts). Opening the link
    // shows a button (mail scanners open links; only a POST mutes); mail
    // clients POST to the same URL (RFC 8058), token in the query.
    const unsubscribeForm = (token: string): string =>
      `<form method="post" action="/account/unsubscribe"><input type="hidden" name="token" value="${escapeHtml(token)}"><button type="submit">Stop these emails</button></form>`;
    const badLink: PageContent = {
      title: 'This link does not work',
      paragraphs: [
        'It may be incomplete: copy the whole link from the email. You can also turn emails off in the chat: Account → Notifications.',
      ],
      outcome: 'invalid',
    };
    const label = (event: string): string => event.replace(/_/g, ' ');

    router.get('/account/unsubscribe', (req, res) => {
      const token = tokenOf(req.query.token);
      const found = links.verify(token);
      if (!found) {
        send(res, 400, badLink);
        return;
      }
      send(res, 200, {
        title: `Stop "${label(found.event)}" emails?`,
        paragraphs: [
          'You will no longer get these emails. Payment receipts and other messages about your money still come.',
        ],
        html: unsubscribeForm(token),
        outcome: 'form',
      });
    });

    router.post(
      '/account/unsubscribe',
      express.urlencoded({ extended: false, limit: '2kb', parameterLimit: 5 }),
      async (req, res) => {
        const form = (req.body ?? {}) as Record<string, unknown>;
        const token = tokenOf(form.token) || tokenOf(req.query.token);
        const found = links.verify(token);
        if (!found) {
          send(res, 400, badLink);
          return;
        }
        try {
          await unsubscribe(found.accountId, found.event);
          req.log.info({ accountId: found.accountId, event: found.event }, 'email.unsubscribed');
          send(res, 200, {
            title: 'Done',
            paragraphs: [
              `You will no longer get "${label(found.event)}" emails.`,
              'Changed your mind? Turn them back on in the chat: Account → Notifications.',
            ],
            outcome: 'unsubscribed',
          });
        } catch (error) {
          failed(req, res, error);
        }
      },
    );
  }

  return router;
}
