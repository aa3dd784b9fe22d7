/**
 * A message from the business to many customers at once, through the
 * notification outbox (core/notifications.ts): one `broadcast` item per
 * recipient, which each channel's process delivers at its own pace (the
 * Telegram adapter keeps to Telegram's flood limits) and which customers who
 * muted broadcasts get as `skipped`.
 *
 *   countBroadcast  -> how many customers the segment holds now (the chat
 *                      asks "Send to N customers?" with this)
 *   sendBroadcast   -> per-admin rate limit -> audit `broadcast.sent` (with
 *                      the count) -> one outbox item per recipient, keyed by
 *                      the request id
 *
 * A repeat of the same request (a retried command, a process that died half
 * way) is not counted against the limit again and writes only the items that
 * are missing, so nobody gets a broadcast twice.
 *
 * Segments: `all` (every signed-up customer), `plan:<code>` (a live
 * subscription on that plan), `payg` (= plan:payg) and `past_due`. Suspended
 * and deleted accounts get nothing.
 */
import type { Types } from 'mongoose';
import { DomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { AuditEntry } from '../../models/audit-entry.js';
import { Subscription } from '../../models/subscription.js';
import { recordAudit } from '../audit.js';
import { takeRateLimit, type RateLimitRule } from '../accounts/rate-limit.js';
import { notify } from '../notifications.js';
import { getPlan } from '../plans.js';
import { audited, checkRequestId, entry, requireAdmin, type AdminContext } from './context.js';

/** How often one admin may broadcast: once in 10 minutes, 5 times a day. */
export const BROADCAST_LIMITS: readonly RateLimitRule[] = [
  { max: 1, windowMs: 10 * 60_000 },
  { max: 5, windowMs: 24 * 3_600_000 },
];
/** Telegram's limit for one message is 4096 characters; leave room for the frame. */
export const MAX_BROADCAST_LENGTH = 3_500;
/** Outbox items written at once. */
const WRITE_CONCURRENCY = 20;

export type BroadcastSegment = 'all' | 'payg' | 'past_due' | `plan:${string}`;

/** The segment an admin typed (`all`, `payg`, `past_due`, `plan:starter`), checked. */
export async function parseSegment(text: string): Promise<BroadcastSegment> {
  const segment = text.trim().toLowerCase();
  if (segment === 'all' || segment === 'payg' || segment === 'past_due') return segment;
  const plan = /^plan:([a-z0-9_-]{1,40})$/.exec(segment);
  if (plan?.[1]) {
    const found = await getPlan(plan[1]);
    return `plan:${found.code}`;
  }
  throw new DomainError(
    'VALIDATION_FAILED',
    'Send to all, payg, past_due or plan:<code> (e.g. plan:starter).',
    { details: { field: 'segment' } },
  );
}

async function recipients(segment: BroadcastSegment): Promise<Types.ObjectId[]> {
  if (segment === 'all') {
    const accounts = await Account.find(
      {
        status: 'active',
        emailVerifiedAt: { $exists: true },
        termsAcceptedAt: { $exists: true },
      },
      { _id: 1 },
    ).lean<{ _id: Types.ObjectId }[]>();
    return accounts.map((account) => account._id);
  }
  const filter: Record<string, unknown> =
    segment === 'past_due'
      ? { status: 'past_due' }
      : {
          status: { $in: ['trialing', 'active', 'past_due'] },
          planCode: segment === 'payg' ? 'payg' : segment.slice('plan:'.length),
        };
  const subscriptions = await Subscription.find(filter, { accountId: 1 }).lean<
    { accountId: Types.ObjectId }[]
  >();
  if (subscriptions.length === 0) return [];
  const active = await Account.find(
    { _id: { $in: subscriptions.map((s) => s.accountId) }, status: 'active' },
    { _id: 1 },
  ).lean<{ _id: Types.ObjectId }[]>();
  return active.map((account) => account._id);
}

/** How many customers `segment` reaches now; recorded as `broadcast.counted`. */
export async function countBroadcast(
  ctx: AdminContext,
  segment: BroadcastSegment,
): Promise<{ segment: BroadcastSegment; recipients: number }> {
  await requireAdmin(ctx, 'broadcast.count');
  const count = (await recipients(segment)).length;
  await recordAudit(
    entry(ctx, 'broadcast.counted', { kind: 'segment', id: segment }, { recipients: count }),
    { clock: ctx.clock },
  );
  return { segment, recipients: count };
}

export interface BroadcastInput {
  segment: BroadcastSegment;
  text: string;
  /** One per broadcast: a repeat finishes the same broadcast. */
  requestId: string;
}

export interface BroadcastOutcome {
  broadcastId: string;
  recipients: number;
  /** Outbox items written by this call (fewer on a repeat). */
  queued: number;
}

/** Queues the message for every customer of the segment; rate-limited per admin. */
export async function sendBroadcast(
  ctx: AdminContext,
  input: BroadcastInput,
): Promise<BroadcastOutcome> {
  const admin = await requireAdmin(ctx, 'broadcast.send');
  const requestId = checkRequestId(input.requestId);
  const text = input.text.trim();
  if (text === '' || text.length > MAX_BROADCAST_LENGTH) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `A broadcast is 1 to ${MAX_BROADCAST_LENGTH} characters.`,
      { details: { field: 'text' } },
    );
  }
  const key = `broadcast.sent:${admin.accountId}:${requestId}`;
  const now = ctx.clock.now();
  if (!(await AuditEntry.exists({ key }))) {
    const limit = await takeRateLimit(`admin-broadcast:${admin.accountId}`, BROADCAST_LIMITS, now);
    if (!limit.ok) {
      await recordAudit(
        entry(
          ctx,
          'broadcast.rate_limited',
          { kind: 'broadcast', id: requestId },
          { segment: input.segment, retryAfterSeconds: limit.retryAfterSeconds },
        ),
        { clock: ctx.clock },
      );
      const minutes = Math.ceil(limit.retryAfterSeconds / 60);
      throw new DomainError(
        'RATE_LIMITED',
        `You broadcast a moment ago; the next one can go in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
        {
          details: {
            retryAfterMs: limit.retryAfterSeconds * 1000,
            retryAfterSeconds: limit.retryAfterSeconds,
          },
        },
      );
    }
  }
  const accountIds = await recipients(input.segment);
  return audited(
    ctx,
    entry(
      ctx,
      'broadcast.sent',
      { kind: 'broadcast', id: requestId },
      { segment: input.segment, recipients: accountIds.length, text },
      key,
    ),
    async () => {
      let queued = 0;
      for (let i = 0; i < accountIds.length; i += WRITE_CONCURRENCY) {
        const batch = accountIds.slice(i, i + WRITE_CONCURRENCY);
        const results = await Promise.all(
          batch.map((accountId) =>
            notify(
              {
                accountId,
                event: 'broadcast',
                period: requestId,
                data: { text, broadcastId: requestId },
              },
              { clock: ctx.clock },
            ),
          ),
        );
        queued += results.filter((result) => result.created).length;
      }
      return { broadcastId: requestId, recipients: accountIds.length, queued };
    },
  );
}
