/**
 * The email channel end to end: notify() writes the outbox item, the real
 * deliverer claims it and sends it through nodemailer to a real local SMTP
 * server, and the slot and the account show the outcome. Retries move a
 * TestClock; waits are on the SMTP servers' events.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { confirmEmailCode, requestEmailCode } from '../../../core/accounts/email.js';
import { EmailDeliverer, type EmailDelivererOptions } from '../../../core/email/deliver.js';
import { issueInvoice } from '../../../core/invoices.js';
import {
  DEFAULT_RETRY_POLICY,
  getOutboxItem,
  notify,
  notifyAdmins,
  type DeliverySlot,
} from '../../../core/notifications.js';
import { startEmailDelivery } from '../../../jobs/email.js';
import { TestClock } from '../../../lib/clock.js';
import { unsubscribeLinks } from '../../../core/email/unsubscribe.js';
import { createLogger } from '../../../lib/logger.js';
import { createMailer, type Mailer } from '../../../lib/mailer.js';
import { Account } from '../../../models/account.js';
import { useTestDatabase } from '../../support/database.js';
import { startSmtpCapture, type SmtpCapture } from '../../support/smtp-capture.js';
import { attachmentsOf } from './attachments.js';

/**
 * The business clock at the real time (to the minute): the outbox and the
 * email codes have TTL indexes the test database sweeps every second by real
 * time, so a clock months in the past would see them vanish mid-test.
 */
const nearNow = (): TestClock => new TestClock(new Date(Math.ceil(Date.now() / 60_000) * 60_000));

useTestDatabase();

const logger = createLogger({ level: 'silent' });
const render = { publicUrl: 'https://atlantic.test', telegramBotUsername: 'atlantic_bot' };

let capture: SmtpCapture;
let refusing: SmtpCapture;

beforeAll(async () => {
  capture = await startSmtpCapture();
  // A second server whose recipients the tests refuse at will.
  refusing = await startSmtpCapture();
});

afterAll(async () => {
  await capture.stop();
  await refusing.stop();
});

function mailerTo(url: string): Mailer {
  return createMailer({
    smtpUrl: url,
    from: 'Atlantic <no-reply@atlantic.test>',
    dataDir: '/nonexistent',
    isProduction: false,
    logger,
  });
}

function deliverer(
  clock: TestClock,
  mailer: Mailer,
  overrides: Partial<EmailDelivererOptions> = {},
): EmailDeliverer {
  return new EmailDeliverer({ mailer, clock, logger, workerId: 'w1', render, ...overrides });
}

let accounts = 0;
async function customer(): Promise<{ accountId: string; email: string }> {
  accounts += 1;
  const email = `customer${accounts}@example.test`;
  const account = await Account.create({ email });
  return { accountId: account._id.toHexString(), email };
}

async function emailSlot(itemId: string): Promise<DeliverySlot | undefined> {
  const item = await getOutboxItem(itemId);
  return item?.deliveries.find((slot) => slot.channel === 'email');
}

/** Sends or settles every due email slot, so the next test starts from an empty queue. */
async function settleAll(worker: EmailDeliverer): Promise<void> {
  while (await worker.deliverOnce());
}

