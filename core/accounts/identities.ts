/**
 * From a chat identity to its account.
 *
 * A first message creates the identity before the account, under an account
 * id chosen up front: the identity's unique (channel, externalId) index
 * decides which of two simultaneous first messages wins, and the account is
 * then created under the id the winning identity names. Whoever reads the
 * identity next (the loser of the race, or a retry after a crash between the
 * two inserts) creates that same account if it is still missing, so there is
 * never a second account nor an identity left pointing at nothing.
 */
import { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity } from '../../models/channel-identity.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import {
  checkIdentity,
  listIdentities,
  toAccountView,
  type AccountRecord,
  type AccountView,
  type ChatIdentityInput,
} from './view.js';

const MAX_ATTEMPTS = 5;

interface StoredIdentity {
  _id: Types.ObjectId;
  accountId: Types.ObjectId;
  displayName?: string | null;
}

/**
 * Finds the account of a chat identity, or creates account + identity
 * (race-safe: two concurrent first messages give one account). A deleted
 * account's identity gets a fresh account.
 */
export async function accountForIdentity(
  identity: ChatIdentityInput,
  _ctx: { clock: Clock },
): Promise<{ account: AccountView; created: boolean }> {
  const { channel, externalId, displayName } = checkIdentity(identity);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const existing = await ChannelIdentity.findOne({ channel, externalId }).lean<StoredIdentity>();
    if (!existing) {
      const accountId = new Types.ObjectId();
      try {
        await ChannelIdentity.create({
          channel,
          externalId,
          accountId,
          ...(displayName ? { displayName } : {}),
        });
      } catch (error) {
        // Another first message of this identity got there first: use its account.
        if (!isDuplicateKeyError(error)) throw error;
        continue;
      }
      return { account: await toAccountView(await ensureAccount(accountId)), created: true };
    }

    // The account and its identities at once: a chat turn starts here, so it is one round trip less.
    const identities = listIdentities(existing.accountId);
    identities.catch(() => undefined); // awaited below, or dropped for a deleted account
    const account = await ensureAccount(existing.accountId);
    if (account.status !== 'deleted') {
      if (displayName && displayName !== existing.displayName) {
        await ChannelIdentity.updateOne({ _id: existing._id }, { $set: { displayName } });
      }
      return { account: await toAccountView(account, identities), created: false };
    }

    // The account was deleted (or retired) while this identity still pointed
    // at it, e.g. a deletion that died before erasing identities: start afresh.
    const fresh = new Types.ObjectId();
    const moved = await ChannelIdentity.updateOne(
      { _id: existing._id, accountId: existing.accountId },
      { $set: { accountId: fresh, ...(displayName ? { displayName } : {}) } },
    );
    if (moved.modifiedCount === 1) {
      return { account: await toAccountView(await ensureAccount(fresh)), created: true };
    }
  }
  throw new Error(`accountForIdentity ${channel}: the identity kept changing; try again`);
}

/** The account with this id, created (empty, active) if it does not exist yet. */
async function ensureAccount(id: Types.ObjectId): Promise<AccountRecord> {
  const found = await Account.findById(id).lean<AccountRecord>();
  if (found) return found;
  try {
    await Account.create({ _id: id });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
  const created = await Account.findById(id).lean<AccountRecord>();
  if (!created) throw new Error(`account ${String(id)} vanished right after it was created`);
  return created;
}

/**
 * The account of a chat identity when the caller already knows which one it
 * was (a process's memory of the last turn), in one round trip: the account
 * and its identities at once. The guess is checked against the identities
 * (linked elsewhere, moved or deleted since: not this account), so a stale
 * guess answers null and the caller asks `accountForIdentity`. A changed
 * display name answers null too, so that path records it.
 */
export async function accountForKnownIdentity(
  identity: ChatIdentityInput,
  accountId: string,
): Promise<AccountView | null> {
  const { channel, externalId, displayName } = checkIdentity(identity);
  if (!/^[0-9a-f]{24}$/i.test(accountId)) return null;
  const id = new Types.ObjectId(accountId);
  const [account, identities] = await Promise.all([
    Account.findById(id).lean<AccountRecord>(),
    ChannelIdentity.find({ accountId: id }, { channel: 1, externalId: 1, displayName: 1 })
      .sort({ channel: 1 })
      .lean<
        { channel: 'telegram' | 'whatsapp'; externalId: string; displayName?: string | null }[]
      >(),
  ]);
  if (!account || account.status === 'deleted') return null;
  const mine = identities.find((i) => i.channel === channel && i.externalId === externalId);
  if (!mine || (displayName && displayName !== mine.displayName)) return null;
  return toAccountView(
    account,
    Promise.resolve(identities.map((i) => ({ channel: i.channel, externalId: i.externalId }))),
  );
}
