/**
 * Linking a second chat (or later a REST login) to an account: the account
 * asks for a one-time code in one chat and sends it from the other.
 *
 * - A code is 8 characters without look-alikes, valid for 10 minutes, used
 *   once, stored hashed (codes.ts). An account has one code at a time; asking
 *   again replaces it.
 * - Guessing is limited per chat identity: 10 attempts an hour, right or
 *   wrong (rate-limit.ts). With 31^8 codes that is hopeless.
 * - The identity may already have an account of its own: one with nothing in
 *   it (the usual case: someone wrote to the bot from their second chat
 *   before linking) is retired, status 'deleted', and the identity moves;
 *   one with anything in it is refused, so linking never throws away an
 *   email, a plan or money.
 * - An account holds one identity per channel (a unique index decides races).
 *
 * The code is taken with one conditional update before anything moves, and
 * given back if the link cannot be made, as team invites do.
 */
import type { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { DomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity, type Channel } from '../../models/channel-identity.js';
import { ChatState } from '../../models/chat-state.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { LedgerEntry } from '../../models/ledger-entry.js';
import { Payment } from '../../models/payment.js';
import { ProxyCredential } from '../../models/proxy-credential.js';
import { Subscription } from '../../models/subscription.js';
import { TeamSeat } from '../../models/team-seat.js';
import { VerificationCode, type VerificationCodeRecord } from '../../models/verification-code.js';
import { Wallet } from '../../models/wallet.js';
import { toAccountId, type AccountId } from '../account-id.js';
import {
  LINK_CODE_LOOKUP_LENGTH,
  codeMatches,
  displayLinkCode,
  hashCode,
  newLinkCode,
  normaliseLinkCode,
} from './codes.js';
import { deleteAccount } from './deletion.js';
import {
  hashedRateLimitKey,
  linkAttemptLimitKey,
  takeRateLimit,
  type RateLimitRule,
} from './rate-limit.js';
import {
  activeAccount,
  checkIdentity,
  type AccountRecord,
  type ChatIdentityInput,
  type CheckedIdentity,
} from './view.js';

export const LINK_CODE_TTL_MS = 10 * 60_000;
/** Link codes one chat identity may try per hour. */
export const LINK_ATTEMPT_LIMITS: readonly RateLimitRule[] = [{ max: 10, windowMs: 3_600_000 }];

const MAX_ATTEMPTS = 5;

/**
 * A one-time code (8 characters from an unambiguous alphabet, 10 min, single
 * use, stored hashed) that links another chat identity (or later a REST
 * login) to this account. `code` is the 8 characters; `displayCode` the
 * same as `ABCD-EFGH`, easier to type (either is accepted).
 */
export async function createLinkCode(
  ctx: { clock: Clock },
  accountId: AccountId,
): Promise<{ code: string; displayCode: string; expiresAt: Date }> {
  const id = toAccountId(accountId);
  await activeAccount(id);
  const now = ctx.clock.now();
  const code = newLinkCode();
  const expiresAt = new Date(now.getTime() + LINK_CODE_TTL_MS);
  await VerificationCode.findOneAndUpdate(
    { accountId: id, purpose: 'link' },
    {
      $set: {
        lookup: code.slice(0, LINK_CODE_LOOKUP_LENGTH),
        ...(await hashCode(code)),
        issuedAt: now,
        expiresAt,
        attempts: 0,
      },
      $unset: { usedAt: 1, email: 1 },
    },
    { upsert: true },
  );
  return { code, displayCode: displayLinkCode(code), expiresAt };
}

/**
 * Links `identity` to the code's account. If the identity already belongs to
 * an account that holds nothing (no email, no subscription, no payments, zero
 * wallet) that empty account is retired (status deleted) and the identity
 * moves; if it belongs to an account with anything in it -> CONFLICT
 * details.reason 'IDENTITY_HAS_ACCOUNT'; an account may hold one identity per
 * channel (CONFLICT 'CHANNEL_ALREADY_LINKED'). Wrong/expired/used code ->
 * VALIDATION_FAILED (details.reason INVALID_CODE, CODE_EXPIRED, CODE_USED);
 * attempts limited per identity (10 per hour -> RATE_LIMITED with
 * details.retryAfterSeconds). Linking an identity to the account it is
 * already on just uses the code.
 */
export async function redeemLinkCode(
  ctx: { clock: Clock },
  identity: ChatIdentityInput,
  code: string,
): Promise<{ accountId: string }> {
  const checked = checkIdentity(identity);
  const { channel, externalId } = checked;
  const now = ctx.clock.now();
  const limit = await takeRateLimit(linkAttemptLimitKey(checked), LINK_ATTEMPT_LIMITS, now);
  if (!limit.ok) {
    throw new DomainError(
      'RATE_LIMITED',
      'Too many codes tried from this chat. Wait a while and ask for a new code.',
      { details: { retryAfterSeconds: limit.retryAfterSeconds } },
    );
  }
  const found = await findLinkCode(code, now);
  const target = found.accountId;
  await activeAccount(target);

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await ChannelIdentity.findOne({ channel, externalId }).lean<{
      _id: Types.ObjectId;
      accountId: Types.ObjectId;
    }>();
    if (current?.accountId.equals(target)) {
      await takeCode(found, now);
      return { accountId: String(target) };
    }
    if (await ChannelIdentity.exists({ accountId: target, channel })) {
      throw channelAlreadyLinked(channel);
    }
    const holder = current ? await Account.findById(current.accountId).lean<AccountRecord>() : null;
    const toRetire = holder && holder.status !== 'deleted' ? holder : null;
    if (toRetire && !(await holdsNothing(toRetire))) throw identityHasAccount();

    await takeCode(found, now);
    let linked: boolean;
    try {
      linked = await moveIdentity(checked, current, toRetire, target, now);
    } catch (error) {
      await giveBackCode(found);
      throw error;
    }
    if (!linked) {
      await giveBackCode(found);
      continue;
    }
    // The conversation of this chat now belongs to the target account.
    await ChatState.updateMany({ channel, externalId }, { $set: { accountId: target } });
    if (toRetire) {
      await deleteAccount(
        {
          clock: ctx.clock,
          actor: 'system',
          via: channel,
          reason: `retired: its ${channel} chat was linked to account ${String(target)}`,
        },
        toRetire._id,
      );
    }
    return { accountId: String(target) };
  }
  throw new DomainError('CONFLICT', 'This chat is being changed by something else; try again.');
}

