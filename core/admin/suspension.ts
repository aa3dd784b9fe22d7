/**
 * Suspending an account switches its service off everywhere: the gateways
 * read account status with every refresh of the facts they hold (about every
 * half second) and cut the account's live tunnels with ACCOUNT_SUSPENDED, and
 * refuse new ones; a team owner's suspension switches the seats off too
 * (core/proxy-credentials.ts). The plan, the wallet and the data are left as
 * they are, so unsuspending gives everything back.
 *
 * Renewals are held while an account is suspended (core/payments/renewals.ts:
 * no charge for a service that is off). Unsuspending an account whose paid
 * period ended meanwhile moves that period end to the moment of
 * unsuspension, so the next renewal starts then and the suspended time is
 * not billed.
 *
 * Each is one conditional update from the status it leaves; asking for the
 * status the account already has is a no-op (`changed: false`).
 */
import { DomainError } from '../../lib/errors.js';
import type { Types } from 'mongoose';
import { Account } from '../../models/account.js';
import { Subscription } from '../../models/subscription.js';
import { audited, entry, requireAdmin, type AdminContext } from './context.js';
import { resolveAccountId } from './users.js';

export interface SuspensionOutcome {
  accountId: string;
  status: 'active' | 'suspended';
  /** false when the account already had that status. */
  changed: boolean;
}

async function setStatus(
  ctx: AdminContext,
  user: string,
  to: 'active' | 'suspended',
  reason: string | undefined,
): Promise<SuspensionOutcome> {
  const verb = to === 'suspended' ? 'suspend' : 'unsuspend';
  const admin = await requireAdmin(ctx, `account.${verb}`);
  const accountId = await resolveAccountId(user);
  const from = to === 'suspended' ? 'active' : 'suspended';
  if (to === 'suspended' && String(accountId) === admin.accountId) {
    throw new DomainError('CONFLICT', 'You cannot suspend your own account.');
  }
  const current = await Account.findById(accountId, { status: 1 }).lean<{ status: string }>();
  if (current?.status === to) return { accountId: String(accountId), status: to, changed: false };
  if (current?.status !== from) {
    throw new DomainError('CONFLICT', `This account is ${current?.status ?? 'gone'}.`, {
      details: { accountId: String(accountId), status: current?.status ?? null },
    });
  }
  return audited(
    ctx,
    entry(
      ctx,
      to === 'suspended' ? 'account.suspended' : 'account.unsuspended',
      { kind: 'account', id: String(accountId) },
      { reason: reason?.trim() || null },
    ),
    async () => {
      const moved = await Account.updateOne(
        { _id: accountId, status: from },
        { $set: { status: to } },
      );
      if (moved.modifiedCount === 1) {
        if (to === 'active') await restartLapsedPeriod(accountId, ctx.clock.now());
        return { accountId: String(accountId), status: to, changed: true };
      }
      const now = await Account.findById(accountId, { status: 1 }).lean<{ status: string }>();
      if (now?.status === to) return { accountId: String(accountId), status: to, changed: false };
      throw new DomainError('CONFLICT', `This account is ${now?.status ?? 'gone'}.`);
    },
  );
}

/** Suspends the account; its live tunnels are cut within a second or two. */
export function suspendAccount(
  ctx: AdminContext,
  input: { user: string; reason?: string },
): Promise<SuspensionOutcome> {
  return setStatus(ctx, input.user, 'suspended', input.reason);
}

/** Gives a suspended account its service back. */
export function unsuspendAccount(
  ctx: AdminContext,
  input: { user: string; reason?: string },
): Promise<SuspensionOutcome> {
  return setStatus(ctx, input.user, 'active', input.reason);
}

/**
 * The period end of an active plan that ran out while the account was
 * suspended (its renewal was held) moves to `now`: the renewal pass charges
 * the next period from now. A plan set to cancel, or not yet due, is left alone.
 */
async function restartLapsedPeriod(accountId: Types.ObjectId, now: Date): Promise<void> {
  await Subscription.updateOne(
    {
      liveAccountId: accountId,
      status: 'active',
      planKind: 'recurring',
      cancelAtPeriodEnd: { $ne: true },
      periodEnd: { $lt: now },
    },
    {
      $set: { periodEnd: now, updatedAt: now },
      $inc: { revision: 1 },
      $push: {
        history: {
          from: 'active',
          to: 'active',
          at: now,
          reason: 'period end moved to the unsuspension: the suspended time is not billed',
        },
      },
    },
    { timestamps: false },
  );
}
