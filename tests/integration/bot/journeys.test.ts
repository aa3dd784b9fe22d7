/**
 * The conversation core, journey by journey, with real accounts, mail (SMTP
 * capture), payments (Paystack emulator) and the database: what a customer
 * types and taps, and what they read back.
 */
import { describe, expect, it } from '@jest/globals';
import { addExit, addLocation } from '../../../core/locations.js';
import { addToUsageBuckets, hourStart, recordProxyRefusals } from '../../../core/usage.js';
import { getProxyCredentials } from '../../../core/proxy-credentials.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { createLinkCode } from '../../../core/accounts/index.js';
import { ChatState } from '../../../models/chat-state.js';
import { Payment } from '../../../models/payment.js';
import type { Outbound } from '../../../bot/core/types.js';
import { useTestDatabase } from '../../support/database.js';
import { textOf, useBotHarness, type ChatUser } from '../../support/bot.js';

useTestDatabase();
const h = useBotHarness();

async function locations(): Promise<void> {
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  await addLocation({ countryCode: 'gb', city: 'London', label: 'United Kingdom' });
  await addExit('gb', { exitId: 'direct', kind: 'direct' });
}

/** A signed-up customer who bought `planCode` through the link the bot sent. */
async function customerOn(planCode: string): Promise<ChatUser> {
  const user = await h.signedUp();
  await user.press('Plans');
  const answer = await user.press(`buy:${planCode}`);
  const link = answer.find((m): m is Extract<Outbound, { kind: 'link' }> => m.kind === 'link');
  if (!link) throw new Error(`no payment link: ${textOf(answer)}`);
  const payment = await Payment.findOne({ authorizationUrl: link.url }).lean().orFail();
  await h.payments.payAndSettle(payment.reference);
  return user;
}

const menuLabels = (messages: Outbound[]): string[] =>
  messages.flatMap((m) => ('menu' in m && m.menu ? m.menu.flat().map((i) => i.label) : []));

describe('start and sign-up', () => {
  it('signs up with an email code and the terms, then shows the first-run guide', async () => {
    const user = h.user();
    const welcome = textOf(await user.command('start'));
    expect(welcome).toContain('Welcome to Atlantic');
    expect(welcome).toContain("what's your email address?");

    expect(textOf(await user.send('not an email'))).toMatch(/email/i);
    const sent = textOf(await user.send('Ada@Example.com'));
    expect(sent).toContain('I sent a 6-digit code to ada@example.com');
    const mail = await h.smtp.waitForMail((m) => m.to.includes('ada@example.com'));
    const code = /\b(\d{6})\b/.exec(mail.text)?.[1] ?? '';

    const wrong = code === '000000' ? '111111' : '000000';
    expect(textOf(await user.send(wrong))).toContain('That code is not right. 4 attempts left.');
    expect(textOf(await user.send(code))).toContain('Email verified');
    const guide = await user.press('I agree');
    expect(textOf(guide)).toContain('What to do first');
    expect(menuLabels(guide)).toEqual(expect.arrayContaining(['🛒 See plans', '🎁 Start a trial']));

    // Coming back later: recognised, no sign-up again.
    expect(textOf(await user.command('start'))).toContain(
      'Welcome back! You are signed in as ada@example.com.',
    );
  });

  it('keeps a half-finished sign-up across turns (chat state in the database) and /cancel drops it', async () => {
    const user = h.user();
    await user.command('start');
    expect(await ChatState.findOne({ externalId: user.identity.externalId }).lean()).toMatchObject({
      step: 'signup.email',
    });
    expect(textOf(await user.command('cancel'))).toContain('Cancelled. Nothing was changed.');
    expect(await ChatState.findOne({ externalId: user.identity.externalId }).lean()).toMatchObject({
      step: null,
    });
    // Not signed up yet: anything else leads back to sign-up.
    expect(textOf(await user.command('usage'))).toContain("what's your email address?");
  });

  it('answers an unknown command, a number outside the menu and an old button clearly', async () => {
    const user = await h.signedUp();
    expect(textOf(await user.command('frobnicate'))).toContain("I don't know /frobnicate");
    await user.command('menu');
    expect(textOf(await user.send('42'))).toMatch(
      /Choose a number from 1 to \d+, or 0 for the menu/,
    );
    // A number picks from the last menu, as WhatsApp customers do.
    expect(textOf(await user.send('3'))).toContain('Our plans:');
    expect(textOf(await user.send('0'))).toContain('What would you like to do?');
  });
});

