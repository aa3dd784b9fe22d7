/**
 * Usage, "why did my proxy fail?" and security: what the gateway recorded
 * (quota counters, hourly buckets, usage sessions, refusals, failed logins),
 * in plain words with the next step.
 */
import { entitlementsOf } from '../../../core/account-entitlements.js';
import { paygCostSoFar } from '../../../core/payg.js';
import { getQuotaUsage } from '../../../core/quota.js';
import {
  ALL_LOCATIONS,
  connectedSecondsSince,
  hourEnd,
  listAuthFailures,
  listRecentRefusals,
  listUsageBuckets,
  listUsageSessions,
} from '../../../core/usage.js';
import { getProxyCredentials } from '../../../core/proxy-credentials.js';
import { currentQuotaWindow, getCurrentSubscription } from '../../../core/subscriptions.js';
import { getPlan } from '../../../core/plans.js';
import { formatBytes, formatDuration, usageBar } from '../../render/gauges.js';
import { renderUsageChart } from '../../render/usage-chart.js';
import type { ProxyAuthFailureReason } from '../../../models/proxy-auth-failure.js';
import type { Journey, Turn } from '../conversation.js';
import { rotatePassword, upgradeMenu } from './connect.js';

const DAY = 86_400_000;

/** "26 Nov 14:05 UTC": times in chat are UTC, said so. */
export function when(at: Date): string {
  const month = at.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
  const hh = String(at.getUTCHours()).padStart(2, '0');
  const mm = String(at.getUTCMinutes()).padStart(2, '0');
  return `${at.getUTCDate()} ${month} ${hh}:${mm} UTC`;
}

const FAILURE_REASON: Record<ProxyAuthFailureReason, string> = {
  BAD_SECRET: 'wrong password',
  UNKNOWN_USER: 'unknown username',
  MALFORMED_USERNAME: 'a malformed username',
  REVOKED: 'a password that was replaced',
  TOO_MANY_ATTEMPTS: 'too many attempts, blocked for a while',
};

async function showUsage(turn: Turn): Promise<void> {
  const now = turn.deps.clock.now();
  // The customer's own plan and counter in one round trip; a team member
  // (no plan of their own) is shown what the entitlements say of the team's.
  const [own, ownQuota, sessions, buckets30] = await Promise.all([
    getCurrentSubscription(turn.account.id),
    getQuotaUsage(turn.account.id, now),
    listUsageSessions(turn.account.id, { limit: 5 }),
    listUsageBuckets(turn.account.id, {
      from: new Date(now.getTime() - 30 * DAY),
      to: hourEnd(now),
    }),
  ]);
  const e = own
    ? null
    : await entitlementsOf(turn.account.id, { now, policy: turn.deps.proxy.policy });
  const planCode = own?.planCode ?? e?.planCode ?? null;
  if (planCode === null) {
    turn.text(turn.t.noPlan, turn.t.noPlanMenu);
    return;
  }
  const quota = own ? ownQuota : null;
  const lines: string[] = [];
  let since = new Date(now.getTime() - 30 * DAY);
  if (own?.planKind === 'payg' || planCode === 'payg') {
    lines.push(turn.t.usageNoQuota);
    lines.push(turn.t.usagePayg((await paygCostSoFar(turn.account.id, now)).summary));
  } else if (quota) {
    since = quota.periodStart;
    const used = Math.max(0, quota.limitBytes - quota.remainingBytes);
    lines.push(
      turn.t.usageQuota({
        bar: usageBar(used, quota.limitBytes),
        used: formatBytes(used),
        left: formatBytes(quota.remainingBytes),
        limit: formatBytes(quota.limitBytes),
        resets: when(quota.periodEnd),
      }),
    );
  } else {
    // No counter yet (it opens at the first connection of a window): the full allowance.
    const plan = own ? await getPlan(own.planCode) : null;
    const window = own ? currentQuotaWindow(own, now) : null;
    const limit = plan?.quota?.bytes ?? e?.remainingBytes ?? null;
    const resets = window?.end ?? e?.quotaPeriodEnd ?? null;
    if (limit !== null) {
      lines.push(
        turn.t.usageQuota({
          bar: usageBar(0, limit),
          used: formatBytes(0),
          left: formatBytes(limit),
          limit: formatBytes(limit),
          resets: resets ? when(resets) : '-',
        }),
      );
    }
  }
  const seconds = connectedSecondsSince(buckets30, since);
  lines.push(turn.t.usageConnected(formatDuration(seconds)));
  lines.push('');
  if (sessions.length === 0) {
    lines.push(turn.t.usageNoSessions);
  } else {
    lines.push(turn.t.usageSessionsTitle);
    for (const session of sessions) {
      const end = session.endedAt ?? now;
      lines.push(
        turn.t.usageSession({
          when: when(session.startedAt),
          bytes: formatBytes(session.bytesUp + session.bytesDown),
          duration: formatDuration(
            Math.round((end.getTime() - session.startedAt.getTime()) / 1000),
          ),
          locations: session.locations.map((l) => l.toUpperCase()).join(', ') || '-',
        }),
      );
    }
  }
  turn.text(lines.join('\n'), turn.t.usageMenu);
}

