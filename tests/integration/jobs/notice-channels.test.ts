/**
 * One notification, rendered per channel as the customer receives it: on
 * Telegram as HTML (the lead in bold, everything from data escaped) through
 * the real deliverer and the Bot API emulator, on WhatsApp as plain text
 * through the real deliverer and the fake socket, and by email as HTML and
 * plain text through the real deliverer and a local SMTP server. Then the
 * email texts of the weekly summary and the two forecasts.
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
import { renderEmail } from '../../../core/email/render.js';
import { notify } from '../../../core/notifications.js';
import { Account } from '../../../models/account.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import type { SmtpCapture } from '../../support/smtp-capture.js';
import type { TelegramEmulator } from '../../support/telegram-emulator.js';
import { startChannelDeliverers, type ChannelDeliverers } from './channel-deliverers.js';
import type { FakeSocket } from '../whatsapp/fake-socket.js';
import { shownText } from '../whatsapp/fake-socket.js';

const TOKEN = '999001:notices';
let smtp: SmtpCapture;
let emulator: TelegramEmulator;
let email: EmailDeliverer;
let telegram: TelegramDeliverer;
let whatsapp: WhatsAppDeliverer;
let socket: FakeSocket;
let channels: ChannelDeliverers;

afterAll(async () => {
  await channels.stop();
});
useTestDatabase();
// Near real time: the outbox has a TTL index swept by real time.
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});

beforeAll(async () => {
  channels = await startChannelDeliverers(h, { token: TOKEN, name: 'n' });
  ({ smtp, emulator, email, telegram, whatsapp, socket } = channels);
});

async function deliverAll(): Promise<void> {
  for (const deliverer of [telegram, whatsapp, email]) {
    while (await deliverer.deliverOnce()) {
      /* everything due */
    }
  }
}

/** A customer on Telegram with a verified email and a linked WhatsApp number. */
async function customer(telegramId: number) {
  const { account } = await accountForIdentity(
    { channel: 'telegram', externalId: String(telegramId) },
    { clock: h.clock },
  );
  const address = `n${telegramId}@example.com`;
  await Account.updateOne(
    { _id: account.id },
    { $set: { email: address, emailVerifiedAt: h.clock.now() } },
  );
  const number = `234702${telegramId}`;
  const { code } = await createLinkCode({ clock: h.clock }, account.id);
  await redeemLinkCode({ clock: h.clock }, { channel: 'whatsapp', externalId: number }, code);
  socket.onWhatsAppNumbers.add(number);
  const user = emulator.user({ id: telegramId, firstName: 'N', hasStartedBot: true });
  return { accountId: account.id, address, number, user };
}

describe('one notice on every channel', () => {
  it('shows Telegram escaped HTML with the lead in bold (parse_mode HTML), WhatsApp the plain text, and email both', async () => {
    const { accountId, address, number, user } = await customer(720_001);
    // The card issuer's words reach us through Paystack: nothing we wrote.
    const reason = 'Declined <do not honour> & "retry"';
    await notify(
      {
        accountId,
        event: 'payment_failed',
        period: 'ref-html',
        data: { amountMinor: 350_000, currency: 'NGN', reason },
      },
      { clock: h.clock },
    );
    await deliverAll();

    const [shown] = await user.waitForMessages(1);
    const lead = `❌ Your payment of ₦3,500.00 did not go through (${reason}).`;
    expect(shown?.parseMode).toBe('HTML');
    expect(shown?.text).toBe(`${lead} You can try again.`);
    expect(shown?.entities).toEqual([{ type: 'bold', offset: 0, length: lead.length }]);
    const sent = emulator.calls.find(
      (call) => call.method === 'sendMessage' && call.params.chat_id === user.id,
    );
    expect(sent?.params.text).toBe(
      '<b>❌ Your payment of ₦3,500.00 did not go through (Declined &lt;do not honour&gt; &amp; "retry").</b> You can try again.',
    );

    const [onWhatsApp] = await socket.waitForSent(1);
    expect(onWhatsApp?.jid).toBe(`${number}@s.whatsapp.net`);
    expect(shownText(onWhatsApp?.content ?? { text: '' })).toBe(
      `❌ Your payment of ₦3,500.00 did not go through (${reason}). You can try again.\n\n1. 💳 Billing\n0. Menu`,
    );

    const mail = await smtp.waitForMail((m) => m.to.includes(address));
    expect(mail.subject).toBe('Your payment of ₦3,500.00 did not go through');
    expect(mail.text).toContain(`(${reason})`);
    expect(mail.html).toContain('(Declined &lt;do not honour&gt; &amp; &quot;retry&quot;)');
  });

  it('keeps markup in a broadcast as typed on Telegram', async () => {
    const { accountId, user } = await customer(720_002);
    await notify(
      {
        accountId,
        event: 'broadcast',
        period: 'b1',
        data: { text: 'New exits in <b>London</b> & Lagos' },
      },
      { clock: h.clock },
    );
    await deliverAll();
    const [shown] = await user.waitForMessages(1);
    expect(shown?.parseMode).toBe('HTML');
    expect(shown?.text).toBe('📣 New exits in <b>London</b> & Lagos');
    expect(shown?.entities).toEqual([]);
  });

  it('sets the lead of a multi-line notice in bold, and nothing else', async () => {
    const { accountId, user } = await customer(720_003);
    await notify(
      {
        accountId,
        event: 'weekly_summary',
        period: '2026-W47',
        data: { week: '2026-W47', usedBytes: 2_100_000_000, planCode: 'starter' },
      },
      { clock: h.clock },
    );
    await deliverAll();
    const [shown] = await user.waitForMessages(1);
    const lead = '📅 Your week 2026-W47: 2.1 GB of data used.';
    expect(shown?.text?.startsWith(`${lead}\nPlan: starter.`)).toBe(true);
    expect(shown?.entities).toEqual([{ type: 'bold', offset: 0, length: lead.length }]);
    expect(shown?.buttons.map((b) => b.callbackData)).toEqual(['usage', 'billing']);
  });
});

