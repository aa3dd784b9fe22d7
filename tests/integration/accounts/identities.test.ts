/**
 * From a chat identity to its account (core/accounts): the first message
 * creates one account however many arrive at once, later messages find it,
 * a deleted account's chat starts afresh, and terms acceptance is recorded.
 */
import { describe, expect, it } from '@jest/globals';
import {
  TERMS_VERSION,
  acceptTerms,
  accountForIdentity,
  accountForKnownIdentity,
  deleteAccount,
  getAccountView,
  hasAcceptedCurrentTerms,
} from '../../../core/accounts/index.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { useTestDatabase } from '../../support/database.js';
import { reasonOf } from '../../support/refusals.js';
import { clockAheadOfRealTime, telegramUser, whatsappUser } from './harness.js';

useTestDatabase();
const clock = clockAheadOfRealTime();

describe('accountForIdentity', () => {
  it('creates an account on the first message and finds it on the next', async () => {
    const ada = telegramUser('Ada');
    const first = await accountForIdentity(ada, { clock });
    expect(first.created).toBe(true);
    expect(first.account).toMatchObject({
      email: null,
      emailVerified: false,
      status: 'active',
      roles: ['customer'],
      termsAcceptedAt: null,
      identities: [{ channel: 'telegram', externalId: ada.externalId }],
    });
    expect(first.account.createdAt).toBeInstanceOf(Date);

    const again = await accountForIdentity({ ...ada, displayName: 'Ada L.' }, { clock });
    expect(again).toEqual({ account: first.account, created: false });
    expect(await getAccountView(first.account.id)).toEqual(first.account);
    const stored = await ChannelIdentity.findOne({ externalId: ada.externalId });
    expect(stored?.displayName).toBe('Ada L.');
  });

  it('gives twenty simultaneous first messages from one chat one account', async () => {
    const bola = whatsappUser('Bola');
    const accountsBefore = await Account.countDocuments();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => accountForIdentity(bola, { clock })),
    );
    expect(new Set(results.map((result) => result.account.id)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(await Account.countDocuments()).toBe(accountsBefore + 1);
    expect(await ChannelIdentity.countDocuments({ externalId: bola.externalId })).toBe(1);
  });

  it('treats the same id on Telegram and WhatsApp as two people', async () => {
    const telegram = await accountForIdentity(
      { channel: 'telegram', externalId: '2348031234567' },
      { clock },
    );
    const whatsapp = await accountForIdentity(
      { channel: 'whatsapp', externalId: '2348031234567' },
      { clock },
    );
    expect(whatsapp.account.id).not.toBe(telegram.account.id);
  });

  it('gives the chat of a deleted account a fresh account', async () => {
    const chidi = telegramUser('Chidi');
    const { account: old } = await accountForIdentity(chidi, { clock });
    await deleteAccount({ clock }, old.id);

    const { account: fresh, created } = await accountForIdentity(chidi, { clock });
    expect(created).toBe(true);
    expect(fresh.id).not.toBe(old.id);
    expect(fresh.status).toBe('active');
    expect((await getAccountView(old.id)).status).toBe('deleted');
  });

  it('repairs a chat left pointing at a deleted account by a deletion that died half way', async () => {
    const dayo = telegramUser('Dayo');
    const { account: old } = await accountForIdentity(dayo, { clock });
    // The deletion closed the account and died before erasing its chats.
    await Account.updateOne({ _id: old.id }, { $set: { status: 'deleted' } });

    const { account: fresh, created } = await accountForIdentity(dayo, { clock });
    expect(created).toBe(true);
    expect(fresh.id).not.toBe(old.id);
    expect(fresh.identities).toEqual([{ channel: 'telegram', externalId: dayo.externalId }]);
    expect((await getAccountView(old.id)).identities).toEqual([]);
  });

  it('refuses an identity without an id, and an unknown account', async () => {
    expect(
      await reasonOf(accountForIdentity({ channel: 'telegram', externalId: ' ' }, { clock })),
    ).toBe('VALIDATION_FAILED');
    expect(await reasonOf(getAccountView('65a000000000000000000abc'))).toBe('NOT_FOUND');
    expect(await reasonOf(getAccountView('not-an-id'))).toBe('VALIDATION_FAILED');
  });
});

describe('accountForKnownIdentity (a remembered account, checked)', () => {
  it('answers the account when the guess is right, and null when it went stale', async () => {
    const ada = telegramUser('Ada');
    const { account } = await accountForIdentity(ada, { clock });
    expect(await accountForKnownIdentity(ada, account.id)).toEqual(account);

    // Another account, a malformed id, a new display name: not this one.
    const bob = await accountForIdentity(telegramUser('Bob'), { clock });
    expect(await accountForKnownIdentity(ada, bob.account.id)).toBeNull();
    expect(await accountForKnownIdentity(ada, 'not-an-id')).toBeNull();
    expect(await accountForKnownIdentity({ ...ada, displayName: 'Ada L.' }, account.id)).toBeNull();

    // The chat moved to another account (linked elsewhere): the old guess is stale.
    const other = String((await Account.create({}))._id);
    await ChannelIdentity.updateOne(
      { channel: ada.channel, externalId: ada.externalId },
      { $set: { accountId: other } },
    );
    expect(await accountForKnownIdentity(ada, account.id)).toBeNull();
    expect((await accountForKnownIdentity(ada, other))?.id).toBe(other);

    // A deleted account is never answered.
    await Account.updateOne({ _id: other }, { $set: { status: 'deleted' } });
    expect(await accountForKnownIdentity(ada, other)).toBeNull();
  });
});

describe('acceptTerms', () => {
  it('records the first acceptance of the current terms and keeps it on a repeat', async () => {
    const { account } = await accountForIdentity(telegramUser(), { clock });
    expect(hasAcceptedCurrentTerms(account)).toBe(false);

    const acceptedAt = clock.now();
    const accepted = await acceptTerms({ clock }, account.id);
    expect(accepted.termsAcceptedAt).toEqual(acceptedAt);
    expect(accepted.termsVersion).toBe(TERMS_VERSION);
    expect(hasAcceptedCurrentTerms(accepted)).toBe(true);

    clock.advanceBy({ days: 1 });
    expect((await acceptTerms({ clock }, account.id)).termsAcceptedAt).toEqual(acceptedAt);
  });

  it('asks again when the accepted terms are an older version', async () => {
    const { account } = await accountForIdentity(telegramUser(), { clock });
    await Account.updateOne(
      { _id: account.id },
      { $set: { termsAcceptedAt: new Date('2025-01-01T00:00:00Z'), termsVersion: '2025-01-01' } },
    );
    expect(hasAcceptedCurrentTerms(await getAccountView(account.id))).toBe(false);
    const accepted = await acceptTerms({ clock }, account.id);
    expect(accepted.termsAcceptedAt).toEqual(clock.now());
    expect(hasAcceptedCurrentTerms(accepted)).toBe(true);
  });
});
