/**
 * One journey suite, run against both adapters, so Telegram and WhatsApp
 * cannot drift apart: Telegram through the real grammY stack and the Bot API
 * emulator (buttons pressed), WhatsApp through the adapter and a fake socket
 * (numbers typed). Same core, same database, same mail and payments; each
 * journey is written once in terms of what a customer sees and picks.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AnyMessageContent } from '@whiskeysockets/baileys';
import type { Update } from 'grammy/types';
import { createTelegramBot } from '../../../bot/telegram/bot.js';
import { WhatsAppAdapter } from '../../../bot/whatsapp/adapter.js';
import { addExit, addLocation } from '../../../core/locations.js';
import { createLogger } from '../../../lib/logger.js';
import { Payment } from '../../../models/payment.js';
import { useBotHarness } from '../../support/bot.js';
import { useTestDatabase } from '../../support/database.js';
import { startTelegramEmulator, type TelegramEmulator } from '../../support/telegram-emulator.js';
import { FakeSocket, shownText } from '../whatsapp/fake-socket.js';

/** One message as the customer sees it, on either app. */
interface Shown {
  text: string;
  /** Choices offered: button labels (Telegram) or numbered lines (WhatsApp). */
  choices: string[];
  /** A payment or other link: a URL button (Telegram) or a URL in the text (WhatsApp). */
  url: string | null;
  image: boolean;
  document: string | null;
}

interface Chat {
  send(text: string): Promise<Shown[]>;
  /** Picks the choice whose label contains `label` from the last message that offered choices. */
  choose(label: string): Promise<Shown[]>;
}

interface Driver {
  readonly name: 'telegram' | 'whatsapp';
  /** A new chat; `admin` is the one the configuration names as an admin. */
  newChat(options?: { admin?: boolean }): Chat;
}

const TOKEN = '888000:channels';
const logger = createLogger({ level: 'silent' });
let emulator: TelegramEmulator;

afterAll(async () => {
  await emulator.stop();
});
useTestDatabase();
const TG_ADMIN = 690_000_001;
const WA_ADMIN = '2348099990001';
const h = useBotHarness({ admins: { telegramIds: [TG_ADMIN], whatsappNumbers: [WA_ADMIN] } });

beforeAll(async () => {
  emulator = await startTelegramEmulator({ token: TOKEN });
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
});

let users = 0;

function telegramDriver(): Driver {
  return {
    name: 'telegram',
    newChat(options = {}) {
      const bot = createTelegramBot({
        token: TOKEN,
        apiRoot: emulator.apiRoot,
        conversation: h.conversation,
        logger,
        botInfo: emulator.botInfo,
      });
      const user = emulator.user({
        id: options.admin ? TG_ADMIN : 600_000 + ++users,
        firstName: 'Chan',
      });
      let shown: Shown[] = [];
      // The update is handled here, not by a poller: when handleUpdate resolves, every answer is sent.
      const run = async (update: Update | undefined): Promise<Shown[]> => {
        if (!update) throw new Error('no update queued');
        const before = user.messages().length;
        await bot.handleUpdate(update);
        const answer = user.messages().slice(before);
        shown = answer.map((m) => ({
          text: m.text ?? m.caption ?? '',
          choices: m.buttons.map((b) => b.text),
          url: m.buttons.find((b) => b.url)?.url ?? null,
          image: m.photo !== undefined,
          document: m.document?.fileName ?? null,
        }));
        return shown;
      };
      const lastUpdate = (): Update | undefined => emulator.pendingUpdates.at(-1);
      return {
        send: (text) => {
          user.sendText(text);
          return run(lastUpdate());
        },
        choose: (label) => {
          const message = [...user.messages()].reverse().find((m) => m.buttons.length > 0);
          const button = message?.buttons.find(
            (b) => b.callbackData && b.text.toLowerCase().includes(label.toLowerCase()),
          );
          if (!message || !button?.callbackData) {
            throw new Error(
              `no "${label}" button: ${shown.map((s) => s.choices.join('|')).join(' / ')}`,
            );
          }
          return run(user.pressButton(message, button.callbackData).update);
        },
      };
    },
  };
}

