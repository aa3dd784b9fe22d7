/**
 * The telegram role: the bot (bot/telegram/bot.ts) on the conversation core,
 * and the Telegram deliveries from the notification outbox.
 *
 * Polling (the default): only one process polls at a time. A lease in
 * MongoDB (core/role-lease.ts, `telegram-polling`) elects it; the others
 * stand by and one takes over within the lease's 30 s when the poller dies
 * (at once when it stops cleanly). Updates are fetched with
 * @grammyjs/runner, handled concurrently across chats and in order within
 * a chat. Webhook mode: every process can serve; Telegram POSTs updates to
 * `${PUBLIC_URL}/telegram/webhook` with the secret token, and the api role
 * serves that route (`webhookRouter()`, mounted by main.ts when the api and
 * telegram roles run in the same process). Deliveries run in every telegram
 * process in both modes (each item is claimed by one).
 */
import { run, type RunnerHandle } from '@grammyjs/runner';
import express, { type Router } from 'express';
import { webhookCallback, type Bot } from 'grammy';
import type { UserFromGetMe } from 'grammy/types';
import type { Role } from '../../lib/role.js';
import { LeaseHolder } from '../../core/role-lease.js';
import { adminChatIds } from '../../core/admin/admins.js';
import { createConversation, type Conversation, type ConversationDeps } from '../core/index.js';
import { createTelegramBot, registerCommands } from './bot.js';
import { TelegramDeliverer } from './deliver.js';

export const TELEGRAM_POLLING_LEASE = 'telegram-polling';
export const TELEGRAM_WEBHOOK_PATH = '/telegram/webhook';

export interface TelegramRoleOptions {
  token: string;
  apiRoot: string;
  mode: 'polling' | 'webhook';
  webhookSecret?: string | undefined;
  publicUrl: string;
  deps: ConversationDeps;
  adminIds: readonly number[];
  /** Names this process in the polling lease and the outbox claims. */
  workerId: string;
  botInfo?: UserFromGetMe;
  /** Polling lease lifetime (default 30 s). */
  leaseTtlMs?: number;
  /** Outbox idle wait (default 1 s). */
  deliveryIdleMs?: number;
}

export interface TelegramRole extends Role {
  readonly bot: Bot;
  readonly conversation: Conversation;
  readonly deliverer: TelegramDeliverer;
  /** Whether this process is the one polling now. */
  isPolling(): boolean;
  /** The webhook route for the api role (webhook mode). */
  webhookRouter(): Router;
}

export function createTelegramRole(options: TelegramRoleOptions): TelegramRole {
  const logger = options.deps.logger.child({ role: 'telegram' });
  const conversation = createConversation({ ...options.deps, logger });
  const bot = createTelegramBot({
    token: options.token,
    apiRoot: options.apiRoot,
    conversation,
    logger,
    ...(options.botInfo ? { botInfo: options.botInfo } : {}),
  });
  const deliverer = new TelegramDeliverer({
    bot,
    clock: options.deps.clock,
    logger,
    workerId: options.workerId,
    // Configured admins and the database's (core/admin), looked up at each alert.
    adminChatIds: async () => [
      ...new Set([
        ...options.adminIds,
        ...(await adminChatIds('telegram', options.deps.admins))
          .map(Number)
          .filter(Number.isSafeInteger),
      ]),
    ],
    ...(options.deliveryIdleMs ? { idleMs: options.deliveryIdleMs } : {}),
  });
  let runner: RunnerHandle | undefined;
  const lease = new LeaseHolder({
    name: TELEGRAM_POLLING_LEASE,
    holder: options.workerId,
    ttlMs: options.leaseTtlMs ?? 30_000,
    onAcquired: async () => {
      await bot.api.deleteWebhook();
      runner = run(bot, { runner: { fetch: { timeout: 25 } } });
      logger.info({ worker: options.workerId }, 'telegram.polling_started');
    },
    onLost: async () => {
      const stopping = runner?.isRunning() ? runner.stop() : undefined;
      runner = undefined;
      await stopping;
      logger.info({ worker: options.workerId }, 'telegram.polling_stopped');
    },
    onError: (error) => logger.warn({ err: error }, 'telegram.lease_failed'),
  });

  return {
    name: 'telegram',
    bot,
    conversation,
    deliverer,
    isPolling: () => lease.isHolder,
    webhookRouter() {
      const router = express.Router();
      router.post(
        TELEGRAM_WEBHOOK_PATH,
        express.json({ limit: '1mb' }),
        webhookCallback(bot, 'express', {
          ...(options.webhookSecret ? { secretToken: options.webhookSecret } : {}),
        }),
      );
      return router;
    },
    async start() {
      await bot.init();
      await registerCommands(bot).catch((error: unknown) =>
        logger.warn({ err: error }, 'telegram.set_commands_failed'),
      );
      if (options.mode === 'webhook') {
        await bot.api.setWebhook(`${options.publicUrl}${TELEGRAM_WEBHOOK_PATH}`, {
          ...(options.webhookSecret ? { secret_token: options.webhookSecret } : {}),
        });
      } else {
        await lease.start();
      }
      deliverer.start();
      logger.info({ mode: options.mode, bot: bot.botInfo.username }, 'telegram.started');
    },
    async stop() {
      await lease.stop();
      await deliverer.stop();
    },
  };
}
