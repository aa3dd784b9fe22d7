import { describe, expect, it } from '@jest/globals';
import { DEFAULT_PLANS, type PlanDefinition } from '../../../core/plans.js';
import {
  checkConnection,
  computeEntitlements,
  type ConnectionRequest,
  type EntitlementsInput,
  type EntitlementSubscription,
  type QuotaState,
  type RefusalCode,
} from '../../../core/entitlements.js';
import { currentQuotaWindow } from '../../../core/subscriptions.js';

const DAY = 86_400_000;
const now = new Date('2025-03-10T12:00:00.000Z');
const at = (days: number): Date => new Date(now.getTime() + days * DAY);
const policy = { httpsOnlyPorts: [443], blockedPorts: [25] };
const LOCATIONS = ['ng', 'gb', 'us'];

function plan(code: string): PlanDefinition {
  const found = DEFAULT_PLANS.find((p) => p.code === code);
  if (!found) throw new Error(`no default plan ${code}`);
  return found;
}

/** A subscription of `code` in good standing at `now`. */
function runningSubscription(code: string): EntitlementSubscription {
  const p = plan(code);
  switch (p.kind) {
    case 'trial':
      return {
        planCode: code,
        status: 'trialing',
        periodStart: at(-1),
        periodEnd: at(2),
        trialEndsAt: at(2),
        quotaPeriod: 'trial',
        quotaAnchorAt: at(-1),
        cancelAtPeriodEnd: false,
        chosenLocations: ['ng'],
      };
    case 'recurring':
      return {
        planCode: code,
        status: 'active',
        periodStart: at(-10),
        periodEnd: at(21),
        quotaPeriod: p.quota?.period,
        quotaAnchorAt: at(-10),
        cancelAtPeriodEnd: false,
        chosenLocations: ['ng'],
      };
    case 'payg':
      return { planCode: code, status: 'active', periodStart: at(-10), cancelAtPeriodEnd: false };
  }
}

function quotaOf(
  code: string,
  subscription: EntitlementSubscription,
  usedBytes: number,
): QuotaState | null {
  const p = plan(code);
  const window = currentQuotaWindow(subscription, now);
  if (!p.quota || !window) return null;
  return { usedBytes, limitBytes: p.quota.bytes, periodStart: window.start, periodEnd: window.end };
}

function inputFor(
  code: string,
  change: (input: EntitlementsInput) => void = () => {},
): EntitlementsInput {
  const subscription = runningSubscription(code);
  const input: EntitlementsInput = {
    plan: plan(code),
    subscription,
    account: { status: 'active' },
    wallet: code === 'payg' ? { balanceMinor: 100_000, currency: 'NGN' } : null,
    quota: quotaOf(code, subscription, 100_000_000),
    locations: LOCATIONS,
    now,
    policy,
  };
  change(input);
  return input;
}

function withSubscription(input: EntitlementsInput, patch: Partial<EntitlementSubscription>): void {
  if (!input.subscription) throw new Error('no subscription');
  input.subscription = { ...input.subscription, ...patch };
}

type Scenario = [string, (input: EntitlementsInput) => void];