describe('plans and buying', () => {
  it('compares the plans side by side and sends a Paystack link for the one chosen', async () => {
    const user = await h.signedUp();
    const plans = textOf(await user.press('Plans'));
    for (const name of ['Starter', 'Personal', 'Team']) expect(plans).toContain(name);
    expect(plans).toContain('Protocols: HTTPS');
    expect(plans).toContain('10 GB per week, rolling');
    const answer = await user.press('Buy Starter');
    const link = answer.find((m) => m.kind === 'link');
    expect(link).toMatchObject({ kind: 'link', label: 'Pay ₦3,500.00' });
    expect(textOf(answer)).toContain('Starter plan: ₦3,500.00');
  });

  it('refuses a second plan with the way forward', async () => {
    await locations().catch(() => undefined);
    const user = await customerOn('personal');
    await user.press('⬅️ Menu');
    await user.press('Plans');
    expect(textOf(await user.press('Buy Starter'))).toContain(
      'You already have the personal plan. Change plans instead of buying a second one.',
    );
  });
});

describe('connect', () => {
  it('walks location and protocol, shows the credentials once with a QR code, and locks what the plan lacks', async () => {
    await locations().catch(() => undefined);
    const user = await customerOn('starter');
    // Starter: one location to keep, HTTPS only.
    const keep = await user.command('connect');
    expect(textOf(keep)).toContain('Your plan includes one location');
    const protocols = await user.press('Nigeria (Lagos)');
    expect(menuLabels(protocols)).toEqual(
      expect.arrayContaining(['HTTPS (CONNECT)', '🔒 SOCKS5', '🔒 HTTP']),
    );
    expect(textOf(protocols)).toContain('Upgrade to PAYG for all protocols');

    const creds = await user.press('HTTPS (CONNECT)');
    const text = textOf(creds);
    const stored = await getProxyCredentials(
      String((await getLiveSubscription(await accountOf(user)))?.accountId),
    );
    expect(text).toContain(`Username: ${stored?.username}-country-ng`);
    expect(text).toMatch(/Password: \S{20,}/);
    expect(text).toContain('Host: proxy.atlantic.test');
    expect(text).toContain('Port: 8080');
    expect(creds.some((m) => m.kind === 'image')).toBe(true);
    expect(text).toContain('curl --proxy http://proxy.atlantic.test:8080');

    // Next time the password is not shown again (it is stored hashed).
    await user.command('connect');
    expect(textOf(await user.press('HTTPS (CONNECT)'))).toContain('shown once when it was made');
  });

  it('tells a customer without a plan to choose one', async () => {
    const user = await h.signedUp();
    expect(textOf(await user.command('connect'))).toContain("You don't have a plan yet");
  });
});

describe('usage, why and security', () => {
  it('shows the quota as a bar, sessions and a chart; explains refusals in plain words', async () => {
    await locations().catch(() => undefined);
    const user = await customerOn('personal');
    const accountId = await accountOf(user);
    await addToUsageBuckets([
      {
        accountId,
        hourStart: hourStart(new Date(h.payments.clock.now().getTime() - 3_600_000)),
        location: 'ng',
        bytesUp: 1_000_000,
        bytesDown: 2_500_000_000,
        connectedSeconds: 0,
        connections: 3,
      },
    ]);
    const usage = textOf(await user.command('usage'));
    expect(usage).toContain('Data this period: ');
    expect(usage).toContain('of 100 GB');
    const chart = await user.press('📈 7-day chart');
    const image = chart.find((m) => m.kind === 'image');
    expect(image?.kind === 'image' && image.png.subarray(1, 4).toString()).toBe('PNG');
    expect(textOf(chart)).toContain('Your usage, last 7 days: 2.5 GB');

    await recordProxyRefusals([
      {
        accountId,
        code: 'QUOTA_EXHAUSTED',
        message: 'Data limit reached. Upgrade or wait for reset.',
        stage: 'refused',
        count: 2,
        at: h.payments.clock.now(),
      },
    ]);
    const why = textOf(await user.command('why'));
    expect(why).toContain('Data limit reached. Upgrade or wait for reset. (2 times)');
    expect(why).toContain('Right now your proxy is working.');
  });
});

async function accountOf(user: ChatUser): Promise<string> {
  const state = await ChatState.findOne({ externalId: user.identity.externalId }).lean();
  if (!state?.accountId) throw new Error('no account in chat state');
  return String(state.accountId);
}

describe('deep links and typed codes', () => {
  it('links a new WhatsApp chat by the typed "LINK <code>", and reads a code from /start link_<code>', async () => {
    const ada = await h.signedUp();
    const adaId = await accountOf(ada);
    const { displayCode } = await createLinkCode({ clock: h.payments.clock }, adaId);

    const onWhatsApp = h.user(undefined, 'whatsapp');
    await onWhatsApp.send(`LINK ${displayCode}`);
    expect(await accountOf(onWhatsApp)).toBe(adaId);
    expect(textOf(await onWhatsApp.command('start'))).toContain('Welcome back!');

    // A deep link carries a code too: refused here, because Ada has a Telegram chat.
    const second = await createLinkCode({ clock: h.payments.clock }, adaId);
    const other = h.user();
    const linked = await other.command('start', `link_${second.code}`);
    // Ada's account has a Telegram chat already: one chat per app, said plainly.
    expect(textOf(linked)).toContain('That account already has a Telegram chat linked.');
    expect(await accountOf(other)).not.toBe(adaId);
  });
});
