/**
 * Telegram deliveries from the notification outbox: claim the oldest due
 * Telegram slot atomically (core/notifications.ts claimNext, so several
 * processes never send the same item), render it as Telegram HTML (the lead
 * in bold, everything from data escaped: bot/core/notices.ts),
 * send it to the customer's chat (or every admin chat for an admin alert),
 * and record the outcome. Telegram's 403 (the customer blocked the bot, or
 * deleted their account) fails the slot for good and marks the channel as
 * failing, so later notifications skip it until the customer writes again;
 * a flood limit, a 5xx or a network error is retried with backoff.
 */
import { OutboxLoop } from '../../lib/outbox-loop.js';
import { GrammyError, HttpError, type Bot } from 'grammy';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import {
  claimNext,
  markChannelFailing,
  markFailed,
  markSent,
  type ClaimedDelivery,
} from '../../core/notifications.js';
import { ChannelIdentity } from '../../models/channel-identity.js';
import { renderNoticeHtml } from '../core/notices.js';
import { textsFor } from '../core/texts/index.js';
import { sendOutbound } from './bot.js';

export interface TelegramDelivererOptions {
  bot: Bot;
  clock: Clock;
  logger: Logger;
  workerId: string;
  /** Telegram user ids of the admins (ADMIN_TELEGRAM_IDS), for admin alerts. */
  adminChatIds: () => Promise<readonly number[]>;
  /** How long to wait when nothing is due (default 1 s). */
  idleMs?: number;
  /** How long a claim holds before another worker may take it (default 2 min). */
  leaseMs?: number;
}

export class TelegramDeliverer extends OutboxLoop {
  constructor(private readonly options: TelegramDelivererOptions) {
    super({ logger: options.logger, channel: 'telegram', idleMs: options.idleMs });
  }

  /** Claims and sends one due item; false when nothing was due. */
  async deliverOnce(): Promise<boolean> {
    const { clock, workerId } = this.options;
    const claimed = await claimNext('telegram', {
      workerId,
      clock,
      leaseMs: this.options.leaseMs ?? 120_000,
    });
    if (!claimed) return false;
    try {
      await this.send(claimed);
      await markSent(claimed.itemId, 'telegram', { clock, workerId });
    } catch (error) {
      await this.failed(claimed, error);
    }
    return true;
  }

  private async send(claimed: ClaimedDelivery): Promise<void> {
    const messages = await renderNoticeHtml(textsFor('en'), claimed);
    const chats = await this.chatsOf(claimed);
    if (chats.length === 0) throw new NoRecipient(claimed);
    for (const chatId of chats) {
      await sendOutbound(this.options.bot, chatId, messages, { parseMode: 'HTML' });
    }
  }

  private async chatsOf(claimed: ClaimedDelivery): Promise<number[]> {
    if (claimed.audience === 'admins') return [...(await this.options.adminChatIds())];
    if (!claimed.accountId) return [];
    const identity = await ChannelIdentity.findOne({
      accountId: claimed.accountId,
      channel: 'telegram',
    }).lean<{ externalId: string }>();
    return identity ? [Number(identity.externalId)] : [];
  }

  private async failed(claimed: ClaimedDelivery, error: unknown): Promise<void> {
    const { clock, workerId, logger } = this.options;
    const blocked = error instanceof GrammyError && error.error_code === 403;
    const retryable =
      error instanceof HttpError ||
      (error instanceof GrammyError && (error.error_code === 429 || error.error_code >= 500));
    if (blocked && claimed.accountId) {
      await markChannelFailing(claimed.accountId, 'telegram', error.description, { clock });
    }
    const status = await markFailed(claimed.itemId, 'telegram', error, {
      clock,
      workerId,
      retryable,
    });
    logger.warn(
      { err: error, itemId: claimed.itemId, event: claimed.event, status },
      blocked ? 'telegram.delivery_blocked' : 'telegram.delivery_failed',
    );
  }
}

class NoRecipient extends Error {
  constructor(claimed: ClaimedDelivery) {
    super(`no Telegram chat for ${claimed.audience} item ${claimed.itemId}`);
    this.name = 'NoRecipient';
  }
}