const scenarios: Record<string, Scenario> = {
  running: ['running (active, or trialing for the trial)', () => {}],
  pastDueInGrace: [
    'past due within grace',
    (i) => withSubscription(i, { status: 'past_due', periodEnd: at(-1), graceEndsAt: at(2) }),
  ],
  pastDueAfterGrace: [
    'past due after grace',
    (i) => withSubscription(i, { status: 'past_due', periodEnd: at(-4), graceEndsAt: at(-1) }),
  ],
  cancelAtPeriodEnd: [
    'cancelled, before the period ends',
    (i) => withSubscription(i, { cancelAtPeriodEnd: true }),
  ],
  cancelAtPeriodEndOver: [
    'cancelled at period end, period over',
    (i) => withSubscription(i, { cancelAtPeriodEnd: true, periodEnd: at(-1) }),
  ],
  cancelled: ['cancelled', (i) => withSubscription(i, { status: 'cancelled' })],
  expired: ['expired', (i) => withSubscription(i, { status: 'expired' })],
  periodOver: [
    'active but the period ended unrenewed',
    (i) => withSubscription(i, { periodEnd: at(-1) }),
  ],
  trialOver: [
    'trialing past trialEndsAt',
    (i) => withSubscription(i, { trialEndsAt: at(-1), periodEnd: at(-1) }),
  ],
  pending: ['pending payment', (i) => withSubscription(i, { status: 'pending_payment' })],
  suspended: ['account suspended', (i) => void (i.account = { status: 'suspended' })],
  deleted: ['account deleted', (i) => void (i.account = { status: 'deleted' })],
  noSubscription: ['no subscription', (i) => void ((i.subscription = null), (i.plan = null))],
  quotaUsedUp: [
    'quota used up',
    (i) => {
      if (i.quota) i.quota = { ...i.quota, usedBytes: i.quota.limitBytes };
    },
  ],
  quotaOverdrawn: [
    'quota overdrawn by in-flight leases',
    (i) => {
      if (i.quota) i.quota = { ...i.quota, usedBytes: i.quota.limitBytes + 5 };
    },
  ],
  quotaPeriodOver: [
    'quota used up in a window that is over',
    (i) => {
      if (i.quota) i.quota = { ...i.quota, usedBytes: i.quota.limitBytes, periodEnd: at(-0.5) };
    },
  ],
  noQuotaCounter: ['no quota counter yet', (i) => void (i.quota = null)],
  walletEmpty: ['wallet empty', (i) => void (i.wallet = { balanceMinor: 0, currency: 'NGN' })],
  walletBelowHour: [
    'wallet below one hour',
    (i) => void (i.wallet = { balanceMinor: 14_999, currency: 'NGN' }),
  ],
  walletExactHour: [
    'wallet holds exactly one hour',
    (i) => void (i.wallet = { balanceMinor: 15_000, currency: 'NGN' }),
  ],
  noWallet: ['no wallet', (i) => void (i.wallet = null)],
  walletOtherCurrency: [
    'wallet in a currency without a rate',
    (i) => void (i.wallet = { balanceMinor: 1_000_000, currency: 'USD' }),
  ],
  hourPaidWalletEmpty: [
    'current hour paid, wallet empty',
    (i) => {
      i.wallet = { balanceMinor: 0, currency: 'NGN' };
      i.paygPaidUntil = at(0.02);
    },
  ],
  hourPaidLapsed: [
    'paid hour over, wallet empty',
    (i) => {
      i.wallet = { balanceMinor: 0, currency: 'NGN' };
      i.paygPaidUntil = at(-0.01);
    },
  ],
};

type Expected = 'on' | 'on+notice' | RefusalCode;

/** plan × state → access. */
const table: Record<string, Partial<Record<keyof typeof scenarios, Expected>>> = {
  trial: {
    running: 'on',
    trialOver: 'TRIAL_ENDED',
    cancelAtPeriodEnd: 'on',
    cancelled: 'CANCELLED',
    expired: 'TRIAL_ENDED',
    pending: 'PAYMENT_PENDING',
    suspended: 'ACCOUNT_SUSPENDED',
    deleted: 'ACCOUNT_DELETED',
    noSubscription: 'NO_SUBSCRIPTION',
    quotaUsedUp: 'QUOTA_EXHAUSTED',
    noQuotaCounter: 'on',
  },
  ...Object.fromEntries(
    ['starter', 'personal', 'team'].map((code) => [
      code,
      {
        running: 'on',
        pastDueInGrace: 'on+notice',
        pastDueAfterGrace: 'PAST_DUE',
        cancelAtPeriodEnd: 'on',
        cancelAtPeriodEndOver: 'CANCELLED',
        cancelled: 'CANCELLED',
        expired: 'SUBSCRIPTION_EXPIRED',
        periodOver: 'SUBSCRIPTION_EXPIRED',
        pending: 'PAYMENT_PENDING',
        suspended: 'ACCOUNT_SUSPENDED',
        deleted: 'ACCOUNT_DELETED',
        noSubscription: 'NO_SUBSCRIPTION',
        quotaUsedUp: 'QUOTA_EXHAUSTED',
        quotaOverdrawn: 'QUOTA_EXHAUSTED',
        quotaPeriodOver: 'on',
        noQuotaCounter: 'on',
      },
    ]),
  ),
  payg: {
    running: 'on',
    cancelled: 'CANCELLED',
    expired: 'SUBSCRIPTION_EXPIRED',
    pending: 'PAYMENT_PENDING',
    suspended: 'ACCOUNT_SUSPENDED',
    noSubscription: 'NO_SUBSCRIPTION',
    walletEmpty: 'WALLET_EMPTY',
    walletBelowHour: 'WALLET_EMPTY',
    walletExactHour: 'on',
    noWallet: 'WALLET_EMPTY',
    walletOtherCurrency: 'WALLET_EMPTY',
    hourPaidWalletEmpty: 'on',
    hourPaidLapsed: 'WALLET_EMPTY',
  },
};

