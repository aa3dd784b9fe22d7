/**
 * Atlantic's entry point. Parses the configuration once, finds the database
 * (MONGODB_URI, an embedded mongod, or the in-process engine), starts the roles
 * that ROLES selects (default: every role that exists and is configured), and on
 * SIGTERM/SIGINT stops them in reverse order so a deploy loses nothing.
 */
import os from 'node:os';
import mongoose from 'mongoose';
import {
  ConfigError,
  ROLE_NAMES,
  formatConfigError,
  loadConfig,
  selectRoles,
  type Config,
  type RoleName,
} from './config/index.js';
import { createLogger, type Logger } from './lib/logger.js';
import { startDatabaseServer, DatabaseConfigError, type DatabaseServer } from './lib/database.js';
import { createMetricsRegistry } from './lib/metrics.js';
import type { Role } from './lib/role.js';
import { createApiRole, type ApiRole } from './api/index.js';
import { paymentRoutes } from './api/payments.js';
import { sandboxRoutes } from './api/sandbox.js';
import { createApiV1 } from './api/v1/index.js';
import { createTokenSigner } from './api/v1/tokens.js';
import { unsubscribeLinks } from './core/email/unsubscribe.js';
import { createJobsRole } from './jobs/index.js';
import { createProxyRole, type ProxyRole } from './proxy/index.js';
import { addExit, addLocation, listLocations } from './core/locations.js';
import { registerPaymentJobs } from './jobs/payments.js';
import { registerGatewayJobs } from './jobs/gateway.js';
import { registerWalletJobs } from './jobs/wallet.js';
import { registerUsageJobs } from './jobs/usage.js';
import { registerReminderJobs } from './jobs/reminders.js';
import { registerCleanupJobs } from './jobs/cleanup.js';
import { startEmailDelivery } from './jobs/email.js';
import { PaymentsService } from './core/payments/index.js';
import { seedPlans } from './core/plans.js';
import { createSettingsStore } from './core/settings.js';
import { systemClock } from './lib/clock.js';
import { noFaults } from './lib/faults.js';
import { createPaystackClient } from './lib/paystack/client.js';
import { startPaystackEmulator, type PaystackEmulator } from './lib/paystack/emulator/index.js';
import { createMailer } from './lib/mailer.js';
import { createTelegramRole, type TelegramRole } from './bot/telegram/role.js';
import { createWhatsAppRole } from './bot/whatsapp/role.js';
import type { ConversationDeps } from './bot/core/index.js';

/** Roles this build contains; the rest arrive with their issues. */
const builtRoles = [
  'api',
  'proxy',
  'jobs',
  'telegram',
  'whatsapp',
] as const satisfies readonly RoleName[];
type BuiltRole = (typeof builtRoles)[number];
const isBuilt = (role: RoleName): role is BuiltRole =>
  (builtRoles as readonly RoleName[]).includes(role);

/** Database name used on the embedded engines (a MONGODB_URI names its own). */
const embeddedDbName = 'atlantic';

interface Running {
  roles: Role[];
  database: DatabaseServer;
  logger: Logger;
  sandbox?: PaystackEmulator;
}

