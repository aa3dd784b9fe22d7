/**
 * What an account may do right now, computed by ONE pure function from the
 * plan, the subscription, the account, the wallet and the quota counter. The
 * gateway, the bots and the API all ask it and never re-derive a rule.
 *
 * No I/O and no clock reads: `now` is an input, so the same facts always give
 * the same answer (and the gateway can cache the result until `recheckAt`).
 *
 * Decisions:
 * - Past due: access continues during the grace period (until `graceEndsAt`)
 *   with a PAST_DUE notice; after it, or with no grace, access is off (PAST_DUE).
 * - An active subscription past `periodEnd` that has not been renewed is off
 *   (SUBSCRIPTION_EXPIRED, or CANCELLED when it was set to cancel); billing
 *   renews ahead of the end so a paying customer sees no gap.
 * - Team quotas are pooled: `quota` is the subscription's one counter shared by
 *   every seat, and `maxConnections` counts the whole team's open connections.
 * - A seat (a member of a team, core/team.ts) is asked about with the owner's
 *   plan, subscription and pooled counter plus `seat`: its own optional data
 *   cap and connection limit bind it alone, inside the team's limits. A spent
 *   pool says "Data limit reached" to everyone on the team; a spent seat cap
 *   says so to that seat only. A seat whose owner's plan has no seats any more
 *   is off (NO_SUBSCRIPTION).
 * - A quota counter whose window is over counts as reset (the reset job may
 *   not have run yet): the plan's full allowance for the new window.
 * - PAYG: on while the current connected hour is paid (`paygPaidUntil`) or the
 *   wallet holds at least one hour at the plan's rate in the wallet's currency.
 */
import { formatMoney, type Currency } from '../lib/money.js';
import type { AccountStatus } from '../models/account.js';
import {
  protocols as ALL_PROTOCOLS,
  type PlanData,
  type PlanFeatures,
  type Protocol,
} from '../models/plan.js';
import type { SubscriptionData, SubscriptionStatus } from '../models/subscription.js';
import { currentQuotaWindow } from './subscriptions.js';