const rows = Object.entries(table).flatMap(([code, states]) =>
  Object.entries(states).map(([key, expected]) => {
    const scenario = scenarios[key];
    if (!scenario || !expected) throw new Error(`bad row ${code}/${key}`);
    return { code, state: scenario[0], change: scenario[1], expected };
  }),
);

describe('computeEntitlements: every plan in every state', () => {
  it.each(rows)('$code, $state → $expected', ({ code, change, expected }) => {
    const result = computeEntitlements(inputFor(code, change));
    if (expected === 'on' || expected === 'on+notice') {
      expect(result.access.on).toBe(true);
      expect(result.access.on && result.access.notice !== null).toBe(expected === 'on+notice');
      expect(result.protocols.allowed.length).toBeGreaterThan(0);
      expect(result.maxConnections).toBe(plan(code).maxConnections);
    } else {
      expect(result.access).toMatchObject({ on: false, code: expected });
      expect(result.access.on ? '' : result.access.message).not.toBe('');
      expect(result.protocols.allowed).toEqual([]);
      expect(result.maxConnections).toBe(0);
      expect(
        checkConnection(result, {
          protocol: 'https',
          port: 443,
          location: 'ng',
          openConnections: 0,
        }),
      ).toMatchObject({ ok: false, code: expected });
    }
  });
});