async function main(): Promise<void> {
  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = loadConfig());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${formatConfigError(err)}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.log.level, pretty: config.log.pretty });
  for (const warning of warnings) logger.warn(warning);

  let selection: ReturnType<typeof selectRoles>;
  try {
    selection = selectRoles(config, builtRoles);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${formatConfigError(err)}\n`);
      process.exit(1);
    }
    throw err;
  }
  for (const { role, reason } of selection.skipped) logger.info({ role, reason }, 'role.skipped');
  for (const role of ROLE_NAMES.filter((name) => !isBuilt(name))) {
    logger.info({ role, reason: 'not part of this build yet' }, 'role.skipped');
  }

  let running: Running | undefined;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown.begin');
    void stopAll(running, logger).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown.failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  try {
    running = await startAll(config, logger, selection.start.filter(isBuilt));
  } catch (err) {
    if (err instanceof DatabaseConfigError) {
      logger.fatal(err.message);
    } else {
      logger.fatal({ err }, 'startup.failed');
    }
    await stopAll(running, logger).catch(() => {});
    process.exit(1);
  }
  logger.info({ roles: running.roles.map((r) => r.name) }, 'atlantic.started');
}

async function startAll(config: Config, logger: Logger, names: BuiltRole[]): Promise<Running> {
  const database = await startDatabaseServer({
    uri: config.mongo.uri,
    isProduction: config.isProduction,
    purpose: 'start',
    dataDir: config.dataDir,
    systemBinary: config.mongo.systemBinary,
    allowDownload: config.mongo.download,
    logger: logger.child({ component: 'database' }),
  });
  const running: Running = { roles: [], database, logger };
  await mongoose.connect(database.uri, {
    ...(database.engine === 'external' ? {} : { dbName: embeddedDbName }),
    serverSelectionTimeoutMS: 10_000,
  });
  const db = mongoose.connection.db;
  if (!db) throw new Error('mongoose connected without a database handle');

  const metrics = createMetricsRegistry();
  const pingDatabase = async (): Promise<void> => {
    await db.command({ ping: 1 });
  };

  const clock = systemClock;
  await seedPlans(clock);
  const settings = createSettingsStore({ clock });
  let paystackBaseUrl = config.paystack.baseUrl;
  if (config.paystack.sandbox) {
    // Only outside production with no Paystack configured (config/ guarantees it).
    running.sandbox = await startPaystackEmulator({
      secretKey: config.paystack.secretKey,
      host: '127.0.0.1',
      logger: logger.child({ component: 'paystack-sandbox' }),
    });
    paystackBaseUrl = running.sandbox.baseUrl;
    // A gateway with no location lets nobody in: give the sandbox one exit, this machine.
    if ((await listLocations()).length === 0) {
      await addLocation({
        countryCode: 'ng',
        city: 'Lagos',
        label: 'Sandbox (exits from this machine)',
      });
      await addExit('ng', { exitId: 'direct', kind: 'direct' });
    }
    logger.warn(
      { paystack: paystackBaseUrl, shop: `${config.publicUrl}/sandbox` },
      'PAYSTACK SANDBOX: no PAYSTACK_SECRET_KEY is set, so payments go to a local Paystack emulator and no real money moves. Set PAYSTACK_SECRET_KEY to use Paystack.',
    );
  }
  const payments = new PaymentsService(
    {
      provider: createPaystackClient({
        secretKey: config.paystack.secretKey,
        baseUrl: paystackBaseUrl,
        logger,
      }),
      settings,
      clock,
      logger: logger.child({ component: 'payments' }),
      publicUrl: config.publicUrl,
      faults: noFaults,
    },
    config.paystack.secretKey,
  );
  const webhooks = paymentRoutes({
    payments,
    logger,
    webhookAllowedIps: config.paystack.webhookAllowedIps,
    links: {
      telegramBotUsername: config.telegram.botUsername,
      whatsappNumber: config.whatsapp.publicNumber,
    },
  });
  let apiRole: ApiRole | undefined;
  let proxyRole: ProxyRole | undefined;
  const mailer = createMailer({
    smtpUrl: config.mail.smtpUrl,
    from: config.mail.from,
    dataDir: config.dataDir,
    isProduction: config.isProduction,
    logger: logger.child({ component: 'mail' }),
  });
  const workerName = `${os.hostname()}:${process.pid}`;
  // What both chat roles talk to.
  const chatDeps: ConversationDeps = {
    clock,
    payments,
    settings,
    mailer,
    logger,
    publicUrl: config.publicUrl,
    admins: {
      telegramIds: config.telegram.adminIds,
      whatsappNumbers: config.whatsapp.adminNumbers,
    },
    proxy: {
      host: config.proxy.publicHost,
      socksPort: config.proxy.socksPort,
      httpPort: config.proxy.httpPort,
      policy: {
        httpsOnlyPorts: config.proxy.httpsOnlyPorts,
        blockedPorts: config.proxy.blockedPorts,
      },
    },
  };
  // Made before the api role, which serves its webhook route in webhook mode.
  const telegramToken = config.telegram.token;
  const telegramRole: TelegramRole | undefined =
    names.includes('telegram') && telegramToken !== undefined
      ? createTelegramRole({
          token: telegramToken,
          apiRoot: config.telegram.apiRoot,
          mode: config.telegram.mode,
          webhookSecret: config.telegram.webhookSecret,
          publicUrl: config.publicUrl,
          adminIds: config.telegram.adminIds,
          workerId: workerName,
          deps: chatDeps,
        })
      : undefined;
  // One-click unsubscribe links in emails: signed by the jobs role's mails, checked by the api's page.
  const unsubscribe = unsubscribeLinks(config.auth.jwtSecret);
  // The REST API: the same core as the bots, over HTTP under /api/v1.
  const restApi = createApiV1({
    deps: {
      clock,
      tokens: createTokenSigner(config.auth.jwtSecret, clock),
      mailer,
      payments,
      settings,
      logger: logger.child({ component: 'rest' }),
      publicUrl: config.publicUrl,
      configuredAdmins: chatDeps.admins ?? { telegramIds: [], whatsappNumbers: [] },
      proxy: chatDeps.proxy,
      unsubscribe,
      links: {
        telegramBotUsername: config.telegram.botUsername,
        whatsappNumber: config.whatsapp.publicNumber,
      },
    },
    corsOrigins: config.api.corsOrigins,
  });
  const factories: Record<BuiltRole, () => Role> = {
    api: () =>
      (apiRole = createApiRole({
        port: config.api.port,
        host: config.bindHost,
        logger,
        metrics,
        pingDatabase,
        trustProxy: config.trustProxy,
        mountRoutes: (app) => {
          app.use(webhooks.router);
          app.use(restApi.router);
          if (telegramRole && config.telegram.mode === 'webhook') {
            app.use(telegramRole.webhookRouter());
          }
          if (config.paystack.sandbox) {
            app.use(
              sandboxRoutes({
                payments,
                logger,
                clock,
                proxyPorts: () => {
                  try {
                    const { socks, http } = proxyRole?.addresses() ?? {};
                    return {
                      socksPort: socks?.port ?? config.proxy.socksPort,
                      httpPort: http?.port ?? config.proxy.httpPort,
                    };
                  } catch {
                    // The gateway is not listening (yet, or in this process).
                    return { socksPort: config.proxy.socksPort, httpPort: config.proxy.httpPort };
                  }
                },
              }),
            );
          }
        },
        drainAfterClose: webhooks.drain,
      })),
    proxy: () =>
      (proxyRole = createProxyRole({
        clock,
        logger,
        metrics,
        host: config.bindHost,
        socksPort: config.proxy.socksPort,
        httpPort: config.proxy.httpPort,
        allowPrivateTargets: config.proxy.allowPrivateTargets,
        httpsOnlyPorts: config.proxy.httpsOnlyPorts,
        blockedPorts: config.proxy.blockedPorts,
        settings,
      })),
    jobs: () =>
      withEmailDelivery(
        createJobsRole({
          db,
          logger,
          metrics,
          workerName,
          register: async (agenda) => {
            await registerPaymentJobs(agenda, payments);
            await registerGatewayJobs(agenda, { clock, logger: logger.child({ jobs: 'gateway' }) });
            await registerWalletJobs(agenda, { clock, logger: logger.child({ jobs: 'wallet' }) });
            await registerUsageJobs(agenda, {
              clock,
              logger: logger.child({ jobs: 'usage' }),
              settings,
            });
            await registerReminderJobs(agenda, {
              clock,
              settings,
              logger: logger.child({ jobs: 'reminders' }),
            });
            await registerCleanupJobs(agenda, {
              clock,
              settings,
              logger: logger.child({ jobs: 'cleanup' }),
            });
          },
        }),
        // The jobs role also delivers the outbox's email items.
        () =>
          startEmailDelivery({
            mailer,
            clock,
            logger: logger.child({ component: 'email' }),
            workerId: `${workerName}:email`,
            unsubscribe,
            render: {
              publicUrl: config.publicUrl,
              telegramBotUsername: config.telegram.botUsername,
            },
          }),
      ),
    telegram: () => {
      if (!telegramRole) throw new Error('telegram role selected without TELEGRAM_BOT_TOKEN');
      return telegramRole;
    },
    whatsapp: () =>
      createWhatsAppRole({
        deps: chatDeps,
        adminNumbers: config.whatsapp.adminNumbers,
        pairingNumber: config.whatsapp.pairingNumber,
        workerId: workerName,
      }),
  };
  for (const name of names) {
    const role = factories[name]();
    await role.start();
    running.roles.push(role);
    if (name === 'api' && running.sandbox && apiRole) {
      // The sandbox sends its webhooks to this process's own api.
      running.sandbox.setWebhookUrl(`http://127.0.0.1:${apiRole.address().port}/webhooks/paystack`);
    }
  }
  return running;
}

async function stopAll(running: Running | undefined, logger: Logger): Promise<void> {
  if (!running) return;
  for (const role of [...running.roles].reverse()) {
    try {
      await role.stop();
    } catch (err) {
      logger.error({ err, role: role.name }, 'role.stop_failed');
    }
  }
  await running.sandbox?.stop();
  await mongoose.disconnect();
  await running.database.stop();
  logger.info('shutdown.done');
}

await main();

/** A role that also runs a background loop (started after it, stopped before it). */
function withEmailDelivery(role: Role, start: () => { stop(): Promise<void> }): Role {
  let loop: { stop(): Promise<void> } | undefined;
  return {
    name: role.name,
    async start() {
      await role.start();
      loop = start();
    },
    async stop() {
      await loop?.stop();
      await role.stop();
    },
  };
}
