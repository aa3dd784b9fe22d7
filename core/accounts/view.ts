/**
 * What the accounts functions take and give back, and the reads they share.
 */
import type { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { Account, type AccountData } from '../../models/account.js';
import { ChannelIdentity, channels, type Channel } from '../../models/channel-identity.js';
import { toAccountId, type AccountId } from '../account-id.js';

export interface AccountsContext {
  clock: Clock;
  mailer: Mailer;
  logger?: Logger;
}

export interface ChatIdentityInput {
  channel: 'telegram' | 'whatsapp';
  /** Telegram user id as a decimal string, or a WhatsApp number as E.164 digits. */
  externalId: string;
  displayName?: string;
}

export interface AccountView {
  id: string;
  /** The verified address; a code sent to a new address changes nothing until it is confirmed. */
  email: string | null;
  emailVerified: boolean;
  status: 'active' | 'suspended' | 'deleted';
  roles: string[];
  termsAcceptedAt: Date | null;
  /** The version of the terms accepted at `termsAcceptedAt` (compare with TERMS_VERSION). */
  termsVersion: string | null;
  identities: { channel: 'telegram' | 'whatsapp'; externalId: string }[];
  createdAt: Date;
}

export type AccountRecord = AccountData & { _id: Types.ObjectId; createdAt: Date };

export interface CheckedIdentity {
  channel: Channel;
  externalId: string;
  displayName: string | undefined;
}

/** The account as a view; NOT_FOUND when there is no such account. */
export async function getAccountView(accountId: AccountId): Promise<AccountView> {
  const id = toAccountId(accountId);
  const account = await Account.findById(id).lean<AccountRecord>();
  if (!account) throw accountNotFound(id);
  return toAccountView(account);
}

/** The account's chat identities, by channel (toAccountView's second read; callers may start it early). */
export function listIdentities(
  accountId: Types.ObjectId,
): Promise<{ channel: Channel; externalId: string }[]> {
  return ChannelIdentity.find({ accountId }, { channel: 1, externalId: 1 })
    .sort({ channel: 1 })
    .lean<{ channel: Channel; externalId: string }[]>()
    .exec();
}

export async function toAccountView(
  account: AccountRecord,
  knownIdentities?: Promise<{ channel: Channel; externalId: string }[]>,
): Promise<AccountView> {
  const identities = await (knownIdentities ?? listIdentities(account._id));
  return {
    id: String(account._id),
    email: account.email ?? null,
    emailVerified: Boolean(account.email && account.emailVerifiedAt),
    status: account.status,
    roles: [...account.roles],
    termsAcceptedAt: account.termsAcceptedAt ?? null,
    termsVersion: account.termsVersion ?? null,
    identities: identities.map(({ channel, externalId }) => ({ channel, externalId })),
    createdAt: account.createdAt,
  };
}

/** The account, if it is open for changes: NOT_FOUND when missing or deleted, FORBIDDEN when suspended. */
export async function activeAccount(id: Types.ObjectId): Promise<AccountRecord> {
  const account = await Account.findById(id).lean<AccountRecord>();
  if (!account || account.status === 'deleted') throw accountNotFound(id);
  if (account.status === 'suspended') {
    throw new DomainError(
      'FORBIDDEN',
      'This account is suspended. Contact support to sort it out.',
      { details: { accountId: String(id), reason: 'ACCOUNT_SUSPENDED' } },
    );
  }
  return account;
}

export function accountNotFound(id: Types.ObjectId | string): DomainError {
  return new DomainError('NOT_FOUND', 'There is no such account.', {
    details: { accountId: String(id) },
  });
}

/** The identity with its id trimmed, or VALIDATION_FAILED. */
export function checkIdentity(identity: ChatIdentityInput): CheckedIdentity {
  if (!(channels as readonly string[]).includes(identity.channel)) {
    throw new DomainError('VALIDATION_FAILED', 'That chat channel is not supported.', {
      details: { field: 'channel' },
    });
  }
  const externalId = String(identity.externalId).trim();
  if (externalId === '' || externalId.length > 64) {
    throw new DomainError('VALIDATION_FAILED', 'That chat identity is not valid.', {
      details: { field: 'externalId' },
    });
  }
  const displayName = identity.displayName?.trim().slice(0, 256) || undefined;
  return { channel: identity.channel, externalId, displayName };
}
