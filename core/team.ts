/**
 * Team seats: members of a team plan. A seat is an account of its own (its
 * own proxy credentials, refusal and usage records) that draws on its owner's
 * subscription: the owner's plan, the owner's pooled quota counter, and the
 * team's connection limit, which counts every seat's open connections.
 *
 * Decisions:
 * - The owner counts as a seat. The default Team plan is "500 GB a month
 *   shared by 5 members" for 5 seats, and the owner is one of the people
 *   using it, so `seats: 5` means the owner and four members.
 * - Only an owner whose live subscription is on a plan with more than one
 *   seat may add members. A member may not have a live plan of its own or
 *   members of its own (one account, one source of entitlements), and is a
 *   seat of one team at most (a unique index).
 * - The seat limit holds under concurrent adds without transactions: each seat
 *   takes a numbered slot (1 .. seats - 1) that is unique per owner.
 * - A seat's data cap is counted on the member's own quota counter for the
 *   team's current quota window (core/quota.ts: the same leases, the same
 *   zero overshoot, the same reclaim of a dead gateway's leases). The member
 *   has no plan of its own, so that counter is free for the purpose. When a
 *   cap is first set in a window, the counter starts with what the seat
 *   already used in that window (from the hourly usage buckets, whole hours),
 *   so a cap set mid-month is not a fresh allowance.
 * - Removing a seat cuts its tunnels on every gateway within a refresh (the
 *   member no longer has a plan) and frees its slot at once.
 */
import { notify } from './notifications.js';
import { toAccountId, type AccountId } from './account-id.js';
import type { Types } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { Account } from '../models/account.js';
import { isDuplicateKeyError } from '../models/errors.js';
import { Plan, type PlanRecord } from '../models/plan.js';
import { QuotaUsage } from '../models/quota-usage.js';
import { Subscription, type SubscriptionRecord } from '../models/subscription.js';
import { TeamSeat } from '../models/team-seat.js';
import { hourEnd } from './usage.js';
import { UsageBucket } from '../models/usage-bucket.js';
import { currentQuotaWindow } from './subscriptions.js';

export interface SeatCaps {
  /** Bytes the seat may use per quota window (GB = 10^9 bytes); null = the team's pool only. */
  capBytes?: number | null;
  /** Connections the seat may have open at once; null = the team's limit only. */
  maxConnections?: number | null;
}

export interface SeatView {
  ownerAccountId: string;
  memberAccountId: string;
  capBytes: number | null;
  maxConnections: number | null;
  createdAt: Date;
}

interface StoredSeat {
  ownerAccountId: Types.ObjectId;
  memberAccountId: Types.ObjectId;
  slot: number;
  capBytes?: number | null;
  maxConnections?: number | null;
  createdAt: Date;
}

const MAX_SLOT_ATTEMPTS = 10;

function toView(seat: StoredSeat): SeatView {
  return {
    ownerAccountId: String(seat.ownerAccountId),
    memberAccountId: String(seat.memberAccountId),
    capBytes: seat.capBytes ?? null,
    maxConnections: seat.maxConnections ?? null,
    createdAt: seat.createdAt,
  };
}

function checkCaps(caps: SeatCaps): void {
  const { capBytes, maxConnections } = caps;
  if (
    capBytes !== undefined &&
    capBytes !== null &&
    !(Number.isSafeInteger(capBytes) && capBytes > 0)
  ) {
    throw new DomainError(
      'VALIDATION_FAILED',
      "A seat's data cap is a whole number of bytes above zero (or none).",
      { details: { field: 'capBytes', value: capBytes } },
    );
  }
  if (
    maxConnections !== undefined &&
    maxConnections !== null &&
    !(Number.isSafeInteger(maxConnections) && maxConnections > 0)
  ) {
    throw new DomainError(
      'VALIDATION_FAILED',
      "A seat's connection limit is a whole number above zero (or none).",
      { details: { field: 'maxConnections', value: maxConnections } },
    );
  }
}