/** Every reason access or a connection can be refused (closed list). */
export const REFUSAL_CODES = [
  'ACCOUNT_SUSPENDED',
  'ACCOUNT_DELETED',
  'NO_SUBSCRIPTION',
  'PAYMENT_PENDING',
  'SUBSCRIPTION_EXPIRED',
  'PAST_DUE',
  'CANCELLED',
  'TRIAL_ENDED',
  'QUOTA_EXHAUSTED',
  'WALLET_EMPTY',
  'PROTOCOL_NOT_IN_PLAN',
  'PORT_NOT_ALLOWED',
  'PORT_BLOCKED',
  'LOCATION_NOT_IN_PLAN',
  'LOCATION_NOT_CHOSEN',
  'UNKNOWN_LOCATION',
  'CONNECTION_LIMIT',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** What the customer can do to lift a refusal. */
export type UpgradeAction =
  'subscribe' | 'upgrade' | 'pay' | 'renew' | 'top_up' | 'choose_location' | 'contact_support';

export interface Upgrade {
  action: UpgradeAction;
  /** The plan that lifts it, when one does. */
  planCode: string | null;
  /** One sentence for people, e.g. "Upgrade to PAYG for all protocols". */
  text: string;
}

export interface Refusal {
  code: RefusalCode;
  /** For people: what is refused and why, then what lifts it. */
  message: string;
  /** null when nothing the customer buys lifts it (a blocked port, a deleted account). */
  upgrade: Upgrade | null;
}

export type EntitlementPlan = Pick<
  PlanData,
  'code' | 'name' | 'kind' | 'protocols' | 'portRule' | 'locations' | 'maxConnections' | 'features'
> &
  Partial<Pick<PlanData, 'quota' | 'payg' | 'seats'>>;

export type EntitlementSubscription = Pick<SubscriptionData, 'status' | 'planCode'> &
  Partial<
    Pick<
      SubscriptionData,
      | 'periodStart'
      | 'periodEnd'
      | 'trialEndsAt'
      | 'graceEndsAt'
      | 'cancelAtPeriodEnd'
      | 'chosenLocations'
      | 'quotaPeriod'
      | 'quotaAnchorAt'
    >
  >;

export interface QuotaState {
  usedBytes: number;
  limitBytes: number;
  periodStart: Date;
  /** Exclusive. */
  periodEnd: Date;
}

export interface EntitlementsInput {
  /** The subscription's plan (null when there is no subscription). */
  plan: EntitlementPlan | null;
  /** The account's current subscription (live, else latest), or null. */
  subscription: EntitlementSubscription | null;
  account: { status: AccountStatus };
  wallet: { balanceMinor: number; currency: Currency } | null;
  /** The quota counter of the current window (pooled for team), or null if none exists yet. */
  quota: QuotaState | null;
  /** Every location code that exists. */
  locations: readonly string[];
  now: Date;
  policy: {
    /** Ports an `https_only` plan (Starter) may CONNECT to (HTTPS_ONLY_PORTS). */
    httpsOnlyPorts: readonly number[];
    /** Ports refused to everyone, e.g. 25. */
    blockedPorts: readonly number[];
  };
  /** PAYG: end of the connected hour already charged, if one is. */
  paygPaidUntil?: Date | null;
  /** Set when the account is a seat of a team (`plan`, `subscription` and `quota` are then the owner's). */
  seat?: SeatState | null;
}

/** A seat's own limits and use, inside its team's. */
export interface SeatState {
  /** Bytes the seat may use per quota window; null = the team's pool only. */
  capBytes: number | null;
  /** Bytes the seat used in the current window (leases held count as used). */
  usedBytes: number;
  /** Connections the seat may have open at once; null = the team's limit only. */
  maxConnections: number | null;
}

export interface ProtocolRefusal extends Refusal {
  protocol: Protocol;
}

export interface Entitlements {
  planCode: string | null;
  planName: string | null;
  status: SubscriptionStatus | null;
  /** Whether the account may connect at all; `notice` warns while still on (past due in grace). */
  access: { on: true; notice: Refusal | null } | ({ on: false } & Refusal);
  protocols: { allowed: Protocol[]; refused: ProtocolRefusal[] };
  locations: {
    /** Lower-case codes the account may use now. */
    allowed: string[];
    /** Every location that exists (lower-case). */
    known: string[];
    /** How many more the customer may pick (plans that let them choose), else 0. */
    toChoose: number;
  };
  /** `allow: 'any'` = every port not in `block`. */
  ports: { allow: 'any' | number[]; block: number[] };
  maxConnections: number;
  features: PlanFeatures;
  /** Bytes left in the current quota window; null = no quota (PAYG). */
  remainingBytes: number | null;
  /** PAYG: wallet balance in minor units of `paygCurrency`; null for other plans. */
  paygCreditMinor: number | null;
  paygCurrency: Currency | null;
  /** PAYG: charge for each connected hour; null for other plans. */
  paygHourlyRateMinor: number | null;
  /**
   * PAYG with per-GB charging on: the charge per GB (10^9 bytes), paid from the
   * wallet in blocks as data is used (core/payg.ts); null when off or not PAYG.
   */
  paygPerGbRateMinor: number | null;
  quotaPeriodEnd: Date | null;
  /**
   * A seat's own limits (null for an account that is not a seat):
   * `remainingBytes` under its cap (null = no cap), `maxConnections` of its
   * own (null = none; `maxConnections` above is the whole team's).
   */
  seat: { remainingBytes: number | null; maxConnections: number | null } | null;
  /** The next moment these entitlements change by time alone (period, trial, grace, quota window, paid hour). */
  recheckAt: Date | null;
}

/** Next plan up, for "upgrade" suggestions when the customer's plan runs short. */
const UPGRADE_LADDER: Readonly<Record<string, string>> = {
  trial: 'starter',
  starter: 'personal',
  personal: 'team',
  team: 'payg',
};
const PLAN_LABEL: Readonly<Record<string, string>> = {
  trial: 'Trial',
  starter: 'Starter',
  personal: 'Personal',
  team: 'Team',
  payg: 'PAYG',
};
const PROTOCOL_LABEL: Readonly<Record<Protocol, string>> = {
  http: 'plain HTTP',
  https: 'HTTPS',
  socks5: 'SOCKS5',
};

const ALL_PROTOCOLS_UPGRADE: Upgrade = {
  action: 'upgrade',
  planCode: 'payg',
  text: 'Upgrade to PAYG for all protocols',
};

const NO_FEATURES: PlanFeatures = { rotation: false, stickySessions: false };

export function computeEntitlements(input: EntitlementsInput): Entitlements {
  const { plan, subscription, now } = input;
  const known = normaliseCodes(input.locations);
  const recheckAt = earliestAfter(now, [
    subscription?.trialEndsAt,
    subscription?.periodEnd,
    subscription?.graceEndsAt,
    input.quota?.periodEnd,
    input.paygPaidUntil,
  ]);
  const off = (refusal: Refusal): Entitlements => ({
    planCode: plan?.code ?? subscription?.planCode ?? null,
    planName: plan?.name ?? null,
    status: subscription?.status ?? null,
    access: { on: false, ...refusal },
    protocols: { allowed: [], refused: [] },
    locations: { allowed: [], known, toChoose: 0 },
    ports: { allow: [], block: [...input.policy.blockedPorts] },
    maxConnections: 0,
    features: NO_FEATURES,
    remainingBytes: plan?.kind === 'payg' ? null : 0,
    paygCreditMinor: plan?.kind === 'payg' ? (input.wallet?.balanceMinor ?? 0) : null,
    paygCurrency: plan?.kind === 'payg' ? (input.wallet?.currency ?? null) : null,
    paygHourlyRateMinor: null,
    paygPerGbRateMinor: null,
    quotaPeriodEnd: input.quota?.periodEnd ?? null,
    seat: null,
    recheckAt,
  });

  if (input.account.status === 'suspended') {
    return off({
      code: 'ACCOUNT_SUSPENDED',
      message: 'Your account is suspended. Contact support to restore it.',
      upgrade: { action: 'contact_support', planCode: null, text: 'Contact support' },
    });
  }
  if (input.account.status === 'deleted') {
    return off({
      code: 'ACCOUNT_DELETED',
      message: 'This account has been closed.',
      upgrade: null,
    });
  }
  if (!subscription || !plan) {
    return off({
      code: 'NO_SUBSCRIPTION',
      message: 'You have no plan yet. Start a trial or choose a plan to connect.',
      upgrade: { action: 'subscribe', planCode: null, text: 'Choose a plan' },
    });
  }
  if (plan.code !== subscription.planCode) {
    throw new RangeError(
      `computeEntitlements: plan ${plan.code} given for a ${subscription.planCode} subscription`,
    );
  }
  const seat = input.seat ?? null;
  if (seat && !(plan.seats !== undefined && plan.seats > 1)) {
    return off({
      code: 'NO_SUBSCRIPTION',
      message: `Your team owner's ${plan.name} plan has no seats for members. Ask your team owner.`,
      upgrade: null,
    });
  }

  const at = now.getTime();
  const ended = (instant: Date | undefined): boolean =>
    instant !== undefined && instant.getTime() <= at;
  const renewUpgrade: Upgrade = {
    action: 'renew',
    planCode: plan.code,
    text: `Renew ${plan.name}`,
  };
  const subscribeUpgrade: Upgrade = { action: 'subscribe', planCode: null, text: 'Choose a plan' };
  const trialEnded: Refusal = {
    code: 'TRIAL_ENDED',
    message: 'Your trial has ended. Choose a plan to keep connecting.',
    upgrade: { action: 'subscribe', planCode: 'starter', text: 'Choose a plan' },
  };
  let notice: Refusal | null = null;

  switch (subscription.status) {
    case 'pending_payment':
      return off({
        code: 'PAYMENT_PENDING',
        message: `Your ${plan.name} plan starts as soon as your payment is confirmed.`,
        upgrade: { action: 'pay', planCode: plan.code, text: `Pay for ${plan.name}` },
      });
    case 'cancelled':
      return off({
        code: 'CANCELLED',
        message: `Your ${plan.name} plan was cancelled. Choose a plan to connect again.`,
        upgrade: subscribeUpgrade,
      });
    case 'expired':
      if (plan.kind === 'trial') return off(trialEnded);
      return off({
        code: 'SUBSCRIPTION_EXPIRED',
        message: `Your ${plan.name} plan has expired. Renew it to connect again.`,
        upgrade: renewUpgrade,
      });
    case 'trialing':
      if (ended(subscription.trialEndsAt ?? subscription.periodEnd)) return off(trialEnded);
      break;
    case 'active':
      if (plan.kind !== 'payg' && ended(subscription.periodEnd)) {
        if (subscription.cancelAtPeriodEnd) {
          return off({
            code: 'CANCELLED',
            message: `Your ${plan.name} plan ended as you asked. Choose a plan to connect again.`,
            upgrade: subscribeUpgrade,
          });
        }
        return off({
          code: 'SUBSCRIPTION_EXPIRED',
          message: `Your ${plan.name} period has ended. Renew it to keep connecting.`,
          upgrade: renewUpgrade,
        });
      }
      break;
    case 'past_due': {
      const pay: Upgrade = { action: 'pay', planCode: plan.code, text: `Pay for ${plan.name}` };
      const grace = subscription.graceEndsAt;
      if (!grace || ended(grace)) {
        return off({
          code: 'PAST_DUE',
          message: `Your ${plan.name} payment is overdue. Pay to restore access.`,
          upgrade: pay,
        });
      }
      notice = {
        code: 'PAST_DUE',
        message: `Your ${plan.name} payment is overdue. Pay before ${grace.toISOString().slice(0, 10)} to keep access.`,
        upgrade: pay,
      };
      break;
    }
  }

  // Money or data left.
  let remainingBytes: number | null = null;
  let quotaPeriodEnd: Date | null = null;
  let paygCreditMinor: number | null = null;
  let paygCurrency: Currency | null = null;
  let paygHourlyRateMinor: number | null = null;
  let paygPerGbRateMinor: number | null = null;
  const nextPlan = UPGRADE_LADDER[plan.code] ?? 'payg';
  const nextUpgrade: Upgrade = {
    action: 'upgrade',
    planCode: nextPlan,
    text: `Upgrade to ${PLAN_LABEL[nextPlan] ?? nextPlan}`,
  };

  if (plan.kind === 'payg') {
    const wallet = input.wallet;
    const rate = wallet ? plan.payg?.rates.find((r) => r.currency === wallet.currency) : undefined;
    paygCreditMinor = wallet?.balanceMinor ?? 0;
    paygCurrency = wallet?.currency ?? null;
    paygHourlyRateMinor = rate?.hourlyRateMinor ?? null;
    paygPerGbRateMinor = rate?.perGbRateMinor ? rate.perGbRateMinor : null;
    const hourPaid =
      input.paygPaidUntil !== undefined &&
      input.paygPaidUntil !== null &&
      !ended(input.paygPaidUntil);
    if (!hourPaid && (!wallet || !rate || wallet.balanceMinor < rate.hourlyRateMinor)) {
      const needs =
        wallet && rate
          ? ` You have ${formatMoney({ amountMinor: wallet.balanceMinor, currency: wallet.currency })}; an hour costs ${formatMoney({ amountMinor: rate.hourlyRateMinor, currency: wallet.currency })}.`
          : '';
      return {
        ...off({
          code: 'WALLET_EMPTY',
          message: `Your wallet is empty.${needs} Top up to connect.`,
          upgrade: { action: 'top_up', planCode: null, text: 'Top up your wallet' },
        }),
        paygHourlyRateMinor,
        paygPerGbRateMinor,
      };
    }
  } else if (plan.quota) {
    const quota = input.quota;
    if (quota && !ended(quota.periodEnd)) {
      remainingBytes = Math.max(0, quota.limitBytes - quota.usedBytes);
      quotaPeriodEnd = quota.periodEnd;
    } else {
      // No counter yet, or its window is over: a fresh window with the full allowance.
      remainingBytes = plan.quota.bytes;
      quotaPeriodEnd = currentQuotaWindow(subscription, now)?.end ?? null;
    }
    if (remainingBytes <= 0) {
      return {
        ...off({
          code: 'QUOTA_EXHAUSTED',
          message: `Data limit reached. Upgrade or wait for reset${quotaPeriodEnd ? ` on ${quotaPeriodEnd.toISOString().slice(0, 16).replace('T', ' ')} UTC` : ''}.`,
          upgrade: { ...nextUpgrade, text: `${nextUpgrade.text} for more data` },
        }),
        quotaPeriodEnd,
        recheckAt: earliestAfter(now, [recheckAt, quotaPeriodEnd]),
      };
    }
  }

  let seatRemainingBytes: number | null = null;
  if (seat && seat.capBytes !== null) {
    seatRemainingBytes = Math.max(0, seat.capBytes - seat.usedBytes);
    if (seatRemainingBytes <= 0) {
      return {
        ...off(SEAT_CAP_REACHED),
        quotaPeriodEnd,
        recheckAt: earliestAfter(now, [recheckAt, quotaPeriodEnd]),
      };
    }
  }

  const allowedProtocols = ALL_PROTOCOLS.filter((p) => plan.protocols.includes(p));
  const refusedProtocols: ProtocolRefusal[] = ALL_PROTOCOLS.filter(
    (p) => !plan.protocols.includes(p),
  ).map((protocol) => ({
    protocol,
    code: 'PROTOCOL_NOT_IN_PLAN',
    message: `Your ${plan.name} plan does not include ${PROTOCOL_LABEL[protocol]}. ${ALL_PROTOCOLS_UPGRADE.text}.`,
    upgrade: ALL_PROTOCOLS_UPGRADE,
  }));

  let allowedLocations: string[];
  let toChoose = 0;
  if (plan.locations.kind === 'all') {
    allowedLocations = known;
  } else {
    const chosen = normaliseCodes(subscription.chosenLocations ?? []).filter((c) =>
      known.includes(c),
    );
    allowedLocations = chosen.slice(0, plan.locations.max);
    toChoose = Math.max(0, plan.locations.max - allowedLocations.length);
  }

  return {
    planCode: plan.code,
    planName: plan.name,
    status: subscription.status,
    access: { on: true, notice },
    protocols: { allowed: allowedProtocols, refused: refusedProtocols },
    locations: { allowed: allowedLocations, known, toChoose },
    ports: {
      allow: plan.portRule === 'https_only' ? [...input.policy.httpsOnlyPorts] : 'any',
      block: [...input.policy.blockedPorts],
    },
    maxConnections: plan.maxConnections,
    features: { rotation: plan.features.rotation, stickySessions: plan.features.stickySessions },
    remainingBytes:
      remainingBytes !== null && seatRemainingBytes !== null
        ? Math.min(remainingBytes, seatRemainingBytes)
        : remainingBytes,
    paygCreditMinor,
    paygCurrency,
    paygHourlyRateMinor,
    paygPerGbRateMinor,
    quotaPeriodEnd,
    seat: seat ? { remainingBytes: seatRemainingBytes, maxConnections: seat.maxConnections } : null,
    recheckAt: earliestAfter(now, [recheckAt, quotaPeriodEnd]),
  };
}

/** A seat over its own data cap: only the team owner can lift it. */
export const SEAT_CAP_REACHED: Refusal = {
  code: 'QUOTA_EXHAUSTED',
  message: "Your seat's data cap is reached; ask your team owner.",
  upgrade: null,
};

export interface ConnectionRequest {
  protocol: Protocol;
  /** Destination port (for plain HTTP forwarding, the URL's port). */
  port: number;
  /** Location code from the username (`-country-ng`); null/undefined = any allowed one. */
  location?: string | null;
  /** The account's connections open now, not counting this one (for a seat: the whole team's). */
  openConnections: number;
  /** A seat's own connections open now, not counting this one. */
  seatOpenConnections?: number;
}

export type ConnectionDecision = { ok: true } | ({ ok: false } & Refusal);

/**
 * Whether one new connection may open, from entitlements computed earlier.
 * Checks, in order: access, protocol, port (blocked, then plan rule), location
 * (unknown, then plan), concurrent connections.
 */
export function checkConnection(
  entitlements: Entitlements,
  request: ConnectionRequest,
): ConnectionDecision {
  const { access } = entitlements;
  if (!access.on) {
    return { ok: false, code: access.code, message: access.message, upgrade: access.upgrade };
  }
  const planName = entitlements.planName ?? 'current';

  if (!entitlements.protocols.allowed.includes(request.protocol)) {
    const refused = entitlements.protocols.refused.find((r) => r.protocol === request.protocol);
    return {
      ok: false,
      code: 'PROTOCOL_NOT_IN_PLAN',
      message:
        refused?.message ??
        `Your ${planName} plan does not include ${request.protocol}. ${ALL_PROTOCOLS_UPGRADE.text}.`,
      upgrade: refused?.upgrade ?? ALL_PROTOCOLS_UPGRADE,
    };
  }

  const { port } = request;
  const { ports } = entitlements;
  if (!Number.isSafeInteger(port) || port < 1 || port > 65_535) {
    return {
      ok: false,
      code: 'PORT_NOT_ALLOWED',
      message: `${port} is not a valid port.`,
      upgrade: null,
    };
  }
  if (ports.block.includes(port)) {
    return {
      ok: false,
      code: 'PORT_BLOCKED',
      message: `Port ${port} is blocked on every plan to prevent abuse.`,
      upgrade: null,
    };
  }
  if (ports.allow !== 'any' && !ports.allow.includes(port)) {
    const list =
      ports.allow.length === 1 ? `port ${ports.allow.join('')}` : `ports ${ports.allow.join(', ')}`;
    return {
      ok: false,
      code: 'PORT_NOT_ALLOWED',
      message: `Your ${planName} plan connects to HTTPS on ${list} only. Upgrade to PAYG for all protocols and ports.`,
      upgrade: { action: 'upgrade', planCode: 'payg', text: 'Upgrade to PAYG for all protocols' },
    };
  }

  const { locations } = entitlements;
  const location = request.location?.trim().toLowerCase();
  if (location) {
    if (!locations.known.includes(location)) {
      return {
        ok: false,
        code: 'UNKNOWN_LOCATION',
        message: `There is no location "${location}". Locations: ${locations.known.join(', ') || 'none yet'}.`,
        upgrade: null,
      };
    }
    if (!locations.allowed.includes(location)) {
      if (locations.allowed.length === 0) return notChosen(planName);
      return {
        ok: false,
        code: 'LOCATION_NOT_IN_PLAN',
        message: `Your ${planName} plan includes ${locations.allowed.join(', ')} only. Upgrade to Personal for all locations.`,
        upgrade: {
          action: 'upgrade',
          planCode: 'personal',
          text: 'Upgrade to Personal for all locations',
        },
      };
    }
  } else if (locations.allowed.length === 0) {
    return notChosen(planName);
  }

  const seatMax = entitlements.seat?.maxConnections ?? null;
  if (seatMax !== null && (request.seatOpenConnections ?? 0) >= seatMax) {
    return {
      ok: false,
      code: 'CONNECTION_LIMIT',
      message: `Your seat allows ${seatMax} connection${seatMax === 1 ? '' : 's'} at once. Close one or ask your team owner for more.`,
      upgrade: null,
    };
  }
  if (request.openConnections >= entitlements.maxConnections) {
    const planCode = entitlements.planCode ?? '';
    const next = UPGRADE_LADDER[planCode] ?? 'payg';
    return {
      ok: false,
      code: 'CONNECTION_LIMIT',
      message: `Your ${planName} plan allows ${entitlements.maxConnections} connection${entitlements.maxConnections === 1 ? '' : 's'} at once. Close one or upgrade for more.`,
      upgrade: {
        action: 'upgrade',
        planCode: next,
        text: `Upgrade to ${PLAN_LABEL[next] ?? next} for more connections`,
      },
    };
  }
  return { ok: true };
}

function notChosen(planName: string): ConnectionDecision {
  return {
    ok: false,
    code: 'LOCATION_NOT_CHOSEN',
    message: `Choose your location for the ${planName} plan first.`,
    upgrade: { action: 'choose_location', planCode: null, text: 'Choose a location' },
  };
}

function normaliseCodes(codes: readonly string[]): string[] {
  return [...new Set(codes.map((c) => c.trim().toLowerCase()).filter((c) => c !== ''))];
}

function earliestAfter(now: Date, candidates: readonly (Date | null | undefined)[]): Date | null {
  let best: Date | null = null;
  for (const candidate of candidates) {
    if (!candidate || candidate.getTime() <= now.getTime()) continue;
    if (!best || candidate.getTime() < best.getTime()) best = candidate;
  }
  return best;
}
