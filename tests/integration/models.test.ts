import { describe, expect, it } from '@jest/globals';
import { Account, ChannelIdentity, type AccountStatus } from '../../models/index.js';
import { useTestDatabase } from '../support/database.js';

useTestDatabase();

describe('Account', () => {
  it('starts a new customer active with the customer role', async () => {
    const account = await Account.create({ email: 'Ada@Example.com ' });
    expect(account.status).toBe('active');
    expect(account.roles).toEqual(['customer']);
    expect(account.email).toBe('ada@example.com');
    expect(account.createdAt).toBeInstanceOf(Date);
  });

  it('refuses a second account with the same email, whatever its case', async () => {
    await Account.create({ email: 'dup@example.com' });
    await expect(Account.create({ email: 'DUP@example.com' })).rejects.toMatchObject({
      code: 11000,
    });
  });

  it('allows many chat-only accounts that have no email yet', async () => {
    await Account.create({});
    await Account.create({});
    expect(await Account.countDocuments({ email: { $exists: false } })).toBeGreaterThanOrEqual(2);
  });

  it('rejects an unknown status or a malformed email', async () => {
    await expect(Account.create({ status: 'frozen' as AccountStatus })).rejects.toThrow(/status/);
    await expect(Account.create({ email: 'not-an-email' })).rejects.toThrow(/email/);
  });
});

describe('ChannelIdentity', () => {
  it('maps one Telegram user to exactly one account', async () => {
    const first = await Account.create({});
    const second = await Account.create({});
    await ChannelIdentity.create({ channel: 'telegram', externalId: '1001', accountId: first._id });

    await expect(
      ChannelIdentity.create({ channel: 'telegram', externalId: '1001', accountId: second._id }),
    ).rejects.toMatchObject({ code: 11000 });
    const found = await ChannelIdentity.findOne({ channel: 'telegram', externalId: '1001' });
    expect(found?.accountId.toString()).toBe(first._id.toString());
  });

  it('lets the same number exist on two channels for one account, once per channel', async () => {
    const account = await Account.create({});
    await ChannelIdentity.create({
      channel: 'telegram',
      externalId: '2348000000001',
      accountId: account._id,
    });
    await ChannelIdentity.create({
      channel: 'whatsapp',
      externalId: '2348000000001',
      accountId: account._id,
    });
    await expect(
      ChannelIdentity.create({
        channel: 'whatsapp',
        externalId: '2348000000002',
        accountId: account._id,
      }),
    ).rejects.toMatchObject({ code: 11000 });
  });
});
