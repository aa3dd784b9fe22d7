import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Role } from '../lib/role.js';
import { createApp, type AppOptions } from './app.js';

export interface ApiRoleOptions {
  port: number;
  host: string;
  logger: Logger;
  metrics: Registry;
  pingDatabase: () => Promise<void>;
  /** How long /readyz waits for the database before answering 503. Default 2000 ms. */
  readinessTimeoutMs?: number;
  /** Feature routers (payments, /api/v1), mounted before the 404 handler. */
  mountRoutes?: AppOptions['mountRoutes'];
  /** Reverse proxies in front of the api (TRUST_PROXY). */
  trustProxy?: number;
  /** Background work to finish once no request is in flight any more (e.g. webhook processing). */
  drainAfterClose?: () => Promise<void>;
  /** How long stop() lets open requests finish before closing their sockets. Default 10 s. */
  drainTimeoutMs?: number;
}

export interface ApiRole extends Role {
  /** The bound address once started (the real port when `port` was 0). */
  address(): AddressInfo;
}

export function createApiRole(options: ApiRoleOptions): ApiRole {
  const logger = options.logger.child({ role: 'api' });
  const app = createApp({
    logger,
    metrics: options.metrics,
    pingDatabase: options.pingDatabase,
    ...(options.readinessTimeoutMs === undefined
      ? {}
      : { readinessTimeoutMs: options.readinessTimeoutMs }),
    ...(options.mountRoutes ? { mountRoutes: options.mountRoutes } : {}),
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
  });
  let server: Server | undefined;

  return {
    name: 'api',
    async start() {
      const srv = createServer(app);
      server = srv;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(options.port, options.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      const { address, port } = srv.address() as AddressInfo;
      logger.info({ address, port }, 'api.listening');
    },
    async stop() {
      const srv = server;
      if (!srv) return;
      server = undefined;
      // Stop accepting, close idle keep-alive sockets now, give busy ones a deadline.
      const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
      srv.closeIdleConnections();
      const deadline = setTimeout(
        () => srv.closeAllConnections(),
        options.drainTimeoutMs ?? 10_000,
      );
      deadline.unref();
      await closed;
      clearTimeout(deadline);
      await options.drainAfterClose?.();
      logger.info('api.stopped');
    },
    address() {
      if (!server) throw new Error('api role is not started');
      return server.address() as AddressInfo;
    },
  };
}
