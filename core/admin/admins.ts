/**
 * Who the admins are: those named in configuration (by chat identity) and
 * the accounts holding the `admin` role in the database. Admins add and
 * remove database admins from chat; a configured admin cannot be removed
 * from chat (only from configuration), and nobody removes themselves, so a
 * business is never left without an admin by a slip of the thumb.
 *
 * `adminChatIds` is what the channel processes deliver admin alerts to
 * (flagged payments, disputes, failed refunds): every admin's chat on that
 * channel, from configuration and the database.
 */
import type { Types } from 'mongoose';
import { DomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity, type Channel } from '../../models/channel-identity.js';
import {
  audited,
  entry,
  isConfiguredAccount,
  recordView,
  requireAdmin,
  type AdminContext,
  type ConfiguredAdmins,
} from './context.js';
import { resolveAccountId } from './users.js';

export interface AdminListEntry {
  /** Null for a configured identity that has not written to the bot yet. */
  accountId: string | null;
  email: string | null;
  identities: { channel: Channel; externalId: string }[];
  configured: boolean;
  status: 'active' | 'suspended' | 'deleted' | null;
}

interface StoredAccount {
  _id: Types.ObjectId;
  email?: string | null;
  status: 'active' | 'suspended' | 'deleted';
}

const digits = (value: string): string => value.replace(/\D/g, '');

function configuredIdentities(
  configured: ConfiguredAdmins | undefined,
): { channel: Channel; externalId: string }[] {
  return [
    ...(configured?.telegramIds ?? []).map((id) => ({
      channel: 'telegram' as const,
      externalId: String(id),
    })),
    ...(configured?.whatsappNumbers ?? []).map((number) => ({
      channel: 'whatsapp' as const,
      externalId: digits(number),
    })),
  ];
}

/** Configured and database admins; recorded as `admins.viewed`. */
export async function listAdmins(ctx: AdminContext): Promise<AdminListEntry[]> {
  await requireAdmin(ctx, 'admins.list');
  const configured = configuredIdentities(ctx.configuredAdmins);
  const configuredLinks = configured.length
    ? await ChannelIdentity.find(
        { $or: configured.map(({ channel, externalId }) => ({ channel, externalId })) },
        { channel: 1, externalId: 1, accountId: 1 },
      ).lean<{ channel: Channel; externalId: string; accountId: Types.ObjectId }[]>()
    : [];
  const roleHolders = await Account.find(
    { roles: 'admin', status: { $ne: 'deleted' } },
    { _id: 1 },
  ).lean<{ _id: Types.ObjectId }[]>();
  const ids = [
    ...new Set([
      ...configuredLinks.map((link) => String(link.accountId)),
      ...roleHolders.map((account) => String(account._id)),
    ]),
  ];
  const [accounts, identities] = await Promise.all([
    Account.find({ _id: { $in: ids } }, { email: 1, status: 1 }).lean<StoredAccount[]>(),
    ChannelIdentity.find({ accountId: { $in: ids } }, { channel: 1, externalId: 1, accountId: 1 })
      .sort({ channel: 1 })
      .lean<{ channel: Channel; externalId: string; accountId: Types.ObjectId }[]>(),
  ]);
  const configuredIds = new Set(configuredLinks.map((link) => String(link.accountId)));
  const list: AdminListEntry[] = accounts.map((account) => ({
    accountId: String(account._id),
    email: account.email ?? null,
    identities: identities
      .filter((identity) => String(identity.accountId) === String(account._id))
      .map(({ channel, externalId }) => ({ channel, externalId })),
    configured: configuredIds.has(String(account._id)),
    status: account.status,
  }));
  // Configured identities nobody has used yet still show, so the list is complete.
  for (const identity of configured) {
    const linked = configuredLinks.some(
      (link) => link.channel === identity.channel && link.externalId === identity.externalId,
    );
    if (!linked) {
      list.push({
        accountId: null,
        email: null,
        identities: [identity],
        configured: true,
        status: null,
      });
    }
  }
  await recordView(ctx, 'admins.viewed', { kind: 'admins', id: '*' });
  return list.sort(
    (a, b) =>
      Number(b.configured) - Number(a.configured) || (a.email ?? '').localeCompare(b.email ?? ''),
  );
}

