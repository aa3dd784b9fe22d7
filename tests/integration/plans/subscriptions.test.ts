import { beforeAll, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { TestClock } from '../../../lib/clock.js';
import { seedPlans, updatePlan } from '../../../core/plans.js';
import {
  activateFromPayment,
  cancel,
  chooseLocations,
  createPendingSubscription,
  endTrial,
  expire,
  getCurrentSubscription,
  getLiveSubscription,
  listDueForExpiry,
  listDueForRenewal,
  listDueTrials,
  markPastDue,
  recoverFromPastDue,
  renewPeriod,
  rollQuotaWindow,
  startPayg,
  undoCancel,
} from '../../../core/subscriptions.js';
import { Subscription, type SubscriptionRecord } from '../../../models/subscription.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const START = '2025-01-31T09:00:00.000Z';
const GRACE = { days: 3 };
let refs = 0;
const newRef = (): string => `ref_${(refs += 1)}`;
const newAccount = (): string => new Types.ObjectId().toHexString();
const iso = (date: Date | undefined): string | undefined => date?.toISOString();

beforeAll(async () => {
  await seedPlans(new TestClock(START));
});

async function starter(clock: TestClock, accountId = newAccount()): Promise<SubscriptionRecord> {
  return activateFromPayment({ accountId, planCode: 'starter', paymentRef: newRef(), clock });
}

describe('activateFromPayment', () => {
  it('starts a trial that runs 3 days with the trial as its quota window', async () => {
    const clock = new TestClock(START);
    const sub = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    expect(sub).toMatchObject({
      status: 'trialing',
      planCode: 'trial',
      planKind: 'trial',
      priceMinor: 0,
      currency: 'NGN',
    });
    expect(iso(sub.trialEndsAt)).toBe('2025-02-03T09:00:00.000Z');
    expect([iso(sub.quotaPeriodStart), iso(sub.quotaPeriodEnd)]).toEqual([
      START,
      '2025-02-03T09:00:00.000Z',
    ]);
    expect(sub.history).toEqual([
      expect.objectContaining({ from: null, to: 'trialing', at: new Date(START) }),
    ]);
  });

  it('starts Starter active for a month (Jan 31 → Feb 28) with a weekly quota window and the price paid', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    expect(sub).toMatchObject({
      status: 'active',
      priceMinor: 350_000,
      currency: 'NGN',
      planVersion: 1,
    });
    expect([iso(sub.periodStart), iso(sub.periodEnd)]).toEqual([START, '2025-02-28T09:00:00.000Z']);
    expect([iso(sub.quotaPeriodStart), iso(sub.quotaPeriodEnd)]).toEqual([
      START,
      '2025-02-07T09:00:00.000Z',
    ]);
    expect(String(sub.liveAccountId)).toBe(String(sub.accountId));
  });

  it('starts PAYG open-ended, with no quota', async () => {
    const clock = new TestClock(START);
    const sub = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'payg',
      paymentRef: newRef(),
      clock,
    });
    expect(sub).toMatchObject({ status: 'active', planKind: 'payg', priceMinor: 0 });
    expect(sub.periodEnd).toBeUndefined();
    expect(sub.quotaPeriodEnd).toBeUndefined();
  });

  it('returns the same subscription when the same payment is fulfilled twice', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const paymentRef = newRef();
    const first = await activateFromPayment({ accountId, planCode: 'personal', paymentRef, clock });
    clock.advanceBy({ minutes: 5 });
    const second = await activateFromPayment({
      accountId,
      planCode: 'personal',
      paymentRef,
      clock,
    });
    expect(String(second._id)).toBe(String(first._id));
    expect(second.revision).toBe(first.revision);
    expect(await Subscription.countDocuments({ accountId: new Types.ObjectId(accountId) })).toBe(1);
  });

  it('creates one subscription when ten fulfilments of one payment race', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const paymentRef = newRef();
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        activateFromPayment({ accountId, planCode: 'starter', paymentRef, clock }),
      ),
    );
    expect(new Set(results.map((r) => String(r._id))).size).toBe(1);
    expect(await Subscription.countDocuments({ accountId: new Types.ObjectId(accountId) })).toBe(1);
  });

  it('lets only one of several different payments racing for one account start a subscription', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        activateFromPayment({ accountId, planCode: 'personal', paymentRef: newRef(), clock }),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes)
      if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'CONFLICT' });
    expect(await Subscription.countDocuments({ accountId: new Types.ObjectId(accountId) })).toBe(1);
  });

  it('refuses a payment reference already used by another account', async () => {
    const clock = new TestClock(START);
    const paymentRef = newRef();
    await activateFromPayment({ accountId: newAccount(), planCode: 'starter', paymentRef, clock });
    await expect(
      activateFromPayment({ accountId: newAccount(), planCode: 'starter', paymentRef, clock }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('refuses a second plan while one is active', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    await expect(
      activateFromPayment({
        accountId: sub.accountId,
        planCode: 'personal',
        paymentRef: newRef(),
        clock,
      }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { status: 'active', planCode: 'starter' },
    });
  });

  it('ends a running trial as upgraded when a paid plan is bought', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const trial = await activateFromPayment({
      accountId,
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    clock.advanceBy({ days: 1 });
    const paid = await activateFromPayment({
      accountId,
      planCode: 'personal',
      paymentRef: newRef(),
      clock,
    });
    expect(paid.status).toBe('active');
    const ended = await Subscription.findById(trial._id).lean<SubscriptionRecord>();
    expect(ended).toMatchObject({ status: 'expired', endedAt: clock.now() });
    expect(ended?.liveAccountId).toBeUndefined();
    expect(ended?.history.at(-1)).toMatchObject({
      from: 'trialing',
      to: 'expired',
      reason: 'upgraded',
    });
  });

  it('finishes the upgrade when re-run after dying between ending the trial and starting the plan', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const trial = await activateFromPayment({
      accountId,
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    const paymentRef = newRef();
    await endTrial(trial._id, { clock, reason: 'upgraded' }); // the first run got this far
    const paid = await activateFromPayment({ accountId, planCode: 'starter', paymentRef, clock });
    const again = await activateFromPayment({ accountId, planCode: 'starter', paymentRef, clock });
    expect(String(again._id)).toBe(String(paid._id));
    expect(await Subscription.countDocuments({ accountId: new Types.ObjectId(accountId) })).toBe(2);
  });

  it('turns a pending checkout into the paid subscription', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    const pending = await createPendingSubscription({ accountId, planCode: 'starter', clock });
    expect(pending.status).toBe('pending_payment');
    const changedMind = await createPendingSubscription({ accountId, planCode: 'personal', clock });
    expect(String(changedMind._id)).toBe(String(pending._id));
    expect(changedMind.planCode).toBe('personal');
    clock.advanceBy({ minutes: 3 });
    const paid = await activateFromPayment({
      accountId,
      planCode: 'personal',
      paymentRef: newRef(),
      clock,
    });
    expect(String(paid._id)).toBe(String(pending._id));
    expect(paid).toMatchObject({
      status: 'active',
      priceMinor: 1_500_000,
      activatedAt: clock.now(),
    });
    expect(paid.history.map((h) => [h.from, h.to])).toEqual([
      [null, 'pending_payment'],
      ['pending_payment', 'active'],
    ]);
  });

  it('answers PLAN_NOT_FOUND for an unknown plan', async () => {
    const clock = new TestClock(START);
    await expect(
      activateFromPayment({
        accountId: newAccount(),
        planCode: 'gold',
        paymentRef: newRef(),
        clock,
      }),
    ).rejects.toMatchObject({ code: 'PLAN_NOT_FOUND' });
  });
});

describe('one live subscription per account', () => {
  it('is kept by the database even for a writer that skips the core functions', async () => {
    const accountId = new Types.ObjectId();
    const doc = {
      accountId,
      liveAccountId: accountId,
      planCode: 'starter',
      planVersion: 1,
      planKind: 'recurring',
      priceMinor: 1,
      currency: 'NGN',
      status: 'active',
    } as const;
    await Subscription.create(doc);
    await expect(Subscription.create(doc)).rejects.toMatchObject({ code: 11000 });
    await Subscription.create({ ...doc, liveAccountId: undefined, status: 'expired' });
  });

  it('frees the slot when a subscription ends, so the account can buy again', async () => {
    const clock = new TestClock(START);
    const first = await starter(clock);
    await cancel(first._id, { atPeriodEnd: false, clock });
    const second = await activateFromPayment({
      accountId: first.accountId,
      planCode: 'personal',
      paymentRef: newRef(),
      clock,
    });
    expect(second.status).toBe('active');
    expect(String((await getLiveSubscription(first.accountId))?._id)).toBe(String(second._id));
  });
});

describe('renewPeriod', () => {
  it('continues from the period end, keeps the day of month across short months, and is a no-op when repeated', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    clock.set('2025-02-28T09:00:00.000Z');
    const ref = newRef();
    const first = await renewPeriod(sub._id, { paymentRef: ref, clock });
    expect(first.changed).toBe(true);
    expect([iso(first.subscription.periodStart), iso(first.subscription.periodEnd)]).toEqual([
      '2025-02-28T09:00:00.000Z',
      '2025-03-31T09:00:00.000Z',
    ]);
    const repeat = await renewPeriod(sub._id, { paymentRef: ref, clock });
    expect(repeat).toMatchObject({ changed: false });
    expect(repeat.subscription.periodEnd).toEqual(first.subscription.periodEnd);

    clock.set('2025-03-31T09:00:00.000Z');
    const next = await renewPeriod(sub._id, { paymentRef: newRef(), clock });
    expect(iso(next.subscription.periodEnd)).toBe('2025-04-30T09:00:00.000Z');
    expect(next.subscription.renewalPaymentRefs).toHaveLength(2);
  });

  it('keeps the price a customer bought at until renewal, then charges the current price', async () => {
    const clock = new TestClock(START);
    const sub = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'team',
      paymentRef: newRef(),
      clock,
    });
    const edited = await updatePlan(
      'team',
      { prices: [{ currency: 'NGN', amountMinor: 7_000_000 }] },
      { actor: 'admin:1', clock },
    );
    expect((await getCurrentSubscription(sub.accountId))?.priceMinor).toBe(6_000_000);
    clock.set(sub.periodEnd ?? START);
    const renewed = await renewPeriod(sub._id, { paymentRef: newRef(), clock });
    expect(renewed.subscription).toMatchObject({
      priceMinor: 7_000_000,
      planVersion: edited.version,
    });
  });

  it('gives a new weekly quota window rolling from activation, not from the renewal', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    clock.set('2025-02-28T10:00:00.000Z');
    const renewed = await renewPeriod(sub._id, { paymentRef: newRef(), clock });
    // Weekly windows from Jan 31 09:00: ..., Feb 28 09:00 – Mar 7 09:00.
    expect([
      iso(renewed.subscription.quotaPeriodStart),
      iso(renewed.subscription.quotaPeriodEnd),
    ]).toEqual(['2025-02-28T09:00:00.000Z', '2025-03-07T09:00:00.000Z']);
  });

  it.each([
    [
      'set to cancel at period end',
      async (s: SubscriptionRecord, c: TestClock) =>
        void (await cancel(s._id, { atPeriodEnd: true, clock: c })),
    ],
    [
      'cancelled',
      async (s: SubscriptionRecord, c: TestClock) =>
        void (await cancel(s._id, { atPeriodEnd: false, clock: c })),
    ],
  ])('refuses to renew a subscription that is %s', async (_what, prepare) => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    await prepare(sub, clock);
    await expect(renewPeriod(sub._id, { paymentRef: newRef(), clock })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('refuses to renew a trial or PAYG', async () => {
    const clock = new TestClock(START);
    const trial = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    const payg = await startPayg({ accountId: newAccount(), clock });
    for (const sub of [trial, payg]) {
      await expect(renewPeriod(sub._id, { paymentRef: newRef(), clock })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
    }
  });
});

describe('past due, recovery and expiry', () => {
  it('refuses past due before the period ends, then grants grace from the period end', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    await expect(markPastDue(sub._id, { clock, grace: GRACE })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    clock.set('2025-02-28T10:00:00.000Z');
    const due = await markPastDue(sub._id, { clock, grace: GRACE });
    expect(due).toMatchObject({ changed: true, subscription: { status: 'past_due' } });
    expect(iso(due.subscription.graceEndsAt)).toBe('2025-03-03T09:00:00.000Z');
    expect(await markPastDue(sub._id, { clock, grace: GRACE })).toMatchObject({ changed: false });
  });

  it('recovers a past-due subscription with its next period from the old end', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    clock.set('2025-02-28T10:00:00.000Z');
    await markPastDue(sub._id, { clock, grace: GRACE });
    clock.set('2025-03-02T00:00:00.000Z');
    const ref = newRef();
    const back = await recoverFromPastDue(sub._id, { paymentRef: ref, clock });
    expect(back.subscription.status).toBe('active');
    expect(back.subscription.graceEndsAt).toBeUndefined();
    expect([iso(back.subscription.periodStart), iso(back.subscription.periodEnd)]).toEqual([
      '2025-02-28T09:00:00.000Z',
      '2025-03-31T09:00:00.000Z',
    ]);
    expect(await recoverFromPastDue(sub._id, { paymentRef: ref, clock })).toMatchObject({
      changed: false,
    });
    await expect(
      recoverFromPastDue(sub._id, { paymentRef: newRef(), clock }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('expires a past-due subscription only once grace is over', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    clock.set('2025-02-28T10:00:00.000Z');
    await markPastDue(sub._id, { clock, grace: GRACE });
    await expect(expire(sub._id, { clock })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await listDueForExpiry(clock.now())).map((s) => String(s._id))).not.toContain(
      String(sub._id),
    );
    clock.set('2025-03-03T09:00:00.000Z');
    expect((await listDueForExpiry(clock.now())).map((s) => String(s._id))).toContain(
      String(sub._id),
    );
    const gone = await expire(sub._id, { clock });
    expect(gone.subscription).toMatchObject({ status: 'expired', endedAt: clock.now() });
    expect(gone.subscription.liveAccountId).toBeUndefined();
    expect(await expire(sub._id, { clock })).toMatchObject({ changed: false });
    await expect(
      recoverFromPastDue(sub._id, { paymentRef: newRef(), clock }),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('refuses to expire an active subscription with time left, a trial, or PAYG', async () => {
    const clock = new TestClock(START);
    const subs = [
      await starter(clock),
      await activateFromPayment({
        accountId: newAccount(),
        planCode: 'trial',
        paymentRef: newRef(),
        clock,
      }),
      await startPayg({ accountId: newAccount(), clock }),
    ];
    for (const sub of subs)
      await expect(expire(sub._id, { clock })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('expires a checkout that was never paid', async () => {
    const clock = new TestClock(START);
    const pending = await createPendingSubscription({
      accountId: newAccount(),
      planCode: 'starter',
      clock,
    });
    expect((await expire(pending._id, { clock })).subscription.status).toBe('expired');
  });

  it('lists the subscriptions due for renewal ahead of their end', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    const dueBy = (date: string) =>
      listDueForRenewal(new Date(date)).then((l) => l.map((s) => String(s._id)));
    expect(await dueBy('2025-02-27T09:00:00.000Z')).not.toContain(String(sub._id));
    expect(await dueBy('2025-02-28T09:00:00.000Z')).toContain(String(sub._id));
  });
});

describe('cancel and undoCancel', () => {
  it('keeps a subscription cancelled at period end running, lets the customer take it back, then ends it at the end', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    const cancelled = await cancel(sub._id, { atPeriodEnd: true, clock });
    expect(cancelled.subscription).toMatchObject({ status: 'active', cancelAtPeriodEnd: true });
    expect(await cancel(sub._id, { atPeriodEnd: true, clock })).toMatchObject({ changed: false });

    const undone = await undoCancel(sub._id, { clock });
    expect(undone.subscription).toMatchObject({ status: 'active', cancelAtPeriodEnd: false });
    expect(await undoCancel(sub._id, { clock })).toMatchObject({ changed: false });

    await cancel(sub._id, { atPeriodEnd: true, clock });
    clock.set(sub.periodEnd ?? START);
    await expect(undoCancel(sub._id, { clock })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(markPastDue(sub._id, { clock, grace: GRACE })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    const ended = await expire(sub._id, { clock });
    expect(ended.subscription).toMatchObject({ status: 'cancelled' });
    expect(ended.subscription.history.at(-1)).toMatchObject({ from: 'active', to: 'cancelled' });
  });

  it('cancels now on request, and refuses to undo it', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    const now = await cancel(sub._id, { atPeriodEnd: false, clock, reason: 'customer asked' });
    expect(now.subscription).toMatchObject({ status: 'cancelled', endedAt: clock.now() });
    expect(now.subscription.history.at(-1)).toMatchObject({ reason: 'customer asked' });
    expect(await cancel(sub._id, { atPeriodEnd: false, clock })).toMatchObject({ changed: false });
    await expect(undoCancel(sub._id, { clock })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('cancels PAYG and a past-due subscription now even when asked for the period end', async () => {
    const clock = new TestClock(START);
    const payg = await startPayg({ accountId: newAccount(), clock });
    expect((await cancel(payg._id, { atPeriodEnd: true, clock })).subscription.status).toBe(
      'cancelled',
    );
    const sub = await starter(clock);
    clock.set(sub.periodEnd ?? START);
    await markPastDue(sub._id, { clock, grace: GRACE });
    expect((await cancel(sub._id, { atPeriodEnd: true, clock })).subscription.status).toBe(
      'cancelled',
    );
  });

  it('refuses to cancel an expired subscription', async () => {
    const clock = new TestClock(START);
    const trial = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    await endTrial(trial._id, { clock });
    await expect(cancel(trial._id, { atPeriodEnd: false, clock })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });
});

describe('endTrial', () => {
  it('ends due trials found by listDueTrials, once', async () => {
    const clock = new TestClock('2030-01-01T00:00:00.000Z');
    const trial = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    expect((await listDueTrials(clock.now())).map((s) => String(s._id))).not.toContain(
      String(trial._id),
    );
    clock.advanceBy({ days: 3 });
    expect((await listDueTrials(clock.now())).map((s) => String(s._id))).toContain(
      String(trial._id),
    );
    const ended = await endTrial(trial._id, { clock });
    expect(ended).toMatchObject({ changed: true, subscription: { status: 'expired' } });
    expect(ended.subscription.history.at(-1)).toMatchObject({ reason: 'trial_ended' });
    expect(await endTrial(String(trial._id), { clock, reason: 'trial_ended' })).toMatchObject({
      changed: false,
    });
    expect((await listDueTrials(clock.now())).map((s) => String(s._id))).not.toContain(
      String(trial._id),
    );
  });

  it('refuses to end something that is not a trial', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    await expect(endTrial(sub._id, { clock })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('answers NOT_FOUND for a subscription that does not exist', async () => {
    const clock = new TestClock(START);
    await expect(endTrial(new Types.ObjectId(), { clock })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});

describe('quota windows and locations', () => {
  it('rolls the stored Starter window weekly from activation', async () => {
    const clock = new TestClock(START);
    const sub = await starter(clock);
    clock.set('2025-02-07T08:59:59.999Z');
    expect(await rollQuotaWindow(sub._id, { clock })).toMatchObject({ changed: false });
    clock.set('2025-02-15T00:00:00.000Z');
    const rolled = await rollQuotaWindow(sub._id, { clock });
    expect([
      iso(rolled.subscription.quotaPeriodStart),
      iso(rolled.subscription.quotaPeriodEnd),
    ]).toEqual(['2025-02-14T09:00:00.000Z', '2025-02-21T09:00:00.000Z']);
    expect(rolled.subscription.history).toHaveLength(1);
    expect(await rollQuotaWindow(sub._id, { clock })).toMatchObject({ changed: false });
  });

  it('stores the location a trial customer picks, and refuses more than the plan allows', async () => {
    const clock = new TestClock(START);
    const trial = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    const chosen = await chooseLocations(trial._id, { locations: [' NG '], clock });
    expect(chosen.subscription.chosenLocations).toEqual(['ng']);
    expect(await chooseLocations(trial._id, { locations: ['ng'], clock })).toMatchObject({
      changed: false,
    });
    await expect(
      chooseLocations(trial._id, { locations: ['ng', 'gb'], clock }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    const personal = await activateFromPayment({
      accountId: newAccount(),
      planCode: 'personal',
      paymentRef: newRef(),
      clock,
    });
    await expect(chooseLocations(personal._id, { locations: ['ng'], clock })).rejects.toMatchObject(
      {
        code: 'VALIDATION_FAILED',
      },
    );
  });
});

describe('getCurrentSubscription', () => {
  it('gives the live subscription, else the latest ended one, else null', async () => {
    const clock = new TestClock(START);
    const accountId = newAccount();
    expect(await getCurrentSubscription(accountId)).toBeNull();
    const trial = await activateFromPayment({
      accountId,
      planCode: 'trial',
      paymentRef: newRef(),
      clock,
    });
    expect(String((await getCurrentSubscription(accountId))?._id)).toBe(String(trial._id));
    clock.advanceBy({ days: 3 });
    await endTrial(trial._id, { clock });
    expect(await getCurrentSubscription(accountId)).toMatchObject({
      status: 'expired',
      planCode: 'trial',
    });
    clock.advanceBy({ days: 1 });
    const payg = await startPayg({ accountId, clock });
    expect(String((await getCurrentSubscription(accountId))?._id)).toBe(String(payg._id));
    expect(String((await startPayg({ accountId, clock }))._id)).toBe(String(payg._id));
  });
});
