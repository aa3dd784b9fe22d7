/**
 * Finding a customer the way an admin names them (an email, an account id, a
 * phone number or Telegram id, `tg:<id>` / `wa:<number>`) and the report
 * `/user` shows: the account, its plan, its data this period, its wallet,
 * its latest payments and its open tunnels.
 */
import { Types } from 'mongoose';
import { DomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity, type Channel } from '../../models/channel-identity.js';
import { GatewayPresence } from '../../models/gateway-presence.js';
import { Notification } from '../../models/notification.js';
import { Payment, type PaymentPurpose, type PaymentStatus } from '../../models/payment.js';
import type { SubscriptionStatus } from '../../models/subscription.js';
import { Wallet } from '../../models/wallet.js';
import { getProxyCredentials } from '../proxy-credentials.js';
import { getQuotaUsage } from '../quota.js';
import { getCurrentSubscription } from '../subscriptions.js';
import { getSeat } from '../team.js';
import { recordView, requireAdmin, type AdminContext } from './context.js';

/** A gateway that has not written its presence this long is taken as gone. */
export const PRESENCE_FRESH_MS = 10_000;

const RECENT_PAYMENTS = 5;

/** Who an admin named: enough to say it back in a confirmation. */
export interface AccountSummary {
  id: string;
  email: string | null;
  status: 'active' | 'suspended' | 'deleted';
  roles: string[];
  identities: { channel: Channel; externalId: string }[];
  createdAt: Date;
}

export interface PaymentLine {
  reference: string;
  purpose: PaymentPurpose;
  planCode: string | null;
  amountMinor: number;
  refundedMinor: number;
  currency: Currency;
  status: PaymentStatus;
  needsReview: boolean;
  /** When it was paid, else when it was opened. */
  at: Date;
}

export interface UserReport {
  account: AccountSummary;
  flags: { kind: string; reason: string; at: Date }[];
  subscription: {
    planCode: string;
    status: SubscriptionStatus;
    periodEnd: Date | null;
    trialEndsAt: Date | null;
    graceEndsAt: Date | null;
    cancelAtPeriodEnd: boolean;
  } | null;
  /** Set when the account is a seat on someone's team. */
  teamOwnerId: string | null;
  usage: { usedBytes: number; limitBytes: number; periodEnd: Date } | null;
  wallet: { balanceMinor: number; currency: Currency } | null;
  proxyUsername: string | null;
  openTunnels: number;
  payments: PaymentLine[];
  /** What the customer was told lately, newest first, and how each channel fared (for support). */
  notifications: NotificationLine[];
}

export interface NotificationLine {
  event: string;
  at: Date;
  deliveries: {
    channel: string;
    status: string;
    attempts: number;
    sentAt: Date | null;
    lastError: string | null;
  }[];
}

const RECENT_NOTIFICATIONS = 10;

interface StoredNotification {
  event: string;
  createdAt: Date;
  deliveries: Record<
    string,
    | {
        channel: string;
        status: string;
        attempts: number;
        sentAt?: Date | null;
        lastError?: string | null;
      }
    | null
    | undefined
  >;
}

function notificationLine(n: StoredNotification): NotificationLine {
  return {
    event: n.event,
    at: n.createdAt,
    deliveries: Object.values(n.deliveries ?? {})
      .filter((d): d is NonNullable<typeof d> => d !== null && d !== undefined)
      .map((d) => ({
        channel: d.channel,
        status: d.status,
        attempts: d.attempts,
        sentAt: d.sentAt ?? null,
        lastError: d.lastError ?? null,
      })),
  };
}

interface StoredAccount {
  _id: Types.ObjectId;
  email?: string | null;
  status: AccountSummary['status'];
  roles: string[];
  flags?: { kind: string; reason: string; at: Date }[];
  createdAt: Date;
}

function notFound(query: string): DomainError {
  return new DomainError('NOT_FOUND', `No customer matches "${query}".`, { details: { query } });
}

/**
 * The account an admin means by `query`: a 24-hex account id, an email, a
 * `tg:<id>` or `wa:<number>`, or bare digits (a WhatsApp number or a
 * Telegram id; refused as ambiguous when both name different accounts).
 */
export async function resolveAccountId(query: string): Promise<Types.ObjectId> {
  const text = query.trim();
  if (text === '') {
    throw new DomainError('VALIDATION_FAILED', 'Name a customer: email, account id or phone.', {
      details: { field: 'user' },
    });
  }
  if (/^[0-9a-f]{24}$/i.test(text)) {
    const id = new Types.ObjectId(text);
    if (await Account.exists({ _id: id })) return id;
    throw notFound(text);
  }
  if (text.includes('@')) {
    const account = await Account.findOne({ email: text.toLowerCase() }, { _id: 1 }).lean<{
      _id: Types.ObjectId;
    }>();
    if (account) return account._id;
    throw notFound(text);
  }
  const prefixed = /^(tg|wa):\s*(.+)$/i.exec(text);
  const channels: Channel[] = prefixed
    ? [prefixed[1]?.toLowerCase() === 'tg' ? 'telegram' : 'whatsapp']
    : ['telegram', 'whatsapp'];
  const number = (prefixed?.[2] ?? text).replace(/[\s()+-]/g, '');
  if (!/^\d{4,20}$/.test(number)) throw notFound(text);
  const identities = await ChannelIdentity.find(
    { channel: { $in: channels }, externalId: number },
    { accountId: 1 },
  ).lean<{ accountId: Types.ObjectId }[]>();
  const ids = [...new Set(identities.map((identity) => String(identity.accountId)))];
  if (ids.length === 0 || ids[0] === undefined) throw notFound(text);
  if (ids.length > 1) {
    throw new DomainError(
      'CONFLICT',
      `"${text}" is a Telegram id of one customer and a WhatsApp number of another: write tg:${number} or wa:${number}.`,
      { details: { query: text } },
    );
  }
  return new Types.ObjectId(ids[0]);
}

