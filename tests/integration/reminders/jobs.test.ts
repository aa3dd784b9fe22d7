/**
 * The reminder and clean-up jobs run under their names on a real Agenda: a
 * renewal coming up gets its reminder, an old processed webhook is deleted.
 */
import { describe, expect, it } from '@jest/globals';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { WebhookEvent } from '../../../models/webhook-event.js';
import { seedPlans } from '../../../core/plans.js';
import { createSettingsStore } from '../../../core/settings.js';
import { activateFromPayment } from '../../../core/subscriptions.js';
import { createJobsRole } from '../../../jobs/index.js';
import { cleanupJobNames, registerCleanupJobs } from '../../../jobs/cleanup.js';
import { registerReminderJobs, reminderJobNames } from '../../../jobs/reminders.js';
import { TestClock } from '../../../lib/clock.js';
import { createLogger } from '../../../lib/logger.js';
import { useTestDatabase } from '../../support/database.js';

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });
const DAY_MS = 86_400_000;

describe('reminder and cleanup jobs', () => {
  it('run by name on Agenda: the renewal reminder goes out and old webhooks are deleted', async () => {
    const clock = new TestClock(new Date(Math.ceil(Date.now() / 60_000) * 60_000));
    const settings = createSettingsStore({ clock, refreshMs: 0 });
    await seedPlans(clock);
    const account = await Account.create({ email: 'jobs@example.com' });
    const sub = await activateFromPayment({
      accountId: account._id,
      planCode: 'starter',
      paymentRef: 'pay-jobs',
      clock,
    });
    await WebhookEvent.create({
      provider: 'paystack',
      eventKey: 'old',
      event: 'charge.success',
      payload: {},
      status: 'processed',
      receivedAt: clock.now(),
      nextAttemptAt: clock.now(),
    });
    clock.set(new Date((sub.periodEnd ?? new Date(NaN)).getTime() - 2 * DAY_MS));
    // A month on: the webhook is still younger than 90 days; a shorter retention removes it.
    await settings.update({ webhookRetentionDays: 7 }, { actor: 'test' });

    const role = createJobsRole({
      db: database.db,
      logger,
      workerName: 'test-worker-reminders',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
      register: async (agenda) => {
        await registerReminderJobs(agenda, { clock, settings, logger });
        await registerCleanupJobs(agenda, { clock, settings, logger });
      },
    });
    const names = [...Object.values(reminderJobNames), ...Object.values(cleanupJobNames)];
    const completed = names.map(
      (name) =>
        new Promise<void>((resolve) => role.agenda.once(`complete:${name}`, () => resolve())),
    );
    await role.start();
    try {
      for (const name of names) await role.agenda.now(name);
      await Promise.all(completed);
    } finally {
      await role.stop();
    }

    const reminders = await Notification.find({
      accountId: account._id,
      event: 'renewal_due',
    }).lean();
    expect(reminders).toHaveLength(1);
    expect(reminders[0]?.data).toMatchObject({ planCode: 'starter', amountMinor: 350_000 });
    expect(await WebhookEvent.countDocuments({})).toBe(0);
  });
});
