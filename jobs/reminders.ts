/**
 * The reminders the business sends on its own (core/reminders.ts), each pass
 * every hour: renewals coming up, trials ending, and last week's summary (sent
 * in the first hours of Monday UTC, the other hours find it written already).
 * Each notice has its dedup key, so a pass repeated adds nothing.
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import {
  sendRenewalReminders,
  sendTrialEndingWarnings,
  sendWeeklySummaries,
  type ReminderReport,
} from '../core/reminders.js';
import type { SettingsStore } from '../core/settings.js';

export const reminderJobNames = {
  renewalDue: 'reminders.renewal-due',
  trialEnding: 'reminders.trial-ending',
  weeklySummary: 'reminders.weekly-summary',
} as const;

export interface ReminderJobsOptions {
  clock: Clock;
  settings: SettingsStore;
  logger: Logger;
}

export async function registerReminderJobs(
  agenda: Agenda,
  { clock, settings, logger }: ReminderJobsOptions,
): Promise<void> {
  const passes = [
    [reminderJobNames.renewalDue, sendRenewalReminders],
    [reminderJobNames.trialEnding, sendTrialEndingWarnings],
    [reminderJobNames.weeklySummary, sendWeeklySummaries],
  ] as const;
  for (const [name, pass] of passes) {
    const log = logger.child({ job: name });
    agenda.define(name, async () => {
      const report: ReminderReport = await pass({ clock, settings, logger: log });
      if (report.sent > 0 || report.failed > 0) log.info(report, 'reminders.sent');
    });
    await agenda.every('1 hour', name);
  }
}
