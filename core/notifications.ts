/**
 * The notification outbox. Whichever process raises an event writes one
 * outbox item per dedup key, with one delivery slot per channel; the process
 * that runs a channel claims that channel's due slots one at a time, sends,
 * and marks them sent or failed. So an event raised in the gateway reaches a
 * customer on WhatsApp without the two processes knowing each other.
 *
 * Flow of a slot:
 *
 *   pending --claimNext--> sending --markSent--> sent
 *      ^                      |  \--markFailed (retryable, attempts left)--> pending (later)
 *      |                      |   \-markFailed (otherwise)-----------------> failed
 *      +--(lease expired: claimNext takes it again)
 *   skipped: written so at notify time (preferences) or by the channel (no recipient)
 *
 * Each claim counts as an attempt, so a message that kills its worker every
 * time is given up after `maxAttempts` like one that fails cleanly.
 * Delivery is at least once: a worker that dies after sending but before
 * `markSent` leaves a lease that expires and the slot is sent again.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { Account, type AccountData } from '../models/account.js';
import { findAllByKey, findOneByKey, insertOne } from '../models/batching.js';
import { ChannelIdentity, type ChannelIdentityData } from '../models/channel-identity.js';
import {
  Notification,
  notificationChannels,
  notificationEvents,
  type DeliveryStatus,
  type NotificationAudience,
  type NotificationChannel,
  type NotificationEvent,
} from '../models/notification.js';
import {
  NotificationPreferences,
  type NotificationPreferencesData,
} from '../models/notification-preferences.js';

export { notificationChannels, notificationEvents };
export type { DeliveryStatus, NotificationAudience, NotificationChannel, NotificationEvent };

/** Events a customer cannot mute: they are about their money or their service ending. */
export const MANDATORY_EVENTS = [
  'payment_confirmed',
  'payment_failed',
  'deposit_refunded',
  'refund_processed',
  'renewal_due',
  'cancelled',
] as const satisfies readonly NotificationEvent[];

/** Events meant for the admins only (`notifyAdmins`); `notify` refuses them. */
export const ADMIN_EVENTS = [
  'payment_flagged',
  'deposit_refund_failed',
  'refund_failed',
  'dispute_opened',
  'exit_pool_down',
  'ledger_drift',
] as const satisfies readonly NotificationEvent[];

export interface RetryPolicy {
  /** Attempts (claims) before a slot is given up as `failed`. */
  maxAttempts: number;
  /** Wait after the first failed attempt; doubles after each further one. */
  baseDelayMs: number;
  /** The wait never grows beyond this. */
  maxDelayMs: number;
}

