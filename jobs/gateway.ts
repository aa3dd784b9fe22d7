/**
 * The gateway's duty that must run even when no gateway is well: bytes leased
 * by a gateway process that died (or lost the database) go back to the
 * customer's quota once its lease has not been renewed for two minutes, far
 * above the gateways' 15-second heartbeat (proxy/leases.ts).
 */
import type { Agenda } from 'agenda';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { reclaimStaleLeases } from '../core/quota.js';

export const gatewayJobNames = {
  reclaimLeases: 'gateway.reclaim-stale-leases',
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
  await agenda.every('1 minute', gatewayJobNames.reclaimLeases);
}
