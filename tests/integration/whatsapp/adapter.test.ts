/**
 * The WhatsApp adapter (bot/whatsapp/adapter.ts) on the real conversation
 * core, with real accounts, mail (SMTP capture), payments (Paystack
 * emulator) and the database; only WhatsApp's socket is a fake. A customer
 * types text and numbers, and reads numbered menus, links, images and
 * documents back.
 */
import { describe, expect, it } from '@jest/globals';
import type { AnyMessageContent } from '@whiskeysockets/baileys';
import {
  inboundFromText,
  menuLines,
  phoneOfVcard,
  WhatsAppAdapter,
} from '../../../bot/whatsapp/adapter.js';
import { addExit, addLocation } from '../../../core/locations.js';
import { createLogger } from '../../../lib/logger.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { Payment } from '../../../models/payment.js';
import { useBotHarness } from '../../support/bot.js';
import { useTestDatabase } from '../../support/database.js';
import { FakeSocket, shownText, type SentMessage } from './fake-socket.js';

useTestDatabase();
const h = useBotHarness();
const logger = createLogger({ level: 'silent' });

let numbers = 0;
const newNumber = (): string =>
  `23480${String(10_000_000 + Math.floor(Math.random() * 80_000_000) + ++numbers)}`;

interface Phone {
  readonly number: string;
  readonly jid: string;
  /** Sends a text; resolves with what the bot answered this chat. */
  send(text: string): Promise<SentMessage[]>;
  /** Sends the number of the line that reads `label` in the last numbered menu. */
  choose(label: string): Promise<SentMessage[]>;
  /** Everything the bot sent this chat. */
  received(): SentMessage[];
}

function setup(options: { rateLimit?: { messages: number; windowMs: number } } = {}) {
  const socket = new FakeSocket();
  const adapter = new WhatsAppAdapter({
    conversation: h.conversation,
    logger,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  });
  adapter.attach(socket);

  const phone = (number = newNumber(), jid = `${number}@s.whatsapp.net`): Phone => {
    const received = (): SentMessage[] => socket.sent.filter((m) => m.jid === jid);
    const send = async (text: string): Promise<SentMessage[]> => {
      const before = received().length;
      socket.receive(number, { conversation: text }, { pushName: 'Ada Lovelace' });
      await adapter.drain();
      return received().slice(before);
    };
    return {
      number,
      jid,
      send,
      received,
      async choose(label) {
        const menu = [...received()]
          .reverse()
          .map((m) => shownText(m.content))
          .find((text) => /^1\. /m.test(text));
        const line = menu
          ?.split('\n')
          .map((l) => /^(\d+)\. (.*)$/.exec(l))
          .find((match) => match?.[2]?.toLowerCase().includes(label.toLowerCase()));
        if (!line?.[1]) throw new Error(`no "${label}" in the last menu:\n${menu ?? '(none)'}`);
        return send(line[1]);
      },
    };
  };
  return { socket, adapter, phone };
}

const text = (messages: SentMessage[]): string =>
  messages.map((m) => shownText(m.content)).join('\n---\n');

async function signUp(
  p: Phone,
  email = `wa${numbers}${Math.floor(Math.random() * 1e6)}@example.com`,
) {
  expect(text(await p.send('/start'))).toContain("what's your email address?");
  await p.send(email);
  const mail = await h.smtp.waitForMail((m) => m.to.includes(email));
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1] ?? '';
  const verified = await p.send(code);
  expect(text(verified)).toContain('Email verified');
  return p.choose('I agree');
}

async function buy(p: Phone, plan: string): Promise<void> {
  await p.send('plans');
  const answer = text(await p.choose(`Buy ${plan}`));
  const url = /https?:\/\/\S+/.exec(answer)?.[0] ?? '';
  const payment = await Payment.findOne({ authorizationUrl: url }).lean().orFail();
  await h.payments.payAndSettle(payment.reference);
}

