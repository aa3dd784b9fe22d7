/**
 * Linking a second chat to an account with a one-time code (core/accounts):
 * both directions, the empty account the second chat made on its own is
 * retired, an account with anything in it is never thrown away, one chat per
 * app, and used, expired, mistyped and guessed codes are refused.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  accountForIdentity,
  confirmEmailCode,
  createLinkCode,
  getAccountView,
  redeemLinkCode,
  requestEmailCode,
} from '../../../core/accounts/index.js';
import { seedPlans } from '../../../core/plans.js';
import { startPayg } from '../../../core/subscriptions.js';
import { credit } from '../../../core/wallet.js';
import { listAudit } from '../../../core/audit.js';
import { DomainError } from '../../../lib/errors.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { ChatState } from '../../../models/chat-state.js';
import { VerificationCode } from '../../../models/verification-code.js';
import { useTestDatabase } from '../../support/database.js';
import { reasonOf } from '../../support/refusals.js';
import { newAddress, telegramUser, useAccountsHarness, whatsappUser } from './harness.js';

useTestDatabase();
const h = useAccountsHarness();

beforeAll(async () => {
  await seedPlans(h.clock);
});

async function accountOf(identity: { channel: 'telegram' | 'whatsapp'; externalId: string }) {
  return (await accountForIdentity(identity, { clock: h.clock })).account;
}

async function refusal(attempt: Promise<unknown>): Promise<DomainError> {
  try {
    await attempt;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a refusal, but it went through');
}

describe('link codes', () => {
  it('links WhatsApp to a Telegram account and retires the empty account WhatsApp made', async () => {
    const telegram = telegramUser('Ada');
    const whatsapp = whatsappUser('Ada W');
    const main = await accountOf(telegram);
    const address = newAddress('ada');
    await requestEmailCode(h.ctx, main.id, address);
    await confirmEmailCode(h.ctx, main.id, await h.codeSentTo(address));
    // Ada wrote to the WhatsApp number before linking: an empty account of its own.
    const stray = await accountOf(whatsapp);
    const chat = { channel: whatsapp.channel, externalId: whatsapp.externalId };
    await ChatState.create({
      ...chat,
      accountId: stray.id,
      step: 'link.wait_code',
      expiresAt: new Date(h.clock.now().getTime() + 86_400_000),
    });

    const link = await createLinkCode({ clock: h.clock }, main.id);
    expect(link.code).toMatch(/^[A-HJKMNP-Z2-9]{8}$/);
    expect(link.displayCode).toBe(`${link.code.slice(0, 4)}-${link.code.slice(4)}`);
    expect(link.expiresAt).toEqual(new Date(h.clock.now().getTime() + 10 * 60_000));
    const stored = await VerificationCode.findOne({ accountId: main.id, purpose: 'link' }).lean();
    expect(JSON.stringify(stored)).not.toContain(link.code);

    h.clock.advanceBy({ minutes: 2 });
    // Typed by hand in the other chat: lower case, a dash.
    expect(
      await redeemLinkCode({ clock: h.clock }, whatsapp, link.displayCode.toLowerCase()),
    ).toEqual({ accountId: main.id });

    expect((await getAccountView(main.id)).identities).toEqual([
      { channel: 'telegram', externalId: telegram.externalId },
      { channel: 'whatsapp', externalId: whatsapp.externalId },
    ]);
    expect(await accountOf(whatsapp)).toMatchObject({ id: main.id, email: address });
    const retired = await getAccountView(stray.id);
    expect(retired).toMatchObject({ status: 'deleted', identities: [] });
    expect((await ChatState.findOne(chat).lean())?.accountId?.toString()).toBe(main.id);
    expect(await listAudit({ target: { kind: 'account', id: stray.id } })).toEqual([
      expect.objectContaining({
        action: 'account.deleted',
        actor: 'system',
        channel: 'whatsapp',
        details: { reason: `retired: its whatsapp chat was linked to account ${main.id}` },
      }),
    ]);

    // Used once.
    const again = await refusal(redeemLinkCode({ clock: h.clock }, whatsappUser(), link.code));
    expect(again.code).toBe('VALIDATION_FAILED');
    expect(again.details).toMatchObject({ reason: 'CODE_USED' });
  });

  it('links Telegram to a WhatsApp account that has never seen the Telegram chat', async () => {
    const whatsapp = whatsappUser('Bola');
    const telegram = telegramUser('Bola');
    const main = await accountOf(whatsapp);
    const { code } = await createLinkCode({ clock: h.clock }, main.id);

    expect(await redeemLinkCode({ clock: h.clock }, telegram, code)).toEqual({
      accountId: main.id,
    });
    expect(await accountOf(telegram)).toMatchObject({
      id: main.id,
      identities: [
        { channel: 'telegram', externalId: telegram.externalId },
        { channel: 'whatsapp', externalId: whatsapp.externalId },
      ],
    });
    const identity = await ChannelIdentity.findOne({ externalId: telegram.externalId }).lean();
    expect(identity?.displayName).toBe('Bola');
  });

  it('refuses a chat whose own account has an email, a plan or money in it', async () => {
    const main = await accountOf(telegramUser('Chidi'));

    const withEmail = whatsappUser('Chidi');
    const emailAccount = await accountOf(withEmail);
    const address = newAddress('chidi');
    await requestEmailCode(h.ctx, emailAccount.id, address);
    await confirmEmailCode(h.ctx, emailAccount.id, await h.codeSentTo(address));

    const withPlan = whatsappUser('Chidi 2');
    const planAccount = await accountOf(withPlan);
    await startPayg({ accountId: planAccount.id, clock: h.clock });

    const withMoney = whatsappUser('Chidi 3');
    const moneyAccount = await accountOf(withMoney);
    await credit(
      moneyAccount.id,
      { amountMinor: 50_000, currency: 'NGN', key: `gift:${moneyAccount.id}`, description: 'gift' },
      { clock: h.clock },
    );

    for (const [identity, holder] of [
      [withEmail, emailAccount],
      [withPlan, planAccount],
      [withMoney, moneyAccount],
    ] as const) {
      const { code } = await createLinkCode({ clock: h.clock }, main.id);
      const error = await refusal(redeemLinkCode({ clock: h.clock }, identity, code));
      expect(error.code).toBe('CONFLICT');
      expect(error.details).toMatchObject({ reason: 'IDENTITY_HAS_ACCOUNT' });
      // Nothing moved, and the code still works once the reason is gone.
      expect((await accountOf(identity)).id).toBe(holder.id);
      expect((await getAccountView(holder.id)).status).toBe('active');
      const unused = await VerificationCode.findOne({ accountId: main.id, purpose: 'link' });
      expect(unused?.usedAt).toBeUndefined();
    }
    expect((await getAccountView(main.id)).identities).toHaveLength(1);
  });

  it('keeps one chat per app on an account', async () => {
    const main = await accountOf(telegramUser('Dayo'));
    const { code } = await createLinkCode({ clock: h.clock }, main.id);
    const error = await refusal(redeemLinkCode({ clock: h.clock }, telegramUser('Dayo 2'), code));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({ reason: 'CHANNEL_ALREADY_LINKED' });
  });

  it('takes a code for the account the chat is already on as done', async () => {
    const telegram = telegramUser('Efe');
    const main = await accountOf(telegram);
    const { code } = await createLinkCode({ clock: h.clock }, main.id);
    expect(await redeemLinkCode({ clock: h.clock }, telegram, code)).toEqual({
      accountId: main.id,
    });
    expect(await reasonOf(redeemLinkCode({ clock: h.clock }, telegram, code))).toBe('CODE_USED');
  });

  it('refuses an expired, a replaced and a made-up code', async () => {
    const main = await accountOf(telegramUser('Femi'));
    const expired = await createLinkCode({ clock: h.clock }, main.id);
    h.clock.advanceBy({ minutes: 10 });
    const late = await refusal(redeemLinkCode({ clock: h.clock }, whatsappUser(), expired.code));
    expect(late.code).toBe('VALIDATION_FAILED');
    expect(late.details).toMatchObject({ reason: 'CODE_EXPIRED' });

    const replaced = await createLinkCode({ clock: h.clock }, main.id);
    const current = await createLinkCode({ clock: h.clock }, main.id);
    if (replaced.code !== current.code) {
      expect(
        await reasonOf(redeemLinkCode({ clock: h.clock }, whatsappUser(), replaced.code)),
      ).toBe('INVALID_CODE');
    }
    for (const madeUp of ['', 'ABC', 'OOOO-0000', 'ABCD-EFGH-J']) {
      const error = await refusal(redeemLinkCode({ clock: h.clock }, whatsappUser(), madeUp));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toMatchObject({ reason: 'INVALID_CODE' });
    }
    expect(await redeemLinkCode({ clock: h.clock }, whatsappUser(), current.code)).toEqual({
      accountId: main.id,
    });
  });

  it('lets one chat try ten codes an hour', async () => {
    const guesser = whatsappUser('Guesser');
    for (let i = 0; i < 10; i++) {
      expect(await reasonOf(redeemLinkCode({ clock: h.clock }, guesser, 'ZZZZ-ZZZZ'))).toBe(
        'INVALID_CODE',
      );
      h.clock.advanceBy({ minutes: 1 });
    }
    const main = await accountOf(telegramUser('Gozie'));
    const { code } = await createLinkCode({ clock: h.clock }, main.id);
    const limited = await refusal(redeemLinkCode({ clock: h.clock }, guesser, code));
    expect(limited.code).toBe('RATE_LIMITED');
    // The first guess was 10 minutes ago: it leaves the window in 50.
    expect(limited.details).toEqual({ retryAfterSeconds: 50 * 60 });
    // Another chat is not held up.
    const other = whatsappUser('Gozie');
    expect(await redeemLinkCode({ clock: h.clock }, other, code)).toEqual({ accountId: main.id });
  });

  it('links one of two chats racing for the same account on the same app', async () => {
    const main = await accountOf(telegramUser('Hauwa'));
    const first = await createLinkCode({ clock: h.clock }, main.id);
    const results = await Promise.all(
      [whatsappUser('H1'), whatsappUser('H2')].map((identity) =>
        reasonOf(redeemLinkCode({ clock: h.clock }, identity, first.code)),
      ),
    );
    expect(results.filter((result) => result === 'accepted')).toHaveLength(1);
    expect((await getAccountView(main.id)).identities).toHaveLength(2);
  });
});
