/**
 * Once a day, what has served its purpose is deleted by the retention
 * settings (core/cleanup.ts): old processed webhook events, old delivered
 * notifications, expired verification codes the TTL sweep has not reached.
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { runCleanup } from '../core/cleanup.js';
import type { SettingsStore } from '../core/settings.js';

export const cleanupJobNames = {
  daily: 'cleanup.daily',
} as const;

export interface CleanupJobsOptions {
  clock: Clock;
  settings: SettingsStore;
  logger: Logger;
}

export async function registerCleanupJobs(
  agenda: Agenda,
  { clock, settings, logger }: CleanupJobsOptions,
): Promise<void> {
  const log = logger.child({ job: cleanupJobNames.daily });
  agenda.define(cleanupJobNames.daily, async () => {
    const report = await runCleanup({ clock, settings });
    log.info(report, 'cleanup.done');
  });
  await agenda.every('1 day', cleanupJobNames.daily);
}