describe('text in', () => {
  it('reads /commands, bare command words and everything else as text', () => {
    expect(inboundFromText('/help')).toEqual({ kind: 'command', command: 'help', args: '' });
    expect(inboundFromText('/START link_ab12cd34')).toEqual({
      kind: 'command',
      command: 'start',
      args: 'link_ab12cd34',
    });
    expect(inboundFromText(' Menu ')).toEqual({ kind: 'command', command: 'menu', args: '' });
    expect(inboundFromText('help!')).toEqual({ kind: 'command', command: 'help', args: '' });
    expect(inboundFromText('3')).toEqual({ kind: 'text', text: '3' });
    expect(inboundFromText('LINK ABCD-EFGH')).toEqual({ kind: 'text', text: 'LINK ABCD-EFGH' });
    expect(inboundFromText('help me please')).toEqual({ kind: 'text', text: 'help me please' });
    expect(inboundFromText('ada@example.com')).toEqual({ kind: 'text', text: 'ada@example.com' });
  });

  it('takes the number off a shared contact card', () => {
    expect(
      phoneOfVcard('BEGIN:VCARD\nTEL;type=CELL;waid=2348012345678:+234 801 234 5678\nEND:VCARD'),
    ).toBe('2348012345678');
    expect(phoneOfVcard('BEGIN:VCARD\nTEL:+44 20 7946 0958\nEND:VCARD')).toBe('442079460958');
    expect(phoneOfVcard('BEGIN:VCARD\nFN:Nobody\nEND:VCARD')).toBeNull();
  });
});

