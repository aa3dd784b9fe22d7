/**
 * Giving a customer something for free: data added to the current quota
 * window (`grantData`), or days added to the plan (`extendPlan`). Both are
 * keyed by the admin's request id, so a repeated command gives once.
 *
 * Extending moves the date that ends access, with one conditional update on
 * the subscription's status and revision (as core/subscriptions.ts does for
 * its transitions) and a line in its history that names the request:
 *   active (a paid period)  -> periodEnd + days; the renewal is charged later,
 *                              from the new end (renewals re-anchor there);
 *   trialing                -> trialEndsAt (and the trial's quota window) + days;
 *                              the deposit comes back at the new end;
 *   past due                -> graceEndsAt + days: more time to pay.
 * Days count from the later of that date and now, so extending a lapsed date
 * gives the full number of days from today. Pay as you go has no end to move.
 */
import type { Types } from 'mongoose';
import { DomainError } from '../../lib/errors.js';
import { QuotaUsage } from '../../models/quota-usage.js';
import {
  Subscription,
  type SubscriptionData,
  type SubscriptionRecord,
} from '../../models/subscription.js';
import { getPlan } from '../plans.js';
import {
  addQuotaBytes,
  openQuotaPeriod,
  planWindowRequest,
  type QuotaPeriodView,
} from '../quota.js';
import { currentQuotaWindow, getLiveSubscription } from '../subscriptions.js';
import { getSeat } from '../team.js';
import { audited, checkRequestId, entry, requireAdmin, type AdminContext } from './context.js';
import { resolveAccountId } from './users.js';

const DAY_MS = 86_400_000;
const GB = 1_000_000_000;
/** The most one grant may add: 10 TB. */
export const MAX_GRANT_BYTES = 10_000 * GB;
/** The most one extension may add. */
export const MAX_EXTEND_DAYS = 366;
const MAX_ATTEMPTS = 5;

export interface GrantDataInput {
  /** Who: an email, account id or phone (core/admin/users.ts). */
  user: string;
  bytes: number;
  /** One per admin command: a repeat adds once. */
  requestId: string;
  reason?: string;
}

export interface GrantDataOutcome {
  accountId: string;
  bytes: number;
  /** The window the bytes went to, after the grant. */
  period: QuotaPeriodView;
}

async function runningSubscription(accountId: Types.ObjectId): Promise<SubscriptionRecord> {
  const sub = await getLiveSubscription(accountId);
  if (sub && sub.status !== 'pending_payment') return sub;
  const seat = await getSeat(accountId);
  throw new DomainError(
    'CONFLICT',
    seat
      ? 'This customer is on a team: give data or days to the team owner.'
      : 'This customer has no running plan.',
    { details: { accountId: String(accountId), teamOwnerId: seat?.ownerAccountId ?? null } },
  );
}

/** Adds `bytes` to the customer's current quota window; recorded as `grant.data`. */
export async function grantData(
  ctx: AdminContext,
  input: GrantDataInput,
): Promise<GrantDataOutcome> {
  await requireAdmin(ctx, 'grant.data');
  const requestId = checkRequestId(input.requestId);
  if (!Number.isSafeInteger(input.bytes) || input.bytes <= 0 || input.bytes > MAX_GRANT_BYTES) {
    throw new DomainError('VALIDATION_FAILED', 'Grant from 1 byte to 10,000 GB.', {
      details: { field: 'bytes' },
    });
  }
  const accountId = await resolveAccountId(input.user);
  const sub = await runningSubscription(accountId);
  const plan = await getPlan(sub.planCode);
  if (!plan.quota) {
    throw new DomainError(
      'CONFLICT',
      `The ${plan.name} plan has no data allowance to raise (credit the wallet instead).`,
      { details: { planCode: plan.code } },
    );
  }
  const quota = plan.quota;
  // Scoped by admin: two admins who happen to pick the same request id both give.
  const key = `admin-grant:${ctx.actor.accountId}:${requestId}`;
  return audited(
    ctx,
    entry(
      ctx,
      'grant.data',
      { kind: 'account', id: String(accountId) },
      { bytes: input.bytes, planCode: plan.code, reason: input.reason ?? null, requestId },
      `grant.data:${ctx.actor.accountId}:${requestId}`,
    ),
    async () => {
      const now = ctx.clock.now();
      // The gateway opens a window at the first connection; a grant before that opens it here.
      const window = currentQuotaWindow(sub, now);
      if (window) await openQuotaPeriod(accountId, planWindowRequest(window, quota));
      const period = await addQuotaBytes(accountId, input.bytes, now, { key });
      if (!period) {
        throw new DomainError('CONFLICT', 'This customer has no data window open right now.', {
          details: { accountId: String(accountId) },
        });
      }
      return { accountId: String(accountId), bytes: input.bytes, period };
    },
  );
}