/** The owner's live subscription and its plan, if the plan has seats for members. */
async function teamOf(
  owner: Types.ObjectId,
): Promise<{ subscription: SubscriptionRecord; plan: PlanRecord; seats: number }> {
  const subscription = await Subscription.findOne({
    liveAccountId: owner,
  }).lean<SubscriptionRecord>();
  if (!subscription) {
    throw new DomainError(
      'CONFLICT',
      'You have no plan running. Subscribe to Team to add members with their own credentials.',
      { details: { ownerAccountId: String(owner), reason: 'NO_LIVE_SUBSCRIPTION' } },
    );
  }
  const plan = await Plan.findOne({ code: subscription.planCode }).lean<PlanRecord>();
  const seats = plan?.seats ?? 1;
  if (!plan || seats <= 1) {
    throw new DomainError(
      'CONFLICT',
      `Your ${plan?.name ?? subscription.planCode} plan has no seats for members. Upgrade to Team to add members with their own credentials.`,
      { details: { ownerAccountId: String(owner), reason: 'NOT_A_TEAM_PLAN' } },
    );
  }
  return { subscription, plan, seats };
}

/**
 * Adds `member` to the team of `owner`, with optional caps. Refused (CONFLICT)
 * when the owner's live plan has no seats, when every seat is taken (the owner
 * counts as one), or when the member has a plan or a team of its own or is
 * already a seat.
 */
export async function addSeat(
  ownerAccountId: AccountId,
  memberAccountId: AccountId,
  caps: SeatCaps = {},
  options: { clock: Clock },
): Promise<SeatView> {
  const owner = toAccountId(ownerAccountId);
  const member = toAccountId(memberAccountId);
  checkCaps(caps);
  if (owner.equals(member)) {
    throw new DomainError('VALIDATION_FAILED', 'You are already on your team as its owner.', {
      details: { field: 'memberAccountId' },
    });
  }
  const { plan, seats, subscription } = await teamOf(owner);
  const [memberAccount, memberLive, memberOwnsSeats, ownerIsSeat] = await Promise.all([
    Account.findById(member, { status: 1 }).lean<{ status: string }>(),
    Subscription.exists({ liveAccountId: member }),
    TeamSeat.exists({ ownerAccountId: member }),
    TeamSeat.exists({ memberAccountId: owner }),
  ]);
  if (!memberAccount || memberAccount.status === 'deleted') {
    throw new DomainError('NOT_FOUND', 'There is no such account to add to your team.', {
      details: { memberAccountId: String(member) },
    });
  }
  if (ownerIsSeat) {
    throw new DomainError('CONFLICT', 'A member of a team cannot add members of its own.', {
      details: { ownerAccountId: String(owner), reason: 'OWNER_IS_A_SEAT' },
    });
  }
  if (memberLive || memberOwnsSeats) {
    throw new DomainError(
      'CONFLICT',
      'That account has a plan of its own. It can join your team once its own plan has ended.',
      { details: { memberAccountId: String(member), reason: 'MEMBER_HAS_A_PLAN' } },
    );
  }

  for (let attempt = 0; attempt < MAX_SLOT_ATTEMPTS; attempt++) {
    const taken = await TeamSeat.find({ ownerAccountId: owner }, { slot: 1 }).lean<
      { slot: number }[]
    >();
    if (taken.length >= seats - 1) {
      throw seatsFull(plan.name, seats, owner);
    }
    const used = new Set(taken.map((seat) => seat.slot));
    let slot = 1;
    while (used.has(slot)) slot += 1;
    if (slot > seats - 1) throw seatsFull(plan.name, seats, owner);
    try {
      const created = await TeamSeat.create({
        ownerAccountId: owner,
        memberAccountId: member,
        slot,
        ...(caps.capBytes ? { capBytes: caps.capBytes } : {}),
        ...(caps.maxConnections ? { maxConnections: caps.maxConnections } : {}),
      });
      const seat = toView(created.toObject());
      await touchTeamAccounts(owner, member);
      if (seat.capBytes !== null) {
        await applyCapToCounter(member, subscription, seat.capBytes, options.clock.now());
      }
      await notify(
        {
          accountId: String(member),
          event: 'seat_added',
          period: String(created._id),
          data: { ownerAccountId: String(owner), capBytes: seat.capBytes },
        },
        options,
      );
      return seat;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (await TeamSeat.exists({ memberAccountId: member })) {
        throw new DomainError('CONFLICT', 'That account is already a member of a team.', {
          details: { memberAccountId: String(member), reason: 'ALREADY_A_SEAT' },
        });
      }
      // Another add took this slot at the same moment: look again.
    }
  }
  throw new DomainError('CONFLICT', 'Your team is being changed by someone else; try again.');
}

