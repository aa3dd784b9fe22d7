/**
 * The business run forward across weeks with a test clock: a tick harness
 * runs every scheduled duty's handler (the ones the jobs role schedules) at
 * the clock's time, then delivers the outbox on every channel with the real
 * deliverers: email (a real SMTP capture server), Telegram (the Bot API
 * emulator) and WhatsApp (the fake Baileys socket, the one faked network).
 * Customers move real bytes through the real gateway (the proxy role on
 * port 0, real CONNECT and SOCKS5 clients, a local target), which books
 * their usage, charges PAYG hours and cuts tunnels. Nothing sleeps: the
 * tests advance the clock and wait for sockets and records; every customer
 * hears each thing once however many ticks pass.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TelegramDeliverer } from '../../../bot/telegram/deliver.js';
import type { WhatsAppDeliverer } from '../../../bot/whatsapp/deliver.js';
import {
  accountForIdentity,
  createLinkCode,
  redeemLinkCode,
} from '../../../core/accounts/index.js';
import type { EmailDeliverer } from '../../../core/email/deliver.js';
import { addExit, addLocation } from '../../../core/locations.js';
import { closePaygHours, listPaygHours } from '../../../core/payg.js';
import { updatePlan } from '../../../core/plans.js';
import { issueProxyCredentials } from '../../../core/proxy-credentials.js';
import { getQuotaUsage } from '../../../core/quota.js';
import {
  isoWeekId,
  sendRenewalReminders,
  sendTrialEndingWarnings,
  sendWeeklySummaries,
} from '../../../core/reminders.js';
import {
  chooseLocations,
  currentQuotaWindow,
  getSubscription,
  startPayg,
} from '../../../core/subscriptions.js';
import { listRecentRefusals } from '../../../core/usage.js';
import { getWallet, reconcileAndAlert } from '../../../core/wallet.js';
import { runUsageAlerts } from '../../../jobs/usage.js';
import { createLogger } from '../../../lib/logger.js';
import { Account } from '../../../models/account.js';
import { LedgerEntry } from '../../../models/ledger-entry.js';
import { Notification } from '../../../models/notification.js';
import { Subscription, type SubscriptionRecord } from '../../../models/subscription.js';
import type { ProxyRole } from '../../../proxy/index.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import type { SmtpCapture } from '../../support/smtp-capture.js';
import type { TelegramEmulator } from '../../support/telegram-emulator.js';
import { waitUntil } from '../proxy/access/harness.js';
import { startChannelDeliverers, type ChannelDeliverers } from './channel-deliverers.js';
import type { FakeSocket } from '../whatsapp/fake-socket.js';
import { shownText } from '../whatsapp/fake-socket.js';
import {
  connectTunnel,
  socksTunnel,
  startDownloadServer,
  type DownloadServer,
  type ProxyLogin,
} from './customer-traffic.js';
import { startTestProxyRole } from '../../support/proxy-wire.js';

const TOKEN = '999000:business';
const HOUR = 3_600_000;
/** Starter's weekly quota here: 4 MB, so a week's data moves in a moment. */
const STARTER_QUOTA = 4_000_000;
const PAYG_HOURLY = 15_000;
const logger = createLogger({ level: 'silent' });
let smtp: SmtpCapture;
let emulator: TelegramEmulator;
let email: EmailDeliverer;
let telegram: TelegramDeliverer;
let whatsapp: WhatsAppDeliverer;
let whatsappSocket: FakeSocket;
let channels: ChannelDeliverers;
let role: ProxyRole;
let website: DownloadServer;

// Declared before useTestDatabase(): the gateway books its usage and gives
// its leases back before the database goes away.
afterAll(async () => {
  await role.stop();
  await website.close();
  await channels.stop();
});
useTestDatabase();
// Near real time: the outbox and the codes have TTL indexes swept by real time.
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});