describe('computeEntitlements: what an entitled account gets', () => {
  it('gives Starter HTTPS only, to the https-only ports, in its chosen location', () => {
    const e = computeEntitlements(inputFor('starter'));
    expect(e.protocols.allowed).toEqual(['https']);
    expect(e.protocols.refused.map((r) => [r.protocol, r.code])).toEqual([
      ['http', 'PROTOCOL_NOT_IN_PLAN'],
      ['socks5', 'PROTOCOL_NOT_IN_PLAN'],
    ]);
    expect(e.protocols.refused[0]?.upgrade).toEqual({
      action: 'upgrade',
      planCode: 'payg',
      text: 'Upgrade to PAYG for all protocols',
    });
    expect(e.ports).toEqual({ allow: [443], block: [25] });
    expect(e.locations).toEqual({ allowed: ['ng'], known: LOCATIONS, toChoose: 0 });
    expect(e.maxConnections).toBe(2);
    expect(e.features).toEqual({ rotation: false, stickySessions: false });
  });

  it('gives Personal every protocol, any port but the blocked ones, every location, rotation and sticky sessions', () => {
    const e = computeEntitlements(inputFor('personal'));
    expect(e.protocols).toEqual({ allowed: ['http', 'https', 'socks5'], refused: [] });
    expect(e.ports).toEqual({ allow: 'any', block: [25] });
    expect(e.locations.allowed).toEqual(LOCATIONS);
    expect(e.features).toEqual({ rotation: true, stickySessions: true });
    expect(e.maxConnections).toBe(10);
  });

  it('counts the remaining bytes of the current window and says when it resets', () => {
    const input = inputFor('starter');
    const e = computeEntitlements(input);
    expect(e.remainingBytes).toBe(10_000_000_000 - 100_000_000);
    expect(e.quotaPeriodEnd).toEqual(input.quota?.periodEnd);
    // The weekly window ends before the monthly period, so that is when to look again.
    expect(e.recheckAt).toEqual(input.quota?.periodEnd);
    expect(e.paygCreditMinor).toBeNull();
  });

  it('treats a window that is over as reset: full allowance until the next window end', () => {
    const e = computeEntitlements(inputFor('starter', scenarios.quotaPeriodOver?.[1]));
    expect(e.remainingBytes).toBe(10_000_000_000);
    expect(e.quotaPeriodEnd).toEqual(new Date('2025-03-14T12:00:00.000Z'));
  });

  it('pools the team quota: one counter for every seat', () => {
    const e = computeEntitlements(
      inputFor('team', (i) => {
        if (i.quota) i.quota = { ...i.quota, usedBytes: 499_000_000_000 };
      }),
    );
    expect(e.remainingBytes).toBe(1_000_000_000);
    expect(e.maxConnections).toBe(50);
  });

  it('says "Data limit reached. Upgrade or wait for reset" with the next plan up', () => {
    const e = computeEntitlements(inputFor('starter', scenarios.quotaUsedUp?.[1]));
    expect(e.access.on).toBe(false);
    if (e.access.on) return;
    expect(e.access.message).toMatch(/^Data limit reached\. Upgrade or wait for reset/);
    expect(e.access.upgrade).toMatchObject({ action: 'upgrade', planCode: 'personal' });
    expect(e.remainingBytes).toBe(0);
  });

  it('shows the PAYG credit and rate, with no byte limit', () => {
    const e = computeEntitlements(inputFor('payg'));
    expect(e.remainingBytes).toBeNull();
    expect(e.paygCreditMinor).toBe(100_000);
    expect(e.paygCurrency).toBe('NGN');
    expect(e.paygHourlyRateMinor).toBe(15_000);
    expect(e.protocols.allowed).toEqual(['http', 'https', 'socks5']);
  });

  it('tells an empty PAYG wallet what an hour costs and to top up', () => {
    const e = computeEntitlements(inputFor('payg', scenarios.walletBelowHour?.[1]));
    expect(e.access).toMatchObject({
      on: false,
      code: 'WALLET_EMPTY',
      upgrade: { action: 'top_up' },
    });
    expect(e.access.on ? '' : e.access.message).toContain('₦150.00');
    expect(e.paygCreditMinor).toBe(14_999);
  });

  it('keeps access on during grace with a PAST_DUE notice, and rechecks when grace ends', () => {
    const input = inputFor('personal', scenarios.pastDueInGrace?.[1]);
    const e = computeEntitlements(input);
    expect(e.access).toMatchObject({
      on: true,
      notice: { code: 'PAST_DUE', upgrade: { action: 'pay' } },
    });
    expect(e.recheckAt).toEqual(at(2));
  });

  it('asks a trial customer to choose a location before connecting', () => {
    const e = computeEntitlements(
      inputFor('trial', (i) => withSubscription(i, { chosenLocations: [] })),
    );
    expect(e.locations).toEqual({ allowed: [], known: LOCATIONS, toChoose: 1 });
    expect(checkConnection(e, { protocol: 'https', port: 443, openConnections: 0 })).toMatchObject({
      ok: false,
      code: 'LOCATION_NOT_CHOSEN',
      upgrade: { action: 'choose_location' },
    });
  });

  it('ignores a chosen location that no longer exists', () => {
    const e = computeEntitlements(
      inputFor('starter', (i) => withSubscription(i, { chosenLocations: ['xx'] })),
    );
    expect(e.locations.allowed).toEqual([]);
    expect(e.locations.toChoose).toBe(1);
  });

  it('is pure: frozen inputs, the same answer twice', () => {
    const input = inputFor('starter');
    const frozen = deepFreeze(input);
    expect(computeEntitlements(frozen)).toEqual(computeEntitlements(frozen));
  });

  it('refuses a plan that does not belong to the subscription (a caller bug)', () => {
    expect(() =>
      computeEntitlements(inputFor('starter', (i) => void (i.plan = plan('personal')))),
    ).toThrow(/plan personal given for a starter subscription/);
  });
});

