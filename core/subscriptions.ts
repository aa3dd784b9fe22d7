/**
 * Subscriptions: an account's right to a plan over time.
 *
 *   pending_payment ──pay──▶ trialing ──endTrial──▶ expired
 *          │                  active ◀──renew── past_due ──expire──▶ expired
 *          └─expire─▶ expired   │ └──markPastDue──▶┘
 *                               └──expire (cancelAtPeriodEnd)──▶ cancelled
 *   any live status ──cancel (now)──▶ cancelled
 *
 * Every transition reads the subscription, decides, and writes with ONE
 * conditional update on the status and revision it read; losing a race re-reads
 * and decides again. Asking for the state a subscription is already in is a
 * no-op that returns it (`changed: false`); a transition the state does not
 * allow is refused with CONFLICT. One live subscription per account is kept by
 * a unique partial index on `liveAccountId`; one subscription per payment by a
 * unique index on `activatedByPaymentRef`.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import { findOneByKey, insertOne } from '../models/batching.js';
import { Types } from 'mongoose';
import { durationMs, type Clock, type Duration } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import type { Currency } from '../lib/money.js';
import type { BillingPeriod, PlanRecord, QuotaPeriod } from '../models/plan.js';
import {
  Subscription,
  isLiveStatus,
  liveSubscriptionStatuses,
  type SubscriptionData,
  type SubscriptionRecord,
  type SubscriptionStatus,
} from '../models/subscription.js';
import { getPlan, planPrice, priceForRenewal } from './plans.js';

const DAY_MS = 86_400_000;
const MAX_ATTEMPTS = 5;

export interface TransitionResult {
  subscription: SubscriptionRecord;
  /** false when the subscription was already in the asked state (a repeat). */
  changed: boolean;
}

type AccountIdInput = string | Types.ObjectId;

// ---------------------------------------------------------------------------
// Window arithmetic (pure, UTC, no DST: every boundary is a UTC instant)
// ---------------------------------------------------------------------------

export interface TimeWindow {
  start: Date;
  /** Exclusive. */
  end: Date;
}

/**
 * `anchor` moved by `n` months, same UTC time of day, on the anchor's day of
 * month clamped to the length of the target month: Jan 31 → Feb 28 (29) →
 * Mar 31. Always counted from the anchor, so short months do not drift it.
 */
export function addMonthsClamped(anchor: Date, n: number): Date {
  const monthIndex = anchor.getUTCMonth() + n;
  const year = anchor.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const result = new Date(anchor.getTime());
  result.setUTCFullYear(year, month, Math.min(anchor.getUTCDate(), daysInMonth));
  return result;
}

/** The start of the `n`-th period after `anchor` (n = 0 is the anchor itself). */
export function addPeriods(anchor: Date, period: BillingPeriod, n: number): Date {
  switch (period.unit) {
    case 'day':
      return new Date(anchor.getTime() + n * period.count * DAY_MS);
    case 'week':
      return new Date(anchor.getTime() + n * period.count * 7 * DAY_MS);
    case 'month':
      return addMonthsClamped(anchor, n * period.count);
  }
}

/**
 * The period, counted from `anchor`, that contains `at`. Times before the
 * anchor fall in the first period.
 */
