/**
 * The daily clean-up deletes by the retention settings and keeps everything
 * younger, unfinished, or failed (for longer). The business clock runs near
 * real time: the test database sweeps TTL indexes (verification codes) by
 * real time, so codes written far from it would vanish on their own.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import { runCleanup } from '../../../core/cleanup.js';
import { notify } from '../../../core/notifications.js';
import { createSettingsStore } from '../../../core/settings.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { VerificationCode } from '../../../models/verification-code.js';
import { WebhookEvent, type WebhookEventStatus } from '../../../models/webhook-event.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

describe('cleanup', () => {
  it('deletes old processed webhooks and old delivered notifications, keeping recent, unfinished and failed ones', async () => {
    const clock = new TestClock(new Date(Math.ceil(Date.now() / 60_000) * 60_000));
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    const now = clock.now().getTime();
    const daysAgo = (days: number) => new Date(now - days * DAY_MS);

    // Webhooks: retention 90 days (the default) for processed and ignored ones.
    const webhook = (key: string, status: WebhookEventStatus, receivedDaysAgo: number) =>
      WebhookEvent.create({
        provider: 'paystack',
        eventKey: key,
        event: 'charge.success',
        payload: { data: { reference: key } },
        status,
        receivedAt: daysAgo(receivedDaysAgo),
        nextAttemptAt: daysAgo(receivedDaysAgo),
      });
    await webhook('old-processed', 'processed', 91);
    await webhook('old-ignored', 'ignored', 120);
    await webhook('recent-processed', 'processed', 89);
    await webhook('old-failed', 'failed', 200);

    // Notifications: 90 days when every slot is settled, 365 with a failed slot.
    const account = await Account.create({ email: 'cleanup@example.com' });
    const notice = async (period: string, status: string, createdDaysAgo: number) => {
      const { item } = await notify(
        { accountId: account._id, event: 'wallet_low', period },
        { clock },
      );
      // Written just now; aged here as if written `createdDaysAgo` days ago.
      await Notification.collection.updateOne(
        { dedupKey: item.dedupKey },
        { $set: { createdAt: daysAgo(createdDaysAgo), 'deliveries.email.status': status } },
      );
    };
    await notice('old-sent', 'sent', 91);
    await notice('old-skipped', 'skipped', 100);
    await notice('recent-sent', 'sent', 30);
    await notice('old-pending', 'pending', 400);
    await notice('old-failed', 'failed', 200);
    await notice('ancient-failed', 'failed', 366);

    // Verification codes: one expired more than an hour ago by the business clock
    // (later than now by real time, so the TTL sweep leaves it to us), one still good.
    const code = async (purpose: 'email' | 'link', expiresAt: Date) => {
      const owner = await Account.create({});
      await VerificationCode.create({
        purpose,
        accountId: owner._id,
        codeHash: randomBytes(32).toString('hex'),
        salt: randomBytes(16).toString('hex'),
        issuedAt: clock.now(),
        expiresAt,
      });
    };
    clock.advanceBy({ hours: 3 });
    await code('email', new Date(now + HOUR_MS));
    await code('link', new Date(now + 4 * HOUR_MS));
    // Moving 3 hours changes no day count above: 91-day-old items stay over 90, 89 stays under.

    const report = await runCleanup({ clock, settings });
    expect(report).toEqual({
      webhookEventsDeleted: 2,
      notificationsDeleted: 2,
      failedNotificationsDeleted: 1,
      verificationCodesDeleted: 1,
    });
    const keys = (await WebhookEvent.find({}).lean()).map((e) => e.eventKey).sort();
    expect(keys).toEqual(['old-failed', 'recent-processed']);
    const periods = (await Notification.find({ accountId: account._id }).lean())
      .map((n) => n.period)
      .sort();
    expect(periods).toEqual(['old-failed', 'old-pending', 'recent-sent']);
    expect((await VerificationCode.find({}).lean()).map((c) => c.purpose)).toEqual(['link']);

    // Run again: nothing more to delete.
    expect(await runCleanup({ clock, settings })).toEqual({
      webhookEventsDeleted: 0,
      notificationsDeleted: 0,
      failedNotificationsDeleted: 0,
      verificationCodesDeleted: 0,
    });
  });

  it('follows the retention settings the admins change', async () => {
    const clock = new TestClock(new Date(Math.ceil(Date.now() / 60_000) * 60_000));
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    await WebhookEvent.deleteMany({});
    await WebhookEvent.create({
      provider: 'paystack',
      eventKey: 'ten-days',
      event: 'charge.success',
      payload: {},
      status: 'processed',
      receivedAt: new Date(clock.now().getTime() - 10 * DAY_MS),
      nextAttemptAt: clock.now(),
    });
    expect((await runCleanup({ clock, settings })).webhookEventsDeleted).toBe(0);

    await settings.update({ webhookRetentionDays: 7 }, { actor: 'test' });
    expect((await runCleanup({ clock, settings })).webhookEventsDeleted).toBe(1);
    await expect(
      settings.update({ notificationRetentionDays: 1 }, { actor: 'test' }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'notificationRetentionDays' },
    });
  });
});