describe('email texts of the summaries and forecasts', () => {
  const options = { publicUrl: 'https://atlantic.test' };

  it('sums up last week: data, time connected, the plan and what pay as you go cost', () => {
    const mail = renderEmail(
      {
        event: 'weekly_summary',
        data: {
          week: '2026-W47',
          weekStart: '2026-11-16T00:00:00.000Z',
          weekEnd: '2026-11-23T00:00:00.000Z',
          usedBytes: 2_345_000_000,
          connectedSeconds: 12_000,
          planCode: 'personal',
          status: 'active',
          renewsAt: '2026-12-01T09:00:00.000Z',
          endsAt: null,
          paygCostMinor: 45_000,
          currency: 'NGN',
        },
      },
      options,
    );
    expect(mail.subject).toBe('Your week 2026-W47: 2.35 GB used');
    expect(mail.text).toContain(
      'Last week (16 Nov to 22 Nov 2026) you used 2.35 GB of data, connected for 3 h 20 min.',
    );
    expect(mail.text).toContain('Plan: personal, renews on 2026-12-01.');
    expect(mail.text).toContain('Pay as you go cost ₦450.00 this week.');
    expect(mail.text).toContain('1 GB = 1,000,000,000 bytes');
    expect(mail.text).toContain('See usage: https://atlantic.test');
    expect(mail.html).toContain('<p>Plan: personal, renews on 2026-12-01.</p>');
  });

  it('says when the data runs out at the recent rate', () => {
    const mail = renderEmail(
      {
        event: 'usage_forecast',
        data: {
          usedBytes: 6_000_000_000,
          limitBytes: 10_000_000_000,
          percent: 60,
          periodEnd: '2026-11-30T09:00:00.000Z',
          bytesPerHour: 50_000_000,
          runsOutAt: '2026-11-27T14:00:00.000Z',
        },
      },
      options,
    );
    expect(mail.subject).toBe('At this rate your data runs out on Friday 27 Nov');
    expect(mail.text).toContain(
      'You have used 6 GB of your 10 GB (60%). At your rate of the last three days, 50 MB an hour, you will reach 10 GB on Friday 27 Nov, before your data resets on 2026-11-30.',
    );
    expect(mail.link).toEqual({ label: 'See plans', url: 'https://atlantic.test' });
  });

  it('says when the wallet runs out at the recent spend', () => {
    const mail = renderEmail(
      {
        event: 'wallet_forecast',
        data: {
          balanceMinor: 60_000,
          currency: 'NGN',
          hourlySpendMinor: 15_000,
          runsOutAt: '2026-11-27T14:00:00.000Z',
        },
      },
      options,
    );
    expect(mail.subject).toBe('Your wallet runs out around Friday 27 Nov, 14:00 UTC');
    expect(mail.text).toContain(
      'Your wallet has ₦600.00. At your recent spend of ₦150.00 an hour it runs out around Friday 27 Nov, 14:00 UTC.',
    );
    expect(mail.link).toEqual({ label: 'Top up', url: 'https://atlantic.test' });
  });
});
