/**
 * The admin operations of core/admin against the real database and real
 * payments: each works for an admin, says what it did, and leaves an audit
 * entry naming the admin, the channel, the target and the facts.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  addAdmin,
  addLocationAsAdmin,
  adminChatIds,
  addUpstream,
  describePayment,
  editPlan,
  extendPlan,
  findUser,
  getSettingsForAdmin,
  getStats,
  grantData,
  listAdmins,
  listLocationsForAdmin,
  listPayments,
  listPlansForAdmin,
  lookupAccount,
  markUpstreamHealthy,
  removeAdmin,
  removeLocationAsAdmin,
  removeUpstream,
  settingChangeFromText,
  updateSettingsAsAdmin,
} from '../../../core/admin/index.js';
import { listAudit } from '../../../core/audit.js';
import { listLocations, markExitHealth } from '../../../core/locations.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage, openQuotaPeriod } from '../../../core/quota.js';
import {
  currentQuotaWindow,
  getLiveSubscription,
  markPastDue,
  startPayg,
} from '../../../core/subscriptions.js';
import { exchangeGatewayPresence, addToUsageBuckets, hourStart } from '../../../core/usage.js';
import { credit } from '../../../core/wallet.js';
import { Account } from '../../../models/account.js';
import { Payment } from '../../../models/payment.js';
import { QuotaUsage } from '../../../models/quota-usage.js';
import { useTestDatabase } from '../../support/database.js';
import { lastAudit, linkChat, useAdminHarness } from './harness.js';

useTestDatabase();
const h = useAdminHarness();
const clock = h.payments.clock;
const GB = 1_000_000_000;
const DAY = 86_400_000;

let admin = '';

beforeAll(async () => {
  admin = await h.admin();
});

describe('/stats', () => {
  it('counts customers, live plans, money in and out, open tunnels and today’s data', async () => {
    const ctx = h.ctx(admin);
    const before = await getStats(ctx);
    const buyer = await h.buyer('starter');
    await h.customer({ planCode: 'personal' });
    const suspended = await h.customer();
    await Account.updateOne({ _id: suspended.accountId }, { $set: { status: 'suspended' } });
    const now = clock.now();
    await exchangeGatewayPresence('gw-stats', new Map([[buyer.accountId, 3]]), {
      now,
      freshAfter: new Date(now.getTime() - 1_000),
    });
    await addToUsageBuckets([
      {
        accountId: buyer.accountId,
        hourStart: hourStart(now),
        location: 'ng',
        bytesUp: 1_000,
        bytesDown: 4_000,
      },
      // Connected time only: no bytes of its own.
      {
        accountId: buyer.accountId,
        hourStart: hourStart(now),
        location: '*',
        connectedSeconds: 60,
      },
    ]);

    const after = await getStats(ctx);
    expect(after.customers.total - before.customers.total).toBe(3);
    expect(after.customers.signedUp - before.customers.signedUp).toBe(3);
    expect(after.customers.suspended - before.customers.suspended).toBe(1);
    const live = (stats: typeof after, plan: string) =>
      stats.subscriptions.find((s) => s.planCode === plan)?.live ?? 0;
    expect(live(after, 'starter') - live(before, 'starter')).toBe(1);
    expect(live(after, 'personal') - live(before, 'personal')).toBe(1);
    const paidToday =
      (after.revenue.today.inMinor.NGN ?? 0) - (before.revenue.today.inMinor.NGN ?? 0);
    expect(paidToday).toBe(buyer.amountMinor);
    expect(after.revenue.days30.inMinor.NGN ?? 0).toBeGreaterThanOrEqual(buyer.amountMinor);
    expect(after.tunnels.open - before.tunnels.open).toBe(3);
    expect(after.bytesToday - before.bytesToday).toBe(5_000);

    const entry = await lastAudit(admin, 'stats.viewed');
    expect(entry).toMatchObject({ channel: 'telegram', target: { kind: 'business', id: 'stats' } });
  });
});

describe('/user', () => {
  it('finds a customer by email, account id, WhatsApp number or Telegram id, and shows plan, data, wallet and payments', async () => {
    const buyer = await h.buyer('personal');
    await linkChat(buyer.accountId, 'whatsapp', '2348022223333');
    await linkChat(buyer.accountId, 'telegram', '5550001');
    await credit(
      buyer.accountId,
      {
        amountMinor: 70_000,
        currency: 'NGN',
        key: `test-credit:${buyer.accountId}`,
        description: 'test',
      },
      { clock },
    );
    const ctx = h.ctx(admin, 'whatsapp');
    for (const query of [
      buyer.email.toUpperCase(),
      buyer.accountId,
      '+234 802 222 3333',
      '5550001',
      'tg:5550001',
    ]) {
      expect((await lookupAccount(ctx, query)).id).toBe(buyer.accountId);
    }
    expect(await lastAudit(admin, 'user.looked_up')).toMatchObject({
      channel: 'whatsapp',
      target: { kind: 'account', id: buyer.accountId },
      details: { query: 'tg:5550001' },
    });
    const report = await findUser(ctx, buyer.email);
    expect(report.account).toMatchObject({
      id: buyer.accountId,
      email: buyer.email,
      status: 'active',
    });
    expect(report.account.identities).toEqual([
      { channel: 'telegram', externalId: '5550001' },
      { channel: 'whatsapp', externalId: '2348022223333' },
    ]);
    expect(report.subscription).toMatchObject({ planCode: 'personal', status: 'active' });
    expect(report.payments).toEqual([
      expect.objectContaining({
        reference: buyer.reference,
        status: 'paid',
        amountMinor: buyer.amountMinor,
      }),
    ]);
    expect(report.wallet).toEqual({ balanceMinor: 70_000, currency: 'NGN' });
    // What the customer was told, per channel, for support.
    const confirmed = report.notifications.find((n) => n.event === 'payment_confirmed');
    expect(confirmed?.deliveries).toEqual([
      expect.objectContaining({ channel: 'email', status: 'pending', attempts: 0 }),
    ]);
    expect(await lastAudit(admin, 'user.viewed')).toMatchObject({
      channel: 'whatsapp',
      target: { kind: 'account', id: buyer.accountId },
      details: { query: buyer.email },
    });

    await expect(findUser(ctx, 'nobody@example.com')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('asks which one when digits are one customer’s Telegram id and another’s WhatsApp number', async () => {
    const a = await h.customer();
    const b = await h.customer();
    await linkChat(a.accountId, 'telegram', '77788899');
    await linkChat(b.accountId, 'whatsapp', '77788899');
    const ctx = h.ctx(admin);
    await expect(lookupAccount(ctx, '77788899')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await lookupAccount(ctx, 'wa:77788899')).id).toBe(b.accountId);
    expect((await lookupAccount(ctx, 'tg:77788899')).id).toBe(a.accountId);
  });
});

describe('/grant', () => {
  it('adds data to the current window once per request, opening the window when the gateway has not', async () => {
    const { accountId, email } = await h.customer({ planCode: 'starter' });
    const ctx = h.ctx(admin);
    const first = await grantData(ctx, {
      user: email,
      bytes: 5 * GB,
      requestId: 'g-1',
      reason: 'outage',
    });
    expect(first.period.limitBytes).toBe(15 * GB);
    const again = await grantData(ctx, { user: email, bytes: 5 * GB, requestId: 'g-1' });
    expect(again.period.limitBytes).toBe(15 * GB);
    expect((await getQuotaUsage(accountId, clock.now()))?.addedBytes).toBe(5 * GB);
    await grantData(ctx, { user: accountId, bytes: 1 * GB, requestId: 'g-2' });
    expect((await getQuotaUsage(accountId, clock.now()))?.limitBytes).toBe(16 * GB);

    expect(await lastAudit(admin, 'grant.data')).toMatchObject({
      target: { kind: 'account', id: accountId },
      details: { bytes: 1 * GB, planCode: 'starter', requestId: 'g-2' },
    });
  });

  it('counts a request id per admin: two admins who pick the same id both give', async () => {
    const { accountId, email } = await h.customer({ planCode: 'starter' });
    const other = await h.admin();
    await grantData(h.ctx(admin), { user: email, bytes: 1 * GB, requestId: 'same-id' });
    await grantData(h.ctx(other), { user: email, bytes: 2 * GB, requestId: 'same-id' });
    expect((await getQuotaUsage(accountId, clock.now()))?.addedBytes).toBe(3 * GB);
  });

  it('refuses data and days where there is nothing to add them to (pay as you go, no plan)', async () => {
    const ctx = h.ctx(admin);
    const payg = await h.customer();
    await startPayg({ accountId: payg.accountId, clock });
    await expect(
      grantData(ctx, { user: payg.email, bytes: GB, requestId: 'g-3' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    const none = await h.customer();
    await expect(
      grantData(ctx, { user: none.email, bytes: GB, requestId: 'g-4' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(
      extendPlan(ctx, { user: payg.email, days: 3, requestId: 'd-0' }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('extends a paid period once per request, from the later of its end and now', async () => {
    const { accountId, email } = await h.customer({ planCode: 'personal' });
    const ctx = h.ctx(admin);
    const periodEnd = (await getLiveSubscription(accountId))?.periodEnd ?? new Date(0);
    const outcome = await extendPlan(ctx, { user: email, days: 7, requestId: 'd-1' });
    expect(outcome).toMatchObject({ field: 'periodEnd', changed: true, from: periodEnd });
    expect(outcome.to.getTime()).toBe(periodEnd.getTime() + 7 * DAY);
    const repeat = await extendPlan(ctx, { user: email, days: 7, requestId: 'd-1' });
    expect(repeat.changed).toBe(false);
    const sub = await getLiveSubscription(accountId);
    expect(sub?.periodEnd?.getTime()).toBe(periodEnd.getTime() + 7 * DAY);
    expect(sub?.history.at(-1)?.reason).toContain('periodEnd extended by 7 days');
    expect(await lastAudit(admin, 'grant.days')).toMatchObject({
      target: { kind: 'account', id: accountId },
      details: { days: 7, planCode: 'personal', requestId: 'd-1' },
    });
  });

  it('extends a trial together with its data window', async () => {
    const ctx = h.ctx(admin);
    const trial = await h.customer({ planCode: 'trial' });
    const sub = await getLiveSubscription(trial.accountId);
    const window = sub ? currentQuotaWindow(sub, clock.now()) : null;
    if (!sub?.trialEndsAt || !window) throw new Error('no trial window');
    await openQuotaPeriod(trial.accountId, {
      periodStart: window.start,
      periodEnd: window.end,
      limitBytes: GB,
    });
    const outcome = await extendPlan(ctx, { user: trial.email, days: 2, requestId: 'd-2' });
    const newEnd = new Date(sub.trialEndsAt.getTime() + 2 * DAY);
    expect(outcome).toMatchObject({ field: 'trialEndsAt', to: newEnd });
    expect((await getLiveSubscription(trial.accountId))?.periodEnd).toEqual(newEnd);
    const counter = await QuotaUsage.findOne({ accountId: trial.accountId }).lean();
    expect(counter?.periodEnd).toEqual(newEnd);
  });
});

describe('/payments', () => {
  it('lists recent, failed and flagged payments and describes what is left to refund', async () => {
    const ctx = h.ctx(admin);
    const buyer = await h.buyer('starter');
    const base = {
      accountId: buyer.accountId,
      purpose: 'plan' as const,
      planCode: 'starter',
      currency: 'NGN' as const,
      email: buyer.email,
      openedAt: clock.now(),
    };
    await Payment.create({
      ...base,
      reference: 'atl-failed-1',
      amountMinor: 350_000,
      status: 'failed',
    });
    await Payment.create({
      ...base,
      reference: 'atl-flagged-1',
      amountMinor: 1_000,
      status: 'flagged',
      flagReason: 'amount mismatch',
    });
    await Payment.create({
      ...base,
      reference: 'atl-review-1',
      amountMinor: 350_000,
      status: 'paid',
      needsReviewAt: clock.now(),
      flagReason: 'bought a plan while another ran',
    });

    expect((await listPayments(ctx, { filter: 'failed' })).map((p) => p.reference)).toContain(
      'atl-failed-1',
    );
    const flagged = await listPayments(ctx, { filter: 'flagged' });
    expect(flagged.map((p) => p.reference).sort()).toEqual(['atl-flagged-1', 'atl-review-1']);
    expect(flagged.find((p) => p.reference === 'atl-flagged-1')?.flagReason).toBe(
      'amount mismatch',
    );
    const recent = await listPayments(ctx, { limit: 50 });
    expect(recent.map((p) => p.reference)).toEqual(
      expect.arrayContaining([buyer.reference, 'atl-failed-1']),
    );
    expect(await lastAudit(admin, 'payments.viewed')).toMatchObject({
      target: { kind: 'payments', id: 'recent' },
    });

    expect(await describePayment(ctx, buyer.reference)).toMatchObject({
      refundableMinor: buyer.amountMinor,
      email: buyer.email,
    });
    expect((await describePayment(ctx, 'atl-failed-1')).refundableMinor).toBe(0);
    expect(await lastAudit(admin, 'payment.viewed')).toMatchObject({
      target: { kind: 'payment', id: 'atl-failed-1' },
    });
  });
});

describe('/locations and /upstreams', () => {
  it('adds, lists without passwords, marks healthy and removes, each audited', async () => {
    const ctx = h.ctx(admin, 'whatsapp');
    await addLocationAsAdmin(ctx, { code: 'lagos', countryCode: 'NG', label: 'Lagos' });
    await addUpstream(ctx, 'lagos', {
      exitId: 'up1',
      kind: 'socks5',
      host: '10.1.1.1',
      port: 1080,
      username: 'u',
      password: 'hunter2',
    });
    await markExitHealth('lagos', 'up1', { healthy: false, error: 'ECONNREFUSED' }, { clock });
    const [listed] = (await listLocationsForAdmin(ctx)).filter((l) => l.code === 'lagos');
    expect(listed?.exits).toEqual([
      expect.objectContaining({
        exitId: 'up1',
        healthy: false,
        hasPassword: true,
        lastError: 'ECONNREFUSED',
      }),
    ]);
    expect(JSON.stringify(listed)).not.toContain('hunter2');
    const added = await lastAudit(admin, 'upstream.added');
    expect(added).toMatchObject({
      target: { kind: 'upstream', id: 'lagos/up1' },
      details: { hasPassword: true },
    });
    expect(JSON.stringify(added)).not.toContain('hunter2');

    await markUpstreamHealthy(ctx, 'lagos', 'up1');
    expect((await listLocations()).find((l) => l.code === 'lagos')?.exits[0]?.healthy).toBe(true);
    await removeUpstream(ctx, 'lagos', 'up1');
    await removeLocationAsAdmin(ctx, 'lagos');
    expect((await listLocations()).some((l) => l.code === 'lagos')).toBe(false);
    for (const action of [
      'location.added',
      'upstream.marked_healthy',
      'upstream.removed',
      'location.removed',
      'locations.viewed',
    ]) {
      expect(await lastAudit(admin, action)).toMatchObject({ channel: 'whatsapp' });
    }

    // A failing change is on record as failed.
    await expect(removeLocationAsAdmin(ctx, 'lagos')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await lastAudit(admin, 'location.removed.failed')).toMatchObject({
      details: { error: 'NOT_FOUND' },
    });
  });
});

describe('/plans', () => {
  it('edits a price and a quota for new subscriptions, refusing an edit against a stale version', async () => {
    const ctx = h.ctx(admin);
    const plans = await listPlansForAdmin(ctx);
    expect(plans.map((p) => p.code)).toEqual(['trial', 'starter', 'personal', 'team', 'payg']);
    const starter = await getPlan('starter');
    const { accountId } = await h.customer({ planCode: 'starter' });

    const edited = await editPlan(ctx, {
      code: 'starter',
      edit: { field: 'price', amountMinor: 400_000, currency: 'NGN' },
      expectedVersion: starter.version,
    });
    expect(edited.prices).toEqual([{ currency: 'NGN', amountMinor: 400_000 }]);
    expect(edited.version).toBe(starter.version + 1);
    // The running subscription keeps what it bought.
    expect((await getLiveSubscription(accountId))?.priceMinor).toBe(350_000);
    await expect(
      editPlan(ctx, {
        code: 'starter',
        edit: { field: 'quota', bytes: 20 * GB },
        expectedVersion: starter.version,
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    const quota = await editPlan(ctx, {
      code: 'starter',
      edit: { field: 'quota', bytes: 20 * GB },
    });
    expect(quota.quota?.bytes).toBe(20 * GB);
    const payg = await editPlan(ctx, {
      code: 'payg',
      edit: { field: 'price', amountMinor: 20_000, currency: 'NGN' },
    });
    expect(payg.payg?.rates[0]?.hourlyRateMinor).toBe(20_000);
    const trial = await editPlan(ctx, { code: 'trial', edit: { field: 'quota', bytes: 2 * GB } });
    expect(trial.trial?.dataBytes).toBe(2 * GB);
    await expect(
      editPlan(ctx, { code: 'trial', edit: { field: 'price', amountMinor: 1, currency: 'NGN' } }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });

    expect(await lastAudit(admin, 'plan.edited.failed')).toMatchObject({
      details: { error: 'CONFLICT' },
    });
    const entries = await listAudit({ target: { kind: 'plan', id: 'starter' } });
    // Newest first: the quota edit, the refused stale one (tried, then failed), the price edit.
    expect(entries.map((e) => e.action)).toEqual([
      'plan.edited',
      'plan.edited.failed',
      'plan.edited',
      'plan.edited',
    ]);
    expect(entries[3]).toMatchObject({ details: { field: 'price', from: 350_000, to: 400_000 } });
  });
});

describe('/settings', () => {
  it('reads every setting and changes one from typed text, audited with the old value', async () => {
    const ctx = h.ctx(admin);
    const settings = await getSettingsForAdmin(ctx, h.payments.settings);
    expect(settingChangeFromText(settings, 'graceDays', '5')).toEqual({ graceDays: 5 });
    expect(settingChangeFromText(settings, 'vat.enabled', 'on')).toEqual({
      vat: { enabled: true },
    });
    expect(settingChangeFromText(settings, 'dunningOffsetsHours', '12, 48')).toEqual({
      dunningOffsetsHours: [12, 48],
    });
    expect(settingChangeFromText(settings, 'trialDepositMinor', '2,500.00')).toEqual({
      trialDepositMinor: 250_000,
    });
    expect(() => settingChangeFromText(settings, 'nope', '1')).toThrow('There is no setting');
    expect(() => settingChangeFromText(settings, 'graceDays', 'soon')).toThrow('whole number');

    const updated = await updateSettingsAsAdmin(ctx, h.payments.settings, { graceDays: 5 });
    expect(updated.graceDays).toBe(5);
    expect(updated.updatedBy).toBe(admin);
    expect(await lastAudit(admin, 'settings.changed')).toMatchObject({
      details: { changes: { graceDays: 5 }, from: { graceDays: settings.graceDays } },
    });
    await expect(
      updateSettingsAsAdmin(ctx, h.payments.settings, { graceDays: 500 }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await h.payments.settings.get()).graceDays).toBe(5);
    expect(await lastAudit(admin, 'settings.viewed')).toBeDefined();
  });
});

describe('/admins', () => {
  it('adds and removes database admins, never a configured one nor oneself', async () => {
    const configuredAccount = await h.customer();
    await linkChat(configuredAccount.accountId, 'telegram', '4242');
    const configured = { telegramIds: [4242], whatsappNumbers: ['2348099990000'] };
    const ctx = h.ctx(admin, 'telegram', configured);
    const newcomer = await h.customer();

    expect(await addAdmin(ctx, { user: newcomer.email })).toEqual({
      accountId: newcomer.accountId,
      changed: true,
    });
    expect((await Account.findById(newcomer.accountId).lean())?.roles).toContain('admin');
    expect(await lastAudit(admin, 'admin.added')).toMatchObject({
      target: { id: newcomer.accountId },
    });

    const list = await listAdmins(ctx);
    expect(list).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ accountId: configuredAccount.accountId, configured: true }),
        expect.objectContaining({ accountId: newcomer.accountId, configured: false }),
        expect.objectContaining({
          accountId: null,
          configured: true,
          identities: [{ channel: 'whatsapp', externalId: '2348099990000' }],
        }),
      ]),
    );

    await expect(removeAdmin(ctx, { user: 'tg:4242' })).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'CONFIGURED' },
    });
    await expect(removeAdmin(ctx, { user: admin })).rejects.toMatchObject({
      details: { reason: 'SELF' },
    });
    expect(await removeAdmin(ctx, { user: newcomer.accountId })).toEqual({
      accountId: newcomer.accountId,
      changed: true,
    });
    expect((await Account.findById(newcomer.accountId).lean())?.roles).not.toContain('admin');
    expect(await lastAudit(admin, 'admin.removed')).toMatchObject({
      target: { id: newcomer.accountId },
    });
  });

  it('names every admin chat on a channel for alerts: configured ones and database admins', async () => {
    const dbAdmin = await h.admin();
    await linkChat(dbAdmin, 'telegram', '8080');
    await linkChat(dbAdmin, 'whatsapp', '2348070000001');
    const suspendedAdmin = await h.admin();
    await linkChat(suspendedAdmin, 'telegram', '8081');
    await Account.updateOne({ _id: suspendedAdmin }, { $set: { status: 'suspended' } });
    const configured = { telegramIds: [4242, 8080], whatsappNumbers: ['+2348099990000'] };

    expect((await adminChatIds('telegram', configured)).sort()).toEqual(['4242', '8080']);
    expect((await adminChatIds('whatsapp', configured)).sort()).toEqual([
      '2348070000001',
      '2348099990000',
    ]);
  });
});

// Last: it moves the business clock a month on.
describe('/grant on a past-due plan', () => {
  it('gives more days of grace to pay', async () => {
    const ctx = h.ctx(admin);
    const lapsed = await h.customer({ planCode: 'starter' });
    const running = await getLiveSubscription(lapsed.accountId);
    if (!running?.periodEnd) throw new Error('no period');
    clock.set(running.periodEnd.getTime() + 1_000);
    await markPastDue(running._id, { clock, grace: { days: 3 } });
    const grace = (await getLiveSubscription(lapsed.accountId))?.graceEndsAt;
    if (!grace) throw new Error('no grace');
    const extended = await extendPlan(ctx, { user: lapsed.email, days: 5, requestId: 'd-3' });
    expect(extended).toMatchObject({ field: 'graceEndsAt', from: grace, changed: true });
    expect(extended.to.getTime()).toBe(grace.getTime() + 5 * DAY);
    expect((await getLiveSubscription(lapsed.accountId))?.graceEndsAt).toEqual(extended.to);
  });
});
