/**
 * The daily clean-up (jobs/cleanup.ts): deletes what has served its purpose,
 * by the retention settings, and reports how much went.
 *
 *   webhook events   processed or ignored, received more than
 *                    `webhookRetentionDays` ago (failed and unfinished ones stay
 *                    for an operator; Paystack stops retrying within days)
 *   notifications    every slot sent or skipped, older than
 *                    `notificationRetentionDays`; with a failed slot, older than
 *                    `failedNotificationRetentionDays`; pending or sending: never
 *   verification codes  a TTL index removes them an hour after they expire; this
 *                    deletes the same ones, as a safety net for a server that has
 *                    not swept yet (it sweeps once a minute by real time)
 *   chat states      not touched: their TTL index (`expiresAt`) removes them
 *
 * Every step is one deleteMany with its own filter, so a run repeated or run by
 * two processes at once deletes each document once.
 */
import type { Clock } from '../lib/clock.js';
import { Notification, notificationChannels } from '../models/notification.js';
import { VERIFICATION_CODE_KEEP_SECONDS, VerificationCode } from '../models/verification-code.js';
import { WebhookEvent } from '../models/webhook-event.js';
import type { SettingsStore } from './settings.js';

const DAY_MS = 86_400_000;

export interface CleanupOptions {
  clock: Clock;
  settings: SettingsStore;
}

export interface CleanupReport {
  webhookEventsDeleted: number;
  /** Notifications delivered or skipped on every channel. */
  notificationsDeleted: number;
  /** Notifications with at least one failed slot (kept longer). */
  failedNotificationsDeleted: number;
  verificationCodesDeleted: number;
}

export async function runCleanup({ clock, settings }: CleanupOptions): Promise<CleanupReport> {
  const { webhookRetentionDays, notificationRetentionDays, failedNotificationRetentionDays } =
    await settings.get();
  const now = clock.now().getTime();
  const before = (days: number): Date => new Date(now - days * DAY_MS);

  const webhooks = await WebhookEvent.deleteMany({
    status: { $in: ['processed', 'ignored'] },
    receivedAt: { $lt: before(webhookRetentionDays) },
  });

  // A slot absent for a channel matches `$nin` too, so these read "no slot is ...".
  const noSlot = (statuses: string[]) =>
    notificationChannels.map((channel) => ({
      [`deliveries.${channel}.status`]: { $nin: statuses },
    }));
  const settled = await Notification.deleteMany({
    createdAt: { $lt: before(notificationRetentionDays) },
    $and: noSlot(['pending', 'sending', 'failed']),
  });
  const failed = await Notification.deleteMany({
    createdAt: { $lt: before(failedNotificationRetentionDays) },
    $and: noSlot(['pending', 'sending']),
    $or: notificationChannels.map((channel) => ({ [`deliveries.${channel}.status`]: 'failed' })),
  });

  const codes = await VerificationCode.deleteMany({
    expiresAt: { $lt: new Date(now - VERIFICATION_CODE_KEEP_SECONDS * 1000) },
  });

  return {
    webhookEventsDeleted: webhooks.deletedCount,
    notificationsDeleted: settled.deletedCount,
    failedNotificationsDeleted: failed.deletedCount,
    verificationCodesDeleted: codes.deletedCount,
  };
}
