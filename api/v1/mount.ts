/**
 * Turns route declarations (api/v1/route.ts) into Express handlers. Every
 * request passes the same gates, in this order, each answering with the JSON
 * error contract (api/errors.ts):
 *
 *   per-IP rate limit -> bearer token -> live session and account -> admin role
 *   -> verified email -> params/query/body (zod) -> per-account rate limit
 *   -> plan feature -> handler -> response schema
 *
 * A refused admin attempt is audited by core/admin's requireAdmin.
 */
import type { Request, Response, Router } from 'express';
import { Types } from 'mongoose';
import type { z } from 'zod';
import { DomainError, isDomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { isSessionLive } from '../../core/accounts/login-sessions.js';
import { hashedRateLimitKey, takeRateLimit } from '../../core/accounts/rate-limit.js';
import { requireAdmin } from '../../core/admin/index.js';
import { getLiveSubscription } from '../../core/subscriptions.js';
import { getPlan } from '../../core/plans.js';
import { getSeat } from '../../core/team.js';
import { requestIdOf } from '../app.js';
import type { AnyRoute, ApiDeps, Caller, PlanFeature, RateLimitSpec } from './route.js';

/** Mounts each declared route on `router` behind the gates; a route declared twice is a bug. */
export function mountRoutes(router: Router, routes: readonly AnyRoute[], deps: ApiDeps): void {
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) throw new Error(`route declared twice: ${key}`);
    seen.add(key);
    router[route.method](route.path, async (req, res, next) => {
      try {
        await serve(route, req, res, deps);
      } catch (error) {
        // Every RATE_LIMITED (ours below, core's email codes, link attempts, broadcasts)
        // says when to come back in its details.
        const retryAfter = isDomainError(error, 'RATE_LIMITED')
          ? error.details?.retryAfterSeconds
          : undefined;
        if (typeof retryAfter === 'number' && !res.headersSent) {
          res.setHeader('retry-after', String(retryAfter));
        }
        next(error);
      }
    });
  }
}

async function serve(route: AnyRoute, req: Request, res: Response, deps: ApiDeps): Promise<void> {
  const now = deps.clock.now();
  const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  if (route.rateLimit?.perIp) {
    await limit(route.rateLimit, 'ip', ip, route.rateLimit.perIp, now);
  }

  let caller: Caller | null = null;
  if (route.access !== 'public') {
    caller = await authenticate(req, deps, now);
    if (route.access === 'admin') {
      await requireAdmin(
        {
          actor: { accountId: caller.accountId, channel: 'api' },
          clock: deps.clock,
          configuredAdmins: deps.configuredAdmins,
        },
        route.operationId,
      );
    }
    if ((route.verifiedEmail ?? true) && !caller.emailVerified) {
      throw new DomainError(
        'FORBIDDEN',
        'Verify your email address first: use the code or link we sent you (POST /api/v1/auth/verify-email/resend sends a new one).',
        { details: { reason: 'EMAIL_NOT_VERIFIED' } },
      );
    }
  }

  const params = parse(route.params, req.params, 'params');
  const query = parse(route.query, req.query, 'query');
  if (route.headers) parse(route.headers, req.headers, 'headers');
  const body = parse(route.body, req.body ?? {}, 'body');

  const perAccount = route.rateLimit?.perAccount;
  if (route.rateLimit && perAccount) {
    const subject = perAccount.subject?.(body) ?? caller?.accountId;
    if (subject !== undefined) {
      await limit(route.rateLimit, 'account', subject.toLowerCase(), perAccount.rules, now);
    }
  }

  if (route.planFeature && caller) await requirePlanFeature(caller.accountId, route.planFeature);

  const answer = await route.handler({
    params,
    query,
    body,
    caller,
    ip,
    userAgent: req.get('user-agent'),
    header: (name) => req.get(name),
    requestId: requestIdOf(req),
    deps,
    log: req.log,
  });

  if (route.file !== undefined) {
    const file = answer as { body: Buffer; filename: string };
    res.setHeader('content-type', route.file);
    res.setHeader(
      'content-disposition',
      `attachment; filename="${file.filename.replace(/[^\w.-]/g, '_')}"`,
    );
    res.status(route.status ?? 200).send(file.body);
    return;
  }
  if (route.status === 204 || route.response === undefined) {
    res.status(204).end();
    return;
  }
  const checked = route.response.safeParse(answer);
  if (!checked.success) {
    // Our own answer broke our own description: a bug, never the client's fault.
    req.log.error(
      { issues: checked.error.issues, route: route.operationId },
      'api.response_invalid',
    );
    throw new Error(`response of ${route.operationId} does not match its schema`);
  }
  res.status(route.status ?? 200).json(checked.data);
}

