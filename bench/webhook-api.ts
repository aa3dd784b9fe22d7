/**
 * Atlantic's payments service and webhook route as the webhook benchmark runs
 * them, in its own process (webhooks.bench.ts) or in each cluster worker
 * (webhook-cluster.ts): the real code, a silent logger, port 0.
 */
import type { Logger } from 'pino';
import { createApiRole, type ApiRole } from '../api/index.js';
import { paymentRoutes } from '../api/payments.js';
import { PaymentsService } from '../core/payments/index.js';
import { createSettingsStore } from '../core/settings.js';
import { systemClock } from '../lib/clock.js';
import { noFaults } from '../lib/faults.js';
import { createMetricsRegistry } from '../lib/metrics.js';
import { createPaystackClient } from '../lib/paystack/client.js';

export function benchPayments(options: {
  secretKey: string;
  paystackBaseUrl: string;
  logger: Logger;
}): PaymentsService {
  return new PaymentsService(
    {
      provider: createPaystackClient({
        secretKey: options.secretKey,
        baseUrl: options.paystackBaseUrl,
      }),
      settings: createSettingsStore({ clock: systemClock }),
      clock: systemClock,
      logger: options.logger,
      publicUrl: 'http://bench.local',
      faults: noFaults,
    },
    options.secretKey,
  );
}

/** The api role with only the payment routes, listening on a free loopback port. */
export async function startBenchApi(payments: PaymentsService, logger: Logger): Promise<ApiRole> {
  const api = createApiRole({
    port: 0,
    host: '127.0.0.1',
    logger,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    pingDatabase: async () => {},
    mountRoutes: (app) => {
      app.use(paymentRoutes({ payments, logger, webhookAllowedIps: [], links: {} }).router);
    },
  });
  await api.start();
  return api;
}
