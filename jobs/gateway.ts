/**
 * The gateway's duties that must run even when no gateway is well: bytes leased
 * by a gateway process that died (or lost the database) go back to the
 * customer's quota once its lease has not been renewed for two minutes, far
 * above the gateways' 15-second heartbeat (proxy/leases.ts); and each PAYG
 * hour the gateways charged is closed five minutes after it ends (unused
 * per-GB data back to the wallet, the hour's statement written: core/payg.ts).
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { closePaygHours } from '../core/payg.js';
import { reclaimStaleLeases } from '../core/quota.js';

export const gatewayJobNames = {
  reclaimLeases: 'gateway.reclaim-stale-leases',
  closePaygHours: 'payg.close-hours',
} as const;

/** A lease not renewed for this long belongs to a gateway that is gone. */
export const STALE_LEASE_MS = 120_000;

export async function registerGatewayJobs(
  agenda: Agenda,
  { clock, logger }: { clock: Clock; logger: Logger },
): Promise<void> {
  agenda.define(gatewayJobNames.reclaimLeases, async () => {
    const reclaimed = await reclaimStaleLeases(clock.now(), STALE_LEASE_MS);
    if (reclaimed.length > 0) logger.warn({ leases: reclaimed.length }, 'gateway.leases_reclaimed');
  });
  agenda.define(gatewayJobNames.closePaygHours, async () => {
    const report = await closePaygHours({ clock });
    if (report.closed > 0 || report.waiting > 0) logger.info(report, 'payg.hours_closed');
  });
  await agenda.every('1 minute', gatewayJobNames.reclaimLeases);
  await agenda.every('5 minutes', gatewayJobNames.closePaygHours);
}