export interface ExtendPlanInput {
  user: string;
  days: number;
  requestId: string;
  reason?: string;
}

export interface ExtendPlanOutcome {
  accountId: string;
  planCode: string;
  /** Which date moved. */
  field: 'periodEnd' | 'trialEndsAt' | 'graceEndsAt';
  from: Date;
  to: Date;
  /** false when this request had extended it already (a repeat). */
  changed: boolean;
}

type EndField = ExtendPlanOutcome['field'];

function endFieldOf(sub: SubscriptionRecord): EndField {
  switch (sub.status) {
    case 'trialing':
      return 'trialEndsAt';
    case 'past_due':
      return 'graceEndsAt';
    case 'active':
      if (sub.planKind === 'payg' || !sub.periodEnd) {
        throw new DomainError(
          'CONFLICT',
          'Pay as you go has no end date to move: credit the wallet instead.',
          { details: { planCode: sub.planCode } },
        );
      }
      return 'periodEnd';
    default:
      throw new DomainError('CONFLICT', 'This customer has no running plan.', {
        details: { status: sub.status },
      });
  }
}

/** Adds `days` to the customer's plan (see the file comment); recorded as `grant.days`. */
export async function extendPlan(
  ctx: AdminContext,
  input: ExtendPlanInput,
): Promise<ExtendPlanOutcome> {
  await requireAdmin(ctx, 'grant.days');
  const requestId = checkRequestId(input.requestId);
  if (!Number.isSafeInteger(input.days) || input.days < 1 || input.days > MAX_EXTEND_DAYS) {
    throw new DomainError('VALIDATION_FAILED', `Extend by 1 to ${MAX_EXTEND_DAYS} days.`, {
      details: { field: 'days' },
    });
  }
  const accountId = await resolveAccountId(input.user);
  const first = await runningSubscription(accountId);
  endFieldOf(first);
  const mark = `admin ${ctx.actor.accountId} request ${requestId}`;
  return audited(
    ctx,
    entry(
      ctx,
      'grant.days',
      { kind: 'account', id: String(accountId) },
      { days: input.days, planCode: first.planCode, reason: input.reason ?? null, requestId },
      `grant.days:${ctx.actor.accountId}:${requestId}`,
    ),
    async () => {
      const outcome = await moveEnd(first._id, input.days, mark, ctx.clock.now());
      if (outcome.field === 'trialEndsAt') await stretchTrialWindow(outcome.subscription);
      const { subscription: _sub, ...rest } = outcome;
      return { accountId: String(accountId), ...rest };
    },
  );
}

async function moveEnd(
  subscriptionId: Types.ObjectId,
  days: number,
  mark: string,
  now: Date,
): Promise<Omit<ExtendPlanOutcome, 'accountId'> & { subscription: SubscriptionRecord }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const sub = await Subscription.findById(subscriptionId).lean<SubscriptionRecord>();
    if (!sub) throw new DomainError('NOT_FOUND', 'That subscription does not exist.');
    const field = endFieldOf(sub);
    const current = sub[field] ?? now;
    const done = sub.history.find((step) => step.reason.includes(mark));
    if (done) {
      return {
        planCode: sub.planCode,
        field,
        from: current,
        to: current,
        changed: false,
        subscription: sub,
      };
    }
    const from = new Date(Math.max(current.getTime(), now.getTime()));
    const to = new Date(from.getTime() + days * DAY_MS);
    const $set: Partial<SubscriptionData> & { updatedAt: Date } = { [field]: to, updatedAt: now };
    // A trial's period and quota window end with the trial.
    if (field === 'trialEndsAt') Object.assign($set, { periodEnd: to, quotaPeriodEnd: to });
    const updated = await Subscription.findOneAndUpdate(
      { _id: sub._id, status: sub.status, revision: sub.revision },
      {
        $set,
        $inc: { revision: 1 },
        $push: {
          history: {
            from: sub.status,
            to: sub.status,
            at: now,
            reason: `${field} extended by ${days} days (${mark})`,
          },
        },
      },
      { returnDocument: 'after', timestamps: false },
    ).lean<SubscriptionRecord>();
    if (updated) {
      return {
        planCode: updated.planCode,
        field,
        from: current,
        to,
        changed: true,
        subscription: updated,
      };
    }
  }
  throw new DomainError('CONFLICT', 'The plan is being changed by another request; try again.');
}

/**
 * The trial's data counter ends with the trial: moved to the new end (a
 * repeat finds it moved already). Only the trial's own window is touched.
 */
async function stretchTrialWindow(sub: SubscriptionRecord): Promise<void> {
  const start = sub.quotaAnchorAt ?? sub.periodStart;
  const end = sub.trialEndsAt;
  if (!start || !end) return;
  await QuotaUsage.updateOne(
    { accountId: sub.accountId, periodStart: start, periodEnd: { $lt: end } },
    { $set: { periodEnd: end } },
  );
}
