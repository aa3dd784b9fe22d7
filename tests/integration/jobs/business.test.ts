/**
 * The business run forward across weeks with a test clock: a tick harness
 * runs every scheduled duty's handler (the ones the jobs role schedules) at
 * the clock's time, then delivers the outbox on email (a real SMTP capture
 * server) and Telegram (the Bot API emulator). Nothing sleeps; every
 * customer hears each thing once however many ticks pass.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTelegramBot } from '../../../bot/telegram/bot.js';
import { TelegramDeliverer } from '../../../bot/telegram/deliver.js';
import { createConversation } from '../../../bot/core/index.js';
import { accountForIdentity } from '../../../core/accounts/index.js';
import { EmailDeliverer } from '../../../core/email/deliver.js';
import { closePaygHours } from '../../../core/payg.js';
import {
  getQuotaUsage,
  openQuotaPeriod,
  planWindowRequest,
  recordUsage,
} from '../../../core/quota.js';
import { sendRenewalReminders, sendTrialEndingWarnings } from '../../../core/reminders.js';
import { currentQuotaWindow, getSubscription } from '../../../core/subscriptions.js';
import { reconcileAndAlert } from '../../../core/wallet.js';
import { runUsageAlerts } from '../../../jobs/usage.js';
import { createLogger } from '../../../lib/logger.js';
import { createMailer } from '../../../lib/mailer.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Subscription, type SubscriptionRecord } from '../../../models/subscription.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { startSmtpCapture, type SmtpCapture } from '../../support/smtp-capture.js';
import { startTelegramEmulator, type TelegramEmulator } from '../../support/telegram-emulator.js';

const TOKEN = '999000:business';
const GB = 1_000_000_000;
const HOUR = 3_600_000;
const logger = createLogger({ level: 'silent' });
let smtp: SmtpCapture;
let emulator: TelegramEmulator;
let email: EmailDeliverer;
let telegram: TelegramDeliverer;

afterAll(async () => {
  await emulator.stop();
  await smtp.stop();
});
useTestDatabase();
// Near real time: the outbox and the codes have TTL indexes swept by real time.
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / HOUR) * HOUR).toISOString(),
});

beforeAll(async () => {
  smtp = await startSmtpCapture();
  emulator = await startTelegramEmulator({ token: TOKEN });
  const mailer = createMailer({
    smtpUrl: smtp.url,
    from: 'Atlantic <no-reply@atlantic.test>',
    dataDir: '/tmp',
    isProduction: false,
    logger,
  });
  email = new EmailDeliverer({ mailer, clock: h.clock, logger, workerId: 'tick-email' });
  const conversation = createConversation({
    clock: h.clock,
    payments: h.payments,
    settings: h.settings,
    mailer,
    logger,
    proxy: {
      host: 'p',
      socksPort: 1,
      httpPort: 2,
      policy: { httpsOnlyPorts: [443], blockedPorts: [] },
    },
  });
  const bot = createTelegramBot({
    token: TOKEN,
    apiRoot: emulator.apiRoot,
    conversation,
    logger,
    botInfo: emulator.botInfo,
  });
  telegram = new TelegramDeliverer({
    bot,
    clock: h.clock,
    logger,
    workerId: 'tick-telegram',
    adminChatIds: () => Promise.resolve([]),
  });
});

/** One pass of every scheduled duty at the clock's time, then the outbox delivered. */
async function tick(): Promise<void> {
  const { clock, settings } = h;
  await h.payments.runRenewals();
  await h.payments.finishDueTrials();
  await runUsageAlerts({ clock, logger, settings });
  await sendRenewalReminders({ clock, settings });
  await sendTrialEndingWarnings({ clock, settings });
  await closePaygHours({ clock });
  await reconcileAndAlert({ clock });
  while (await email.deliverOnce()) {
    /* deliver everything due */
  }
  while (await telegram.deliverOnce()) {
    /* deliver everything due */
  }
}

/** A customer on Telegram (user id) with an email, who bought `planCode` with a saved card. */
async function customer(planCode: string, telegramId: number) {
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
  const checkout = await h.payments.checkout({ accountId: account.id, purpose: 'plan', planCode });
  await h.payAndSettle(checkout.reference);
  const sub = await Subscription.findOne({ accountId: account.id })
    .lean<SubscriptionRecord>()
    .orFail();
  return { accountId: account.id, address, user, sub };
}

const mailsTo = (address: string, subject: RegExp) =>
  smtp.messages.filter((m) => m.to.includes(address) && subject.test(m.subject)).length;

describe('the business across weeks', () => {
  it('warns a Starter customer at 50/80/95/100 % once each on email and Telegram, and again after the weekly reset', async () => {
    const { accountId, address, user, sub } = await customer('starter', 710_001);
    const window = currentQuotaWindow(sub, h.clock.now());
    if (!window) throw new Error('no window');
    await openQuotaPeriod(accountId, planWindowRequest(window, { bytes: 10 * GB }));
    const use = async (bytes: number) => {
      await recordUsage(accountId, bytes, h.clock.now());
      for (let i = 0; i < 3; i++) await tick(); // repeated ticks add nothing
    };
    await use(5.5 * GB);
    await use(3 * GB); // 85 %
    await use(1.1 * GB); // 96 %
    await use(0.4 * GB); // 100 %
    const events = async () =>
      (await Notification.find({ accountId, event: /^usage_\d+$/ }).lean())
        .map((n) => n.event)
        .sort();
    expect(await events()).toEqual(['usage_100', 'usage_50', 'usage_80', 'usage_95']);
    expect(mailsTo(address, /50 %|50%/)).toBe(1);
    expect(mailsTo(address, /all of this period/i)).toBe(1);
    const chat = user.messages().map((m) => m.text ?? '');
    expect(chat.filter((t) => t.includes('used 50 %'))).toHaveLength(1);
    expect(chat.filter((t) => t.includes('used all the data'))).toHaveLength(1);
    expect((await getQuotaUsage(accountId, h.clock.now()))?.remainingBytes).toBe(0);

    // The next week: a new window, and the warnings start again for it.
    h.clock.set(window.end);
    const next = currentQuotaWindow(await getSubscription(sub._id), h.clock.now());
    if (!next) throw new Error('no next window');
    await openQuotaPeriod(accountId, planWindowRequest(next, { bytes: 10 * GB }));
    expect((await getQuotaUsage(accountId, h.clock.now()))?.remainingBytes).toBe(10 * GB);
    await use(6 * GB);
    expect(await Notification.countDocuments({ accountId, event: 'usage_50' })).toBe(2);
  });

  it('reminds before the renewal, renews with the saved card, then goes through dunning to expiry, each said once', async () => {
    // The emulator's queued card outcomes go to whichever renewal charges
    // first: the earlier test's customer stops renewing, so they are this one's.
    await Subscription.updateMany({ status: 'active' }, { $set: { cancelAtPeriodEnd: true } });
    const { accountId, address, sub } = await customer('personal', 710_002);
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
});
