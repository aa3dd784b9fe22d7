/**
 * `/stats`: the business at a glance. Customers, live subscriptions by plan,
 * money in (paid payments) and back out (processed refunds) today, over 7 and
 * over 30 days, tunnels open now on the gateways alive, and the bytes relayed
 * today. "Today" is the UTC day; 7 and 30 days are counted back from now.
 * A handful of aggregations, each answered from an index or a small scan.
 */
import type { Currency } from '../../lib/money.js';
import { Account } from '../../models/account.js';
import { Payment } from '../../models/payment.js';
import { Refund } from '../../models/refund.js';
import { Subscription, liveSubscriptionStatuses } from '../../models/subscription.js';
import { ALL_LOCATIONS, UsageBucket } from '../../models/usage-bucket.js';
import { recordView, requireAdmin, type AdminContext } from './context.js';
import { openTunnelsByAccount } from './users.js';

const DAY_MS = 86_400_000;

export interface MoneyWindow {
  /** Paid payments in the window, per currency, minor units. */
  inMinor: Partial<Record<Currency, number>>;
  /** Refunds processed in the window, per currency, minor units. */
  refundedMinor: Partial<Record<Currency, number>>;
}

export interface AdminStats {
  at: Date;
  customers: {
    /** Accounts not deleted. */
    total: number;
    /** With a verified email and the terms accepted. */
    signedUp: number;
    suspended: number;
  };
  /** Live subscriptions (trialing, active, past due) per plan, with how many are past due. */
  subscriptions: { planCode: string; live: number; pastDue: number }[];
  revenue: { today: MoneyWindow; days7: MoneyWindow; days30: MoneyWindow };
  tunnels: { open: number; accounts: number };
  /** Billed bytes relayed since the start of the UTC day (both directions). */
  bytesToday: number;
}

async function moneyWindow(since: Date, until: Date): Promise<MoneyWindow> {
  const [paid, refunded] = await Promise.all([
    Payment.aggregate<{ _id: Currency; total: number }>([
      { $match: { status: 'paid', paidAt: { $gte: since, $lte: until } } },
      { $group: { _id: '$currency', total: { $sum: '$amountMinor' } } },
    ]),
    Refund.aggregate<{ _id: Currency; total: number }>([
      { $match: { status: 'processed', processedAt: { $gte: since, $lte: until } } },
      { $group: { _id: '$currency', total: { $sum: '$amountMinor' } } },
    ]),
  ]);
  const byCurrency = (rows: { _id: Currency; total: number }[]) =>
    Object.fromEntries(rows.map((row) => [row._id, row.total])) as Partial<
      Record<Currency, number>
    >;
  return { inMinor: byCurrency(paid), refundedMinor: byCurrency(refunded) };
}

function startOfUtcDay(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

/** The figures of `/stats`; recorded as `stats.viewed`. */
export async function getStats(ctx: AdminContext): Promise<AdminStats> {
  await requireAdmin(ctx, 'stats');
  const now = ctx.clock.now();
  const today = startOfUtcDay(now);
  const [total, signedUp, suspended, subscriptions, day, week, month, tunnels, bytes] =
    await Promise.all([
      Account.countDocuments({ status: { $ne: 'deleted' } }),
      Account.countDocuments({
        status: { $ne: 'deleted' },
        emailVerifiedAt: { $exists: true },
        termsAcceptedAt: { $exists: true },
      }),
      Account.countDocuments({ status: 'suspended' }),
      Subscription.aggregate<{ _id: { plan: string; status: string }; count: number }>([
        { $match: { status: { $in: [...liveSubscriptionStatuses] } } },
        { $group: { _id: { plan: '$planCode', status: '$status' }, count: { $sum: 1 } } },
      ]),
      moneyWindow(today, now),
      moneyWindow(new Date(now.getTime() - 7 * DAY_MS), now),
      moneyWindow(new Date(now.getTime() - 30 * DAY_MS), now),
      openTunnelsByAccount(now),
      UsageBucket.aggregate<{ bytes: number }>([
        { $match: { hourStart: { $gte: today }, location: { $ne: ALL_LOCATIONS } } },
        { $group: { _id: null, bytes: { $sum: { $add: ['$bytesUp', '$bytesDown'] } } } },
      ]),
    ]);
  const plans = new Map<string, { live: number; pastDue: number }>();
  for (const row of subscriptions) {
    // A checkout not paid yet is not a subscription anyone has.
    if (row._id.status === 'pending_payment') continue;
    const plan = plans.get(row._id.plan) ?? { live: 0, pastDue: 0 };
    plan.live += row.count;
    if (row._id.status === 'past_due') plan.pastDue += row.count;
    plans.set(row._id.plan, plan);
  }
  const stats: AdminStats = {
    at: now,
    customers: { total, signedUp, suspended },
    subscriptions: [...plans]
      .map(([planCode, counts]) => ({ planCode, ...counts }))
      .sort((a, b) => b.live - a.live || a.planCode.localeCompare(b.planCode)),
    revenue: { today: day, days7: week, days30: month },
    tunnels: {
      open: [...tunnels.values()].reduce((sum, count) => sum + count, 0),
      accounts: tunnels.size,
    },
    bytesToday: bytes[0]?.bytes ?? 0,
  };
  await recordView(ctx, 'stats.viewed', { kind: 'business', id: 'stats' });
  return stats;
}