describe('a customer on WhatsApp', () => {
  it('signs up from /start to the numbered main menu, as the number they write from', async () => {
    const { phone } = setup();
    const p = phone();
    const guide = await signUp(p);
    expect(text(guide)).toContain('What to do first');

    const [menu, ...rest] = await p.send('menu');
    expect(rest).toEqual([]);
    expect(menu?.content).toEqual({
      text: [
        'What would you like to do?',
        '',
        '1. 🔌 Connect',
        '2. 📊 Usage',
        '3. 🛒 Plans',
        '4. 💳 Billing',
        '5. ❓ Why did my proxy fail?',
        '6. 🔐 Security',
        '7. ⚙️ Account',
        '8. Help',
        '0. Menu',
      ].join('\n'),
    });
    expect(
      await ChannelIdentity.findOne({ channel: 'whatsapp', externalId: p.number }).lean(),
    ).toMatchObject({ displayName: 'Ada Lovelace' });
  });

  it('picks from the last menu by number, and 0 goes back to the menu', async () => {
    const { phone } = setup();
    const p = phone();
    await signUp(p);
    await p.send('menu');
    expect(text(await p.send('3'))).toContain('Our plans:');
    expect(text(await p.send('0'))).toContain('What would you like to do?');
    expect(text(await p.send('42'))).toMatch(/Choose a number from 1 to \d+, or 0 for the menu/);
  });

  it('gets a payment link as text with the URL', async () => {
    const { phone } = setup();
    const p = phone();
    await signUp(p);
    await p.send('plans');
    const [link, ...rest] = await p.choose('Buy Starter');
    expect(rest).toEqual([]);
    const shown = shownText(link?.content ?? { text: '' });
    expect(shown).toContain('Starter plan: ₦3,500.00');
    const url = /Pay ₦3,500\.00: (https?:\/\/\S+)/.exec(shown)?.[1];
    expect(await Payment.findOne({ authorizationUrl: url }).lean()).not.toBeNull();
    // The link's menu is numbered like any other.
    expect(shown).toMatch(/\n1\. .+\n(.+\n)*0\. Menu$/);
  });

  it('gets the proxy QR code as an image and an invoice as a PDF document', async () => {
    await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
    await addExit('ng', { exitId: 'direct', kind: 'direct' });
    const { phone } = setup();
    const p = phone();
    await signUp(p);
    await buy(p, 'Starter');

    await p.send('connect');
    await p.choose('Nigeria (Lagos)');
    const credentials = await p.choose('HTTPS (CONNECT)');
    expect(text(credentials)).toMatch(/Password: \S{20,}/);
    const image = credentials.find((m) => 'image' in m.content)?.content as Extract<
      AnyMessageContent,
      { image: unknown }
    >;
    expect(Buffer.isBuffer(image.image)).toBe(true);
    expect((image.image as Buffer).subarray(1, 4).toString()).toBe('PNG');
    expect(image).toMatchObject({ mimetype: 'image/png', width: expect.any(Number) });

    await p.send('billing');
    await p.choose('Invoices');
    const [document] = await p.choose('₦3,500.00');
    const pdf = document?.content as Extract<AnyMessageContent, { document: unknown }>;
    expect(pdf).toMatchObject({
      mimetype: 'application/pdf',
      fileName: expect.stringMatching(/\.pdf$/),
    });
    expect((pdf.document as Buffer).subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('answers one turn at a time per chat, in order', async () => {
    const { socket, adapter, phone } = setup();
    const p = phone();
    const email = `order${numbers}@example.com`;
    // Both arrive before the first is answered: the email must meet the step /start opened.
    socket.receive(p.number, { conversation: '/start' });
    socket.receive(p.number, { conversation: email });
    await adapter.drain();
    const answers = p.received().map((m) => shownText(m.content));
    const asked = answers.findIndex((a) => a.includes("what's your email address?"));
    const sent = answers.findIndex((a) => a.includes(`I sent a 6-digit code to ${email}`));
    expect(asked).toBeGreaterThanOrEqual(0);
    expect(sent).toBeGreaterThan(asked);
  });

  it('finds the number of a chat addressed by LID and answers that chat', async () => {
    const { socket, adapter } = setup();
    const number = newNumber();
    socket.receive(
      number,
      { conversation: '/help' },
      {
        key: { remoteJid: '118633284812345@lid', remoteJidAlt: `${number}@s.whatsapp.net` },
      },
    );
    await adapter.drain();
    expect(socket.sent.map((m) => m.jid)).toEqual(['118633284812345@lid']);
    expect(
      await ChannelIdentity.findOne({ channel: 'whatsapp', externalId: number }).lean(),
    ).not.toBeNull();
  });
});

describe('what the adapter leaves alone or limits', () => {
  it('ignores its own messages, groups, status updates and reactions', async () => {
    const { socket, adapter } = setup();
    const number = newNumber();
    socket.receive(number, { conversation: '/help' }, { key: { fromMe: true } });
    socket.receive(
      number,
      { conversation: '/help' },
      {
        key: { remoteJid: '120363025246125888@g.us', participant: `${number}@s.whatsapp.net` },
      },
    );
    socket.receive(number, { conversation: 'status' }, { key: { remoteJid: 'status@broadcast' } });
    socket.receive(number, { reactionMessage: { text: '👍' } });
    socket.emit('messages.upsert', {
      type: 'append',
      messages: [
        {
          key: { remoteJid: `${number}@s.whatsapp.net`, id: 'OLD' },
          message: { conversation: '/help' },
        },
      ],
    });
    await adapter.drain();
    expect(socket.sent).toEqual([]);
    // The same number writing directly is answered.
    socket.receive(number, { conversation: '/help' });
    await adapter.drain();
    expect(socket.sent.map((m) => m.jid)).toEqual([`${number}@s.whatsapp.net`]);
  });

  it('answers a photo or voice note once with "send text"', async () => {
    const { socket, adapter } = setup();
    const number = newNumber();
    socket.receive(number, { imageMessage: { caption: 'my screenshot' } });
    socket.receive(number, { audioMessage: { seconds: 3 } });
    await adapter.drain();
    expect(socket.sent.map((m) => shownText(m.content))).toEqual([
      'I can only read text messages. Type what you need, or send 0 for the menu.',
    ]);
  });

  it('reads a shared contact card as its number, not as "send text"', async () => {
    const { socket, adapter } = setup();
    const number = newNumber();
    socket.receive(number, {
      contactMessage: {
        displayName: 'Me',
        vcard: `BEGIN:VCARD\nTEL;waid=${number}:+${number}\nEND:VCARD`,
      },
    });
    await adapter.drain();
    const answers = socket.sent.map((m) => shownText(m.content)).join('\n');
    expect(answers).not.toContain('I can only read text messages');
    // Not signed up yet: the contact (like any text) leads to sign-up.
    expect(answers).toContain("what's your email address?");
  });

  it('says "slow down" once to a flood and drops the rest of the window', async () => {
    const { socket, adapter } = setup({ rateLimit: { messages: 3, windowMs: 60_000 } });
    const number = newNumber();
    for (let i = 0; i < 6; i++) socket.receive(number, { conversation: '/help' });
    await adapter.drain();
    const answers = socket.sent.map((m) => shownText(m.content));
    expect(answers).toHaveLength(4);
    expect(answers[3]).toBe('You are sending messages very fast; give me a few seconds.');
  });
});

describe('menus out', () => {
  it('numbers the items row after row and ends with 0. Menu', () => {
    expect(
      menuLines([
        [
          { label: 'A', action: 'a' },
          { label: 'B', action: 'b' },
        ],
        [{ label: 'C', action: 'c' }],
      ]),
    ).toBe('1. A\n2. B\n3. C\n0. Menu');
  });
});