function whatsappDriver(): Driver {
  return {
    name: 'whatsapp',
    newChat(options = {}) {
      const socket = new FakeSocket();
      const adapter = new WhatsAppAdapter({ conversation: h.conversation, logger });
      adapter.attach(socket);
      const number = options.admin ? WA_ADMIN : `2348${String(100_000_000 + ++users)}`;
      const jid = `${number}@s.whatsapp.net`;
      let numbered: { n: string; label: string }[] = [];
      const toShown = (content: AnyMessageContent): Shown => {
        const text = shownText(content);
        const lines = text.split('\n').map((l) => /^(\d+)\. (.*)$/.exec(l));
        const choices = lines.flatMap((m) => (m?.[1] && m[2] && m[1] !== '0' ? [m[2]] : []));
        if (choices.length > 0) {
          numbered = lines.flatMap((m) => (m?.[1] && m[2] ? [{ n: m[1], label: m[2] }] : []));
        }
        return {
          text,
          choices,
          url: /https?:\/\/\S+/.exec(text)?.[0] ?? null,
          image: 'image' in content,
          document:
            'document' in content ? ((content as { fileName?: string }).fileName ?? '') : null,
        };
      };
      const send = async (text: string): Promise<Shown[]> => {
        const before = socket.sent.filter((m) => m.jid === jid).length;
        socket.receive(number, { conversation: text }, { pushName: 'Chan' });
        await adapter.drain();
        return socket.sent
          .filter((m) => m.jid === jid)
          .slice(before)
          .map((m) => toShown(m.content));
      };
      return {
        send,
        choose: (label) => {
          const line = numbered.find((c) => c.label.toLowerCase().includes(label.toLowerCase()));
          if (!line)
            throw new Error(`no "${label}" line: ${numbered.map((c) => c.label).join(' | ')}`);
          return send(line.n);
        },
      };
    },
  };
}

const all = (shown: Shown[]): string => shown.map((s) => s.text).join('\n');

async function signUp(chat: Chat, email: string): Promise<Shown[]> {
  expect(all(await chat.send('/start'))).toContain("what's your email address?");
  expect(all(await chat.send(email))).toContain(`I sent a 6-digit code to ${email}`);
  const mail = await h.smtp.waitForMail((m) => m.to.includes(email));
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1] ?? '';
  expect(all(await chat.send(code))).toContain('Email verified');
  return chat.choose('I agree');
}