/**
 * How many members the owner could still add now (the owner holds one seat).
 * Refused like addSeat when the owner has no team plan.
 */
export async function seatsLeft(ownerAccountId: AccountId): Promise<number> {
  const owner = toAccountId(ownerAccountId);
  const { seats } = await teamOf(owner);
  const taken = await TeamSeat.countDocuments({ ownerAccountId: owner });
  return Math.max(0, seats - 1 - taken);
}

function seatsFull(planName: string, seats: number, owner: Types.ObjectId): DomainError {
  return new DomainError(
    'CONFLICT',
    `All ${seats} seats of your ${planName} plan are taken (you hold one). Remove a member to add another.`,
    { details: { ownerAccountId: String(owner), seats, reason: 'SEATS_FULL' } },
  );
}

/**
 * Marks both accounts as written (their `updatedAt`) after a seat changed:
 * the gateways' caches find changed facts by date, and a removed seat leaves
 * no document of its own to find. Without it a seat change would wait for the
 * cache's sweep of every account (proxy/credential-cache.ts).
 */
async function touchTeamAccounts(owner: Types.ObjectId, member: Types.ObjectId): Promise<void> {
  await Account.updateMany({ _id: { $in: [owner, member] } }, { $set: { updatedAt: new Date() } });
}

/** Takes `member` off the team of `owner`; its tunnels are cut on every gateway within a refresh. */
export async function removeSeat(
  ownerAccountId: AccountId,
  memberAccountId: AccountId,
  options: { clock?: Clock; notifyMember?: boolean } = {},
): Promise<void> {
  const owner = toAccountId(ownerAccountId);
  const member = toAccountId(memberAccountId);
  const removed = await TeamSeat.findOneAndDelete({
    ownerAccountId: owner,
    memberAccountId: member,
  }).lean<{ _id: Types.ObjectId }>();
  if (!removed) {
    throw new DomainError('NOT_FOUND', 'That account is not a member of your team.', {
      details: { memberAccountId: String(memberAccountId) },
    });
  }
  await touchTeamAccounts(owner, member);
  // The member hears of it (not when the member's own account is being deleted).
  if (options.clock && options.notifyMember !== false) {
    await notify(
      {
        accountId: String(memberAccountId),
        event: 'seat_removed',
        period: String(removed._id),
        data: { ownerAccountId: String(ownerAccountId) },
      },
      { clock: options.clock },
    );
  }
}

/**
 * Changes a seat's caps: a field left out stays as it is, null removes the
 * cap. A new data cap applies to the current window at once (live tunnels
 * included, within a gateway refresh).
 */
export async function setSeatCaps(
  ownerAccountId: AccountId,
  memberAccountId: AccountId,
  caps: SeatCaps,
  options: { clock: Clock },
): Promise<SeatView> {
  checkCaps(caps);
  const owner = toAccountId(ownerAccountId);
  const member = toAccountId(memberAccountId);
  const set: Record<string, number> = {};
  const unset: Record<string, 1> = {};
  for (const field of ['capBytes', 'maxConnections'] as const) {
    const value = caps[field];
    if (value === undefined) continue;
    if (value === null) unset[field] = 1;
    else set[field] = value;
  }
  const stored = await TeamSeat.findOneAndUpdate(
    { ownerAccountId: owner, memberAccountId: member },
    {
      ...(Object.keys(set).length ? { $set: set } : {}),
      ...(Object.keys(unset).length ? { $unset: unset } : {}),
    },
    { returnDocument: 'after' },
  ).lean<StoredSeat>();
  if (!stored) {
    throw new DomainError('NOT_FOUND', 'That account is not a member of your team.', {
      details: { memberAccountId: String(member) },
    });
  }
  const seat = toView(stored);
  await touchTeamAccounts(owner, member);
  if (seat.capBytes !== null) {
    const subscription = await Subscription.findOne({
      liveAccountId: owner,
    }).lean<SubscriptionRecord>();
    if (subscription) {
      await applyCapToCounter(member, subscription, seat.capBytes, options.clock.now());
    }
  }
  return seat;
}

