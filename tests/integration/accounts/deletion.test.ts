/**
 * Deleting an account (core/accounts): everything describeAccountDeletion
 * says is erased is gone from the database and everything it says is kept is
 * still there, item by item; the plan ends, the proxy password stops working
 * and open tunnels are cut on the gateway; team seats go; a second deletion
 * changes nothing.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  ACCOUNT_DELETION_POLICY,
  acceptTerms,
  accountForIdentity,
  confirmEmailCode,
  checkPassword,
  createLinkCode,
  createPasswordLink,
  deleteAccount,
  describeAccountDeletion,
  redeemLinkCode,
  requestEmailCode,
  resetPasswordWithLink,
  startLoginSession,
  type ErasedKey,
  type KeptKey,
} from '../../../core/accounts/index.js';
import { emailCodeLimitKey, linkAttemptLimitKey } from '../../../core/accounts/rate-limit.js';
import { listAudit } from '../../../core/audit.js';
import { addExit, addLocation } from '../../../core/locations.js';
import { setPreferences } from '../../../core/notifications.js';
import { setAutoTopUp } from '../../../core/payments/index.js';
import { getProxyCredentials, issueProxyCredentials } from '../../../core/proxy-credentials.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { createSeatInvite } from '../../../core/team-invites.js';
import { addSeat, listSeats } from '../../../core/team.js';
import { addToUsageBuckets, hourStart, saveUsageSessions } from '../../../core/usage.js';
import { Types } from 'mongoose';
import {
  Account,
  AuditEntry,
  AuthToken,
  BillingQuote,
  ChannelIdentity,
  ChatState,
  Invoice,
  LedgerEntry,
  LoginSession,
  Notification,
  NotificationPreferences,
  Payment,
  PaymentMethod,
  ProxyAuthFailure,
  ProxyCredential,
  ProxyRefusal,
  QuotaUsage,
  RateLimit,
  Refund,
  SeatInvite,
  Subscription,
  TeamSeat,
  TrialClaim,
  UsageBucket,
  UsageSession,
  VerificationCode,
  Wallet,
} from '../../../models/index.js';
import { accountOnPlan } from '../../support/accounts.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { reasonOf } from '../../support/refusals.js';
import { GatewayAccessController } from '../../../proxy/access-controller.js';
import { cutCode, grantOf, policy, request, waitUntil } from '../proxy/access/harness.js';
import {
  clockAheadOfRealTime,
  newAddress,
  telegramUser,
  useAccountsHarness,
  whatsappUser,
} from './harness.js';

useTestDatabase();
const payments = usePaymentsHarness({ start: clockAheadOfRealTime().now().toISOString() });
const clock = payments.clock;
const accounts = useAccountsHarness(clock);

let adminId = '';

beforeAll(async () => {
  adminId = String((await Account.create({ roles: ['customer', 'admin'] }))._id);
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
});

interface Chat {
  channel: 'telegram' | 'whatsapp';
  externalId: string;
}

/**
 * For each erased item, how much of it the account still has. Keyed by the
 * policy's keys, so an item added to the policy without a check here fails
 * the test that compares the keys.
 */
async function stillThere(
  accountId: string,
  chats: readonly Chat[],
): Promise<Record<ErasedKey, number>> {
  const id = new Types.ObjectId(accountId);
  const byChat = chats.map(({ channel, externalId }) => ({ channel, externalId }));
  return {
    email: await Account.countDocuments({
      _id: id,
      $or: [{ email: { $exists: true } }, { emailVerifiedAt: { $exists: true } }],
    }),
    password: await Account.countDocuments({
      _id: id,
      $or: [{ passwordHash: { $exists: true } }, { passwordChangedAt: { $exists: true } }],
    }),
    loginSessions: await LoginSession.countDocuments({ accountId: id }),
    chatIdentities:
      (await ChannelIdentity.countDocuments({ accountId: id })) +
      (byChat.length ? await ChannelIdentity.countDocuments({ $or: byChat }) : 0),
    chatStates: byChat.length
      ? await ChatState.countDocuments({ $or: [{ accountId: id }, ...byChat] })
      : await ChatState.countDocuments({ accountId: id }),
    notificationPreferences: await NotificationPreferences.countDocuments({ accountId: id }),
    notifications: await Notification.countDocuments({ accountId: id }),
    codes:
      (await VerificationCode.countDocuments({ accountId: id })) +
      (await AuthToken.countDocuments({ accountId: id })) +
      (await RateLimit.countDocuments({
        key: { $in: [emailCodeLimitKey(accountId), ...chats.map((c) => linkAttemptLimitKey(c))] },
      })),
    savedCards:
      (await PaymentMethod.countDocuments({ accountId: id })) +
      (await Wallet.countDocuments({ accountId: id, autoTopUp: { $exists: true } })),
    subscription: (await getLiveSubscription(accountId)) ? 1 : 0,
    proxyCredentials: await ProxyCredential.countDocuments({
      accountId: id,
      revokedAt: { $exists: false },
    }),
    teamSeats: await TeamSeat.countDocuments({
      $or: [{ ownerAccountId: id }, { memberAccountId: id }],
    }),
    teamInvites: await SeatInvite.countDocuments({ ownerAccountId: id }),
  };
}

