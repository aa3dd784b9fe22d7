/**
 * Deleting an account: what goes, what stays, and in which order.
 *
 * ACCOUNT_DELETION_POLICY is the one list of both, in the words shown to the
 * customer before they confirm; deleteAccount reports a count per erased
 * item under the same keys, and the tests check every item of both lists
 * against the database, so the promise and the behaviour cannot drift apart.
 *
 * Order, so that a deletion that dies half way is safe and a retry finishes it:
 *   1. the audit entry (one per account, keyed), before anything moves;
 *   2. status 'deleted', the email, the API password and login sessions
 *      erased: from here the API refuses the account's tokens, notifications are
 *      skipped and the gateways refuse the account;
 *   3. the service ended: live subscription cancelled now (no refund), proxy
 *      credentials revoked (open tunnels are cut), team seats and invites gone,
 *      auto top-up off;
 *   4. the personal data erased.
 * Each step is idempotent, so deleting twice is harmless and reports zeros.
 *
 * Kept records stay under the account id; the account document itself stays
 * with status 'deleted' so they still point at something.
 */
import type { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { isDomainError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { Account } from '../../models/account.js';
import { AuthToken } from '../../models/auth-token.js';
import { ChannelIdentity, type Channel } from '../../models/channel-identity.js';
import { ChatState } from '../../models/chat-state.js';
import { LoginSession } from '../../models/login-session.js';
import { NotificationPreferences } from '../../models/notification-preferences.js';
import { Notification } from '../../models/notification.js';
import { PaymentMethod } from '../../models/payment-method.js';
import { SeatInvite } from '../../models/seat-invite.js';
import { TeamSeat } from '../../models/team-seat.js';
import { VerificationCode } from '../../models/verification-code.js';
import { Wallet } from '../../models/wallet.js';
import { toAccountId, type AccountId } from '../account-id.js';
import { recordAudit, type AuditActor, type AuditChannel } from '../audit.js';
import { setAutoTopUp } from '../payments/auto-topup.js';
import { getProxyCredentials, revokeProxyCredentials } from '../proxy-credentials.js';
import { cancel, getLiveSubscription } from '../subscriptions.js';
import { removeSeat } from '../team.js';
import { clearRateLimits, emailCodeLimitKey, linkAttemptLimitKey } from './rate-limit.js';
import { accountNotFound, type AccountRecord } from './view.js';

export interface DeletionItem {
  key: string;
  /** Shown to the customer before they confirm. */
  text: string;
}

/** What deletion erases (or ends) and what it keeps, keyed for deleteAccount's report and the tests. */
export const ACCOUNT_DELETION_POLICY = {
  erased: [
    { key: 'email', text: 'Your email address (you can use it again for a new account).' },
    { key: 'password', text: 'Your API password.' },
    {
      key: 'loginSessions',
      text: 'Your API logins, with the addresses and apps they came from: they end at once.',
    },
    {
      key: 'chatIdentities',
      text: 'The link between this account and your Telegram and WhatsApp chats.',
    },
    {
      key: 'chatStates',
      text: 'Where your conversations with the bot stand (unfinished steps and menus).',
    },
    { key: 'notificationPreferences', text: 'Your notification settings.' },
    { key: 'notifications', text: 'Messages we sent you or were about to send you.' },
    {
      key: 'codes',
      text: 'Email verification and account-link codes, and links to verify your email or set a password.',
    },
    {
      key: 'savedCards',
      text: 'Saved cards: we can no longer charge them, and auto top-up is switched off.',
    },
    {
      key: 'subscription',
      text: 'Your running plan: it ends at once, with no refund for the time left.',
    },
    {
      key: 'proxyCredentials',
      text: 'Your proxy password: it stops working at once and open connections are cut.',
    },
    {
      key: 'teamSeats',
      text: "Team membership: your seat on someone's team, or, if you own a team, your members' seats (they lose access through your plan).",
    },
    { key: 'teamInvites', text: 'Team invites you created.' },
  ],
  kept: [
    { key: 'payments', text: 'Payments you made, with the email address the receipt went to.' },
    { key: 'invoices', text: 'Invoices and credit notes.' },
    { key: 'refunds', text: 'Refunds.' },
    {
      key: 'wallet',
      text: 'Your wallet and its history. Money left in it is not paid out automatically: ask support before you delete.',
    },
    { key: 'subscriptionHistory', text: 'Your plan history and the prices we quoted you.' },
    {
      key: 'usage',
      text: 'Data usage records (bytes and connected time per hour and per session, with locations), which back what you were billed.',
    },
    {
      key: 'securityLogs',
      text: 'Records of refused proxy connections and failed proxy logins; they are removed automatically after 30 days.',
    },
    {
      key: 'trialClaims',
      text: 'A note that your email, chats and card had a free trial, so it is not given twice.',
    },
    { key: 'proxyUsername', text: 'Your proxy username, blocked, so nobody else is given it.' },
    { key: 'audit', text: 'The audit trail of actions on your account, including this deletion.' },
    {
      key: 'accountRecord',
      text: 'A closed account record (its id, dates and terms acceptance) that the records above point to.',
    },
  ],
} as const satisfies { erased: readonly DeletionItem[]; kept: readonly DeletionItem[] };

export type ErasedKey = (typeof ACCOUNT_DELETION_POLICY.erased)[number]['key'];
export type KeptKey = (typeof ACCOUNT_DELETION_POLICY.kept)[number]['key'];

/** What deletion erases and keeps, in words to show the customer before they confirm. */
export function describeAccountDeletion(): { erased: string[]; kept: string[] } {
  return {
    erased: ACCOUNT_DELETION_POLICY.erased.map((item) => item.text),
    kept: ACCOUNT_DELETION_POLICY.kept.map((item) => item.text),
  };
}

export interface DeleteAccountContext {
  clock: Clock;
  logger?: Logger;
  /** Who asked: an admin's account id, or 'system'; default the account itself (the customer). */
  actor?: AuditActor;
  /** Where they asked from, for the audit trail; default 'system'. */
  via?: AuditChannel;
  /** Why, for the audit trail; default 'requested by the customer'. */
  reason?: string;
}

/**
 * Deletes the account: ends (cancels now, no refund) any live subscription,
 * revokes proxy credentials, removes team seats it holds or belongs to,
 * erases email, API password and login sessions, chat identities, chat
 * states, notification preferences, verification/link codes and link tokens; keeps payments, invoices, ledger entries, refunds,
 * audit entries (financial records) under the account id, which stays with
 * status 'deleted'. Idempotent. Records an audit entry.
 * The full lists are ACCOUNT_DELETION_POLICY; `erased` counts per item.
 */
export async function deleteAccount(
  ctx: DeleteAccountContext,
  accountId: AccountId,
): Promise<{ erased: Record<string, number> }> {
  const id = toAccountId(accountId);
  const account = await Account.findById(id).lean<AccountRecord>();
  if (!account) throw accountNotFound(id);
  const { clock } = ctx;
  const erased = Object.fromEntries(
    ACCOUNT_DELETION_POLICY.erased.map((item) => [item.key, 0]),
  ) as Record<ErasedKey, number>;

  await recordAudit(
    {
      actor: ctx.actor ?? String(id),
      channel: ctx.via ?? 'system',
      action: 'account.deleted',
      target: { kind: 'account', id: String(id) },
      details: { reason: ctx.reason ?? 'requested by the customer' },
      key: `account.deleted:${String(id)}`,
    },
    { clock },
  );

  // 2. Closed: every reader from here on sees a deleted account without an email.
  await Account.updateOne(
    { _id: id, status: { $ne: 'deleted' } },
    { $set: { status: 'deleted', deletedAt: clock.now() } },
  );
  await Account.updateOne(
    { _id: id, deletedAt: { $exists: false } },
    { $set: { deletedAt: clock.now() } },
  );
  const withoutEmail = await Account.updateOne(
    { _id: id, email: { $exists: true } },
    { $unset: { email: 1, emailVerifiedAt: 1 } },
  );
  erased.email = withoutEmail.modifiedCount;
  // The API refuses a deleted account's tokens already; its sessions go with their IPs and apps.
  erased.loginSessions = (await LoginSession.deleteMany({ accountId: id })).deletedCount;
  const withoutPassword = await Account.updateOne(
    {
      _id: id,
      $or: [{ passwordHash: { $exists: true } }, { passwordChangedAt: { $exists: true } }],
    },
    { $unset: { passwordHash: 1, passwordChangedAt: 1 } },
  );
  erased.password = withoutPassword.modifiedCount;

  // 3. The service ends.
  erased.subscription = await endLiveSubscription(id, clock);
  const credentials = await getProxyCredentials(id);
  if (credentials && !credentials.revoked) {
    await revokeProxyCredentials(id, { clock });
    erased.proxyCredentials = 1;
  }
  erased.teamSeats = await removeSeats(id, clock);
  erased.teamInvites = (await SeatInvite.deleteMany({ ownerAccountId: id })).deletedCount;
  if (await Wallet.exists({ accountId: id, autoTopUp: { $exists: true } })) {
    await setAutoTopUp(id, null);
  }

  // 4. Personal data.
  const identities = await ChannelIdentity.find({ accountId: id }).lean<
    { channel: Channel; externalId: string }[]
  >();
  erased.chatStates = (
    await ChatState.deleteMany({
      $or: [
        { accountId: id },
        ...identities.map(({ channel, externalId }) => ({ channel, externalId })),
      ],
    })
  ).deletedCount;
  erased.chatIdentities = (await ChannelIdentity.deleteMany({ accountId: id })).deletedCount;
  erased.codes =
    (await VerificationCode.deleteMany({ accountId: id })).deletedCount +
    (await AuthToken.deleteMany({ accountId: id })).deletedCount +
    (await clearRateLimits([
      emailCodeLimitKey(String(id)),
      ...identities.map((identity) => linkAttemptLimitKey(identity)),
    ]));
  erased.notificationPreferences = (
    await NotificationPreferences.deleteMany({ accountId: id })
  ).deletedCount;
  erased.notifications = (
    await Notification.deleteMany({ accountId: id, audience: 'customer' })
  ).deletedCount;
  erased.savedCards = (await PaymentMethod.deleteMany({ accountId: id })).deletedCount;

  ctx.logger?.info({ accountId: String(id), erased }, 'account.deleted');
  return { erased };
}

/** Cancels the live subscription now, if there is one: 1 when one was ended. */
async function endLiveSubscription(id: Types.ObjectId, clock: Clock): Promise<number> {
  const live = await getLiveSubscription(id);
  if (!live) return 0;
  const { changed } = await cancel(live._id, {
    atPeriodEnd: false,
    clock,
    reason: 'account deleted',
  });
  return changed ? 1 : 0;
}

/**
 * Takes the account off the team it is a seat of, and its own members off its
 * team; those members are told (seat_removed), the account being deleted is not.
 */
async function removeSeats(id: Types.ObjectId, clock: Clock): Promise<number> {
  const seats = await TeamSeat.find(
    { $or: [{ ownerAccountId: id }, { memberAccountId: id }] },
    { ownerAccountId: 1, memberAccountId: 1 },
  ).lean<{ ownerAccountId: Types.ObjectId; memberAccountId: Types.ObjectId }[]>();
  let removed = 0;
  for (const seat of seats) {
    try {
      await removeSeat(seat.ownerAccountId, seat.memberAccountId, {
        clock,
        notifyMember: !seat.memberAccountId.equals(id),
      });
      removed += 1;
    } catch (error) {
      // Removed meanwhile (a deletion running twice, the owner acting): fine.
      if (!isDomainError(error, 'NOT_FOUND')) throw error;
    }
  }
  return removed;
}
