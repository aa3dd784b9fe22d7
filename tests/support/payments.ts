/**
 * Everything a money test needs, all real: the Paystack emulator over HTTP, our
 * Paystack client pointed at it, the payments service on the test database, and
 * the api role on port 0 receiving the emulator's signed webhooks. Time in the
 * business is a TestClock the test advances.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createApiRole, type ApiRole } from '../../api/index.js';
import { paymentRoutes, type PaymentRoutesOptions } from '../../api/payments.js';
import { PaymentsService, type PaymentsContext } from '../../core/payments/index.js';
import { seedPlans } from '../../core/plans.js';
import { createSettingsStore, type SettingsStore } from '../../core/settings.js';
import { TestClock } from '../../lib/clock.js';
import { noFaults, type FaultPoints } from '../../lib/faults.js';
import { createLogger } from '../../lib/logger.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { createPaystackClient } from '../../lib/paystack/client.js';
import {
  startPaystackEmulator,
  type PayOptions,
  type PaystackEmulator,
} from '../../lib/paystack/emulator/index.js';
import { Payment } from '../../models/payment.js';
import { Account, type AccountDocument } from '../../models/account.js';
import type { ProcessOutcome } from '../../core/payments/webhooks.js';

export interface ProcessedWebhook {
  eventId: string;
  outcome: ProcessOutcome;
}

export interface PaymentsHarness {
  readonly emulator: PaystackEmulator;
  readonly payments: PaymentsService;
  readonly ctx: PaymentsContext;
  readonly settings: SettingsStore;
  readonly clock: TestClock;
  readonly secretKey: string;
  /** The api role's base URL (webhooks and the callback page). */
  readonly apiUrl: string;
  readonly processed: ProcessedWebhook[];
  /** Resolves once `count` webhook events in total have been processed (counting earlier ones). */
  waitForProcessed(count: number): Promise<ProcessedWebhook[]>;
  /** Resolves when `condition` holds, checking now and after each processed webhook. */
  waitUntil(condition: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** The customer pays on Paystack; resolves once our side has settled the payment. */
  payAndSettle(reference: string, options?: PayOptions): Promise<void>;
  /** A customer with an email, ready to check out. */
  newCustomer(email?: string): Promise<AccountDocument>;
  /** A payments service with other fault points (the same database, emulator and clock). */
  withFaults(faults: FaultPoints): PaymentsService;
}

export function usePaymentsHarness(
  options: { webhookAllowedIps?: string[]; start?: string } = {},
): PaymentsHarness {
  const secretKey = `sk_test_${randomBytes(12).toString('hex')}`;
  const clock = new TestClock(options.start ?? '2026-11-26T09:00:00.000Z');
  const logger = createLogger({ level: 'silent' });
  const processed: ProcessedWebhook[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let emulator: PaystackEmulator | undefined;
  let api: ApiRole | undefined;
  let payments: PaymentsService | undefined;
  let ctx: PaymentsContext | undefined;
  const settings = createSettingsStore({ clock, refreshMs: 0 });

  const serviceWith = (
    faults: FaultPoints,
  ): { service: PaymentsService; context: PaymentsContext } => {
    if (!emulator) throw new Error('harness not started');
    const context: PaymentsContext = {
      provider: createPaystackClient({ secretKey, baseUrl: emulator.baseUrl, timeoutMs: 2_000 }),
      settings,
      clock,
      logger,
      publicUrl: 'http://atlantic.test',
      faults,
    };
    return { service: new PaymentsService(context, secretKey), context };
  };

  beforeAll(async () => {
    await seedPlans(clock);
    emulator = await startPaystackEmulator({ secretKey, clock });
    const built = serviceWith(noFaults);
    payments = built.service;
    ctx = built.context;
    const service = built.service;
    service.events.on('webhook.processed', (eventId, outcome) => {
      processed.push({ eventId, outcome });
      for (const waiter of [...waiters]) {
        if (processed.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
    api = await startPaymentsApi({
      payments: service,
      logger,
      webhookAllowedIps: options.webhookAllowedIps ?? [],
      links: { telegramBotUsername: 'AtlanticProxyBot', whatsappNumber: '2348000000000' },
      callbackVerifyTimeoutMs: 3_000,
    });
    emulator.setWebhookUrl(`${apiUrlOf(api)}/webhooks/paystack`);
  });

  afterAll(async () => {
    await emulator?.idle();
    await api?.stop();
    await emulator?.stop();
  });

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: use the harness inside tests`);
    return value;
  };

  return {
    get emulator() {
      return need(emulator, 'emulator');
    },
    get payments() {
      return need(payments, 'payments');
    },
    get ctx() {
      return need(ctx, 'ctx');
    },
    settings,
    clock,
    secretKey,
    get apiUrl() {
      return apiUrlOf(need(api, 'api'));
    },
    processed,
    waitForProcessed(count) {
      if (processed.length >= count) return Promise.resolve(processed.slice());
      return new Promise((resolve) => {
        waiters.push({ count, resolve: () => resolve(processed.slice()) });
      });
    },
    async waitUntil(condition, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // Listen before looking, so a webhook processed while the condition is read is not missed.
        const nextProcessed = new Promise<void>((resolve) =>
          waiters.push({ count: processed.length + 1, resolve }),
        );
        if (await condition()) return;
        if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          nextProcessed,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1);
          }),
        ]);
        clearTimeout(timer);
      }
    },
    async payAndSettle(reference, options) {
      await need(emulator, 'emulator').pay(reference, options);
      await this.waitUntil(async () => {
        const payment = await Payment.findOne({ reference });
        return (
          payment !== null && (payment.fulfilledAt !== undefined || payment.status === 'flagged')
        );
      });
    },
    async newCustomer(email) {
      return Account.create({ email: email ?? `c${randomBytes(5).toString('hex')}@example.com` });
    },
    withFaults(faults) {
      return serviceWith(faults).service;
    },
  };
}

/**
 * The api role on 127.0.0.1, port 0, serving the payment routes (webhook and
 * callback) and draining their background work on stop, as main.ts wires it.
 */
export async function startPaymentsApi(
  options: Omit<PaymentRoutesOptions, 'links'> & { links?: PaymentRoutesOptions['links'] },
): Promise<ApiRole> {
  const routes = paymentRoutes({ links: {}, ...options });
  const api = createApiRole({
    port: 0,
    host: '127.0.0.1',
    logger: options.logger,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    pingDatabase: async () => {},
    mountRoutes: (app) => {
      app.use(routes.router);
    },
    drainAfterClose: routes.drain,
  });
  await api.start();
  return api;
}

function apiUrlOf(api: ApiRole): string {
  return `http://127.0.0.1:${api.address().port}`;
}