/** Link codes one API account may try per hour (as a chat identity may). */
const ACCOUNT_LINK_ATTEMPT_LIMITS = LINK_ATTEMPT_LIMITS;

/**
 * The other way round, for the REST API: the logged-in account `accountId`
 * redeems a code made in a chat (Account -> Link), and that chat moves to it.
 * The code's account is proven by the code (only its chats see it) and this
 * one by the login, so both are the same person's; the chat's account is
 * closed (status deleted, its email freed) once its chats have moved. That is
 * refused when the chat's account has anything else in it: a plan or payment
 * ever, wallet money, a team, proxy credentials, the admin role (CONFLICT
 * details.reason 'IDENTITY_HAS_ACCOUNT'), so nothing but an address is ever
 * given up. An account holds one chat per channel (CONFLICT
 * 'CHANNEL_ALREADY_LINKED'). Codes as redeemLinkCode (INVALID_CODE,
 * CODE_EXPIRED, CODE_USED); attempts limited per account, 10 an hour
 * (RATE_LIMITED with details.retryAfterSeconds). A code of this very account
 * is just used up. Returns the channels that moved.
 */
export async function redeemLinkCodeForAccount(
  ctx: { clock: Clock; logger?: Logger },
  accountId: AccountId,
  code: string,
): Promise<{ accountId: string; linked: Channel[] }> {
  const id = toAccountId(accountId);
  await activeAccount(id);
  const now = ctx.clock.now();
  const limit = await takeRateLimit(
    hashedRateLimitKey('link-attempt-account', String(id)),
    ACCOUNT_LINK_ATTEMPT_LIMITS,
    now,
  );
  if (!limit.ok) {
    throw new DomainError(
      'RATE_LIMITED',
      'Too many link codes tried from this account. Wait a while and ask for a new code in your chat.',
      { details: { retryAfterSeconds: limit.retryAfterSeconds } },
    );
  }
  const found = await findLinkCode(code, now);
  if (found.accountId.equals(id)) {
    await takeCode(found, now);
    return { accountId: String(id), linked: [] };
  }
  const source = await activeAccount(found.accountId);
  const chats = await ChannelIdentity.find({ accountId: source._id }).lean<
    { _id: Types.ObjectId; channel: Channel; externalId: string }[]
  >();
  if (chats.length === 0) {
    // Made by an account without a chat (another REST login): nothing to link, nothing to close.
    throw new DomainError(
      'VALIDATION_FAILED',
      'That code was not made in a chat. Ask for one in the Telegram or WhatsApp chat you want to link (Account → Link).',
      { details: { field: 'code', reason: 'NOT_A_CHAT_CODE' } },
    );
  }
  for (const chat of chats) {
    if (await ChannelIdentity.exists({ accountId: id, channel: chat.channel })) {
      throw channelAlreadyLinked(chat.channel);
    }
  }
  if (source.roles.includes('admin') || !(await holdsNoService(source._id))) {
    throw identityHasAccount();
  }

  await takeCode(found, now);
  // Closed first, as moveIdentity does: should a move below fail, that chat
  // points at a closed account and its next message starts afresh.
  const closed = await Account.updateOne(
    { _id: source._id, status: 'active', roles: { $ne: 'admin' } },
    { $set: { status: 'deleted', deletedAt: now } },
  );
  if (closed.modifiedCount === 0) {
    await giveBackCode(found);
    throw identityHasAccount();
  }
  const linked: Channel[] = [];
  for (const chat of chats) {
    try {
      await ChannelIdentity.updateOne(
        { _id: chat._id, accountId: source._id },
        { $set: { accountId: id } },
      );
    } catch (error) {
      // This account took a chat on that channel meanwhile.
      if (isDuplicateKeyError(error)) throw channelAlreadyLinked(chat.channel);
      throw error;
    }
    await ChatState.updateMany(
      { channel: chat.channel, externalId: chat.externalId },
      { $set: { accountId: id } },
    );
    linked.push(chat.channel);
  }
  await deleteAccount(
    {
      clock: ctx.clock,
      ...(ctx.logger ? { logger: ctx.logger } : {}),
      actor: 'system',
      via: 'api',
      reason: `retired: its chats were linked to account ${String(id)}`,
    },
    source._id,
  );
  return { accountId: String(id), linked };
}

