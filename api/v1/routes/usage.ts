/**
 * /api/v1/me/usage and /me/entitlements: what the gateway recorded (quota
 * counter, hourly buckets, usage sessions, PAYG charges) and what the plan
 * allows now, from the same core readers as the bot's Usage screen
 * (bot/core/journeys/usage.ts) and the one entitlements function.
 */
import { z } from 'zod';
import { entitlementsOf } from '../../../core/account-entitlements.js';
import type { Entitlements } from '../../../core/entitlements.js';
import { paygCostSoFar } from '../../../core/payg.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { currentQuotaWindow, getCurrentSubscription } from '../../../core/subscriptions.js';
import {
  ALL_LOCATIONS,
  connectedSecondsSince,
  hourEnd,
  listUsageBuckets,
  listUsageSessions,
} from '../../../core/usage.js';
import { protocols } from '../../../models/plan.js';
import { jsonRoute, type AnyRoute, type ApiDeps } from '../route.js';
import { currency, refusal } from '../schemas.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** How far back the history goes, per granularity (days). */
export const HISTORY_MAX_DAYS = { day: 31, hour: 7 } as const;

const protocol = z.enum(protocols);

/** The entitlements of an account as the API shows them. */
export const entitlementsView = z.object({
  planCode: z.string().nullable(),
  planName: z.string().nullable(),
  status: z.string().nullable().describe('The subscription status, null without one.'),
  access: z.object({
    on: z.boolean(),
    refusal: refusal
      .nullable()
      .describe('Why access is off, worded as the bots word it; null while on.'),
    notice: refusal.nullable().describe('A warning while still on (a payment overdue in grace).'),
  }),
  protocols: z.object({
    allowed: z.array(protocol),
    refused: z
      .array(refusal.extend({ protocol }))
      .describe('Protocols the plan does not include, with the upgrade that unlocks them.'),
  }),
  locations: z.object({
    allowed: z.array(z.string()).describe('Location codes usable now.'),
    known: z.array(z.string()).describe('Every location that exists.'),
    toChoose: z
      .number()
      .int()
      .describe('How many more the customer may choose (POST /me/locations); 0 when none.'),
  }),
  ports: z.object({
    allow: z.union([z.literal('any'), z.array(z.number().int())]),
    block: z.array(z.number().int()),
  }),
  maxConnections: z.number().int(),
  features: z.object({ rotation: z.boolean(), stickySessions: z.boolean() }),
  remainingBytes: z
    .number()
    .int()
    .nullable()
    .describe('Bytes left this quota period; null = no quota (PAYG).'),
  quotaPeriodEnd: z.date().nullable(),
  payg: z
    .object({
      creditMinor: z.number().int(),
      currency: currency.nullable(),
      hourlyRateMinor: z.number().int().nullable(),
      perGbRateMinor: z.number().int().nullable(),
    })
    .nullable(),
  seat: z
    .object({
      remainingBytes: z.number().int().nullable(),
      maxConnections: z.number().int().nullable(),
    })
    .nullable()
    .describe("A team member's own limits inside the team's; null when not a seat."),
});

export function viewEntitlements(e: Entitlements): z.input<typeof entitlementsView> {
  const { access } = e;
  return {
    planCode: e.planCode,
    planName: e.planName,
    status: e.status,
    access: access.on
      ? { on: true, refusal: null, notice: access.notice }
      : {
          on: false,
          refusal: { code: access.code, message: access.message, upgrade: access.upgrade },
          notice: null,
        },
    protocols: e.protocols,
    locations: e.locations,
    ports: e.ports,
    maxConnections: e.maxConnections,
    features: e.features,
    remainingBytes: e.remainingBytes,
    quotaPeriodEnd: e.quotaPeriodEnd,
    payg:
      e.paygCreditMinor === null
        ? null
        : {
            creditMinor: e.paygCreditMinor,
            currency: e.paygCurrency,
            hourlyRateMinor: e.paygHourlyRateMinor,
            perGbRateMinor: e.paygPerGbRateMinor,
          },
    seat: e.seat,
  };
}

export async function entitlementsFor(accountId: string, deps: ApiDeps): Promise<Entitlements> {
  return entitlementsOf(accountId, { now: deps.clock.now(), policy: deps.proxy.policy });
}