beforeAll(async () => {
  channels = await startChannelDeliverers(h, { token: TOKEN, name: 'tick' });
  ({ smtp, emulator, email, telegram, whatsapp } = channels);
  whatsappSocket = channels.socket;
  website = await startDownloadServer();

  // The business as an admin set it up: one location with a direct exit, and
  // a Starter plan whose week holds 4 MB.
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  await updatePlan(
    'starter',
    { quota: { bytes: STARTER_QUOTA, period: 'week', rolling: true, pooled: false } },
    { actor: 'test', clock: h.clock },
  );
  role = await startTestProxyRole({
    clock: h.clock,
    // Starter may CONNECT only to web ports: here, the website's.
    httpsOnlyPorts: [website.port],
    // Small leases, so the counter (and the warnings) follow the bytes closely.
    accessOptions: {
      refreshMs: 100,
      flushMs: 200,
      leases: { minLeaseBytes: 64 * 1024, maxLeaseBytes: 256 * 1024 },
    },
  });
});

/** Delivers everything due on one channel. */
async function drain(deliverer: { deliverOnce(): Promise<boolean> }): Promise<void> {
  while (await deliverer.deliverOnce()) {
    /* deliver everything due */
  }
}

/** One pass of every scheduled duty at the clock's time, then the outbox delivered. */
async function tick(): Promise<void> {
  const { clock, settings } = h;
  await h.payments.runRenewals();
  await h.payments.finishDueTrials();
  await runUsageAlerts({ clock, logger, settings });
  await sendRenewalReminders({ clock, settings });
  await sendTrialEndingWarnings({ clock, settings });
  await sendWeeklySummaries({ clock, settings });
  await closePaygHours({ clock });
  await reconcileAndAlert({ clock });
  await drain(email);
  await drain(telegram);
  await drain(whatsapp);
}

/**
 * A customer who started on Telegram (user id), gave an email and linked a
 * WhatsApp number with a link code, and (given `planCode`) bought that plan
 * with a card, which Paystack keeps for renewals.
 */
async function customer(telegramId: number, planCode?: string) {
  const { account } = await accountForIdentity(
    { channel: 'telegram', externalId: String(telegramId) },
    { clock: h.clock },
  );
  const address = `c${telegramId}@example.com`;
  await Account.updateOne(
    { _id: account.id },
    { $set: { email: address, emailVerifiedAt: h.clock.now() } },
  );
  const user = emulator.user({ id: telegramId, firstName: 'C', hasStartedBot: true });
  const number = `234701${telegramId}`;
  const { code } = await createLinkCode({ clock: h.clock }, account.id);
  await redeemLinkCode({ clock: h.clock }, { channel: 'whatsapp', externalId: number }, code);
  whatsappSocket.onWhatsAppNumbers.add(number);
  const sub = planCode ? await buy(account.id, planCode) : undefined;
  /** What the customer read on each channel (Telegram and WhatsApp as shown, email subjects). */
  const seen = {
    telegram: () => user.messages().map((m) => m.text ?? ''),
    whatsapp: () =>
      whatsappSocket.sent
        .filter((m) => m.jid === `${number}@s.whatsapp.net`)
        .map((m) => shownText(m.content)),
    email: () => smtp.messages.filter((m) => m.to.includes(address)).map((m) => m.subject),
  };
  return { accountId: account.id, address, user, number, sub, seen };
}

async function buy(accountId: string, planCode: string): Promise<SubscriptionRecord> {
  const checkout = await h.payments.checkout({ accountId, purpose: 'plan', planCode });
  await h.payAndSettle(checkout.reference);
  return Subscription.findOne({ accountId }).lean<SubscriptionRecord>().orFail();
}

/** The customer's proxy login, once the gateway knows it. */
async function proxyLogin(accountId: string): Promise<ProxyLogin> {
  const issued = await issueProxyCredentials(accountId, {});
  await role.access.refresh();
  return { username: issued.username, password: issued.secret };
}

const mailsTo = (address: string, subject: RegExp) =>
  smtp.messages.filter((m) => m.to.includes(address) && subject.test(m.subject)).length;

const count = (texts: string[], pattern: RegExp) => texts.filter((t) => pattern.test(t)).length;