async function summary(
  id: Types.ObjectId,
): Promise<{ account: AccountSummary; flags: UserReport['flags'] }> {
  const [stored, identities] = await Promise.all([
    Account.findById(id, {
      email: 1,
      status: 1,
      roles: 1,
      flags: 1,
      createdAt: 1,
    }).lean<StoredAccount>(),
    ChannelIdentity.find({ accountId: id }, { channel: 1, externalId: 1 })
      .sort({ channel: 1 })
      .lean<{ channel: Channel; externalId: string }[]>(),
  ]);
  if (!stored) throw notFound(String(id));
  return {
    account: {
      id: String(stored._id),
      email: stored.email ?? null,
      status: stored.status,
      roles: [...stored.roles],
      identities: identities.map(({ channel, externalId }) => ({ channel, externalId })),
      createdAt: stored.createdAt,
    },
    flags: (stored.flags ?? []).map(({ kind, reason, at }) => ({ kind, reason, at })),
  };
}

/**
 * Who `query` names, for a confirmation ("Suspend bob@example.com?"): the
 * account and its chats; recorded as `user.looked_up`, so even a command
 * the admin then cancels leaves a trace.
 */
export async function lookupAccount(ctx: AdminContext, query: string): Promise<AccountSummary> {
  await requireAdmin(ctx, 'user.lookup');
  const { account } = await summary(await resolveAccountId(query));
  await recordView(ctx, 'user.looked_up', { kind: 'account', id: account.id }, { query });
  return account;
}

/** Open tunnels per account across the gateways alive now. */
export async function openTunnelsByAccount(now: Date): Promise<Map<string, number>> {
  const fresh = await GatewayPresence.find({
    heartbeatAt: { $gt: new Date(now.getTime() - PRESENCE_FRESH_MS) },
  }).lean<{ openTunnels: { accountId: string; count: number }[] }[]>();
  const totals = new Map<string, number>();
  for (const gateway of fresh) {
    for (const { accountId, count } of gateway.openTunnels) {
      totals.set(accountId, (totals.get(accountId) ?? 0) + count);
    }
  }
  return totals;
}

interface StoredPayment {
  reference: string;
  purpose: PaymentPurpose;
  planCode?: string | null;
  amountMinor: number;
  refundedMinor?: number | null;
  currency: Currency;
  status: PaymentStatus;
  needsReviewAt?: Date | null;
  paidAt?: Date | null;
  openedAt: Date;
}

export function paymentLine(payment: StoredPayment): PaymentLine {
  return {
    reference: payment.reference,
    purpose: payment.purpose,
    planCode: payment.planCode ?? null,
    amountMinor: payment.amountMinor,
    refundedMinor: payment.refundedMinor ?? 0,
    currency: payment.currency,
    status: payment.status,
    needsReview: Boolean(payment.needsReviewAt),
    at: payment.paidAt ?? payment.openedAt,
  };
}

/** `/user`: everything an admin needs about one customer; recorded as `user.viewed`. */
export async function findUser(ctx: AdminContext, query: string): Promise<UserReport> {
  await requireAdmin(ctx, 'user.view');
  const id = await resolveAccountId(query);
  const now = ctx.clock.now();
  const [
    { account, flags },
    subscription,
    seat,
    wallet,
    credentials,
    tunnels,
    payments,
    notifications,
  ] = await Promise.all([
    summary(id),
    getCurrentSubscription(id),
    getSeat(id),
    Wallet.findOne({ accountId: id }, { balanceMinor: 1, currency: 1 }).lean<{
      balanceMinor: number;
      currency: Currency;
    }>(),
    getProxyCredentials(id),
    openTunnelsByAccount(now),
    Payment.find({ accountId: id })
      .sort({ createdAt: -1 })
      .limit(RECENT_PAYMENTS)
      .lean<StoredPayment[]>(),
    Notification.find({ accountId: id }, { event: 1, createdAt: 1, deliveries: 1 })
      .sort({ createdAt: -1 })
      .limit(RECENT_NOTIFICATIONS)
      .lean<StoredNotification[]>(),
  ]);
  // A seat's data is its owner's pool (the seat's own cap counter is the team page's business).
  const usage = await getQuotaUsage(seat ? seat.ownerAccountId : id, now);
  await recordView(ctx, 'user.viewed', { kind: 'account', id: account.id }, { query });
  return {
    account,
    flags,
    subscription: subscription
      ? {
          planCode: subscription.planCode,
          status: subscription.status,
          periodEnd: subscription.periodEnd ?? null,
          trialEndsAt: subscription.trialEndsAt ?? null,
          graceEndsAt: subscription.graceEndsAt ?? null,
          cancelAtPeriodEnd: subscription.cancelAtPeriodEnd,
        }
      : null,
    teamOwnerId: seat ? seat.ownerAccountId : null,
    usage: usage
      ? { usedBytes: usage.usedBytes, limitBytes: usage.limitBytes, periodEnd: usage.periodEnd }
      : null,
    wallet: wallet ? { balanceMinor: wallet.balanceMinor, currency: wallet.currency } : null,
    proxyUsername: credentials?.username ?? null,
    openTunnels: tunnels.get(account.id) ?? 0,
    payments: payments.map(paymentLine),
    notifications: notifications.map(notificationLine),
  };
}
