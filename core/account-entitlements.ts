/**
 * One account's entitlements as the bots and the API show them ("which
 * locations and protocols may I use, how much is left"): the facts the
 * gateway reads (core/proxy-credentials.ts loadAccessFacts), asked of the one
 * entitlements function. The gateway itself adds what its own leases hold.
 */
import { computeEntitlements, type Entitlements } from './entitlements.js';
import { listLocations } from './locations.js';
import { getPlan } from './plans.js';
import { loadAccessFacts } from './proxy-credentials.js';

export interface EntitlementPolicy {
  httpsOnlyPorts: readonly number[];
  blockedPorts: readonly number[];
}

export async function entitlementsOf(
  accountId: string,
  options: { now: Date; policy: EntitlementPolicy },
): Promise<Entitlements> {
  const { now } = options;
  const [facts, locations] = await Promise.all([
    loadAccessFacts([accountId], now).then((all) => all.get(accountId)),
    listLocations(),
  ]);
  const subscription = facts?.subscription ?? null;
  const plan = subscription ? await getPlan(subscription.planCode).catch(() => null) : null;
  const quota = facts?.quota;
  const seat = facts?.seat;
  const counter = seat?.capCounter;
  return computeEntitlements({
    plan,
    subscription: plan ? subscription : null,
    account: { status: facts?.accountStatus ?? 'deleted' },
    wallet: facts?.wallet ?? null,
    quota: quota
      ? {
          // Bytes a gateway holds in a lease are as good as used (the gateway counts them so).
          usedBytes: Math.max(0, quota.limitBytes - quota.availableBytes),
          limitBytes: quota.limitBytes,
          periodStart: quota.periodStart,
          periodEnd: quota.periodEnd,
        }
      : null,
    locations: locations.map((location) => location.code),
    now,
    policy: options.policy,
    seat: seat
      ? {
          capBytes: seat.capBytes,
          usedBytes:
            seat.capBytes === null || !counter
              ? 0
              : Math.max(0, seat.capBytes - counter.availableBytes),
          maxConnections: seat.maxConnections,
        }
      : null,
  });
}