describe.each([telegramDriver(), whatsappDriver()])('journeys on $name', (driver) => {
  const email = (what: string) => `${what}.${driver.name}.${Date.now() % 100_000}@example.com`;

  it('signs up and lands on the first-run guide', async () => {
    const chat = driver.newChat();
    const guide = await signUp(chat, email('signup'));
    expect(all(guide)).toContain('What to do first');
    expect(guide.flatMap((s) => s.choices)).toEqual(
      expect.arrayContaining(['🛒 See plans', '🎁 Start a trial']),
    );
  });

  it('buys Starter through the Paystack link, then connects and gets credentials with a QR code', async () => {
    const chat = driver.newChat();
    await signUp(chat, email('buyer'));
    await chat.choose('See plans');
    const link = await chat.choose('Buy Starter');
    const url = link.find((s) => s.url)?.url ?? '';
    expect(all(link)).toContain('Starter plan: ₦3,500.00');
    const payment = await Payment.findOne({ authorizationUrl: url }).lean().orFail();
    await h.payments.payAndSettle(payment.reference);

    expect(all(await chat.send('/connect'))).toContain('Your plan includes one location');
    const protocols = await chat.choose('Nigeria (Lagos)');
    expect(protocols.flatMap((s) => s.choices)).toEqual(
      expect.arrayContaining(['HTTPS (CONNECT)', '🔒 SOCKS5']),
    );
    const credentials = await chat.choose('HTTPS (CONNECT)');
    expect(all(credentials)).toMatch(/Username: [a-z0-9]+-country-ng/);
    expect(all(credentials)).toMatch(/Password: \S{20,}/);
    expect(credentials.some((s) => s.image)).toBe(true);

    expect(all(await chat.send('/usage'))).toContain('Data this period:');
    expect(all(await chat.send('/why'))).toContain('No failed connections recently.');

    // Billing: the plan, then the receipt as a PDF document.
    expect(all(await chat.send('/billing'))).toContain('₦3,500.00');
    await chat.choose('Invoices');
    const receipt = await chat.choose('ATL-');
    expect(receipt.find((s) => s.document)?.document).toMatch(/^ATL-\d{4}-\d{6}\.pdf$/);

    // Cancel at the end of the period, confirmed, then taken back.
    await chat.send('/billing');
    await chat.choose('Cancel plan');
    await chat.choose('At the end of the period');
    expect(all(await chat.choose('Confirm'))).toContain('and will not renew');
    expect(all(await chat.choose('Keep my plan'))).toContain('Your plan continues: it renews on');
  });

  it('lets a Team owner invite a member who joins from another chat on the same app', async () => {
    const owner = driver.newChat();
    await signUp(owner, email('owner'));
    await owner.choose('See plans');
    const link = await owner.choose('Buy Team');
    const payment = await Payment.findOne({ authorizationUrl: link.find((s) => s.url)?.url ?? '' })
      .lean()
      .orFail();
    await h.payments.payAndSettle(payment.reference);
    await owner.send('/team');
    const invite = all(await owner.choose('Invite a member'));
    const code = /\b([A-Z0-9]{4}-?[A-Z0-9]{4})\b/.exec(invite)?.[1] ?? '';
    expect(code).not.toBe('');

    const member = driver.newChat();
    await signUp(member, email('member'));
    await member.send('/team');
    await member.choose('Join a team');
    expect(all(await member.send(code))).toMatch(/team/i);
    expect(all(await owner.send('/team'))).toContain(`member.${driver.name}`);
  });

  it('answers an unknown command and drops a half-finished conversation on /cancel', async () => {
    const chat = driver.newChat();
    await chat.send('/start');
    expect(all(await chat.send('/cancel'))).toContain('Cancelled. Nothing was changed.');
    await signUp(chat, email('lost'));
    expect(all(await chat.send('/frobnicate'))).toContain("I don't know /frobnicate");
  });

  it('runs the admin commands for an admin named in the configuration, and to no one else', async () => {
    const customer = driver.newChat();
    const plain = email('plain');
    await signUp(customer, plain);
    expect(all(await customer.send('/stats'))).toContain("I don't know /stats");

    const admin = driver.newChat({ admin: true });
    const answers: Record<string, RegExp> = {
      '/admin': /stats/i,
      '/stats': /customers/i,
      [`/user ${plain}`]: new RegExp(`${plain.replace(/\./g, '\\.')}[\\s\\S]*(Plan|plan)`),
      '/payments': /payment/i,
      '/locations': /Nigeria \(Lagos\)|ng/,
      '/upstreams': /direct|ng/i,
      '/plans': /Starter/,
      '/settings': /graceDays|grace/i,
      '/admins': /admin/i,
    };
    for (const [command, expected] of Object.entries(answers)) {
      const text = all(await admin.send(command));
      expect([command, text]).toEqual([command, expect.stringMatching(expected)]);
      expect(text).not.toContain("I don't know");
    }
  });

  it('shows a link code for the other app in Account', async () => {
    const chat = driver.newChat();
    await signUp(chat, email('linker'));
    await chat.send('/account');
    const code = await chat.choose(driver.name === 'telegram' ? 'WhatsApp' : 'Telegram');
    expect(all(code)).toMatch(/[A-Z0-9]{4}-[A-Z0-9]{4}/);
  });
});