describe('checkConnection: every refusal', () => {
  const ok = { protocol: 'https', port: 443, location: 'ng', openConnections: 0 } as const;
  type Case = [
    code: string,
    what: string,
    request: Partial<ConnectionRequest>,
    expected: 'ok' | RefusalCode,
    message: RegExp | null,
  ];
  const table: Case[] = [
    ['starter', 'HTTPS to 443 in its location', {}, 'ok', null],
    [
      'starter',
      'plain HTTP',
      { protocol: 'http', port: 80 },
      'PROTOCOL_NOT_IN_PLAN',
      /Upgrade to PAYG for all protocols/,
    ],
    [
      'starter',
      'SOCKS5',
      { protocol: 'socks5' },
      'PROTOCOL_NOT_IN_PLAN',
      /does not include SOCKS5/,
    ],
    [
      'trial',
      'SOCKS5',
      { protocol: 'socks5' },
      'PROTOCOL_NOT_IN_PLAN',
      /Upgrade to PAYG for all protocols/,
    ],
    ['starter', 'HTTPS to port 8443', { port: 8443 }, 'PORT_NOT_ALLOWED', /port 443 only/],
    ['starter', 'port 25', { port: 25 }, 'PORT_BLOCKED', null],
    ['personal', 'port 25', { protocol: 'socks5', port: 25 }, 'PORT_BLOCKED', null],
    ['personal', 'SOCKS5 to port 22', { protocol: 'socks5', port: 22 }, 'ok', null],
    ['trial', 'HTTPS to port 8443 (only Starter is port-restricted)', { port: 8443 }, 'ok', null],
    ['personal', 'port 0', { port: 0 }, 'PORT_NOT_ALLOWED', null],
    ['personal', 'port 65536', { port: 65_536 }, 'PORT_NOT_ALLOWED', null],
    [
      'starter',
      'a location outside the plan',
      { location: 'gb' },
      'LOCATION_NOT_IN_PLAN',
      /Upgrade to Personal/,
    ],
    ['personal', 'a location that does not exist', { location: 'zz' }, 'UNKNOWN_LOCATION', null],
    ['starter', 'a location that does not exist', { location: 'zz' }, 'UNKNOWN_LOCATION', null],
    ['personal', 'an upper-case location code', { location: 'GB' }, 'ok', null],
    ['personal', 'no location (any)', { location: null }, 'ok', null],
    ['starter', 'one connection under the limit', { openConnections: 1 }, 'ok', null],
    [
      'starter',
      'the connection over the limit',
      { openConnections: 2 },
      'CONNECTION_LIMIT',
      /allows 2 connections/,
    ],
    ['team', 'the 51st team connection', { openConnections: 50 }, 'CONNECTION_LIMIT', null],
    [
      'payg',
      'plain HTTP to port 8080 anywhere',
      { protocol: 'http', port: 8080, location: 'us' },
      'ok',
      null,
    ],
  ];
  const cases = table.map(([code, what, request, expected, message]) => ({
    code,
    what,
    request,
    expected,
    message,
  }));

  it.each(cases)('$code: $what → $expected', ({ code, request, expected, message }) => {
    const decision = checkConnection(computeEntitlements(inputFor(code)), { ...ok, ...request });
    if (expected === 'ok') {
      expect(decision).toEqual({ ok: true });
      return;
    }
    expect(decision).toMatchObject({ ok: false, code: expected });
    if (message) expect(decision.ok ? '' : decision.message).toMatch(message);
  });

  it('names no upgrade where buying nothing helps (blocked port, unknown location)', () => {
    const e = computeEntitlements(inputFor('personal'));
    expect(checkConnection(e, { ...ok, port: 25 })).toMatchObject({ upgrade: null });
    expect(checkConnection(e, { ...ok, location: 'zz' })).toMatchObject({ upgrade: null });
  });
});