describe('the business across weeks', () => {
  it('a Starter customer uses data through the gateway: warned at 50/80/95/100 % once each on Telegram, WhatsApp and email, cut at 100 %, back after the weekly reset', async () => {
    const { accountId, address, sub, seen, user } = await customer(710_001, 'starter');
    if (!sub) throw new Error('no subscription');
    await chooseLocations(sub._id, { locations: ['ng'], clock: h.clock });
    const login = await proxyLogin(accountId);
    const window = currentQuotaWindow(await getSubscription(sub._id), h.clock.now());
    if (!window) throw new Error('no quota window');

    const opened = await connectTunnel(role.addresses().http.port, login, website.port);
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const tunnel = opened.tunnel;
    /** Downloads through the live tunnel, books it (a gateway flush) and runs the business. */
    const use = async (bytes: number) => {
      const before = tunnel.receivedBytes;
      const total = await tunnel.download(bytes);
      await role.access.flush();
      for (let i = 0; i < 3; i++) await tick(); // repeated ticks add nothing
      return total - before;
    };
    const usageEvents = async () =>
      (await Notification.find({ accountId, event: /^usage_\d+$/ }).lean())
        .map((n) => n.event)
        .sort();
    const said = (pattern: RegExp) => ({
      telegram: count(seen.telegram(), pattern),
      whatsapp: count(seen.whatsapp(), pattern),
      email: count(seen.email(), pattern),
    });
    const once = { telegram: 1, whatsapp: 1, email: 1 };

    expect(await use(2_200_000)).toBe(2_200_000); // 55 %
    expect(await usageEvents()).toEqual(['usage_50']);
    expect(said(/used 50 ?%/)).toEqual(once);

    expect(await use(1_200_000)).toBe(1_200_000); // 85 %
    expect(await use(450_000)).toBe(450_000); // 96 %
    expect(await usageEvents()).toEqual(['usage_50', 'usage_80', 'usage_95']);
    expect(said(/used 80 ?%/)).toEqual(once);
    expect(said(/used 95 ?%/)).toEqual(once);
    expect(said(/used all/)).toEqual({ telegram: 0, whatsapp: 0, email: 0 });

    // Asking for more than is left: the gateway relays up to the last byte
    // of the week's quota and cuts the live tunnel.
    const got = await use(1_000_000);
    expect(got).toBeLessThan(1_000_000);
    expect(tunnel.socket.destroyed).toBe(true);
    const counter = await getQuotaUsage(accountId, h.clock.now());
    expect(counter).toMatchObject({ usedBytes: STARTER_QUOTA, remainingBytes: 0 });
    expect(await usageEvents()).toEqual(['usage_100', 'usage_50', 'usage_80', 'usage_95']);
    expect(said(/used all/)).toEqual(once);
    expect(said(/used (50|80|95) ?%/)).toEqual({ telegram: 3, whatsapp: 3, email: 3 });
    // On Telegram each warning is HTML with its lead in bold.
    const warnings = user.messages().filter((m) => /You have used/.test(m.text ?? ''));
    expect(warnings).toHaveLength(4);
    for (const warning of warnings) {
      expect(warning.parseMode).toBe('HTML');
      expect(warning.entities[0]).toMatchObject({ type: 'bold', offset: 0 });
    }

    // A new tunnel is refused with the reason the customer can act on.
    const refused = await connectTunnel(role.addresses().http.port, login, website.port);
    expect(refused).toMatchObject({ ok: false, status: 403 });
    expect(refused.ok ? '' : refused.body).toContain(
      'QUOTA_EXHAUSTED: Data limit reached. Upgrade or wait for reset',
    );
    expect((await listRecentRefusals(accountId)).map((r) => r.code)).toContain('QUOTA_EXHAUSTED');

    // The week ends: a new window with the whole quota, and the warnings start again for it.
    h.clock.set(new Date(window.end.getTime() + 60_000));
    await tick();
    await role.access.refresh();
    const reopened = await connectTunnel(role.addresses().http.port, login, website.port);
    if (!reopened.ok) throw new Error(`refused after the reset: ${reopened.body}`);
    expect(await reopened.tunnel.download(2_100_000)).toBe(2_100_000);
    await reopened.tunnel.close();
    await role.access.flush();
    await tick();
    const next = await getQuotaUsage(accountId, h.clock.now());
    expect(next?.periodStart).toEqual(window.end);
    expect(next?.usedBytes).toBeGreaterThanOrEqual(2_100_000);
    expect(await Notification.countDocuments({ accountId, event: 'usage_50' })).toBe(2);
    expect(said(/used 50 ?%/)).toEqual({ telegram: 2, whatsapp: 2, email: 2 });
    expect(said(/used all/)).toEqual(once);

    // Past Monday 01:00 UTC: the summary of the week of the 4 MB, once on every channel.
    h.clock.set(new Date(h.clock.now().getTime() + 2 * HOUR));
    await tick();
    await tick();
    const week = isoWeekId(window.start);
    const summaries = await Notification.find({
      accountId,
      event: 'weekly_summary',
      period: week,
    }).lean();
    expect(summaries.map((n): unknown => n.data)).toEqual([
      expect.objectContaining({ usedBytes: STARTER_QUOTA, planCode: 'starter' }),
    ]);
    expect(said(new RegExp(`Your week ${week}: 4 MB `))).toEqual(once);
    expect(mailsTo(address, new RegExp(`^Your week ${week}: 4 MB used$`))).toBe(1);
  });

  it('reminds before the renewal, renews with the saved card, then goes through dunning to expiry, each said once', async () => {
    // The emulator's queued card outcomes go to whichever renewal charges
    // first: the earlier test's customer stops renewing, so they are this one's.
    await Subscription.updateMany({ status: 'active' }, { $set: { cancelAtPeriodEnd: true } });
    const { accountId, address, sub } = await customer(710_002, 'personal');
    if (!sub) throw new Error('no subscription');
    const periodEnd = sub.periodEnd as Date;

    h.clock.set(new Date(periodEnd.getTime() - 3 * 24 * HOUR + HOUR));
    await tick();
    await tick();
    expect(await Notification.countDocuments({ accountId, event: 'renewal_due' })).toBe(1);

    h.clock.set(new Date(periodEnd.getTime() + 60_000));
    await tick();
    const renewed = await getSubscription(sub._id);
    expect(renewed.periodStart).toEqual(periodEnd);
    expect(mailsTo(address, /renew|Payment received/i)).toBeGreaterThanOrEqual(2);

    // The next renewal is declined every time: grace, retries, expiry.
    const secondEnd = renewed.periodEnd as Date;
    h.clock.set(new Date(secondEnd.getTime() + 60_000));
    h.emulator.nextChargeAuthorization('failed');
    await tick();
    expect((await getSubscription(sub._id)).status).toBe('past_due');
    for (const hours of [25, 73, 74]) {
      h.clock.set(new Date(secondEnd.getTime() + hours * HOUR));
      h.emulator.nextChargeAuthorization('failed');
      await tick();
      await tick();
    }
    expect((await getSubscription(sub._id)).status).toBe('expired');
    expect(await Notification.countDocuments({ accountId, event: 'expired' })).toBe(1);
    expect(mailsTo(address, /has ended/i)).toBe(1);
  });

  it('warns before a trial ends, ends it, refunds the deposit and says so once Paystack confirms', async () => {
    await Subscription.updateMany({ status: 'active' }, { $set: { cancelAtPeriodEnd: true } });
    const { account } = await accountForIdentity(
      { channel: 'telegram', externalId: '710003' },
      { clock: h.clock },
    );
    const address = 'c710003@example.com';
    await Account.updateOne(
      { _id: account.id },
      { $set: { email: address, emailVerifiedAt: h.clock.now() } },
    );
    emulator.user({ id: 710_003, firstName: 'T', hasStartedBot: true });
    const checkout = await h.payments.checkout({ accountId: account.id, purpose: 'trial_deposit' });
    await h.payAndSettle(checkout.reference);
    const trial = await Subscription.findOne({ accountId: account.id, status: 'trialing' })
      .lean<SubscriptionRecord>()
      .orFail();
    const endsAt = trial.trialEndsAt as Date;

    h.clock.set(new Date(endsAt.getTime() - 23 * HOUR));
    await tick();
    await tick();
    expect(
      await Notification.countDocuments({ accountId: account.id, event: 'trial_ending' }),
    ).toBe(1);

    h.clock.set(new Date(endsAt.getTime() + 60_000));
    await tick();
    expect((await getSubscription(trial._id)).status).toBe('expired');
    await h.emulator.settleRefund(checkout.reference, 'processed');
    await h.waitUntil(
      async () =>
        (await Notification.countDocuments({
          accountId: account.id,
          event: 'deposit_refunded',
        })) === 1,
    );
    await tick();
    await tick();
    expect(mailsTo(address, /deposit of .* was returned/)).toBe(1);
    expect(mailsTo(address, /^Your trial is ending$/)).toBe(1);
    expect(
      [...h.emulator.refunds.values()].filter((r) => r.transactionReference === checkout.reference),
    ).toHaveLength(1);
  });

  it('bills a PAYG wallet for each connected hour through the gateway, warns once when it runs low, and cuts the live tunnel when it cannot pay the next hour', async () => {
    // At the start of a UTC day, so the once-a-day wallet warnings fall in one day.
    const day = Math.ceil(h.clock.now().getTime() / (24 * HOUR)) * 24 * HOUR;
    const at = (hours: number) => new Date(day + hours * HOUR + 6 * 60_000);
    h.clock.set(at(0));
    const { accountId, address, seen } = await customer(710_004);
    await startPayg({ accountId, clock: h.clock });
    const topUp = await h.payments.checkout({
      accountId,
      purpose: 'wallet_topup',
      amountMinor: 70_000,
    });
    await h.payAndSettle(topUp.reference);
    const login = await proxyLogin(accountId);
    const paidHours = async () =>
      (await LedgerEntry.find({ accountId, status: 'applied' }).lean())
        .map((entry) => entry.idempotencyKey)
        .filter((key) => key.startsWith('payg:'))
        .sort();
    const balance = async () => (await getWallet(accountId)).balanceMinor;
    const said = (pattern: RegExp) => ({
      telegram: count(seen.telegram(), pattern),
      whatsapp: count(seen.whatsapp(), pattern),
      email: count(seen.email(), pattern),
    });

    // Connecting starts (and pays) the first hour.
    const tunnel = await socksTunnel(role.addresses().socks.port, login, website.port);
    expect(await tunnel.download(10_000)).toBe(10_000);
    expect(await balance()).toBe(70_000 - PAYG_HOURLY);
    await tick();
    expect(said(/wallet is low/i)).toEqual({ telegram: 0, whatsapp: 0, email: 0 });

    // Each hour the tunnel stays open is paid as it starts; the wallet falls
    // below the ₦500 warning level after the second hour and stays there.
    for (const hour of [1, 2, 3]) {
      h.clock.set(at(hour));
      await waitUntil(async () => (await paidHours()).length === hour + 1);
      expect(await tunnel.download(10_000)).toBe((hour + 1) * 10_000);
      await tick();
      await tick();
    }
    expect(await balance()).toBe(70_000 - 4 * PAYG_HOURLY);
    expect(await Notification.countDocuments({ accountId, event: 'wallet_low' })).toBe(1);
    expect(said(/wallet is low/i)).toEqual({ telegram: 1, whatsapp: 1, email: 1 });
    expect(said(/wallet is empty/i)).toEqual({ telegram: 0, whatsapp: 0, email: 0 });

    // The fifth hour cannot be paid: the live tunnel is cut, a new one refused.
    h.clock.set(at(4));
    await tunnel.closed;
    expect(await paidHours()).toHaveLength(4);
    await expect(socksTunnel(role.addresses().socks.port, login, website.port)).rejects.toThrow();
    await waitUntil(async () => {
      const codes = (await listRecentRefusals(accountId)).map((r) => r.code);
      return codes.filter((code) => code === 'WALLET_EMPTY').length >= 2;
    });
    await waitUntil(
      async () => (await Notification.countDocuments({ accountId, event: 'wallet_empty' })) === 1,
    );
    await tick();
    await tick();
    expect(await balance()).toBe(70_000 - 4 * PAYG_HOURLY);
    expect(await Notification.countDocuments({ accountId, event: 'wallet_empty' })).toBe(1);
    expect(said(/wallet is empty/i)).toEqual({ telegram: 1, whatsapp: 1, email: 1 });
    expect(said(/wallet is low/i)).toEqual({ telegram: 1, whatsapp: 1, email: 1 });
    // The forecast at the recent spend came once too, with its own email text.
    expect(mailsTo(address, /^Your wallet runs out around /)).toBe(1);

    // The closing job wrote one statement per connected hour.
    const statements = await listPaygHours(accountId, { from: new Date(day), to: h.clock.now() });
    expect(statements.map((s) => s.connectedMinor)).toEqual(Array(4).fill(PAYG_HOURLY));
    // Newest first, as the customer's statement lists them.
    expect(statements.map((s) => s.hourStart.getTime() - day).reverse()).toEqual(
      [0, 1, 2, 3].map((n) => n * HOUR),
    );
  });
});