/** Gives the account named by `user` the admin role; recorded as `admin.added`. */
export async function addAdmin(
  ctx: AdminContext,
  input: { user: string },
): Promise<{ accountId: string; changed: boolean }> {
  await requireAdmin(ctx, 'admins.add');
  const accountId = await resolveAccountId(input.user);
  const account = await Account.findById(accountId, { status: 1, roles: 1 }).lean<{
    status: string;
    roles: string[];
  }>();
  if (!account || account.status !== 'active') {
    throw new DomainError('CONFLICT', `This account is ${account?.status ?? 'gone'}.`, {
      details: { accountId: String(accountId) },
    });
  }
  if (account.roles.includes('admin')) return { accountId: String(accountId), changed: false };
  return audited(
    ctx,
    entry(ctx, 'admin.added', { kind: 'account', id: String(accountId) }),
    async () => {
      const result = await Account.updateOne(
        { _id: accountId, status: 'active' },
        { $addToSet: { roles: 'admin' } },
      );
      return { accountId: String(accountId), changed: result.modifiedCount === 1 };
    },
  );
}

/**
 * Takes the admin role away; recorded as `admin.removed`. Refused (CONFLICT)
 * for a configured admin and for oneself.
 */
export async function removeAdmin(
  ctx: AdminContext,
  input: { user: string },
): Promise<{ accountId: string; changed: boolean }> {
  const admin = await requireAdmin(ctx, 'admins.remove');
  const accountId = await resolveAccountId(input.user);
  if (String(accountId) === admin.accountId) {
    throw new DomainError('CONFLICT', 'You cannot remove yourself: ask another admin.', {
      details: { reason: 'SELF' },
    });
  }
  if (await isConfiguredAccount(ctx.configuredAdmins, accountId)) {
    throw new DomainError(
      'CONFLICT',
      'This admin is named in the configuration (ADMIN_TELEGRAM_IDS / ADMIN_WHATSAPP_NUMBERS): remove them there, then here.',
      { details: { reason: 'CONFIGURED' } },
    );
  }
  const account = await Account.findById(accountId, { roles: 1 }).lean<{ roles: string[] }>();
  if (!account?.roles.includes('admin')) return { accountId: String(accountId), changed: false };
  return audited(
    ctx,
    entry(ctx, 'admin.removed', { kind: 'account', id: String(accountId) }),
    async () => {
      const result = await Account.updateOne({ _id: accountId }, { $pull: { roles: 'admin' } });
      return { accountId: String(accountId), changed: result.modifiedCount === 1 };
    },
  );
}

/**
 * The chats on `channel` that admin alerts go to: the configured identities
 * and the identities of active accounts holding the admin role, each once.
 * For the channel processes (no admin check: it names no customer).
 */
export async function adminChatIds(
  channel: Channel,
  configured?: ConfiguredAdmins,
): Promise<string[]> {
  const fromConfig = configuredIdentities(configured)
    .filter((identity) => identity.channel === channel)
    .map((identity) => identity.externalId);
  const admins = await Account.find({ roles: 'admin', status: 'active' }, { _id: 1 }).lean<
    { _id: Types.ObjectId }[]
  >();
  const fromDatabase = admins.length
    ? await ChannelIdentity.find(
        { channel, accountId: { $in: admins.map((a) => a._id) } },
        { externalId: 1 },
      ).lean<{ externalId: string }[]>()
    : [];
  return [...new Set([...fromConfig, ...fromDatabase.map((identity) => identity.externalId)])];
}