describe('email delivery', () => {
  it('mails a confirmed payment with its subject, text, HTML and the invoice PDF attached', async () => {
    const clock = nearNow();
    const { accountId, email } = await customer();
    const invoice = await issueInvoice(
      {
        accountId,
        paymentReference: 'atl-pay-1',
        customer: { name: 'Ada Obi', email },
        lines: [{ description: 'Personal plan, 1 month', quantity: 1, unitMinor: 1_200_000 }],
        currency: 'NGN',
        vat: { enabled: false, rateBps: 0 },
        business: {
          name: 'Atlantic Networks Ltd',
          address: '12 Marina Road, Lagos',
          email: 'billing@atlantic.test',
        },
        paidAt: clock.now(),
      },
      { clock },
    );
    const { item } = await notify(
      {
        accountId,
        event: 'payment_confirmed',
        period: 'atl-pay-1',
        data: {
          reference: 'atl-pay-1',
          purpose: 'plan',
          planCode: 'personal',
          amountMinor: 1_200_000,
          currency: 'NGN',
        },
      },
      { clock },
    );

    await expect(deliverer(clock, mailerTo(capture.url)).deliverOnce()).resolves.toBe(true);

    const mail = await capture.waitForMail((m) => m.to.includes(email));
    expect(mail.subject).toBe('Payment received: ₦12,000.00');
    expect(mail.text).toContain('Your personal plan is active.');
    expect(mail.text).toContain(`Your receipt ${invoice.number} is attached.`);
    expect(mail.text).toContain('Connect in Telegram: https://t.me/atlantic_bot');
    expect(mail.html).toContain('<p>Your personal plan is active.</p>');
    expect(mail.html).toContain('<a href="https://t.me/atlantic_bot"');
    const attachments = attachmentsOf(mail.raw);
    expect(attachments.map((a) => [a.filename, a.contentType])).toEqual([
      [`${invoice.number}.pdf`, 'application/pdf'],
    ]);
    expect(attachments[0]?.content.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(await emailSlot(item.id)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it("puts the payment link in a failed payment's mail, and escapes what the gateway said", async () => {
    const clock = nearNow();
    const { accountId, email } = await customer();
    const payUrl = 'https://checkout.paystack.test/pay/abc?plan=personal&retry=1';
    await notify(
      {
        accountId,
        event: 'payment_failed',
        period: 'atl-pay-2',
        data: {
          reference: 'atl-pay-2',
          amountMinor: 500_000,
          currency: 'NGN',
          reason: '<b>Insufficient funds</b>',
          authorizationUrl: payUrl,
          graceEndsAt: '2026-03-04T10:00:00.000Z',
        },
      },
      { clock },
    );

    await settleAll(deliverer(clock, mailerTo(capture.url)));

    const mail = await capture.waitForMail((m) => m.to.includes(email));
    expect(mail.subject).toBe('Your payment of ₦5,000.00 did not go through');
    expect(mail.text).toContain(`Pay ₦5,000.00: ${payUrl}`);
    expect(mail.text).toContain('Pay before 2026-03-04 to keep your plan.');
    expect(mail.html).toContain(
      '<a href="https://checkout.paystack.test/pay/abc?plan=personal&amp;retry=1"',
    );
    expect(mail.html).toContain('&lt;b&gt;Insufficient funds&lt;/b&gt;');
    expect(mail.html).not.toContain('<b>');
  });

  it('fails the slot for good on a 5xx for the address, and later notifications leave email out until a new email is verified', async () => {
    const clock = nearNow();
    const { accountId, email } = await customer();
    refusing.refuse(email, 550, 'No such mailbox');
    const { item } = await notify({ accountId, event: 'welcome' }, { clock });

    await settleAll(deliverer(clock, mailerTo(refusing.url)));

    expect(refusing.refusals(email)).toBe(1);
    const slot = await emailSlot(item.id);
    expect(slot).toMatchObject({ status: 'failed', attempts: 1 });
    expect(slot?.lastError).toContain('550');
    const account = await Account.findById(accountId).lean();
    expect(account?.emailFailingSince).toEqual(clock.now());
    expect(account?.emailFailingReason).toContain('No such mailbox');

    const next = await notify(
      { accountId, event: 'renewal_due', period: '2026-03', data: { planCode: 'personal' } },
      { clock },
    );
    expect(next.item.deliveries.map((d) => d.channel)).not.toContain('email');

    // The customer confirms a new address: email is back.
    const accountsCtx = { clock, mailer: mailerTo(capture.url), logger };
    await requestEmailCode(accountsCtx, accountId, 'fixed@example.test');
    const codeMail = await capture.waitForMail((m) => m.to.includes('fixed@example.test'));
    await confirmEmailCode(accountsCtx, accountId, /\d{6}/.exec(codeMail.subject)?.[0] ?? '');
    const after = await notify(
      { accountId, event: 'renewal_due', period: '2026-04', data: { planCode: 'personal' } },
      { clock },
    );
    expect(after.item.deliveries.map((d) => [d.channel, d.status])).toEqual([['email', 'pending']]);
    await settleAll(deliverer(clock, mailerTo(capture.url)));
  });

  it('retries a 4xx later: pending until the backoff has passed, then sent', async () => {
    const clock = nearNow();
    const { accountId, email } = await customer();
    refusing.refuse(email, 451, 'Greylisted, try again later');
    const { item } = await notify({ accountId, event: 'wallet_empty' }, { clock });
    const worker = deliverer(clock, mailerTo(refusing.url));

    await expect(worker.deliverOnce()).resolves.toBe(true);

    const slot = await emailSlot(item.id);
    expect(slot).toMatchObject({ status: 'pending', attempts: 1 });
    expect(slot?.lastError).toContain('451');
    expect(slot?.nextAttemptAt).toEqual(
      new Date(clock.now().getTime() + DEFAULT_RETRY_POLICY.baseDelayMs),
    );
    expect((await Account.findById(accountId).lean())?.emailFailingSince).toBeUndefined();

    refusing.accept(email);
    await expect(worker.deliverOnce()).resolves.toBe(false); // not due yet
    clock.advance(DEFAULT_RETRY_POLICY.baseDelayMs);
    await expect(worker.deliverOnce()).resolves.toBe(true);

    const mail = await refusing.waitForMail((m) => m.to.includes(email));
    expect(mail.raw).toContain('Subject: Your wallet is empty');
    expect(await emailSlot(item.id)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('retries when the mail server refuses the connection', async () => {
    const clock = nearNow();
    const { accountId, email } = await customer();
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { item } = await notify({ accountId, event: 'trial_started' }, { clock });

    await deliverer(clock, mailerTo(`smtp://127.0.0.1:${port}`)).deliverOnce();

    expect(await emailSlot(item.id)).toMatchObject({ status: 'pending', attempts: 1 });
    clock.advance(DEFAULT_RETRY_POLICY.baseDelayMs);
    await deliverer(clock, mailerTo(capture.url)).deliverOnce();
    const mail = await capture.waitForMail((m) => m.to.includes(email));
    expect(mail.subject).toBe('Your trial has started');
    expect(await emailSlot(item.id)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('skips admin alerts when no admin email is configured, and mails the admins when one is', async () => {
    const clock = nearNow();
    const unset = await notifyAdmins(
      { event: 'ledger_drift', dedupKey: 'drift:1', data: { wallets: 2, totalDriftMinor: 300 } },
      { clock },
    );
    await settleAll(deliverer(clock, mailerTo(capture.url)));
    expect(await emailSlot(unset.item.id)).toMatchObject({
      status: 'skipped',
      lastError: 'no admin email configured',
    });

    const alert = await notifyAdmins(
      { event: 'exit_pool_down', dedupKey: 'pool:lagos', data: { location: 'lagos' } },
      { clock },
    );
    await settleAll(
      deliverer(clock, mailerTo(capture.url), { adminEmails: ['ops@atlantic.test'] }),
    );
    const mail = await capture.waitForMail((m) => m.to.includes('ops@atlantic.test'));
    expect(mail.subject).toBe('[admin] Every exit of lagos is failing');
    expect(mail.text).toContain('location: lagos');
    expect(await emailSlot(alert.item.id)).toMatchObject({ status: 'sent' });
  });

  it('sends every mail exactly once with two delivery loops running at once', async () => {
    const clock = nearNow();
    const customers = await Promise.all(Array.from({ length: 12 }, () => customer()));
    const items = await Promise.all(
      customers.map(({ accountId }) =>
        notify({ accountId, event: 'trial_ending', data: {} }, { clock }),
      ),
    );
    const options = { mailer: mailerTo(capture.url), clock, logger, render, idleMs: 50 };
    const loops = [
      startEmailDelivery({ ...options, workerId: 'jobs-a' }),
      startEmailDelivery({ ...options, workerId: 'jobs-b' }),
    ];

    await Promise.all(
      customers.map(({ email }) => capture.waitForMail((m) => m.to.includes(email))),
    );
    await Promise.all(loops.map((loop) => loop.stop()));

    for (const { email } of customers) {
      expect(capture.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
    }
    const slots = await Promise.all(items.map(({ item }) => emailSlot(item.id)));
    expect(slots.map((slot) => [slot?.status, slot?.attempts])).toEqual(
      items.map(() => ['sent', 1]),
    );
  });

  it('puts a one-click unsubscribe link (and List-Unsubscribe headers) in mails the customer may mute, not in receipts', async () => {
    const clock = nearNow();
    const links = unsubscribeLinks('unsubscribe-test-secret-0123456789abcdef');
    const { accountId, email } = await customer();
    await notify(
      {
        accountId,
        event: 'weekly_summary',
        period: '2026-W48',
        data: { week: '2026-W48', usedBytes: 4_000_000, planCode: 'starter' },
      },
      { clock },
    );
    await notify({ accountId, event: 'welcome' }, { clock });
    await settleAll(deliverer(clock, mailerTo(capture.url), { unsubscribe: links }));

    const summary = await capture.waitForMail(
      (m) => m.to.includes(email) && m.subject.startsWith('Your week'),
    );
    const url = /Stop these emails: (\S+)/.exec(summary.text)?.[1] ?? '';
    expect(url.startsWith('https://atlantic.test/account/unsubscribe?token=')).toBe(true);
    expect(summary.headers['list-unsubscribe']).toBe(`<${url}>`);
    expect(summary.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click');
    expect(summary.html).toContain('Stop these emails</a>');
    // The token names this account and this event, and only a genuine one is accepted.
    const token = decodeURIComponent(new URL(url).searchParams.get('token') ?? '');
    expect(links.verify(token)).toEqual({ accountId, event: 'weekly_summary' });
    expect(links.verify(token.replace('weekly_summary', 'usage_80'))).toBeNull();
    expect(unsubscribeLinks('another-secret-0123456789abcdefghij').verify(token)).toBeNull();

    // A receipt-like mail the customer cannot turn off has no link.
    const welcome = await capture.waitForMail(
      (m) => m.to.includes(email) && !m.subject.startsWith('Your week'),
    );
    expect(welcome.text).toContain('Stop these emails');
    const receipt = await notify(
      {
        accountId,
        event: 'payment_failed',
        period: 'atl-pay-9',
        data: { reference: 'atl-pay-9', amountMinor: 100_000, currency: 'NGN' },
      },
      { clock },
    );
    await settleAll(deliverer(clock, mailerTo(capture.url), { unsubscribe: links }));
    const failed = await capture.waitForMail(
      (m) => m.to.includes(email) && m.subject.includes('did not go through'),
    );
    expect(receipt.created).toBe(true);
    expect(failed.text).not.toContain('Stop these emails');
    expect(failed.headers['list-unsubscribe']).toBeUndefined();
  });
});