/** The live code matching `input`, or why there is none. */
async function findLinkCode(input: string, now: Date): Promise<VerificationCodeRecord> {
  const code = normaliseLinkCode(input);
  const candidates = code
    ? await VerificationCode.find({
        purpose: 'link',
        lookup: code.slice(0, LINK_CODE_LOOKUP_LENGTH),
      }).lean<VerificationCodeRecord[]>()
    : [];
  let match: VerificationCodeRecord | undefined;
  for (const candidate of candidates) {
    if (code && (await codeMatches(code, candidate))) {
      match = candidate;
      break;
    }
  }
  if (!match) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'That code is not valid. Check it, or ask for a new one in your other chat.',
      { details: { field: 'code', reason: 'INVALID_CODE' } },
    );
  }
  if (match.usedAt) throw codeUsed();
  if (match.expiresAt <= now) throw codeExpired();
  return match;
}

/** Marks the code used, once; refused if it was used or replaced meanwhile. */
async function takeCode(found: VerificationCodeRecord, now: Date): Promise<void> {
  const taken = await VerificationCode.updateOne(
    { _id: found._id, codeHash: found.codeHash, usedAt: { $exists: false } },
    { $set: { usedAt: now } },
  );
  if (taken.modifiedCount === 0) throw codeUsed();
}

async function giveBackCode(found: VerificationCodeRecord): Promise<void> {
  await VerificationCode.updateOne(
    { _id: found._id, codeHash: found.codeHash },
    { $unset: { usedAt: 1 } },
  );
}