function startOfUtcDay(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

const quotaView = z.object({
  periodStart: z.date().nullable(),
  periodEnd: z.date().nullable().describe('When the allowance resets.'),
  limitBytes: z.number().int(),
  usedBytes: z.number().int().describe('Bytes held by a gateway in a lease count as used.'),
  remainingBytes: z.number().int(),
  percentUsed: z
    .number()
    .int()
    .describe('Whole percent, rounded down (100 only once the allowance is spent).'),
});

const usageView = z.object({
  planCode: z.string().nullable(),
  kind: z.enum(['quota', 'payg', 'none']).describe('none: no plan.'),
  quota: quotaView.nullable().describe('The current quota period; null for PAYG and no plan.'),
  connected: z.object({
    periodSeconds: z
      .number()
      .int()
      .describe('Connected time this quota period (PAYG and no plan: the last 30 days).'),
    periodStart: z.date(),
    todaySeconds: z.number().int().describe('Connected time since 00:00 UTC.'),
  }),
  payg: z
    .object({
      currency: currency.nullable(),
      hourMinor: z.number().int(),
      todayMinor: z.number().int(),
      monthMinor: z.number().int(),
      dataTodayMinor: z.number().int(),
      hoursToday: z.number().int(),
      summary: z.string(),
    })
    .nullable()
    .describe('What pay as you go cost this hour, today and this month (UTC); null otherwise.'),
  wallet: z
    .object({
      balanceMinor: z.number().int(),
      currency: currency.nullable(),
      hourlyRateMinor: z.number().int().nullable(),
    })
    .nullable()
    .describe('PAYG: the wallet that pays each connected hour.'),
});

const sessionView = z.object({
  id: z.string(),
  startedAt: z.date(),
  endedAt: z.date().nullable().describe('null while the session is still open.'),
  durationSeconds: z.number().int(),
  bytesUp: z.number().int(),
  bytesDown: z.number().int(),
  bytes: z.number().int(),
  connections: z.number().int(),
  locations: z.array(z.string()),
  protocols: z.array(protocol),
});

const historyQuery = z
  .object({
    granularity: z.enum(['day', 'hour']).default('day'),
    days: z.coerce
      .number()
      .int()
      .min(1)
      .max(HISTORY_MAX_DAYS.day)
      .optional()
      .describe(
        `How many days back, today included: 1 to ${HISTORY_MAX_DAYS.day} by day (default 7), 1 to ${HISTORY_MAX_DAYS.hour} by hour (default 1).`,
      ),
  })
  .superRefine((query, ctx) => {
    if (query.granularity === 'hour' && query.days !== undefined) {
      if (query.days > HISTORY_MAX_DAYS.hour) {
        ctx.addIssue({
          code: 'custom',
          path: ['days'],
          message: `at most ${HISTORY_MAX_DAYS.hour} days by hour`,
        });
      }
    }
  });

const bucketView = z.object({
  start: z.date(),
  end: z.date(),
  bytesUp: z.number().int(),
  bytesDown: z.number().int(),
  bytes: z.number().int(),
  connectedSeconds: z.number().int(),
  connections: z.number().int(),
});

export const usageRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getMyUsage',
    method: 'get',
    path: '/me/usage',
    tag: 'Usage',
    summary: 'Data, connected time and PAYG cost this period',
    description:
      'The current quota period (used, limit, left, percent, when it resets), connected time this period and today, and for pay as you go the cost this hour, today and this month and the wallet. Bytes are counted in both directions; 1 GB = 10^9 bytes.',
    access: 'customer',
    response: usageView,
    async handler({ caller, deps }) {
      const now = deps.clock.now();
      const { accountId } = caller;
      const today = startOfUtcDay(now);
      const [own, ownQuota, buckets30, e] = await Promise.all([
        getCurrentSubscription(accountId),
        getQuotaUsage(accountId, now),
        listUsageBuckets(accountId, {
          from: new Date(now.getTime() - 30 * DAY_MS),
          to: hourEnd(now),
        }),
        entitlementsFor(accountId, deps),
      ]);
      // As the bot: the account's own plan, else (a team seat) what the entitlements say of the team's.
      const planCode = own?.planCode ?? e.planCode;
      const isPayg = own?.planKind === 'payg' || planCode === 'payg';
      let periodStart = new Date(now.getTime() - 30 * DAY_MS);
      let quota: z.input<typeof quotaView> | null = null;
      if (planCode !== null && !isPayg) {
        const counter = own ? ownQuota : null;
        if (counter) {
          const used = Math.max(0, counter.limitBytes - counter.remainingBytes);
          periodStart = counter.periodStart;
          quota = {
            periodStart: counter.periodStart,
            periodEnd: counter.periodEnd,
            limitBytes: counter.limitBytes,
            usedBytes: used,
            remainingBytes: counter.remainingBytes,
            percentUsed: percentOf(used, counter.limitBytes),
          };
        } else {
          // No counter yet (it opens at the first connection of a window): the full allowance.
          const plan = own ? await getPlan(own.planCode).catch(() => null) : null;
          const window = own ? currentQuotaWindow(own, now) : null;
          const limit = plan?.quota?.bytes ?? e.remainingBytes;
          if (window) periodStart = window.start;
          if (limit !== null) {
            quota = {
              periodStart: window?.start ?? null,
              periodEnd: window?.end ?? e.quotaPeriodEnd,
              limitBytes: limit,
              usedBytes: 0,
              remainingBytes: limit,
              percentUsed: 0,
            };
          }
        }
      }
      const payg = isPayg ? await paygCostSoFar(accountId, now) : null;
      return {
        planCode,
        kind:
          planCode === null ? ('none' as const) : isPayg ? ('payg' as const) : ('quota' as const),
        quota,
        connected: {
          periodSeconds: connectedSecondsSince(buckets30, periodStart),
          periodStart,
          todaySeconds: connectedSecondsSince(buckets30, today),
        },
        payg,
        wallet:
          isPayg && e.paygCreditMinor !== null
            ? {
                balanceMinor: e.paygCreditMinor,
                currency: e.paygCurrency,
                hourlyRateMinor: e.paygHourlyRateMinor,
              }
            : null,
      };
    },
  }),
  jsonRoute({
    operationId: 'getMyUsageHistory',
    method: 'get',
    path: '/me/usage/history',
    tag: 'Usage',
    summary: 'Usage by day or by hour',
    description: `Bytes up and down, connected seconds and connections opened per UTC day (up to ${HISTORY_MAX_DAYS.day} days) or per hour (up to ${HISTORY_MAX_DAYS.hour} days), oldest first, every bucket listed (zeros included).`,
    access: 'customer',
    query: historyQuery,
    response: z.object({
      granularity: z.enum(['day', 'hour']),
      from: z.date(),
      to: z.date(),
      totals: bucketView.omit({ start: true, end: true }),
      buckets: z.array(bucketView),
    }),
    async handler({ caller, deps, query }) {
      const now = deps.clock.now();
      const { granularity } = query;
      const days = query.days ?? (granularity === 'day' ? 7 : 1);
      const stepMs = granularity === 'day' ? DAY_MS : HOUR_MS;
      const to =
        granularity === 'day' ? new Date(startOfUtcDay(now).getTime() + DAY_MS) : hourEnd(now);
      const from = new Date(to.getTime() - days * DAY_MS);
      const rows = await listUsageBuckets(caller.accountId, { from, to });
      const buckets: z.input<typeof bucketView>[] = [];
      for (let at = from.getTime(); at < to.getTime(); at += stepMs) {
        buckets.push({
          start: new Date(at),
          end: new Date(at + stepMs),
          bytesUp: 0,
          bytesDown: 0,
          bytes: 0,
          connectedSeconds: 0,
          connections: 0,
        });
      }
      const seconds = new Array<number>(buckets.length).fill(0);
      for (const row of rows) {
        const index = Math.floor((row.hourStart.getTime() - from.getTime()) / stepMs);
        const bucket = buckets[index];
        if (!bucket) continue;
        if (row.location === ALL_LOCATIONS) {
          seconds[index] = (seconds[index] ?? 0) + row.connectedSeconds;
          continue;
        }
        bucket.bytesUp += row.bytesUp;
        bucket.bytesDown += row.bytesDown;
        bucket.bytes += row.bytesUp + row.bytesDown;
        bucket.connections += row.connections;
      }
      buckets.forEach((bucket, index) => {
        bucket.connectedSeconds = Math.floor(seconds[index] ?? 0);
      });
      const totals = { bytesUp: 0, bytesDown: 0, bytes: 0, connectedSeconds: 0, connections: 0 };
      for (const bucket of buckets) {
        totals.bytesUp += bucket.bytesUp;
        totals.bytesDown += bucket.bytesDown;
        totals.bytes += bucket.bytes;
        totals.connectedSeconds += bucket.connectedSeconds;
        totals.connections += bucket.connections;
      }
      return { granularity, from, to, totals, buckets };
    },
  }),
  jsonRoute({
    operationId: 'listMyUsageSessions',
    method: 'get',
    path: '/me/usage/sessions',
    tag: 'Usage',
    summary: 'Recent usage sessions',
    description:
      'Stretches of time with at least one open tunnel, newest first: start, end, bytes, duration, connections, locations and protocols.',
    access: 'customer',
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }),
    response: z.object({ sessions: z.array(sessionView) }),
    async handler({ caller, deps, query }) {
      const now = deps.clock.now();
      const sessions = await listUsageSessions(caller.accountId, { limit: query.limit });
      return {
        sessions: sessions.map((session) => ({
          ...session,
          durationSeconds: Math.max(
            0,
            Math.round(((session.endedAt ?? now).getTime() - session.startedAt.getTime()) / 1000),
          ),
          bytes: session.bytesUp + session.bytesDown,
        })),
      };
    },
  }),
  jsonRoute({
    operationId: 'getMyEntitlements',
    method: 'get',
    path: '/me/entitlements',
    tag: 'Usage',
    summary: 'What the plan allows now',
    description:
      'Protocols allowed and refused (with the upgrade that unlocks them), locations allowed and still to choose, ports, connections, data left, and whether access is on; a refusal is worded as the bots and the gateway word it.',
    access: 'customer',
    response: entitlementsView,
    async handler({ caller, deps }) {
      return viewEntitlements(await entitlementsFor(caller.accountId, deps));
    },
  }),
];

/** Whole percent used, rounded down, as the bots' usage bar (a limit of 0 is spent). */
function percentOf(used: number, limit: number): number {
  return limit <= 0 ? 100 : Math.floor((Math.max(0, used) * 100) / limit);
}