describe('computeEntitlements: team seats', () => {
  const TEAM_BYTES = 500_000_000_000;
  type SeatCase = [
    what: string,
    plan: string,
    seat: NonNullable<EntitlementsInput['seat']>,
    poolUsedBytes: number,
    expected: 'on' | RefusalCode,
    message: RegExp | null,
    remainingBytes: number | null,
  ];
  const table: SeatCase[] = [
    [
      'a seat without caps gets the pool',
      'team',
      { capBytes: null, usedBytes: 0, maxConnections: null },
      100_000_000,
      'on',
      null,
      TEAM_BYTES - 100_000_000,
    ],
    [
      'a capped seat gets the smaller of its cap and the pool',
      'team',
      { capBytes: 2_000_000_000, usedBytes: 500_000_000, maxConnections: null },
      100_000_000,
      'on',
      null,
      1_500_000_000,
    ],
    [
      'the pool runs short before the cap',
      'team',
      { capBytes: 2_000_000_000, usedBytes: 0, maxConnections: null },
      TEAM_BYTES - 1_000,
      'on',
      null,
      1_000,
    ],
    [
      'a seat at its cap is refused with a seat message',
      'team',
      { capBytes: 2_000_000_000, usedBytes: 2_000_000_000, maxConnections: null },
      100_000_000,
      'QUOTA_EXHAUSTED',
      /^Your seat's data cap is reached; ask your team owner\.$/,
      0,
    ],
    [
      'a spent pool says so to every seat, capped or not',
      'team',
      { capBytes: 2_000_000_000, usedBytes: 0, maxConnections: null },
      TEAM_BYTES,
      'QUOTA_EXHAUSTED',
      /^Data limit reached\. Upgrade or wait for reset/,
      0,
    ],
    [
      'a seat of an owner whose plan has no seats',
      'personal',
      { capBytes: null, usedBytes: 0, maxConnections: null },
      0,
      'NO_SUBSCRIPTION',
      /has no seats for members\. Ask your team owner/,
      0,
    ],
  ];
  const cases = table.map(([what, code, seat, poolUsedBytes, expected, message, remaining]) => ({
    what,
    code,
    seat,
    poolUsedBytes,
    expected,
    message,
    remaining,
  }));

  it.each(cases)(
    '$what → $expected',
    ({ code, seat, poolUsedBytes, expected, message, remaining }) => {
      const e = computeEntitlements(
        inputFor(code, (i) => {
          i.seat = seat;
          if (i.quota) i.quota = { ...i.quota, usedBytes: poolUsedBytes };
        }),
      );
      expect(e.remainingBytes).toBe(remaining);
      if (expected === 'on') {
        expect(e.access.on).toBe(true);
        expect(e.maxConnections).toBe(plan(code).maxConnections);
        return;
      }
      expect(e.access).toMatchObject({ on: false, code: expected });
      if (message) expect(e.access.on ? '' : e.access.message).toMatch(message);
    },
  );

  it("checks a seat's own connection limit and the team's, each with its own words", () => {
    const e = computeEntitlements(
      inputFor('team', (i) => {
        i.seat = { capBytes: null, usedBytes: 0, maxConnections: 2 };
      }),
    );
    const ok = { protocol: 'socks5', port: 443, location: 'ng' } as const;
    expect(checkConnection(e, { ...ok, openConnections: 10, seatOpenConnections: 1 })).toEqual({
      ok: true,
    });
    expect(
      checkConnection(e, { ...ok, openConnections: 10, seatOpenConnections: 2 }),
    ).toMatchObject({
      ok: false,
      code: 'CONNECTION_LIMIT',
      message: 'Your seat allows 2 connections at once. Close one or ask your team owner for more.',
      upgrade: null,
    });
    expect(
      checkConnection(e, { ...ok, openConnections: 50, seatOpenConnections: 0 }),
    ).toMatchObject({ ok: false, code: 'CONNECTION_LIMIT', message: /allows 50 connections/ });
  });

  it('leaves an account that is not a seat without seat limits', () => {
    expect(computeEntitlements(inputFor('team')).seat).toBeNull();
    expect(computeEntitlements(inputFor('personal')).seat).toBeNull();
  });
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
