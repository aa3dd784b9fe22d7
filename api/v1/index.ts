/**
 * The REST API, /api/v1: every route group's declarations, mounted through
 * the same gates (api/v1/mount.ts) and described at /api/v1/openapi.json from
 * the same declarations (api/v1/openapi.ts). Server-rendered pages that links
 * in emails land on (verify an email, set a new password) live outside /api.
 */
import express from 'express';
import { buildOpenApi } from './openapi.js';
import { mountRoutes } from './mount.js';
import type { AnyRoute, ApiDeps } from './route.js';
import { accountRoutes } from './routes/account.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { billingRoutes } from './routes/billing.js';
import { catalogueRoutes } from './routes/catalogue.js';
import { proxyRoutes } from './routes/proxy.js';
import { teamRoutes } from './routes/team.js';
import { usageRoutes } from './routes/usage.js';
import { accountPages } from './pages.js';

export type { ApiDeps } from './route.js';

export const API_VERSION = '1.0.0';

/** Every declared route, in the order they are mounted and described. */
export function allRoutes(): AnyRoute[] {
  return [
    ...authRoutes,
    ...accountRoutes,
    ...catalogueRoutes,
    ...billingRoutes,
    ...usageRoutes,
    ...proxyRoutes,
    ...teamRoutes,
    ...adminRoutes,
  ];
}

export interface ApiV1Options {
  deps: ApiDeps;
  /** Browser origins allowed to call the API (CORS); empty = CORS off. */
  corsOrigins?: readonly string[];
}

export interface ApiV1 {
  /** Mount at the app's root: it serves /api/v1/... and the account pages. */
  router: express.Router;
  /** The /api/v1 part alone (what the OpenAPI description covers). */
  apiRouter: express.Router;
  routes: readonly AnyRoute[];
  openapi: Record<string, unknown>;
}

export function createApiV1(options: ApiV1Options): ApiV1 {
  const routes = allRoutes();
  const openapi = buildOpenApi(routes, { version: API_VERSION, serverUrl: options.deps.publicUrl });
  const api = express.Router();
  api.use(cors(options.corsOrigins ?? []));
  api.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  mountRoutes(api, routes, options.deps);

  const router = express.Router();
  router.use('/api/v1', api);
  router.use(accountPages(options.deps));
  return { router, apiRouter: api, routes, openapi };
}

/**
 * CORS for the listed origins only: no header at all for others (the browser
 * then refuses), and preflights answered here. Off by default: the API is
 * called by servers and apps, not by pages on other sites.
 */
function cors(origins: readonly string[]): express.RequestHandler {
  const allowed = new Set(origins.map((origin) => origin.replace(/\/$/, '').toLowerCase()));
  return (req, res, next) => {
    const origin = req.get('origin');
    if (allowed.size === 0 || !origin || !allowed.has(origin.toLowerCase())) {
      next();
      return;
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    res.setHeader('access-control-expose-headers', 'x-request-id, retry-after');
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE');
      res.setHeader(
        'access-control-allow-headers',
        'authorization, content-type, x-request-id, idempotency-key',
      );
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
