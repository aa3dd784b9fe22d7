import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process: every role registers its metrics here and the api
 * role serves it at GET /metrics. A fresh registry (not prom-client's global)
 * keeps tests that build several apps from colliding.
 */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