async function showChart(turn: Turn, days: 7 | 30): Promise<void> {
  const now = turn.deps.clock.now();
  const from = new Date(now.getTime() - days * DAY);
  const rows = await listUsageBuckets(turn.account.id, { from, to: hourEnd(now) });
  const buckets = rows
    .filter((row) => row.location !== ALL_LOCATIONS)
    .map((row) => ({ hourStart: row.hourStart, bytes: row.bytesUp + row.bytesDown }));
  const total = buckets.reduce((sum, row) => sum + row.bytes, 0);
  const png = await renderUsageChart({ days, end: now, buckets });
  turn.say({
    kind: 'image',
    png,
    caption: turn.t.chartCaption(days, formatBytes(total)),
    menu: turn.t.usageMenu,
  });
}

export const usageJourney: Journey = {
  actions: {
    async usage(turn) {
      if (turn.args[0] === 'chart') return showChart(turn, turn.args[1] === '30' ? 30 : 7);
      return showUsage(turn);
    },
    async why(turn) {
      const now = turn.deps.clock.now();
      const [refusals, e] = await Promise.all([
        listRecentRefusals(turn.account.id, { limit: 5 }),
        entitlementsOf(turn.account.id, { now, policy: turn.deps.proxy.policy }),
      ]);
      const lines =
        refusals.length === 0
          ? [turn.t.whyNone]
          : [
              turn.t.whyTitle,
              ...refusals.map((r) =>
                turn.t.whyLine({ when: when(r.at), what: r.message, count: r.count }),
              ),
            ];
      lines.push('', e.access.on ? turn.t.whyFine : turn.t.whyNow(e.access.message));
      turn.text(
        lines.join('\n'),
        e.access.on ? turn.t.backToMenu : upgradeMenu(turn, e.access.upgrade),
      );
    },
    async security(turn) {
      if (turn.args[0] === 'rotate') return rotatePassword(turn);
      const credentials = await getProxyCredentials(turn.account.id);
      if (!credentials) {
        turn.text(turn.t.noCredentialsYet, [[{ label: '🔌 Connect', action: 'connect' }]]);
        return;
      }
      const failures = await listAuthFailures(turn.account.id, { limit: 10 });
      if (failures.length === 0) {
        turn.text(turn.t.securityNone(credentials.username), turn.t.securityMenu);
        return;
      }
      turn.text(
        [
          turn.t.securityTitle(credentials.username),
          ...failures.map((f) =>
            turn.t.securityLine({
              when: when(f.at),
              ip: f.sourceIp,
              reason: FAILURE_REASON[f.reason],
              attempts: f.attempts,
            }),
          ),
          '',
          turn.t.securityAdvice,
        ].join('\n'),
        turn.t.securityMenu,
      );
    },
  },
};
