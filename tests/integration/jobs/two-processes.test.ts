/**
 * Two jobs processes on one database, as a deploy with two replicas runs
 * them: the same scheduled jobs registered by both, every run of a job made
 * by one of them (Agenda's lock), and the customer told once. Real Agenda,
 * real time with short intervals; the test waits for Agenda's events.
 */
import { describe, expect, it } from '@jest/globals';
import { createJobsRole, type JobsRole } from '../../../jobs/index.js';
import { registerReminderJobs, reminderJobNames } from '../../../jobs/reminders.js';
import { createSettingsStore } from '../../../core/settings.js';
import { seedPlans } from '../../../core/plans.js';
import { activateFromPayment } from '../../../core/subscriptions.js';
import { TestClock } from '../../../lib/clock.js';
import { createLogger } from '../../../lib/logger.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { useTestDatabase } from '../../support/database.js';

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });
const DAY = 86_400_000;

describe('two jobs processes', () => {
  it('runs each job once per run between them, and the customer hears once', async () => {
    // Near real time: the outbox has a TTL index swept by real time.
    const clock = new TestClock(new Date(Math.ceil(Date.now() / 60_000) * 60_000));
    await seedPlans(clock);
    const account = await Account.create({
      email: 'twice@example.com',
      emailVerifiedAt: clock.now(),
    });
    const sub = await activateFromPayment({
      accountId: String(account._id),
      planCode: 'personal',
      paymentRef: 'ref-two-processes',
      clock,
    });
    // Two days before the period ends: the renewal reminder is due.
    clock.set(new Date((sub.periodEnd as Date).getTime() - 2 * DAY));
    const settings = createSettingsStore({ clock, refreshMs: 0 });

    // Every completed run: which job instance, in which process.
    const runs: { id: string; worker: string }[] = [];
    const requested = new Set<string>();
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const roles: JobsRole[] = ['worker-a', 'worker-b'].map((workerName) => {
      const role = createJobsRole({
        db: database.db,
        logger,
        workerName,
        processEveryMs: 50,
        lockLifetimeMs: 5_000,
        register: (agenda) => registerReminderJobs(agenda, { clock, settings, logger }),
      });
      role.agenda.on(
        `complete:${reminderJobNames.renewalDue}`,
        (job: { attrs: { _id?: unknown } }) => {
          runs.push({ id: String(job.attrs._id), worker: workerName });
          if (requested.size === 6 && [...requested].every((id) => runs.some((r) => r.id === id))) {
            allDone();
          }
        },
      );
      return role;
    });
    try {
      await Promise.all(roles.map((role) => role.start()));
      // Both processes ask for a run, three times each: six runs wanted.
      for (let i = 0; i < 3; i++) {
        for (const role of roles) {
          const job = await role.agenda.now(reminderJobNames.renewalDue);
          requested.add(String(job.attrs._id));
        }
      }
      await done;
    } finally {
      await Promise.all(roles.map((role) => role.stop()));
    }
    // Each requested run happened exactly once, in one process or the other.
    for (const id of requested) expect(runs.filter((r) => r.id === id)).toHaveLength(1);
    // Six runs of the reminder pass, one reminder for the customer.
    expect(
      await Notification.countDocuments({ accountId: account._id, event: 'renewal_due' }),
    ).toBe(1);
  });
});