/** 30 s, 1 min, 2 min, 4 min, 8 min, then give up after the 6th attempt. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 6,
  baseDelayMs: 30_000,
  maxDelayMs: 3_600_000,
};

/** The wait before the next try after `attempts` failed attempts (1 = the first failed). */
export function retryDelayMs(attempts: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number {
  const exponent = Math.max(0, Math.min(attempts - 1, 30));
  return Math.min(policy.baseDelayMs * 2 ** exponent, policy.maxDelayMs);
}

/** An id as a string, or anything with `toHexString()` (a mongoose ObjectId). */
type IdLike = string | { toHexString(): string };

export interface DeliverySlot {
  channel: NotificationChannel;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  leaseUntil: Date | null;
  claimedBy: string | null;
  lastError: string | null;
  sentAt: Date | null;
}

export interface OutboxItem {
  id: string;
  audience: NotificationAudience;
  /** Null for admin alerts. */
  accountId: string | null;
  event: NotificationEvent;
  period: string | null;
  dedupKey: string;
  data: Record<string, unknown>;
  deliveries: DeliverySlot[];
  createdAt: Date;
}

export interface NotifyInput {
  accountId: IdLike;
  event: NotificationEvent;
  /** Facts for the renderers (amounts in minor units, plan names, dates); no secrets. */
  data?: Record<string, unknown>;
  /**
   * What makes a repeat a new notification: a month (`2026-03`), a payment
   * reference, a subscription period. Without it the event is sent once per
   * account, ever (right for `welcome`).
   */
  period?: string | undefined;
}

export interface NotifyResult {
  item: OutboxItem;
  /** False when the dedup key already had an item (which is returned). */
  created: boolean;
}

export interface ClockOption {
  clock: Clock;
}

export interface NotificationPreferencesView {
  channels: Record<NotificationChannel, boolean>;
  mutedEvents: NotificationEvent[];
}

export interface PreferencesPatch {
  channels?: Partial<Record<NotificationChannel, boolean>>;
  /** Replaces the muted list; mandatory and admin events are refused. */
  mutedEvents?: readonly NotificationEvent[];
}

export const DEFAULT_PREFERENCES: Readonly<NotificationPreferencesView> = {
  channels: { telegram: true, whatsapp: true, email: true },
  mutedEvents: [],
};

const mandatory: ReadonlySet<string> = new Set(MANDATORY_EVENTS);
const adminOnly: ReadonlySet<string> = new Set(ADMIN_EVENTS);
const knownEvents: ReadonlySet<string> = new Set(notificationEvents);
const MAX_ERROR_LENGTH = 1000;

/** The dedup key of a customer notification. */
export function notificationDedupKey(accountId: string, event: string, period?: string): string {
  return `${accountId}:${event}:${period ?? '-'}`;
}

/**
 * Writes the outbox item for (account, event, period), once: a repeat (even
 * 20 at once) returns the existing item. Slots: one per channel the account
 * can be reached on (its chat identities, plus email when it has one);
 * channels or events the customer turned off get a `skipped` slot. A
 * mandatory event whose every channel is turned off still goes to all of them.
 */
export async function notify(input: NotifyInput, { clock }: ClockOption): Promise<NotifyResult> {
  const accountId = idString(input.accountId);
  assertEvent(input.event);
  if (adminOnly.has(input.event)) {
    throw new RangeError(`${input.event} is an admin alert: raise it with notifyAdmins`);
  }
  const period = input.period?.trim() || undefined;
  const dedupKey = notificationDedupKey(accountId, input.event, period);

  // No look-up of the dedup key first: a new item (the usual case) costs one
  // insert, and a repeat is told by the unique key (insertOnce). The reads are
  // batched with the same reads of other notifications in this turn.
  const [account, identities, preferences] = await Promise.all([
    findOneByKey<Pick<AccountData, 'email' | 'status' | 'emailFailingSince'>>(
      Account,
      '_id',
      accountId,
      { projection: { email: 1, status: 1, emailFailingSince: 1 } },
    ),
    findAllByKey<Pick<ChannelIdentityData, 'channel' | 'failingSince'>>(
      ChannelIdentity,
      'accountId',
      accountId,
      { projection: { channel: 1, failingSince: 1 } },
    ),
    getPreferences(accountId),
  ]);
  if (!account) {
    throw new DomainError('NOT_FOUND', 'no such account', { details: { accountId } });
  }
  // A channel that refused delivery for good (the bot blocked) is skipped until the customer writes again.
  const reachable = new Set<NotificationChannel>(
    identities.filter((identity) => !identity.failingSince).map((identity) => identity.channel),
  );
  // Likewise an address the mail server refused for good, until an email is verified again.
  if (account.email && !account.emailFailingSince) reachable.add('email');
  const available = notificationChannels.filter((channel) => reachable.has(channel));

  const isMandatory = mandatory.has(input.event);
  const isMuted = !isMandatory && preferences.mutedEvents.includes(input.event);
  let wanted = available.filter((channel) => preferences.channels[channel]);
  if (isMandatory && wanted.length === 0) wanted = available;

  const now = clock.now();
  const deliveries = available.map((channel) => {
    const skipReason =
      account.status === 'deleted'
        ? 'account deleted'
        : isMuted
          ? 'event muted by the customer'
          : wanted.includes(channel)
            ? null
            : 'channel turned off by the customer';
    return newSlot(channel, now, skipReason);
  });

  return insertOnce({
    audience: 'customer',
    accountId,
    event: input.event,
    period,
    dedupKey,
    data: input.data ?? {},
    deliveries,
  });
}

export interface NotifyAdminsInput {
  event: NotificationEvent;
  data?: Record<string, unknown>;
  /** Unique per alert, e.g. `payment_flagged:<reference>`; a repeat returns the first item. */
  dedupKey: string;
}

/**
 * An alert for the admins. It gets a pending slot on every channel: the
 * process running a channel sends it to the admins it knows there (from
 * configuration and the database) and marks the slot `skipped` when it has
 * none, so who receives it is decided at delivery time.
 */
export async function notifyAdmins(
  input: NotifyAdminsInput,
  { clock }: ClockOption,
): Promise<NotifyResult> {
  assertEvent(input.event);
  const key = input.dedupKey.trim();
  if (key === '') throw new RangeError('notifyAdmins needs a dedupKey');
  const dedupKey = `admins:${key}`;
  const existing = await findOneByKey<NotificationRecord>(Notification, 'dedupKey', dedupKey);
  if (existing) return { item: toOutboxItem(existing), created: false };

  const now = clock.now();
  return insertOnce({
    audience: 'admins',
    event: input.event,
    dedupKey,
    data: input.data ?? {},
    deliveries: notificationChannels.map((channel) => newSlot(channel, now, null)),
  });
}

export interface ClaimOptions {
  /** Names the claimer in the slot (a process and worker id), for markSent/markFailed and logs. */
  workerId: string;
  clock: Clock;
  /** How long the claim holds; after that another worker may take the slot again. */
  leaseMs: number;
  /** Only items for this audience (e.g. an admin-only sender); default both. */
  audience?: NotificationAudience;
  policy?: RetryPolicy;
}

/** One slot claimed for sending: everything the channel needs to render it. */
export interface ClaimedDelivery {
  itemId: string;
  channel: NotificationChannel;
  audience: NotificationAudience;
  accountId: string | null;
  event: NotificationEvent;
  period: string | null;
  data: Record<string, unknown>;
  /** This attempt's number, from 1. */
  attempts: number;
  leaseUntil: Date;
  createdAt: Date;
}

/**
 * Claims the oldest due slot of `channel` with one atomic findOneAndUpdate: a
 * pending slot whose `nextAttemptAt` has come, or a `sending` slot whose lease
 * has expired (its worker died). Two workers never get the same slot while its
 * lease holds. Returns null when nothing is due.
 */
export async function claimNext(
  channel: NotificationChannel,
  { workerId, clock, leaseMs, audience, policy = DEFAULT_RETRY_POLICY }: ClaimOptions,
): Promise<ClaimedDelivery | null> {
  assertChannel(channel);
  if (!Number.isSafeInteger(leaseMs) || leaseMs <= 0) {
    throw new RangeError(`leaseMs must be a positive integer, got ${leaseMs}`);
  }
  const slot = slotPath(channel);
  // Each pass either returns a claim or fails one slot for good, so this ends.
  for (;;) {
    const now = clock.now();
    const leaseUntil = new Date(now.getTime() + leaseMs);
    const doc = await Notification.findOneAndUpdate(
      {
        ...(audience ? { audience } : {}),
        $or: [
          { [`${slot}.status`]: 'pending', [`${slot}.nextAttemptAt`]: { $lte: now } },
          { [`${slot}.status`]: 'sending', [`${slot}.leaseUntil`]: { $lte: now } },
        ],
      },
      {
        $set: {
          [`${slot}.status`]: 'sending',
          [`${slot}.leaseUntil`]: leaseUntil,
          [`${slot}.claimedBy`]: workerId,
        },
        $inc: { [`${slot}.attempts`]: 1 },
      },
      { sort: { createdAt: 1, _id: 1 }, returnDocument: 'after' },
    ).lean();
    if (!doc) return null;
    const item = toOutboxItem(doc);
    const claimed = item.deliveries.find((delivery) => delivery.channel === channel);
    if (!claimed)
      throw new DomainError('INTERNAL', `claimed item ${item.id} has no ${channel} slot`);

    if (claimed.attempts > policy.maxAttempts) {
      // Only an expired lease gets here: its workers kept dying on this message.
      await Notification.updateOne(
        {
          _id: item.id,
          [`${slot}.status`]: 'sending',
          [`${slot}.claimedBy`]: workerId,
          [`${slot}.attempts`]: claimed.attempts,
        },
        {
          $set: {
            [`${slot}.status`]: 'failed',
            [`${slot}.leaseUntil`]: null,
            [`${slot}.lastError`]: `gave up after ${claimed.attempts - 1} attempts (lease expired)`,
          },
        },
      );
      continue;
    }
    return {
      itemId: item.id,
      channel,
      audience: item.audience,
      accountId: item.accountId,
      event: item.event,
      period: item.period,
      data: item.data,
      attempts: claimed.attempts,
      leaseUntil,
      createdAt: item.createdAt,
    };
  }
}

export interface MarkOptions {
  clock: Clock;
  /** When given, only the claim of this worker is settled (a stale worker cannot). */
  workerId?: string;
}

/** Records a sent slot. False when the slot is not being sent (already settled). */
export async function markSent(
  itemId: IdLike,
  channel: NotificationChannel,
  { clock, workerId }: MarkOptions,
): Promise<boolean> {
  assertChannel(channel);
  const slot = slotPath(channel);
  const result = await Notification.updateOne(
    { _id: idString(itemId), ...claimedSlot(channel, workerId) },
    {
      $set: {
        [`${slot}.status`]: 'sent',
        [`${slot}.sentAt`]: clock.now(),
        [`${slot}.leaseUntil`]: null,
        [`${slot}.lastError`]: null,
      },
    },
  );
  return result.modifiedCount === 1;
}

export interface MarkFailedOptions extends MarkOptions {
  /** A temporary failure (timeout, 5xx, rate limit) is retried; a permanent one is not. */
  retryable: boolean;
  policy?: RetryPolicy;
}

/**
 * Records a failed attempt. Retryable with attempts left: back to `pending`
 * after `retryDelayMs(attempts)`; otherwise `failed`. Returns the new status,
 * or null when the slot is not being sent (already settled by someone else).
 */
export async function markFailed(
  itemId: IdLike,
  channel: NotificationChannel,
  error: unknown,
  { clock, workerId, retryable, policy = DEFAULT_RETRY_POLICY }: MarkFailedOptions,
): Promise<'pending' | 'failed' | null> {
  assertChannel(channel);
  const id = idString(itemId);
  const doc = await Notification.findById(id).lean();
  const slot = doc ? toOutboxItem(doc).deliveries.find((d) => d.channel === channel) : undefined;
  if (!slot || slot.status !== 'sending') return null;
  if (workerId !== undefined && slot.claimedBy !== workerId) return null;

  const giveUp = !retryable || slot.attempts >= policy.maxAttempts;
  const now = clock.now();
  const status = giveUp ? 'failed' : 'pending';
  const path = slotPath(channel);
  // Conditional on the attempt read above, so a late report cannot settle a newer claim.
  const result = await Notification.updateOne(
    {
      _id: id,
      [`${path}.status`]: 'sending',
      [`${path}.attempts`]: slot.attempts,
      [`${path}.claimedBy`]: slot.claimedBy,
    },
    {
      $set: {
        [`${path}.status`]: status,
        [`${path}.leaseUntil`]: null,
        [`${path}.lastError`]: errorText(error),
        ...(giveUp
          ? {}
          : {
              [`${path}.nextAttemptAt`]: new Date(
                now.getTime() + retryDelayMs(slot.attempts, policy),
              ),
            }),
      },
    },
  );
  return result.modifiedCount === 1 ? status : null;
}

/**
 * Settles a claimed slot as not delivered on purpose: the channel has no
 * recipient for it (no admin on this channel, the identity was unlinked).
 */
export async function markSkipped(
  itemId: IdLike,
  channel: NotificationChannel,
  reason: string,
  { workerId }: MarkOptions,
): Promise<boolean> {
  assertChannel(channel);
  const slot = slotPath(channel);
  const result = await Notification.updateOne(
    { _id: idString(itemId), ...claimedSlot(channel, workerId) },
    {
      $set: {
        [`${slot}.status`]: 'skipped',
        [`${slot}.leaseUntil`]: null,
        [`${slot}.lastError`]: reason.slice(0, MAX_ERROR_LENGTH),
      },
    },
  );
  return result.modifiedCount === 1;
}

/** One outbox item by id, or null. */
export async function getOutboxItem(itemId: IdLike): Promise<OutboxItem | null> {
  const doc = await Notification.findById(idString(itemId)).lean();
  return doc ? toOutboxItem(doc) : null;
}

/** The account's preferences, or the defaults when it never set any. */
export async function getPreferences(accountId: IdLike): Promise<NotificationPreferencesView> {
  const doc = await findOneByKey<NotificationPreferencesData>(
    NotificationPreferences,
    'accountId',
    idString(accountId),
  );
  if (!doc) {
    return {
      channels: { ...DEFAULT_PREFERENCES.channels },
      mutedEvents: [...DEFAULT_PREFERENCES.mutedEvents],
    };
  }
  return {
    channels: {
      telegram: doc.channels?.telegram ?? true,
      whatsapp: doc.channels?.whatsapp ?? true,
      email: doc.channels?.email ?? true,
    },
    mutedEvents: doc.mutedEvents.filter(isEvent),
  };
}

/**
 * Changes the fields given (one atomic upsert) and returns the result. Muting
 * a mandatory or an admin event is a VALIDATION_FAILED error.
 */
export async function setPreferences(
  accountId: IdLike,
  patch: PreferencesPatch,
): Promise<NotificationPreferencesView> {
  const id = idString(accountId);
  const set: Record<string, unknown> = {};
  for (const [channel, on] of Object.entries(patch.channels ?? {})) {
    assertChannel(channel);
    if (typeof on !== 'boolean') throw new RangeError(`channels.${channel} must be true or false`);
    set[`channels.${channel}`] = on;
  }
  if (patch.mutedEvents !== undefined) {
    for (const event of patch.mutedEvents) assertEvent(event);
    const refused = patch.mutedEvents.filter((e) => mandatory.has(e) || adminOnly.has(e));
    if (refused.length > 0) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `these notifications cannot be turned off: ${refused.join(', ')}`,
        {
          details: { field: 'mutedEvents', events: refused },
        },
      );
    }
    set.mutedEvents = [...new Set(patch.mutedEvents)];
  }
  if (Object.keys(set).length > 0) {
    const upsert = () =>
      NotificationPreferences.updateOne({ accountId: id }, { $set: set }, { upsert: true });
    try {
      await upsert();
    } catch (error) {
      // Two first-time upserts racing on the unique accountId: the loser updates the winner's document.
      if (!isDuplicateKeyError(error)) throw error;
      await upsert();
    }
  }
  return getPreferences(id);
}

