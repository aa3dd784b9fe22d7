/**
 * The account journey with real accounts, mail (SMTP capture) and the
 * database: changing email with a mailed code, linking a WhatsApp chat with a
 * one-time code, notification preferences, setting a password for the REST
 * API through a single-use link, and deleting the account.
 */
import { describe, expect, it } from '@jest/globals';
import {
  checkPassword,
  describeAccountDeletion,
  getAccountView,
  inspectPasswordLink,
  resetPasswordWithLink,
} from '../../../core/accounts/index.js';
import { getPreferences } from '../../../core/notifications.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { ChatState } from '../../../models/chat-state.js';
import { useTestDatabase } from '../../support/database.js';
import { textOf, useBotHarness, type ChatUser } from '../../support/bot.js';

useTestDatabase();
const h = useBotHarness();

let emails = 0;
const newEmail = () => `acct${++emails}-${Math.floor(Math.random() * 1e6)}@example.com`;

async function accountOf(user: ChatUser): Promise<string> {
  const state = await ChatState.findOne({ externalId: user.identity.externalId }).lean();
  if (!state?.accountId) throw new Error('no account in chat state');
  return String(state.accountId);
}

async function codeMailedTo(address: string): Promise<string> {
  const mail = await h.smtp.waitForMail((m) => m.to.includes(address));
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
  if (!code) throw new Error(`no code in the mail: ${mail.text}`);
  return code;
}

describe('changing email', () => {
  it('keeps the old address until the code mailed to the new one is typed back', async () => {
    const oldAddress = newEmail();
    const user = await h.signedUp(oldAddress);
    const accountId = await accountOf(user);
    expect(textOf(await user.command('account'))).toContain(`Email: ${oldAddress}`);

    expect(textOf(await user.press('Change email'))).toContain('Type the new address');
    expect(textOf(await user.send(oldAddress))).toContain('is already your email address');
    const newAddress = newEmail();
    // One code a minute per account: the sign-up code was the last one.
    h.payments.clock.advance(61_000);
    expect(textOf(await user.send(newAddress))).toContain(`I sent a 6-digit code to ${newAddress}`);
    const code = await codeMailedTo(newAddress);
    // Not changed yet: the new address is unproven.
    expect((await getAccountView(accountId)).email).toBe(oldAddress);

    const wrong = code === '000000' ? '111111' : '000000';
    expect(textOf(await user.send(wrong))).toContain('That code is not right. 4 tries left.');
    expect(textOf(await user.send(code))).toContain(
      `Email changed ✅ Receipts and notices now go to ${newAddress}.`,
    );
    expect(await getAccountView(accountId)).toMatchObject({
      email: newAddress,
      emailVerified: true,
    });
    const notice = await h.smtp.waitForMail(
      (m) => m.to.includes(oldAddress) && m.subject.includes('changed'),
    );
    expect(notice.text).toContain(newAddress);
    expect(textOf(await user.command('account'))).toContain(`Email: ${newAddress}`);
  });
});

describe('linking WhatsApp', () => {
  it('shows a one-time code that links a new WhatsApp chat to the same account', async () => {
    const address = newEmail();
    const user = await h.signedUp(address);
    const accountId = await accountOf(user);
    await user.command('account');
    const shown = textOf(await user.press('Link WhatsApp'));
    const code = /Your link code: ([A-Z2-9]{4}-[A-Z2-9]{4})/.exec(shown)?.[1] ?? '';
    expect(code).not.toBe('');
    expect(shown).toContain(`send LINK ${code} to our WhatsApp number.`);
    expect(shown).toContain('for 10 minutes');

    // The same person on WhatsApp: a chat of its own, not signed up.
    const whatsapp = h.user(undefined, 'whatsapp');
    expect(textOf(await whatsapp.send('hello'))).toContain("what's your email address?");
    // "LINK <code>" is the `link` action (open before sign-up), as the adapter passes it.
    const asked = await h.conversation.handle(whatsapp.identity, {
      kind: 'action',
      action: 'link',
    });
    expect(textOf(asked.messages)).toContain('Type the 8-character link code');
    const linked = textOf(await whatsapp.send(code.toLowerCase().replace('-', ' ')));
    expect(linked).toContain(`Linked ✅ This chat now uses your account (${address}).`);

    expect((await getAccountView(accountId)).identities).toEqual(
      expect.arrayContaining([
        { channel: 'telegram', externalId: user.identity.externalId },
        { channel: 'whatsapp', externalId: whatsapp.identity.externalId },
      ]),
    );
    expect(textOf(await whatsapp.command('account'))).toContain(`Email: ${address}`);
    expect(textOf(await user.command('account'))).toContain('WhatsApp ✅');

    // The code worked once.
    const again = h.user(undefined, 'whatsapp');
    await again.send('hello');
    const reused = await h.conversation.handle(again.identity, {
      kind: 'action',
      action: `link:${code}`,
    });
    expect(textOf(reused.messages)).toContain('That code has already been used.');
  });
});