/** For each kept item, what the account has of it (counts, and the facts that must not change). */
async function kept(accountId: string): Promise<Record<KeptKey, unknown>> {
  const id = new Types.ObjectId(accountId);
  const account = await Account.findById(id).lean();
  const wallet = await Wallet.findOne({ accountId: id }).lean();
  const credential = await ProxyCredential.findOne({ accountId: id }).lean();
  return {
    payments: await Payment.countDocuments({ accountId: id }),
    invoices: await Invoice.countDocuments({ accountId: id }),
    refunds: await Refund.countDocuments({ accountId: id }),
    wallet: [wallet?.balanceMinor, await LedgerEntry.countDocuments({ accountId: id })],
    subscriptionHistory: [
      await Subscription.countDocuments({ accountId: id }),
      await BillingQuote.countDocuments({ accountId: id }),
    ],
    usage: [
      await UsageBucket.countDocuments({ accountId: id }),
      await UsageSession.countDocuments({ accountId: id }),
      await QuotaUsage.countDocuments({ accountId: id }),
    ],
    securityLogs: [
      await ProxyRefusal.countDocuments({ accountId: id }),
      await ProxyAuthFailure.countDocuments({ accountId: id }),
    ],
    trialClaims: await TrialClaim.countDocuments({ accountId: id }),
    proxyUsername: credential?.username,
    audit: await AuditEntry.countDocuments({ 'details.accountId': accountId }),
    accountRecord: [String(account?._id), account?.createdAt, account?.termsAcceptedAt],
  };
}

/**
 * The kept records are all still there, unchanged. Security logs and usage
 * records may grow: the gateway goes on recording the cut tunnel (its last
 * bytes and connected seconds, in whatever bucket its final flush lands) and
 * the refused logins of the deleted account. Nothing kept may shrink.
 */
function expectKept(after: Record<KeptKey, unknown>, before: Record<KeptKey, unknown>): void {
  const { securityLogs: logsAfter, usage: usageAfter, ...restAfter } = after;
  const { securityLogs: logsBefore, usage: usageBefore, ...restBefore } = before;
  expect(restAfter).toEqual(restBefore);
  for (const [grown, was] of [
    [logsAfter, logsBefore],
    [usageAfter, usageBefore],
  ] as [number[], number[]][]) {
    grown.forEach((count, i) => expect(count).toBeGreaterThanOrEqual(was[i] ?? 0));
  }
}

/** True when every count in a kept snapshot is above zero and every fact is set. */
function everythingPresent(snapshot: Record<string, unknown>): boolean {
  const values = Object.values(snapshot).flatMap((value) =>
    Array.isArray(value) ? (value as unknown[]) : [value],
  );
  return values.every((value) => value !== undefined && value !== null && value !== 0);
}

describe('describeAccountDeletion', () => {
  it('words every item of the policy for the customer', () => {
    const described = describeAccountDeletion();
    expect(described).toEqual({
      erased: ACCOUNT_DELETION_POLICY.erased.map((item) => item.text),
      kept: ACCOUNT_DELETION_POLICY.kept.map((item) => item.text),
    });
    expect(described.erased.join(' ')).toMatch(/email address/);
    expect(described.erased.join(' ')).toMatch(/no refund/);
    expect(described.kept.join(' ')).toMatch(/Payments/);
    expect(described.kept.join(' ')).toMatch(/Invoices/);
    expect(described.kept.join(' ')).toMatch(/Refunds/);
    expect(described.kept.join(' ')).toMatch(/audit trail/);
  });
});