function parse(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return where === 'body' ? undefined : {};
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  const first = issues[0];
  throw new DomainError(
    'VALIDATION_FAILED',
    first ? `${first.path}: ${first.message}` : `The request ${where} is not valid.`,
    { details: { issues } },
  );
}

async function limit(
  spec: RateLimitSpec,
  scope: 'ip' | 'account',
  subject: string,
  rules: NonNullable<RateLimitSpec['perIp']>,
  now: Date,
): Promise<void> {
  const outcome = await takeRateLimit(
    hashedRateLimitKey(`api-${spec.name}-${scope}`, subject),
    rules,
    now,
  );
  if (outcome.ok) return;
  throw new DomainError(
    'RATE_LIMITED',
    `Too many attempts. Try again in ${outcome.retryAfterSeconds} seconds.`,
    { details: { retryAfterSeconds: outcome.retryAfterSeconds, scope } },
  );
}

interface StoredCaller {
  _id: Types.ObjectId;
  email?: string | null;
  emailVerifiedAt?: Date | null;
  status: Caller['status'];
  roles: string[];
}

/** The caller behind `Authorization: Bearer <access token>`, or UNAUTHENTICATED. */
async function authenticate(req: Request, deps: ApiDeps, now: Date): Promise<Caller> {
  const header = req.get('authorization');
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) {
    throw new DomainError(
      'UNAUTHENTICATED',
      'Log in first: send `Authorization: Bearer <access token>` (POST /api/v1/auth/login gives one).',
      { details: { reason: 'TOKEN_MISSING' } },
    );
  }
  const claims = deps.tokens.verify(match[1] as string);
  if (!Types.ObjectId.isValid(claims.accountId)) {
    throw new DomainError('UNAUTHENTICATED', 'That access token is not valid.', {
      details: { reason: 'TOKEN_INVALID' },
    });
  }
  const [account, live] = await Promise.all([
    Account.findById(claims.accountId, {
      email: 1,
      emailVerifiedAt: 1,
      status: 1,
      roles: 1,
    }).lean<StoredCaller>(),
    isSessionLive(claims.accountId, claims.sessionId, now),
  ]);
  if (!account || account.status === 'deleted' || !live) {
    throw new DomainError('UNAUTHENTICATED', 'This login session has ended. Log in again.', {
      details: { reason: 'SESSION_ENDED' },
    });
  }
  return {
    accountId: String(account._id),
    sessionId: claims.sessionId,
    roles: [...account.roles],
    email: account.email ?? null,
    emailVerified: Boolean(account.email && account.emailVerifiedAt),
    status: account.status,
  };
}

const featureRefusals: Record<PlanFeature, { message: string; planCode: string; text: string }> = {
  seats: {
    message: 'Team seats come with the Team plan. Upgrade to Team to invite members.',
    planCode: 'team',
    text: 'Upgrade to Team for seats',
  },
};

/** Refuses (FORBIDDEN, reason PLAN_FEATURE_REQUIRED) unless the caller's live plan has the feature. */
async function requirePlanFeature(accountId: string, feature: PlanFeature): Promise<void> {
  if (feature === 'seats') {
    const live = await getLiveSubscription(accountId);
    const plan =
      live && live.status !== 'pending_payment'
        ? await getPlan(live.planCode).catch(() => null)
        : null;
    if (plan && (plan.seats ?? 1) > 1 && !(await getSeat(accountId))) return;
  }
  throw planFeatureRefusal(feature);
}

/**
 * The refusal of a route that needs a plan feature (FORBIDDEN, reason
 * PLAN_FEATURE_REQUIRED, with the upgrade that lifts it); `message` words it
 * for a route that also serves people without the feature.
 */
export function planFeatureRefusal(feature: PlanFeature, message?: string): DomainError {
  const refusal = featureRefusals[feature];
  return new DomainError('FORBIDDEN', message ?? refusal.message, {
    details: {
      reason: 'PLAN_FEATURE_REQUIRED',
      feature,
      upgrade: { action: 'upgrade', planCode: refusal.planCode, text: refusal.text },
    },
  });
}
