/**
 * The `proxy` role: the gateway's listeners (SOCKS5 and HTTP proxy) in front of
 * the access controller (credentials, entitlements, exits, leases, metering).
 *
 *   start: the controller loads its cache first, so the first connection is
 *          answered from memory; then the listeners open.
 *   stop:  the listeners close and open tunnels get the drain time to finish;
 *          then the controller flushes usage and returns its leases.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../lib/clock.js';
import type { Role } from '../lib/role.js';
import { GatewayAccessController, type AccessControllerOptions } from './access-controller.js';
import { createGateway, type GatewayTimeouts } from './gateway.js';

export interface ProxyRoleOptions {
  clock: Clock;
  logger: Logger;
  metrics: Registry;
  host: string;
  /** 0 picks a free port (tests). */
  socksPort: number;
  httpPort: number;
  allowPrivateTargets: boolean;
  httpsOnlyPorts: readonly number[];
  blockedPorts: readonly number[];
  timeouts?: GatewayTimeouts;
  /** How long tunnels may run on after stop() closed the listeners. Default 10 s. */
  drainTimeoutMs?: number;
  /** The business settings (usage-alert thresholds an admin chose); the defaults without it. */
  settings?: AccessControllerOptions['settings'];
  /** Tuning of the access controller (tests refresh faster). */
  accessOptions?: Partial<Omit<AccessControllerOptions, 'clock' | 'logger' | 'policy'>>;
}

export interface ProxyRole extends Role {
  readonly name: 'proxy';
  readonly access: GatewayAccessController;
  addresses(): { socks: AddressInfo; http: AddressInfo };
}

export function createProxyRole(options: ProxyRoleOptions): ProxyRole {
  const logger = options.logger.child({ role: 'proxy' });
  const access = new GatewayAccessController({
    ...options.accessOptions,
    ...(options.settings ? { settings: options.settings } : {}),
    clock: options.clock,
    logger,
    metrics: options.metrics,
    policy: { httpsOnlyPorts: options.httpsOnlyPorts, blockedPorts: options.blockedPorts },
  });
  const gateway = createGateway({
    access,
    logger,
    metrics: options.metrics,
    socksPort: options.socksPort,
    httpPort: options.httpPort,
    host: options.host,
    allowPrivateTargets: options.allowPrivateTargets,
    blockedPorts: options.blockedPorts,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  return {
    name: 'proxy',
    access,
    async start() {
      await access.start();
      // The gateway logs `proxy.listening` with both ports.
      await gateway.start();
    },
    async stop() {
      await gateway.stop({ drainTimeoutMs: options.drainTimeoutMs ?? 10_000 });
      await access.stop();
    },
    addresses: () => gateway.addresses(),
  };
}