describe('deleteAccount', () => {
  it('erases exactly what it promises, keeps the financial records, and cuts live tunnels', async () => {
    // A paying customer on Telegram and WhatsApp, with everything an account can hold.
    const telegram = telegramUser('Ada');
    const whatsapp = whatsappUser('Ada');
    const chats = [telegram, whatsapp];
    const { account } = await accountForIdentity(telegram, { clock });
    const accountId = account.id;
    const { code: linkCode } = await createLinkCode({ clock }, accountId);
    await redeemLinkCode({ clock }, whatsapp, linkCode);
    const address = newAddress('ada');
    await requestEmailCode(accounts.ctx, accountId, address);
    await confirmEmailCode(accounts.ctx, accountId, await accounts.codeSentTo(address));
    await acceptTerms({ clock }, accountId);
    // An API password chosen through a link from chat, two API logins, and a fresh link waiting.
    const linkCtx = { ...accounts.ctx, publicUrl: 'http://atlantic.test' };
    const tokenOf = (url: string) => new URL(url).searchParams.get('token') ?? '';
    const password = 'blue harbour 42';
    const { url } = await createPasswordLink(linkCtx, accountId);
    await resetPasswordWithLink(linkCtx, tokenOf(url), password);
    for (const userAgent of ['app', 'script']) {
      await startLoginSession(accountId, { ip: '203.0.113.9', userAgent }, { clock });
    }
    await createPasswordLink(linkCtx, accountId);
    for (const chat of chats) {
      await ChatState.create({
        channel: chat.channel,
        externalId: chat.externalId,
        accountId,
        step: 'menu',
        expiresAt: new Date(clock.now().getTime() + 86_400_000),
      });
    }
    await setPreferences(accountId, { channels: { whatsapp: false } });

    const checkout = await payments.payments.checkout({
      accountId,
      purpose: 'plan',
      planCode: 'personal',
    });
    await payments.payAndSettle(checkout.reference);
    await payments.payments.refundPayment({
      adminId,
      channel: 'telegram',
      requestId: 'msg-1',
      paymentReference: checkout.reference,
      method: 'wallet',
      amountMinor: 100_000,
      reason: 'slow exits',
    });
    await setAutoTopUp(accountId, { thresholdMinor: 50_000, amountMinor: 200_000 });
    await payments.payments.quoteCancellation({ accountId, when: 'period_end' });
    await TrialClaim.create({
      kind: 'email',
      value: address,
      accountId,
      paymentReference: checkout.reference,
    });

    // Proxy use: a live tunnel, a refused one, a failed login, usage records.
    const issued = await issueProxyCredentials(accountId, {});
    const customer = { accountId, username: issued.username, secret: issued.secret };
    const gateway = new GatewayAccessController({ clock, policy, refreshMs: 100, flushMs: 200 });
    await gateway.start();
    try {
      const live = cutCode(grantOf(await gateway.authorize(request(customer))));
      expect(await gateway.authorize(request(customer, { port: 25 }))).toMatchObject({ ok: false });
      expect(await gateway.authorize(request(customer, { password: 'typo' }))).toMatchObject({
        ok: false,
      });
      await gateway.flush();
      await addToUsageBuckets([
        {
          accountId,
          hourStart: hourStart(clock.now()),
          location: 'ng',
          bytesUp: 10,
          bytesDown: 90,
        },
      ]);
      await saveUsageSessions([
        {
          sessionId: String(new Types.ObjectId()),
          accountId,
          gatewayId: 'gw-1',
          startedAt: clock.now(),
          lastSeenAt: clock.now(),
          bytesUp: 10,
          bytesDown: 90,
          connections: 1,
          locations: ['ng'],
          protocols: ['socks5'],
        },
      ]);
      // Codes waiting: an email change and a link code.
      clock.advanceBy({ minutes: 2 });
      await requestEmailCode(accounts.ctx, accountId, newAddress('ada.new'));
      await createLinkCode({ clock }, accountId);

      const before = await stillThere(accountId, chats);
      const keptBefore = await kept(accountId);
      // The checks cover the policy, item for item, and the fixture holds every item.
      expect(Object.keys(before).sort()).toEqual(
        ACCOUNT_DELETION_POLICY.erased.map((item) => item.key).sort(),
      );
      expect(Object.keys(keptBefore).sort()).toEqual(
        ACCOUNT_DELETION_POLICY.kept.map((item) => item.key).sort(),
      );
      expect(everythingPresent(keptBefore)).toBe(true);
      const { teamSeats, teamInvites, ...personal } = before;
      expect({ teamSeats, teamInvites }).toEqual({ teamSeats: 0, teamInvites: 0 });
      for (const [key, count] of Object.entries(personal)) {
        expect([key, count > 0]).toEqual([key, true]);
      }

      const { erased } = await deleteAccount({ clock }, accountId);

      expect(erased).toEqual({
        email: 1,
        password: 1,
        loginSessions: 2,
        chatIdentities: 2,
        chatStates: 2,
        notificationPreferences: 1,
        notifications: before.notifications,
        // The email and link codes, their send limit, the link attempts of the WhatsApp chat,
        // and the two password links (the spent one and the waiting one).
        codes: 6,
        savedCards: 1,
        subscription: 1,
        proxyCredentials: 1,
        teamSeats: 0,
        teamInvites: 0,
      });
      expect(await stillThere(accountId, chats)).toEqual(
        Object.fromEntries(Object.keys(before).map((key) => [key, 0])),
      );
      // Kept: the same records, and the wallet balance untouched.
      const keptAfter = await kept(accountId);
      expectKept(keptAfter, keptBefore);
      expect(await Account.findById(accountId).lean()).toMatchObject({
        status: 'deleted',
        deletedAt: clock.now(),
      });
      expect(await Subscription.findOne({ accountId }).lean()).toMatchObject({
        status: 'cancelled',
        endedAt: clock.now(),
      });
      expect(await listAudit({ target: { kind: 'account', id: accountId } })).toEqual([
        expect.objectContaining({
          actor: accountId,
          action: 'account.deleted',
          details: { reason: 'requested by the customer' },
        }),
      ]);

      // The gateway cuts the live tunnel and refuses the password from now on.
      await waitUntil(() => live.code !== null);
      expect(['CREDENTIALS_REVOKED', 'ACCOUNT_DELETED']).toContain(live.code);
      expect((await getProxyCredentials(accountId))?.revoked).toBe(true);
      await waitUntil(async () => !(await gateway.authorize(request(customer))).ok);

      // The API password no longer opens anything.
      await expect(checkPassword(accounts.ctx, { email: address, password })).rejects.toMatchObject(
        { code: 'UNAUTHENTICATED' },
      );

      // The chats start afresh; the email is free again.
      const again = await accountForIdentity(telegram, { clock });
      expect(again.created).toBe(true);
      expect(again.account.id).not.toBe(accountId);
      await requestEmailCode(accounts.ctx, again.account.id, address);

      // Idempotent: a second deletion finds nothing more and writes no second audit entry.
      const second = await deleteAccount({ clock }, accountId);
      expect(Object.values(second.erased).every((count) => count === 0)).toBe(true);
      expect(await listAudit({ target: { kind: 'account', id: accountId } })).toHaveLength(1);
      expectKept(await kept(accountId), keptBefore);
    } finally {
      await gateway.stop();
    }
  });

  it("takes a member off its team, and a team owner's members and invites off its plan", async () => {
    const owner = await accountOnPlan('team', clock);
    const leaving = String((await Account.create({}))._id);
    const staying = String((await Account.create({}))._id);
    await addSeat(owner, leaving, {}, { clock });
    await addSeat(owner, staying, {}, { clock });

    const member = await deleteAccount({ clock }, leaving);
    expect(member.erased).toMatchObject({ teamSeats: 1, subscription: 0 });
    expect((await listSeats(owner)).map((seat) => seat.memberAccountId)).toEqual([staying]);

    await createSeatInvite(owner, {}, { clock });
    const ownerDeleted = await deleteAccount({ clock }, owner);
    expect(ownerDeleted.erased).toMatchObject({ teamSeats: 1, teamInvites: 1, subscription: 1 });
    expect(await listSeats(owner)).toEqual([]);
    expect(await SeatInvite.countDocuments({ ownerAccountId: owner })).toBe(0);
    expect(await getLiveSubscription(owner)).toBeNull();
    // The member keeps its own account, and is told its seat is gone; the
    // member who deleted its own account is not written to.
    expect((await Account.findById(staying).lean())?.status).toBe('active');
    expect((await Notification.find({ accountId: staying }).lean()).map((n) => n.event)).toContain(
      'seat_removed',
    );
    expect(await Notification.countDocuments({ accountId: leaving, event: 'seat_removed' })).toBe(
      0,
    );
  });

  it('refuses an account that does not exist', async () => {
    expect(await reasonOf(deleteAccount({ clock }, '65a000000000000000000abc'))).toBe('NOT_FOUND');
  });
});