/**
 * Points the identity at `target`: creates it, or retires its empty account
 * and moves it. False when the identity changed under us (look again).
 */
async function moveIdentity(
  identity: CheckedIdentity,
  current: { _id: Types.ObjectId; accountId: Types.ObjectId } | null,
  toRetire: AccountRecord | null,
  target: Types.ObjectId,
  now: Date,
): Promise<boolean> {
  const displayName = identity.displayName ? { displayName: identity.displayName } : {};
  try {
    if (!current) {
      await ChannelIdentity.create({
        channel: identity.channel,
        externalId: identity.externalId,
        accountId: target,
        ...displayName,
      });
      return true;
    }
    if (toRetire) {
      // Retired first: should the move below fail, the identity points at a
      // deleted account and its next message gets a fresh one; moving first
      // could strip an account that gained an email meanwhile of its chat.
      const retired = await Account.updateOne(
        {
          _id: toRetire._id,
          status: 'active',
          email: { $exists: false },
          roles: { $ne: 'admin' },
        },
        { $set: { status: 'deleted', deletedAt: now } },
      );
      if (retired.modifiedCount === 0) throw identityHasAccount();
    }
    const moved = await ChannelIdentity.updateOne(
      { _id: current._id, accountId: current.accountId },
      { $set: { accountId: target, ...displayName } },
    );
    return moved.modifiedCount === 1;
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    // The target took an identity on this channel meanwhile, or this identity
    // was created by its own first message meanwhile (then look again).
    if (await ChannelIdentity.exists({ accountId: target, channel: identity.channel })) {
      throw channelAlreadyLinked(identity.channel);
    }
    return false;
  }
}

/**
 * True when the account has nothing that linking would lose: active, no
 * email, not an admin, no other chat, no subscription or payment ever, no
 * wallet money or ledger entry, no team seat, no proxy credentials.
 */
async function holdsNothing(account: AccountRecord): Promise<boolean> {
  if (account.status !== 'active' || account.email || account.roles.includes('admin')) {
    return false;
  }
  if ((await ChannelIdentity.countDocuments({ accountId: account._id })) > 1) return false;
  return holdsNoService(account._id);
}

/**
 * True when the account never had a plan or a payment, has no wallet money or
 * ledger entry, no team seat and no proxy credentials.
 */
async function holdsNoService(id: Types.ObjectId): Promise<boolean> {
  const found = await Promise.all([
    Subscription.exists({ accountId: id }),
    Payment.exists({ accountId: id }),
    Wallet.exists({ accountId: id, balanceMinor: { $ne: 0 } }),
    LedgerEntry.exists({ accountId: id }),
    TeamSeat.exists({ $or: [{ ownerAccountId: id }, { memberAccountId: id }] }),
    ProxyCredential.exists({ accountId: id }),
  ]);
  return found.every((thing) => !thing);
}

function channelAlreadyLinked(channel: string): DomainError {
  const name = channel === 'telegram' ? 'Telegram' : 'WhatsApp';
  return new DomainError(
    'CONFLICT',
    `That account already has a ${name} chat linked. An account can have one chat per app.`,
    { details: { reason: 'CHANNEL_ALREADY_LINKED', channel } },
  );
}

function identityHasAccount(): DomainError {
  return new DomainError(
    'CONFLICT',
    'This chat already has its own Atlantic account with things in it (an email, a plan or payments), so it cannot be linked to another. Delete that account first, or contact support to merge them.',
    { details: { reason: 'IDENTITY_HAS_ACCOUNT' } },
  );
}

function codeUsed(): DomainError {
  return new DomainError(
    'VALIDATION_FAILED',
    'That code has already been used. Ask for a new one in your other chat.',
    { details: { field: 'code', reason: 'CODE_USED' } },
  );
}

function codeExpired(): DomainError {
  return new DomainError(
    'VALIDATION_FAILED',
    'That code has expired. Ask for a new one in your other chat.',
    { details: { field: 'code', reason: 'CODE_EXPIRED' } },
  );
}