interface NewItem {
  audience: NotificationAudience;
  accountId?: string;
  event: NotificationEvent;
  period?: string | undefined;
  dedupKey: string;
  data: Record<string, unknown>;
  deliveries: DeliverySlot[];
}

/** Inserts unless the dedup key exists; either way returns the one item for the key. */
async function insertOnce(item: NewItem): Promise<NotifyResult> {
  try {
    const created = await insertOne<NotificationRecord>(Notification, {
      ...item,
      deliveries: Object.fromEntries(item.deliveries.map((slot) => [slot.channel, slot])),
    });
    return { item: toOutboxItem(created), created: true };
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
  const existing = await Notification.findOne({ dedupKey: item.dedupKey }).lean();
  if (!existing) throw new DomainError('INTERNAL', `outbox item ${item.dedupKey} vanished`);
  return { item: toOutboxItem(existing), created: false };
}

function newSlot(channel: NotificationChannel, now: Date, skipReason: string | null): DeliverySlot {
  return {
    channel,
    status: skipReason === null ? 'pending' : 'skipped',
    attempts: 0,
    nextAttemptAt: now,
    leaseUntil: null,
    claimedBy: null,
    lastError: skipReason,
    sentAt: null,
  };
}

interface SlotRecord {
  channel: NotificationChannel;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  leaseUntil?: Date | null;
  claimedBy?: string | null;
  lastError?: string | null;
  sentAt?: Date | null;
}

interface NotificationRecord {
  _id: unknown;
  audience: NotificationAudience;
  accountId?: { toHexString(): string } | null;
  event: NotificationEvent;
  period?: string | null;
  dedupKey: string;
  data?: unknown;
  deliveries?: {
    telegram?: SlotRecord | null;
    whatsapp?: SlotRecord | null;
    email?: SlotRecord | null;
  } | null;
  createdAt: Date;
}

function toOutboxItem(doc: NotificationRecord): OutboxItem {
  const slots = doc.deliveries;
  return {
    id: String(doc._id),
    audience: doc.audience,
    accountId: doc.accountId == null ? null : doc.accountId.toHexString(),
    event: doc.event,
    period: doc.period ?? null,
    dedupKey: doc.dedupKey,
    data: isRecord(doc.data) ? doc.data : {},
    deliveries: notificationChannels
      .map((channel) => slots?.[channel])
      .filter((slot): slot is SlotRecord => slot != null)
      .map((slot) => ({
        channel: slot.channel,
        status: slot.status,
        attempts: slot.attempts,
        nextAttemptAt: slot.nextAttemptAt,
        leaseUntil: slot.leaseUntil ?? null,
        claimedBy: slot.claimedBy ?? null,
        lastError: slot.lastError ?? null,
        sentAt: slot.sentAt ?? null,
      })),
    createdAt: doc.createdAt,
  };
}

function slotPath(channel: NotificationChannel): string {
  return `deliveries.${channel}`;
}

/** Filter for a slot being sent, by `workerId` when given. */
function claimedSlot(
  channel: NotificationChannel,
  workerId: string | undefined,
): Record<string, string> {
  const slot = slotPath(channel);
  return {
    [`${slot}.status`]: 'sending',
    ...(workerId === undefined ? {} : { [`${slot}.claimedBy`]: workerId }),
  };
}

function errorText(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = `${error.name}: ${error.message}`;
  else if (typeof error === 'string') text = error;
  else {
    try {
      text = JSON.stringify(error) ?? 'unknown error';
    } catch {
      text = 'unknown error';
    }
  }
  return text.slice(0, MAX_ERROR_LENGTH);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEvent(value: unknown): value is NotificationEvent {
  return typeof value === 'string' && knownEvents.has(value);
}

function assertEvent(value: unknown): asserts value is NotificationEvent {
  if (!isEvent(value)) throw new RangeError(`unknown notification event: ${String(value)}`);
}

function assertChannel(value: unknown): asserts value is NotificationChannel {
  if (typeof value !== 'string' || !(notificationChannels as readonly string[]).includes(value)) {
    throw new RangeError(`unknown notification channel: ${String(value)}`);
  }
}

function idString(id: IdLike): string {
  const text = typeof id === 'string' ? id : id.toHexString();
  if (!/^[0-9a-f]{24}$/i.test(text)) {
    throw new DomainError('VALIDATION_FAILED', `"${text}" is not a valid id`);
  }
  return text;
}

/**
 * A channel refused a delivery for good (Telegram 403: the customer blocked
 * the bot; WhatsApp: the number is not on WhatsApp): later notifications skip
 * it until clearChannelFailing (the customer wrote again).
 */
export async function markChannelFailing(
  accountId: IdLike,
  channel: 'telegram' | 'whatsapp',
  reason: string,
  { clock }: ClockOption,
): Promise<void> {
  await ChannelIdentity.updateOne(
    { accountId: idString(accountId), channel, failingSince: { $exists: false } },
    { $set: { failingSince: clock.now(), failingReason: reason.slice(0, 500) } },
  );
}

/** The customer wrote on this channel: it works again. */
export async function clearChannelFailing(
  channel: 'telegram' | 'whatsapp',
  externalId: string,
): Promise<void> {
  await ChannelIdentity.updateOne(
    { channel, externalId, failingSince: { $exists: true } },
    { $unset: { failingSince: 1, failingReason: 1 } },
  );
}
