/**
 * What the access-layer tests share: customers with real subscriptions and
 * proxy credentials on the test database, locations with exits, controllers
 * (one per simulated gateway process), and a wait-until helper: the caches
 * refresh on real timers, so tests wait for the outcome instead of sleeping.
 */
import { afterAll } from '@jest/globals';
import type { Connection } from 'mongoose';
import { addExit, addLocation } from '../../../../core/locations.js';
import { issueProxyCredentials } from '../../../../core/proxy-credentials.js';
import { seedPlans } from '../../../../core/plans.js';
import { openQuotaPeriod } from '../../../../core/quota.js';
import {
  activateFromPayment,
  chooseLocations,
  currentQuotaWindow,
  getCurrentSubscription,
  startPayg,
} from '../../../../core/subscriptions.js';
import type { TestClock } from '../../../../lib/clock.js';
import { Account } from '../../../../models/account.js';
import {
  GatewayAccessController,
  type AccessControllerOptions,
} from '../../../../proxy/access-controller.js';
import type { AccessDecision, AccessRequest, TunnelGrant } from '../../../../proxy/access.js';

export const HTTPS_PORT = 8443;
export const policy = { httpsOnlyPorts: [HTTPS_PORT], blockedPorts: [25] };

export interface Customer {
  accountId: string;
  username: string;
  secret: string;
}

let paymentCounter = 0;

/** Plans and two locations: `ng` (one direct exit) and `gb` (three upstream exits). */
export async function seedCatalogue(clock: TestClock): Promise<void> {
  await seedPlans(clock);
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  await addLocation({ countryCode: 'gb', city: 'London', label: 'United Kingdom' });
  for (const n of [1, 2, 3]) {
    await addExit('gb', { exitId: `up${n}`, kind: 'socks5', host: `10.0.0.${n}`, port: 1080 });
  }
}

/** A customer on `planCode` (choose-plans pick `ng`) with proxy credentials. */
export async function newCustomer(planCode: string, clock: TestClock): Promise<Customer> {
  const account = await Account.create({});
  const accountId = String(account._id);
  if (planCode === 'payg') {
    await startPayg({ accountId, clock });
  } else {
    paymentCounter += 1;
    const subscription = await activateFromPayment({
      accountId,
      planCode,
      paymentRef: `ref_${accountId}_${paymentCounter}`,
      clock,
    });
    if (planCode === 'trial' || planCode === 'starter') {
      await chooseLocations(subscription._id, { locations: ['ng'], clock });
    }
  }
  const issued = await issueProxyCredentials(accountId, {});
  return { accountId, username: issued.username, secret: issued.secret };
}

/** A Personal customer whose current quota window allows exactly `limitBytes`. */
export async function customerWithQuota(limitBytes: number, clock: TestClock): Promise<Customer> {
  const customer = await newCustomer('personal', clock);
  const subscription = await getCurrentSubscription(customer.accountId);
  const window = subscription ? currentQuotaWindow(subscription, clock.now()) : null;
  if (!window) throw new Error('no quota window');
  await openQuotaPeriod(customer.accountId, {
    periodStart: window.start,
    periodEnd: window.end,
    limitBytes,
  });
  return customer;
}

/** Controllers started for a test file and stopped after it. */
export function useControllers(clock: TestClock): {
  start(
    options?: Partial<AccessControllerOptions> & { connection?: Connection },
  ): Promise<GatewayAccessController>;
} {
  const started: GatewayAccessController[] = [];
  afterAll(async () => {
    await Promise.all(started.map((controller) => controller.stop()));
  });
  return {
    async start(options = {}) {
      const controller = new GatewayAccessController({
        clock,
        policy,
        refreshMs: 100,
        flushMs: 200,
        ...options,
      });
      await controller.start();
      started.push(controller);
      return controller;
    },
  };
}

export function request(customer: Customer, overrides: Partial<AccessRequest> = {}): AccessRequest {
  return {
    username: customer.username,
    password: customer.secret,
    protocol: 'socks5',
    host: 'example.com',
    port: 443,
    sourceIp: '198.51.100.7',
    ...overrides,
  };
}

export function grantOf(decision: AccessDecision): TunnelGrant {
  if (!decision.ok) throw new Error(`expected a grant, got ${decision.code}: ${decision.message}`);
  return decision.grant;
}

/** Resolves when `condition` holds, checking every 20 ms; fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The code a grant was cut with, once it is. */
export function cutCode(grant: TunnelGrant): { readonly code: string | null } {
  const state: { code: string | null } = { code: null };
  grant.onCut((code) => {
    state.code = code;
  });
  return state;
}