/** The members of `owner`'s team, oldest first. */
export async function listSeats(ownerAccountId: AccountId): Promise<SeatView[]> {
  const seats = await TeamSeat.find({ ownerAccountId: toAccountId(ownerAccountId) })
    .sort({ createdAt: 1, _id: 1 })
    .lean<StoredSeat[]>();
  return seats.map(toView);
}

export interface SeatUsageView extends SeatView {
  /** Bytes the member used in the team's current quota window (hourly buckets, whole hours). */
  usedBytes: number;
  windowStart: Date;
  windowEnd: Date;
}

/**
 * The owner's seats with what each member used in the team's current quota
 * window, for "who used our data?". Counted from the hourly usage buckets,
 * so the hour in progress shows after the gateway's next flush.
 */
export async function listSeatsWithUsage(
  ownerAccountId: AccountId,
  now: Date,
): Promise<SeatUsageView[]> {
  const owner = toAccountId(ownerAccountId);
  const { subscription } = await teamOf(owner);
  const window = currentQuotaWindow(subscription, now);
  if (!window) return [];
  const seats = await TeamSeat.find({ ownerAccountId: owner })
    .sort({ createdAt: 1, _id: 1 })
    .lean<StoredSeat[]>();
  return Promise.all(
    seats.map(async (seat) => ({
      ...toView(seat),
      usedBytes: await bytesUsedSince(seat.memberAccountId, window.start, hourEnd(now)),
      windowStart: window.start,
      windowEnd: window.end,
    })),
  );
}

/** The seat `member` holds, or null. */
export async function getSeat(memberAccountId: AccountId): Promise<SeatView | null> {
  const seat = await TeamSeat.findOne({
    memberAccountId: toAccountId(memberAccountId),
  }).lean<StoredSeat>();
  return seat ? toView(seat) : null;
}

const MAX_CAP_ATTEMPTS = 10;

/**
 * Makes the member's counter for the team's current window allow `capBytes`:
 * opens it (starting from the seat's use so far in the window) or moves its
 * limit, with one guarded update so a gateway leasing at the same moment
 * keeps its lease. A lowered cap may leave `availableBytes` below zero; then
 * nothing more is leased until the window ends or the cap rises.
 */
async function applyCapToCounter(
  member: Types.ObjectId,
  subscription: SubscriptionRecord,
  capBytes: number,
  now: Date,
): Promise<void> {
  const window = currentQuotaWindow(subscription, now);
  if (!window) return;
  for (let attempt = 0; attempt < MAX_CAP_ATTEMPTS; attempt++) {
    const current = await QuotaUsage.findOne({
      accountId: member,
      periodStart: window.start,
    }).lean<{ _id: Types.ObjectId; limitBytes: number }>();
    if (!current) {
      const usedBytes = await bytesUsedSince(member, window.start, window.end);
      try {
        await QuotaUsage.create({
          accountId: member,
          periodStart: window.start,
          periodEnd: window.end,
          limitBytes: capBytes,
          usedBytes,
          availableBytes: capBytes - usedBytes,
        });
        return;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        continue;
      }
    }
    const delta = capBytes - current.limitBytes;
    if (delta === 0) return;
    const moved = await QuotaUsage.updateOne(
      { _id: current._id, limitBytes: current.limitBytes },
      { $inc: { limitBytes: delta, availableBytes: delta } },
    );
    if (moved.modifiedCount === 1) return;
  }
  throw new DomainError('CONFLICT', "The seat's data counter is busy; try again.");
}

/** Billed bytes of `member` in the hourly buckets from the hour containing `start` to `end`. */
async function bytesUsedSince(member: Types.ObjectId, start: Date, end: Date): Promise<number> {
  const fromHour = new Date(Math.floor(start.getTime() / 3_600_000) * 3_600_000);
  const rows = await UsageBucket.find(
    { accountId: member, hourStart: { $gte: fromHour, $lt: end } },
    { bytesUp: 1, bytesDown: 1 },
  ).lean<{ bytesUp: number; bytesDown: number }[]>();
  return rows.reduce((sum, row) => sum + row.bytesUp + row.bytesDown, 0);
}