describe('notification preferences', () => {
  it('toggles channels and mutable events, shows the mandatory ones as always on, and keeps them', async () => {
    const user = await h.signedUp();
    const accountId = await accountOf(user);
    await user.command('account');
    const shown = textOf(await user.press('Notifications'));
    expect(shown).toContain('• Email: on');
    expect(shown).toContain('• Data use (50, 80, 95 and 100 %): on');
    expect(shown).toContain('• Payments received, with receipts: always on');
    expect(shown).toContain('• Plan cancelled or ended: always on');

    const emailOff = textOf(await user.press('account:notif:ch:email'));
    expect(emailOff).toContain('• Email: off');
    const usageOff = textOf(await user.press('account:notif:ev:usage'));
    expect(usageOff).toContain('• Data use (50, 80, 95 and 100 %): off');
    expect(await getPreferences(accountId)).toEqual({
      channels: { telegram: true, whatsapp: true, email: false },
      mutedEvents: ['usage_50', 'usage_80', 'usage_95', 'usage_100'],
    });

    // Another day, another turn: still as set.
    await user.command('account');
    const later = textOf(await user.press('Notifications'));
    expect(later).toContain('• Email: off');
    expect(later).toContain('• Data use (50, 80, 95 and 100 %): off');
    await user.press('account:notif:ev:usage');
    expect((await getPreferences(accountId)).mutedEvents).toEqual([]);
  });
});

describe('deleting the account', () => {
  it('shows what is erased and what is kept, deletes only after Confirm, and a new /start starts afresh', async () => {
    const address = newEmail();
    const user = await h.signedUp(address);
    const accountId = await accountOf(user);
    await user.command('account');
    const shown = textOf(await user.press('Delete account'));
    const { erased, kept } = describeAccountDeletion();
    for (const line of [...erased, ...kept]) expect(shown).toContain(line);
    expect((await Account.findById(accountId).lean())?.status).toBe('active');

    expect(textOf(await user.press('Yes, delete my account'))).toContain(
      'Your account is deleted.',
    );
    const account = await Account.findById(accountId).lean();
    expect(account?.status).toBe('deleted');
    expect(account?.email).toBeUndefined();
    expect(await ChannelIdentity.countDocuments({ accountId })).toBe(0);

    const again = textOf(await user.command('start'));
    expect(again).toContain('Welcome to Atlantic');
    expect(again).toContain("what's your email address?");
    expect(await accountOf(user)).not.toBe(accountId);
  });

  it('keeps the account when the customer does not confirm', async () => {
    const user = await h.signedUp();
    const accountId = await accountOf(user);
    await user.command('account');
    await user.press('Delete account');
    expect(textOf(await user.press('Keep my account'))).toContain('Your account');
    expect((await Account.findById(accountId).lean())?.status).toBe('active');
  });
});

describe('a password for the API', () => {
  const linkIn = (text: string): URL => {
    const found = /(http:\/\/atlantic\.test\/account\/reset-password\?token=[\w-]+)/.exec(text);
    if (!found?.[1]) throw new Error(`no link in: ${text}`);
    return new URL(found[1]);
  };
  const ctx = () => ({
    clock: h.payments.clock,
    mailer: h.mailer,
    publicUrl: 'http://atlantic.test',
  });

  it('sends a single-use link to the set-password page; the password chosen there logs in', async () => {
    const address = newEmail();
    const user = await h.signedUp(address);
    const accountId = await accountOf(user);
    await user.command('account');
    const shown = textOf(await user.press('Set a password for the API'));
    expect(shown).toContain(`your login is ${address}`);
    expect(shown).toContain('It works once, for 30 minutes.');
    const token = linkIn(shown).searchParams.get('token') ?? '';

    // The page the link opens knows the account; nothing is set until the form is sent.
    expect(await inspectPasswordLink(ctx(), token)).toMatchObject({
      accountId,
      email: address,
      purpose: 'password_set',
    });
    await expect(
      checkPassword(ctx(), { email: address, password: 'tidal basin 2077' }),
    ).rejects.toMatchObject({ details: { reason: 'INVALID_CREDENTIALS' } });

    await resetPasswordWithLink(ctx(), token, 'tidal basin 2077');
    expect(await checkPassword(ctx(), { email: address, password: 'tidal basin 2077' })).toEqual({
      accountId,
    });
    // Once only.
    await expect(resetPasswordWithLink(ctx(), token, 'other harbour 88')).rejects.toMatchObject({
      details: { reason: 'LINK_USED' },
    });
  });

  it('replaces the previous link when asked again: only the newest works', async () => {
    const user = await h.signedUp();
    await user.command('account');
    const first = linkIn(textOf(await user.press('Set a password for the API')));
    await user.command('account');
    const second = linkIn(textOf(await user.press('Set a password for the API')));
    expect(second.href).not.toBe(first.href);
    await expect(
      inspectPasswordLink(ctx(), first.searchParams.get('token') ?? ''),
    ).rejects.toMatchObject({ details: { reason: 'LINK_INVALID' } });
    await expect(
      inspectPasswordLink(ctx(), second.searchParams.get('token') ?? ''),
    ).resolves.toMatchObject({ purpose: 'password_set' });
  });

  it('stops working after 30 minutes', async () => {
    const user = await h.signedUp();
    await user.command('account');
    const link = linkIn(textOf(await user.press('Set a password for the API')));
    h.payments.clock.advanceBy({ minutes: 31 });
    await expect(
      resetPasswordWithLink(ctx(), link.searchParams.get('token') ?? '', 'tidal basin 2077'),
    ).rejects.toMatchObject({ details: { reason: 'LINK_EXPIRED' } });
  });
});
