/**
 * Broadcasts: the count an admin confirms comes first and matches what is
 * sent; one outbox item per customer of the segment (suspended and deleted
 * accounts left out, a customer who muted broadcasts skipped); a repeated
 * request sends nothing twice; and one admin can broadcast once in ten
 * minutes, the refusal on record.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  BROADCAST_LIMITS,
  countBroadcast,
  parseSegment,
  sendBroadcast,
} from '../../../core/admin/index.js';
import { setPreferences } from '../../../core/notifications.js';
import {
  cancel,
  getLiveSubscription,
  markPastDue,
  startPayg,
} from '../../../core/subscriptions.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { useTestDatabase } from '../../support/database.js';
import { lastAudit, linkChat, useAdminHarness, type Customer } from './harness.js';

useTestDatabase();
const h = useAdminHarness();
const clock = h.payments.clock;

let admin = '';
const customers: Record<string, Customer> = {};

async function itemsOf(broadcastId: string) {
  return Notification.find({ event: 'broadcast', period: broadcastId }).lean();
}

beforeAll(async () => {
  admin = await h.admin();
  let n = 0;
  const make = async (name: string, planCode?: string) => {
    customers[name] = await h.customer(planCode ? { planCode } : {});
    n += 1;
    await linkChat(customers[name].accountId, 'telegram', String(900_000 + n));
  };
  await make('starter1', 'starter');
  await make('starter2', 'starter');
  await make('personal', 'personal');
  await make('noPlan');
  await make('payg');
  await startPayg({ accountId: customers.payg?.accountId ?? '', clock });
  await make('suspended', 'starter');
  await Account.updateOne(
    { _id: customers.suspended?.accountId },
    { $set: { status: 'suspended' } },
  );
  await make('ended', 'starter');
  const ended = await getLiveSubscription(customers.ended?.accountId ?? '');
  if (ended) await cancel(ended._id, { clock, atPeriodEnd: false });
  await make('muted', 'personal');
  await setPreferences(customers.muted?.accountId ?? '', { mutedEvents: ['broadcast'] });
  // A chat that never signed up is not a customer to write to.
  await Account.create({});
});

describe('a broadcast', () => {
  it('counts the segment first, then queues one item per customer in it', async () => {
    const ctx = h.ctx(admin);
    expect(await countBroadcast(ctx, await parseSegment('plan:STARTER'))).toEqual({
      segment: 'plan:starter',
      recipients: 2,
    });
    expect((await countBroadcast(ctx, 'all')).recipients).toBe(7);
    expect((await countBroadcast(ctx, 'payg')).recipients).toBe(1);
    expect((await countBroadcast(ctx, 'past_due')).recipients).toBe(0);
    expect(await lastAudit(admin, 'broadcast.counted')).toMatchObject({
      target: { kind: 'segment', id: 'past_due' },
      details: { recipients: 0 },
    });
    await expect(parseSegment('plan:gold')).rejects.toMatchObject({ code: 'PLAN_NOT_FOUND' });
    await expect(parseSegment('everyone')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });

    const outcome = await sendBroadcast(ctx, {
      segment: 'plan:starter',
      text: 'Maintenance tonight 01:00-02:00 UTC.',
      requestId: 'b-1',
    });
    expect(outcome).toEqual({ broadcastId: 'b-1', recipients: 2, queued: 2 });
    const items = await itemsOf('b-1');
    expect(items.map((i) => String(i.accountId)).sort()).toEqual(
      [customers.starter1?.accountId, customers.starter2?.accountId].sort(),
    );
    expect(items[0]?.data).toMatchObject({ text: 'Maintenance tonight 01:00-02:00 UTC.' });
    expect(items[0]?.deliveries?.telegram?.status).toBe('pending');
    expect(await lastAudit(admin, 'broadcast.sent')).toMatchObject({
      channel: 'telegram',
      target: { kind: 'broadcast', id: 'b-1' },
      details: {
        segment: 'plan:starter',
        recipients: 2,
        text: 'Maintenance tonight 01:00-02:00 UTC.',
      },
    });

    // The same request again (a double tap, a retry after a crash): nothing new, not rate-limited.
    expect(
      await sendBroadcast(ctx, { segment: 'plan:starter', text: 'x', requestId: 'b-1' }),
    ).toMatchObject({
      queued: 0,
    });
    expect(await itemsOf('b-1')).toHaveLength(2);
  });

  it('is limited to one per admin every ten minutes, the refusal recorded', async () => {
    const other = await h.admin();
    const ctx = h.ctx(other, 'whatsapp');
    await sendBroadcast(ctx, { segment: 'all', text: 'New locations!', requestId: 'b-2' });
    const items = await itemsOf('b-2');
    expect(items).toHaveLength(7);
    const muted = items.find((i) => String(i.accountId) === customers.muted?.accountId);
    expect(muted?.deliveries?.telegram?.status).toBe('skipped');
    expect(items.some((i) => String(i.accountId) === customers.suspended?.accountId)).toBe(false);

    await expect(
      sendBroadcast(ctx, { segment: 'all', text: 'And another thing', requestId: 'b-3' }),
    ).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await itemsOf('b-3')).toHaveLength(0);
    expect(await lastAudit(other, 'broadcast.rate_limited')).toMatchObject({
      channel: 'whatsapp',
      target: { id: 'b-3' },
    });

    clock.advance(BROADCAST_LIMITS[0]?.windowMs ?? 0);
    expect(
      (await sendBroadcast(ctx, { segment: 'payg', text: 'PAYG news', requestId: 'b-4' })).queued,
    ).toBe(1);
  });

  it('reaches past-due customers as a segment of their own', async () => {
    const lapsing = await h.customer({ planCode: 'starter' });
    const sub = await getLiveSubscription(lapsing.accountId);
    if (!sub?.periodEnd) throw new Error('no period');
    clock.set(sub.periodEnd.getTime() + 1_000);
    await markPastDue(sub._id, { clock, grace: { days: 3 } });
    const ctx = h.ctx(await h.admin());
    expect(await countBroadcast(ctx, 'past_due')).toEqual({ segment: 'past_due', recipients: 1 });
    await expect(
      sendBroadcast(ctx, { segment: 'past_due', text: ' ', requestId: 'b-5' }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });
});
