/**
 * Usage alerts (core/usage-alerts.ts): every 10 minutes, the threshold sweep
 * (usage_50 .. usage_100, wallet_low) and then the forecasts (usage_forecast,
 * wallet_forecast). The gateway raises threshold alerts as it books usage;
 * this pass catches what it missed. Every alert is deduplicated by the outbox,
 * so a rerun (or two jobs processes) sends nothing twice.
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { createSettingsStore, type SettingsStore } from '../core/settings.js';
import { sweepUsageAlerts, sweepUsageForecasts } from '../core/usage-alerts.js';

export const usageJobNames = {
  alerts: 'usage.alerts',
} as const;

export interface UsageJobsOptions {
  clock: Clock;
  logger: Logger;
  /** Thresholds and the wallet-low level; default a store on the default connection. */
  settings?: Pick<SettingsStore, 'get'>;
}

/** One run of the job: what the Agenda handler does, callable from tests with a TestClock. */
export async function runUsageAlerts({ clock, logger, settings }: UsageJobsOptions): Promise<void> {
  const options = { clock, settings, logger };
  const sweep = await sweepUsageAlerts(options);
  const forecasts = await sweepUsageForecasts(options);
  if (
    sweep.usageAlerts +
      sweep.walletLowAlerts +
      forecasts.usageForecasts +
      forecasts.walletForecasts >
    0
  ) {
    logger.info({ ...sweep, ...forecasts }, 'usage.alerts_sent');
  }
}

export async function registerUsageJobs(agenda: Agenda, options: UsageJobsOptions): Promise<void> {
  const settings = options.settings ?? createSettingsStore({ clock: options.clock });
  const logger = options.logger.child({ job: usageJobNames.alerts });
  agenda.define(usageJobNames.alerts, () => runUsageAlerts({ ...options, settings, logger }));
  await agenda.every('10 minutes', usageJobNames.alerts);
}