export function periodContaining(
  anchor: Date,
  period: BillingPeriod,
  at: Date,
): TimeWindow & { index: number } {
  const elapsedMs = at.getTime() - anchor.getTime();
  let index = 0;
  if (elapsedMs > 0) {
    if (period.unit === 'month') {
      const months =
        (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 +
        (at.getUTCMonth() - anchor.getUTCMonth());
      index = Math.max(0, Math.floor(months / period.count));
      while (index > 0 && addPeriods(anchor, period, index).getTime() > at.getTime()) index -= 1;
      while (addPeriods(anchor, period, index + 1).getTime() <= at.getTime()) index += 1;
    } else {
      const stepMs = period.count * (period.unit === 'week' ? 7 : 1) * DAY_MS;
      index = Math.floor(elapsedMs / stepMs);
    }
  }
  return {
    index,
    start: addPeriods(anchor, period, index),
    end: addPeriods(anchor, period, index + 1),
  };
}

const QUOTA_STEP: Record<Exclude<QuotaPeriod, 'trial'>, BillingPeriod> = {
  week: { unit: 'week', count: 1 },
  month: { unit: 'month', count: 1 },
};

/**
 * The quota window containing `now`: for a weekly quota the 7-day window
 * rolling from activation (Starter); for a monthly quota the month rolling
 * from activation, which is the billing period of a monthly plan; for a trial
 * the trial itself. null for PAYG (no quota) and for a subscription never
 * activated.
 */
export function currentQuotaWindow(
  subscription: Pick<
    SubscriptionData,
    'quotaPeriod' | 'quotaAnchorAt' | 'trialEndsAt' | 'periodStart' | 'periodEnd'
  >,
  now: Date,
): TimeWindow | null {
  const { quotaPeriod } = subscription;
  if (quotaPeriod === undefined || quotaPeriod === null) return null;
  if (quotaPeriod === 'trial') {
    const start = subscription.quotaAnchorAt ?? subscription.periodStart;
    const end = subscription.trialEndsAt ?? subscription.periodEnd;
    return start && end ? { start, end } : null;
  }
  const anchor = subscription.quotaAnchorAt;
  if (!anchor) return null;
  const { start, end } = periodContaining(anchor, QUOTA_STEP[quotaPeriod], now);
  return { start, end };
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/**
 * The account's live subscription; when there is none, its most recent ended
 * one (so callers can say "expired" rather than "no subscription"); else null.
 * Check `status` before granting anything (or ask core/entitlements).
 */
export async function getCurrentSubscription(
  accountId: AccountIdInput,
): Promise<SubscriptionRecord | null> {
  const id = toObjectId(accountId);
  const live = await Subscription.findOne({ liveAccountId: id }).lean<SubscriptionRecord>();
  if (live) return live;
  return Subscription.findOne({ accountId: id })
    .sort({ createdAt: -1, _id: -1 })
    .lean<SubscriptionRecord>();
}

/** The account's live subscription, or null. */
export async function getLiveSubscription(
  accountId: AccountIdInput,
): Promise<SubscriptionRecord | null> {
  return findOneByKey<SubscriptionRecord>(Subscription, 'liveAccountId', toObjectId(accountId));
}

export async function getSubscription(id: AccountIdInput): Promise<SubscriptionRecord> {
  const found = await Subscription.findById(toObjectId(id)).lean<SubscriptionRecord>();
  if (!found) {
    throw new DomainError('NOT_FOUND', 'That subscription does not exist.', {
      details: { subscriptionId: String(id) },
    });
  }
  return found;
}

/** Trials whose time is up and that have not been ended yet. */
export async function listDueTrials(now: Date): Promise<SubscriptionRecord[]> {
  return Subscription.find({ status: 'trialing', trialEndsAt: { $lte: now } })
    .sort({ trialEndsAt: 1 })
    .lean<SubscriptionRecord[]>();
}

/**
 * Recurring subscriptions to charge for their next period: active, not set to
 * cancel, period ending before `before` (pass now + a lead time to renew
 * ahead of the end, so access has no gap).
 */
export async function listDueForRenewal(before: Date): Promise<SubscriptionRecord[]> {
  return Subscription.find({
    status: 'active',
    planKind: 'recurring',
    cancelAtPeriodEnd: false,
    periodEnd: { $lte: before },
  })
    .sort({ periodEnd: 1 })
    .lean<SubscriptionRecord[]>();
}

/** Subscriptions `expire` would end now: cancelled-at-period-end or past due beyond grace. */
export async function listDueForExpiry(now: Date): Promise<SubscriptionRecord[]> {
  return Subscription.find({
    $or: [
      {
        status: 'active',
        planKind: 'recurring',
        cancelAtPeriodEnd: true,
        periodEnd: { $lte: now },
      },
      { status: 'past_due', graceEndsAt: { $lte: now } },
    ],
  }).lean<SubscriptionRecord[]>();
}

// ---------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------

export interface ActivateFromPaymentInput {
  accountId: AccountIdInput;
  planCode: string;
  /** Our payment reference; one payment starts at most one subscription. */
  paymentRef: string;
  clock: Clock;
  /** Currency paid in; defaults to the plan's first price currency (NGN). */
  currency?: Currency;
  /** The amount actually paid, when the caller knows it; defaults to the plan's current price. */
  priceMinor?: number;
}

/**
 * Starts (or finds) the subscription a payment bought: a trial becomes
 * `trialing` until `trialEndsAt`; a recurring plan `active` for a first period
 * from now; PAYG `active` with no end. Repeating it with the same payment, or
 * racing it with itself, returns the one subscription. A pending checkout of
 * the account is taken over; a running trial is ended as `upgraded` when a
 * paid plan is bought. Any other live subscription is a CONFLICT (plan
 * changes are not a payment's business here).
 */
export async function activateFromPayment(
  input: ActivateFromPaymentInput,
): Promise<SubscriptionRecord> {
  const accountId = toObjectId(input.accountId);
  const { paymentRef, clock } = input;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const existing = await findOneByKey<SubscriptionRecord>(
      Subscription,
      'activatedByPaymentRef',
      paymentRef,
    );
    if (existing) {
      if (!existing.accountId.equals(accountId)) {
        throw new DomainError(
          'CONFLICT',
          'This payment already started a subscription for another account.',
          {
            details: { paymentRef },
          },
        );
      }
      return existing;
    }
    const plan = await getPlan(input.planCode);
    const now = clock.now();
    const terms = initialTerms(plan, now, input);
    const live = await getLiveSubscription(accountId);
    if (live) {
      // A racing fulfilment of this same payment got here first.
      if (live.activatedByPaymentRef === paymentRef) return live;
      if (live.status === 'pending_payment') {
        const taken = await Subscription.findOneAndUpdate(
          { _id: live._id, status: 'pending_payment', revision: live.revision },
          {
            $set: { ...terms, activatedByPaymentRef: paymentRef, updatedAt: now },
            $inc: { revision: 1 },
            $push: {
              history: {
                from: 'pending_payment',
                to: terms.status,
                at: now,
                reason: `paid by ${paymentRef}`,
              },
            },
          },
          { returnDocument: 'after', timestamps: false },
        )
          .lean<SubscriptionRecord>()
          .catch(swallowDuplicate);
        if (taken) return taken;
        continue;
      }
      if (live.status === 'trialing' && plan.kind !== 'trial') {
        await endTrial(live._id, { clock, reason: 'upgraded' });
        continue;
      }
      throw new DomainError(
        'CONFLICT',
        `This account already has a live ${live.planCode} subscription (${live.status.replace('_', ' ')}).`,
        {
          details: {
            subscriptionId: String(live._id),
            status: live.status,
            planCode: live.planCode,
          },
        },
      );
    }
    try {
      return await insertSubscription(
        {
          accountId,
          liveAccountId: accountId,
          ...terms,
          activatedByPaymentRef: paymentRef,
          history: [{ from: null, to: terms.status, at: now, reason: `paid by ${paymentRef}` }],
        },
        now,
      );
    } catch (error) {
      // Lost a race: the same payment (found on the next pass) or another live subscription.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
  throw new DomainError(
    'CONFLICT',
    'The subscription is being changed by another request; try again.',
    {
      details: { paymentRef },
    },
  );
}

/**
 * Puts the account on PAYG without a payment (access is then governed by the
 * wallet). Returns the account's live PAYG subscription if it has one;
 * CONFLICT while another plan is live.
 */
export async function startPayg(input: {
  accountId: AccountIdInput;
  clock: Clock;
  currency?: Currency;
}): Promise<SubscriptionRecord> {
  const accountId = toObjectId(input.accountId);
  const plan = await getPlan('payg');
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const live = await getLiveSubscription(accountId);
    if (live) {
      if (live.planKind === 'payg' && live.status === 'active') return live;
      throw new DomainError(
        'CONFLICT',
        `This account already has a live ${live.planCode} subscription.`,
        {
          details: { subscriptionId: String(live._id), status: live.status },
        },
      );
    }
    const now = input.clock.now();
    const terms = initialTerms(plan, now, input);
    try {
      return await insertSubscription(
        {
          accountId,
          liveAccountId: accountId,
          ...terms,
          history: [{ from: null, to: terms.status, at: now, reason: 'payg started' }],
        },
        now,
      );
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
  throw new DomainError(
    'CONFLICT',
    'The subscription is being changed by another request; try again.',
  );
}

/**
 * Records the plan a customer chose at checkout as `pending_payment` (no
 * access until paid). A pending choice is replaced by the new one; another
 * live subscription is a CONFLICT.
 */
export async function createPendingSubscription(input: {
  accountId: AccountIdInput;
  planCode: string;
  clock: Clock;
  currency?: Currency;
}): Promise<SubscriptionRecord> {
  const accountId = toObjectId(input.accountId);
  const plan = await getPlan(input.planCode);
  const currency = input.currency ?? defaultCurrency(plan);
  const priceMinor = plan.kind === 'recurring' ? planPrice(plan, currency) : 0;
  const choice = {
    planCode: plan.code,
    planVersion: plan.version,
    planKind: plan.kind,
    priceMinor,
    currency,
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const now = input.clock.now();
    const live = await getLiveSubscription(accountId);
    if (live) {
      if (live.status !== 'pending_payment') {
        throw new DomainError(
          'CONFLICT',
          `This account already has a live ${live.planCode} subscription.`,
          {
            details: { subscriptionId: String(live._id), status: live.status },
          },
        );
      }
      if (live.planCode === plan.code && live.currency === currency) return live;
      const updated = await Subscription.findOneAndUpdate(
        { _id: live._id, status: 'pending_payment', revision: live.revision },
        { $set: { ...choice, updatedAt: now }, $inc: { revision: 1 } },
        { returnDocument: 'after', timestamps: false },
      ).lean<SubscriptionRecord>();
      if (updated) return updated;
      continue;
    }
    try {
      return await insertSubscription(
        {
          accountId,
          liveAccountId: accountId,
          ...choice,
          status: 'pending_payment',
          history: [{ from: null, to: 'pending_payment', at: now, reason: 'checkout started' }],
        },
        now,
      );
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
  throw new DomainError(
    'CONFLICT',
    'The subscription is being changed by another request; try again.',
  );
}

type Terms = Pick<
  SubscriptionData,
  'planCode' | 'planVersion' | 'planKind' | 'priceMinor' | 'currency' | 'status'
> &
  Partial<SubscriptionData>;

/** What a subscription to `plan` looks like when it starts at `now`. */
function initialTerms(
  plan: PlanRecord,
  now: Date,
  input: { currency?: Currency; priceMinor?: number },
): Terms {
  const currency = input.currency ?? defaultCurrency(plan);
  const base = {
    planCode: plan.code,
    planVersion: plan.version,
    planKind: plan.kind,
    currency,
    activatedAt: now,
    periodStart: now,
    cancelAtPeriodEnd: false,
  };
  switch (plan.kind) {
    case 'trial': {
      const trialEndsAt = new Date(now.getTime() + (plan.trial?.durationDays ?? 3) * DAY_MS);
      return {
        ...base,
        status: 'trialing',
        priceMinor: 0,
        periodEnd: trialEndsAt,
        trialEndsAt,
        quotaPeriod: 'trial',
        quotaAnchorAt: now,
        quotaPeriodStart: now,
        quotaPeriodEnd: trialEndsAt,
      };
    }
    case 'recurring': {
      const billingPeriod = plan.billingPeriod ?? { unit: 'month', count: 1 };
      const quotaPeriod = plan.quota?.period;
      const window = currentQuotaWindow({ quotaPeriod, quotaAnchorAt: now }, now);
      return {
        ...base,
        status: 'active',
        priceMinor: input.priceMinor ?? planPrice(plan, currency),
        billingPeriod: { unit: billingPeriod.unit, count: billingPeriod.count },
        billingAnchorAt: now,
        periodEnd: addPeriods(now, billingPeriod, 1),
        quotaPeriod,
        quotaAnchorAt: now,
        quotaPeriodStart: window?.start,
        quotaPeriodEnd: window?.end,
      };
    }
    case 'payg':
      return { ...base, status: 'active', priceMinor: 0 };
  }
}

/** Inserts a new subscription with timestamps from the clock. */
async function insertSubscription(
  fields: Partial<SubscriptionData>,
  now: Date,
): Promise<SubscriptionRecord> {
  return insertOne<SubscriptionRecord>(Subscription, { ...fields, createdAt: now, updatedAt: now });
}

function defaultCurrency(plan: PlanRecord): Currency {
  return plan.prices[0]?.currency ?? plan.payg?.rates[0]?.currency ?? 'NGN';
}

// ---------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------

type Decision =
  | { kind: 'repeat' }
  | { kind: 'refuse'; message: string }
  | {
      kind: 'apply';
      to: SubscriptionStatus;
      reason: string;
      set?: Partial<SubscriptionData>;
      unset?: (keyof SubscriptionData)[];
      pushRenewalRef?: string;
      /** false for bookkeeping that is not a status story (quota window roll). */
      record?: boolean;
    };

async function transition(
  subscriptionId: AccountIdInput,
  clock: Clock,
  name: string,
  decide: (current: SubscriptionRecord, now: Date) => Decision,
): Promise<TransitionResult> {
  const id = toObjectId(subscriptionId);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const current = await getSubscription(id);
    const now = clock.now();
    const decision = decide(current, now);
    if (decision.kind === 'repeat') return { subscription: current, changed: false };
    if (decision.kind === 'refuse') {
      throw new DomainError('CONFLICT', decision.message, {
        details: { subscriptionId: String(id), status: current.status, transition: name },
      });
    }
    const $set: Record<string, unknown> = { ...decision.set, status: decision.to, updatedAt: now };
    const $unset: Record<string, ''> = {};
    for (const field of decision.unset ?? []) $unset[field] = '';
    if (isLiveStatus(decision.to)) $set.liveAccountId = current.accountId;
    else $unset.liveAccountId = '';
    const $push: Record<string, unknown> = {};
    if (decision.record !== false) {
      $push.history = { from: current.status, to: decision.to, at: now, reason: decision.reason };
    }
    if (decision.pushRenewalRef !== undefined) $push.renewalPaymentRefs = decision.pushRenewalRef;
    const updated = await Subscription.findOneAndUpdate(
      { _id: id, status: current.status, revision: current.revision },
      {
        $set,
        $inc: { revision: 1 },
        ...(Object.keys($unset).length > 0 ? { $unset } : {}),
        ...(Object.keys($push).length > 0 ? { $push } : {}),
      },
      { returnDocument: 'after', timestamps: false },
    ).lean<SubscriptionRecord>();
    if (updated) return { subscription: updated, changed: true };
  }
  throw new DomainError(
    'CONFLICT',
    'The subscription is being changed by another request; try again.',
    {
      details: { subscriptionId: String(id), transition: name },
    },
  );
}

/**
 * Starts the next billing period, paid by `paymentRef`: from the end of the
 * current one (renewing early does not lose days; renewing a past-due
 * subscription keeps its anchor), at the plan's current price, with the quota
 * window containing now. One payment renews one period: repeating it is a
 * no-op. Refused for a subscription set to cancel, ended, or not recurring.
 */
export async function renewPeriod(
  subscriptionId: AccountIdInput,
  options: { paymentRef: string; clock: Clock },
): Promise<TransitionResult> {
  return renewFrom(subscriptionId, options, ['active', 'past_due'], 'renewPeriod');
}

/** A past-due subscription whose payment arrived: active again, with its next period. */
export async function recoverFromPastDue(
  subscriptionId: AccountIdInput,
  options: { paymentRef: string; clock: Clock },
): Promise<TransitionResult> {
  return renewFrom(subscriptionId, options, ['past_due'], 'recoverFromPastDue');
}

async function renewFrom(
  subscriptionId: AccountIdInput,
  options: { paymentRef: string; clock: Clock },
  from: readonly SubscriptionStatus[],
  name: string,
): Promise<TransitionResult> {
  const current = await getSubscription(subscriptionId);
  if (current.renewalPaymentRefs.includes(options.paymentRef)) {
    return { subscription: current, changed: false };
  }
  if (current.planKind !== 'recurring') {
    throw new DomainError('CONFLICT', `A ${current.planCode} subscription does not renew.`, {
      details: { subscriptionId: String(current._id), transition: name },
    });
  }
  // A downgrade scheduled for the period end takes effect with this renewal.
  const plan = await getPlan(current.scheduledPlanCode ?? current.planCode);
  const price = await priceForRenewal({ planCode: plan.code, currency: current.currency });
  return transition(subscriptionId, options.clock, name, (sub, now) => {
    if (sub.renewalPaymentRefs.includes(options.paymentRef)) return { kind: 'repeat' };
    if (!from.includes(sub.status)) {
      return {
        kind: 'refuse',
        message: `A ${sub.status.replace('_', ' ')} subscription cannot be renewed.`,
      };
    }
    if (sub.cancelAtPeriodEnd) {
      return {
        kind: 'refuse',
        message: 'This subscription is set to cancel; undo the cancellation first.',
      };
    }
    const oldEnd = sub.periodEnd;
    const oldAnchor = sub.billingAnchorAt ?? sub.periodStart;
    if (!oldEnd || !oldAnchor)
      return { kind: 'refuse', message: 'This subscription has no period to renew.' };
    const billingPeriod = plan.billingPeriod ?? sub.billingPeriod ?? { unit: 'month', count: 1 };
    // Keep the anchor while the period rule is unchanged; re-anchor at the old end if an admin changed it.
    const aligned = periodContaining(oldAnchor, billingPeriod, oldEnd);
    const anchor = aligned.start.getTime() === oldEnd.getTime() ? oldAnchor : oldEnd;
    const periodEnd = periodContaining(anchor, billingPeriod, oldEnd).end;
    const quotaPeriod = plan.quota?.period ?? sub.quotaPeriod;
    const window = currentQuotaWindow({ ...sub, quotaPeriod }, now);
    return {
      kind: 'apply',
      to: 'active',
      reason: `renewed by ${options.paymentRef}`,
      set: {
        periodStart: oldEnd,
        periodEnd,
        billingAnchorAt: anchor,
        billingPeriod: { unit: billingPeriod.unit, count: billingPeriod.count },
        priceMinor: price.priceMinor,
        planVersion: price.planVersion,
        planCode: plan.code,
        planKind: plan.kind,
        quotaPeriod,
        ...(window ? { quotaPeriodStart: window.start, quotaPeriodEnd: window.end } : {}),
      },
      unset: ['graceEndsAt', 'scheduledPlanCode'],
      pushRenewalRef: options.paymentRef,
    };
  });
}

/**
 * A plan change applied now (core/plan-change.ts): a running recurring
 * subscription moves to another recurring plan for the rest of its billing
 * period. The period and its anchor stay; the price becomes the new plan's
 * (what the next renewal charges), the quota window follows the new plan's
 * quota period from the same anchor (the counter itself is switched by
 * core/quota.ts switchQuotaWindow). Already on that plan: a repeat.
 */
export async function switchPlan(
  subscriptionId: AccountIdInput,
  options: { planCode: string; priceMinor: number; changeRef: string; clock: Clock },
): Promise<TransitionResult> {
  const plan = await getPlan(options.planCode);
  if (plan.kind !== 'recurring') {
    throw new DomainError(
      'UNSUPPORTED',
      `Switching to ${plan.name} in a running period is not supported.`,
    );
  }
  return transition(subscriptionId, options.clock, 'switchPlan', (sub, now) => {
    if (sub.planCode === plan.code) return { kind: 'repeat' };
    if (sub.status !== 'active' || sub.planKind !== 'recurring' || !sub.periodEnd) {
      return { kind: 'refuse', message: 'Only a running paid plan can be changed in its period.' };
    }
    const quotaPeriod = plan.quota?.period;
    const window = quotaPeriod ? currentQuotaWindow({ ...sub, quotaPeriod }, now) : null;
    return {
      kind: 'apply',
      to: 'active',
      reason: `plan changed to ${plan.code} (${options.changeRef})`,
      set: {
        planCode: plan.code,
        planVersion: plan.version,
        planKind: plan.kind,
        priceMinor: options.priceMinor,
        ...(quotaPeriod ? { quotaPeriod } : {}),
        ...(window ? { quotaPeriodStart: window.start, quotaPeriodEnd: window.end } : {}),
      },
      unset: ['scheduledPlanCode'],
    };
  });
}

/**
 * A downgrade confirmed for the end of the period: the subscription runs on
 * as it is, and its next renewal moves it to `planCode` at that plan's price
 * (to pay as you go: the renewal ends it and starts PAYG instead of charging,
 * core/payments/renewals.ts). The same schedule again is a repeat.
 */
export async function schedulePlanChange(
  subscriptionId: AccountIdInput,
  options: { planCode: string; changeRef: string; clock: Clock },
): Promise<TransitionResult> {
  const plan = await getPlan(options.planCode);
  if (plan.kind === 'trial') {
    throw new DomainError('UNSUPPORTED', 'The trial is for new customers; choose a paid plan.');
  }
  return transition(subscriptionId, options.clock, 'schedulePlanChange', (sub, now) => {
    if (sub.scheduledPlanCode === plan.code) return { kind: 'repeat' };
    if (sub.status !== 'active' || !sub.periodEnd || sub.periodEnd.getTime() <= now.getTime()) {
      return { kind: 'refuse', message: 'Only a running plan can be changed at its period end.' };
    }
    return {
      kind: 'apply',
      to: 'active',
      reason: `plan change to ${plan.code} at period end (${options.changeRef})`,
      set: { scheduledPlanCode: plan.code },
    };
  });
}

/**
 * The period ended and the renewal charge failed: `past_due` with access until
 * `graceEndsAt` = periodEnd + grace (the grace period is a business setting).
 * Refused before the period has ended and for a subscription set to cancel
 * (that one simply ends: `expire`).
 */
export async function markPastDue(
  subscriptionId: AccountIdInput,
  options: { clock: Clock; grace: Duration },
): Promise<TransitionResult> {
  const graceMs = durationMs(options.grace);
  return transition(subscriptionId, options.clock, 'markPastDue', (sub, now) => {
    if (sub.status === 'past_due') return { kind: 'repeat' };
    if (sub.status !== 'active' || sub.planKind !== 'recurring') {
      return { kind: 'refuse', message: `A ${describe(sub)} subscription cannot become past due.` };
    }
    if (sub.cancelAtPeriodEnd) {
      return {
        kind: 'refuse',
        message: 'A subscription set to cancel ends at its period end; it is not past due.',
      };
    }
    if (!sub.periodEnd || sub.periodEnd.getTime() > now.getTime()) {
      return { kind: 'refuse', message: 'The current period has not ended yet.' };
    }
    return {
      kind: 'apply',
      to: 'past_due',
      reason: 'renewal payment failed',
      set: { graceEndsAt: new Date(sub.periodEnd.getTime() + graceMs) },
    };
  });
}

/**
 * Cancels. `atPeriodEnd`: the subscription keeps running to `periodEnd` and
 * then ends as `cancelled` (via `expire`); when there is no time left in the
 * period (past due, pending, PAYG) it cancels now. Otherwise it ends now.
 */
export async function cancel(
  subscriptionId: AccountIdInput,
  options: { atPeriodEnd: boolean; clock: Clock; reason?: string },
): Promise<TransitionResult> {
  return transition(subscriptionId, options.clock, 'cancel', (sub, now) => {
    if (sub.status === 'cancelled') return { kind: 'repeat' };
    if (sub.status === 'expired')
      return { kind: 'refuse', message: 'This subscription has already ended.' };
    const hasTimeLeft =
      (sub.status === 'active' || sub.status === 'trialing') &&
      sub.periodEnd !== undefined &&
      sub.periodEnd.getTime() > now.getTime();
    if (options.atPeriodEnd && hasTimeLeft) {
      if (sub.cancelAtPeriodEnd) return { kind: 'repeat' };
      return {
        kind: 'apply',
        to: sub.status,
        reason: options.reason ?? 'cancel at period end requested',
        set: { cancelAtPeriodEnd: true },
      };
    }
    return {
      kind: 'apply',
      to: 'cancelled',
      reason: options.reason ?? 'cancelled',
      set: { endedAt: now },
    };
  });
}

/** Takes back a cancel-at-period-end while the period is still running. */
export async function undoCancel(
  subscriptionId: AccountIdInput,
  options: { clock: Clock },
): Promise<TransitionResult> {
  return transition(subscriptionId, options.clock, 'undoCancel', (sub, now) => {
    if (isLiveStatus(sub.status) && !sub.cancelAtPeriodEnd) return { kind: 'repeat' };
    if (!isLiveStatus(sub.status)) {
      return {
        kind: 'refuse',
        message: 'This subscription has already ended; start a new one instead.',
      };
    }
    if (!sub.periodEnd || sub.periodEnd.getTime() <= now.getTime()) {
      return { kind: 'refuse', message: 'The period has already ended.' };
    }
    return {
      kind: 'apply',
      to: sub.status,
      reason: 'cancellation withdrawn',
      set: { cancelAtPeriodEnd: false },
    };
  });
}

/**
 * Ends what has run out: an active subscription past its period end that was
 * set to cancel (→ cancelled), a past-due one past its grace (→ expired), a
 * checkout never paid (→ expired). Refused while time is left, for trials (use
 * `endTrial`) and PAYG (use `cancel`). Already ended is a no-op.
 */
export async function expire(
  subscriptionId: AccountIdInput,
  options: { clock: Clock },
): Promise<TransitionResult> {
  return transition(subscriptionId, options.clock, 'expire', (sub, now) => {
    const at = now.getTime();
    switch (sub.status) {
      case 'expired':
      case 'cancelled':
        return { kind: 'repeat' };
      case 'pending_payment':
        return { kind: 'apply', to: 'expired', reason: 'checkout not paid', set: { endedAt: now } };
      case 'trialing':
        return { kind: 'refuse', message: 'A trial ends through endTrial.' };
      case 'past_due':
        if (sub.graceEndsAt && sub.graceEndsAt.getTime() > at) {
          return { kind: 'refuse', message: 'The grace period has not ended yet.' };
        }
        return {
          kind: 'apply',
          to: 'expired',
          reason: 'grace period over, not paid',
          set: { endedAt: now },
        };
      case 'active':
        if (sub.planKind === 'payg' || !sub.periodEnd) {
          return { kind: 'refuse', message: 'Pay-as-you-go does not expire; cancel it instead.' };
        }
        if (sub.periodEnd.getTime() > at) {
          return { kind: 'refuse', message: 'The current period has not ended yet.' };
        }
        if (sub.cancelAtPeriodEnd) {
          return {
            kind: 'apply',
            to: 'cancelled',
            reason: 'cancelled at period end',
            set: { endedAt: now },
          };
        }
        return {
          kind: 'apply',
          to: 'expired',
          reason: 'period ended, not renewed',
          set: { endedAt: now },
        };
    }
  });
}

/**
 * Ends a running trial now, whatever the time: because it is over
 * (`trial_ended`, the default), because a paid plan was bought (`upgraded`),
 * or any reason the caller names. Ending an ended trial is a no-op.
 */
export async function endTrial(
  subscriptionId: AccountIdInput,
  options: { clock: Clock; reason?: string },
): Promise<TransitionResult> {
  return transition(subscriptionId, options.clock, 'endTrial', (sub, now) => {
    if (sub.planKind === 'trial' && (sub.status === 'expired' || sub.status === 'cancelled')) {
      return { kind: 'repeat' };
    }
    if (sub.status !== 'trialing') {
      return { kind: 'refuse', message: `A ${describe(sub)} subscription is not a running trial.` };
    }
    return {
      kind: 'apply',
      to: 'expired',
      reason: options.reason ?? 'trial_ended',
      set: { endedAt: now },
    };
  });
}

/**
 * Moves the stored quota window to the one containing now, once the stored one
 * is over (the quota reset job). Already current is a no-op.
 */
export async function rollQuotaWindow(
  subscriptionId: AccountIdInput,
  options: { clock: Clock },
): Promise<TransitionResult> {
  return transition(subscriptionId, options.clock, 'rollQuotaWindow', (sub, now) => {
    if (!isLiveStatus(sub.status) || sub.status === 'pending_payment') {
      return {
        kind: 'refuse',
        message: `A ${describe(sub)} subscription has no quota window to move.`,
      };
    }
    if (sub.quotaPeriodEnd && sub.quotaPeriodEnd.getTime() > now.getTime())
      return { kind: 'repeat' };
    const window = currentQuotaWindow(sub, now);
    if (
      !window ||
      (sub.quotaPeriodStart && window.start.getTime() === sub.quotaPeriodStart.getTime())
    ) {
      return { kind: 'repeat' };
    }
    return {
      kind: 'apply',
      to: sub.status,
      reason: 'quota window rolled',
      record: false,
      set: { quotaPeriodStart: window.start, quotaPeriodEnd: window.end },
    };
  });
}

/**
 * The locations the customer picked, for plans that let them choose (trial,
 * Starter). Codes are stored lower-case; checking that they exist is the
 * caller's (core/locations). Refused for plans that include every location.
 */
export async function chooseLocations(
  subscriptionId: AccountIdInput,
  options: { locations: readonly string[]; clock: Clock },
): Promise<TransitionResult> {
  const current = await getSubscription(subscriptionId);
  const plan = await getPlan(current.planCode);
  const codes = [...new Set(options.locations.map((code) => code.trim().toLowerCase()))];
  if (plan.locations.kind === 'all') {
    throw new DomainError('VALIDATION_FAILED', `The ${plan.name} plan includes every location.`, {
      details: { planCode: plan.code },
    });
  }
  if (codes.length === 0 || codes.length > plan.locations.max || codes.some((c) => c === '')) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `Choose ${plan.locations.max === 1 ? 'one location' : `1 to ${plan.locations.max} locations`} for the ${plan.name} plan.`,
      { details: { planCode: plan.code, max: plan.locations.max } },
    );
  }
  return transition(subscriptionId, options.clock, 'chooseLocations', (sub) => {
    if (!isLiveStatus(sub.status)) {
      return { kind: 'refuse', message: 'This subscription has ended.' };
    }
    if (
      sub.chosenLocations.length === codes.length &&
      sub.chosenLocations.every((c, i) => c === codes[i])
    ) {
      return { kind: 'repeat' };
    }
    return {
      kind: 'apply',
      to: sub.status,
      reason: `locations chosen: ${codes.join(', ')}`,
      record: false,
      set: { chosenLocations: codes },
    };
  });
}

// ---------------------------------------------------------------------------

export { liveSubscriptionStatuses };

function describe(sub: SubscriptionRecord): string {
  return `${sub.status.replace('_', ' ')} ${sub.planCode}`;
}

function toObjectId(id: AccountIdInput): Types.ObjectId {
  if (id instanceof Types.ObjectId) return id;
  if (!Types.ObjectId.isValid(id)) {
    throw new DomainError('VALIDATION_FAILED', `"${id}" is not a valid id.`, { details: { id } });
  }
  return new Types.ObjectId(id);
}

function swallowDuplicate(error: unknown): null {
  if (isDuplicateKeyError(error)) return null;
  throw error;
}
