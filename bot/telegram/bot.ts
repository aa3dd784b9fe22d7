/**
 * The Telegram adapter (grammY): updates in, conversation core, messages out.
 * It only translates: a text (or `/command`), a button press and a shared
 * contact become the core's Inbound; its Outbound become messages with
 * inline keyboards, URL buttons, photos and documents.
 *
 * Around the core: a per-user rate limit (a flood of messages gets one
 * "slow down" and is dropped), auto-retry of flood limits (429 with
 * retry_after) and Telegram's 5xx on every API call, long texts split at
 * Telegram's 4,096 characters, and every error logged with the update.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { sequentialize } from '@grammyjs/runner';
import { Bot, GrammyError, InputFile, type Context } from 'grammy';
import type { InlineKeyboardButton, UserFromGetMe } from 'grammy/types';
import type { Logger } from '../../lib/logger.js';
import { clearChannelFailing } from '../../core/notifications.js';
import { COMMANDS, type Conversation } from '../core/conversation.js';
import { textsFor } from '../core/texts/index.js';
import type { ChatIdentity, Inbound, Menu, Outbound } from '../core/types.js';

export interface TelegramBotOptions {
  token: string;
  /** TELEGRAM_API_ROOT: https://api.telegram.org, or a local Bot API emulator in tests. */
  apiRoot: string;
  conversation: Conversation;
  logger: Logger;
  /** Known bot info skips the getMe call (tests, benchmarks). */
  botInfo?: UserFromGetMe;
  /** Updates per user per window before the bot stops answering for the window. */
  rateLimit?: { updates: number; windowMs: number };
  /** Wait at most this long for a flood limit before giving up a request (default 60 s). */
  maxRetryDelaySeconds?: number;
}

/** Telegram's limit on one message's text. */
export const MAX_MESSAGE_LENGTH = 4096;

export function createTelegramBot(options: TelegramBotOptions): Bot {
  const { conversation, logger } = options;
  const bot = new Bot(options.token, {
    client: { apiRoot: options.apiRoot },
    ...(options.botInfo ? { botInfo: options.botInfo } : {}),
  });
  bot.api.config.use(
    autoRetry({ maxDelaySeconds: options.maxRetryDelaySeconds ?? 60, maxRetryAttempts: 5 }),
  );
  const limiter = new UserRateLimiter(options.rateLimit ?? { updates: 20, windowMs: 10_000 });
  const failingChecks = new EveryFor(60_000);
  // One update per chat at a time (the runner handles chats concurrently): a
  // conversation's turns never overlap.
  bot.use(sequentialize((ctx: Context) => ctx.chat?.id.toString()));

  bot.use(async (ctx, next) => {
    const userId = ctx.from?.id;
    if (userId === undefined) return;
    const verdict = limiter.hit(userId, Date.now());
    if (verdict === 'drop') return;
    if (verdict === 'warn') {
      await ctx.reply(textsFor('en').slowDown).catch(() => undefined);
      return;
    }
    await next();
  });

  const answer = async (ctx: Context, inbound: Inbound): Promise<void> => {
    const from = ctx.from;
    const chatId = ctx.chat?.id;
    if (!from || chatId === undefined) return;
    const identity: ChatIdentity = {
      channel: 'telegram',
      externalId: String(from.id),
      displayName: [from.first_name, from.last_name].filter(Boolean).join(' ') || undefined,
    };
    // Writing again lifts a "blocked the bot" mark left by a failed delivery
    // (checked at most once a minute per user: it is a write).
    if (failingChecks.due(from.id, Date.now())) {
      await clearChannelFailing('telegram', identity.externalId);
    }
    const reply = await conversation.handle(identity, inbound);
    await sendOutbound(bot, chatId, reply.messages);
  };

  bot.on('message:text', async (ctx) => {
    const text = ctx.message.text;
    const command = /^\/([a-z0-9_]+)(?:@\w+)?(?:\s+([\s\S]*))?$/i.exec(text);
    if (command) {
      await answer(ctx, {
        kind: 'command',
        command: (command[1] ?? '').toLowerCase(),
        args: (command[2] ?? '').trim(),
      });
      return;
    }
    await answer(ctx, { kind: 'text', text });
  });
  bot.on('message:contact', async (ctx) => {
    await answer(ctx, { kind: 'contact', phone: ctx.message.contact.phone_number });
  });
  bot.on('callback_query:data', async (ctx) => {
    // Answered first, so the button stops spinning even if the turn is slow.
    await ctx.answerCallbackQuery().catch(() => undefined);
    await answer(ctx, { kind: 'action', action: ctx.callbackQuery.data });
  });
  bot.on('message', async (ctx) => {
    await answer(ctx, { kind: 'text', text: '' });
  });

  bot.catch((error) => {
    const cause = error.error;
    logger.error(
      { err: cause, updateId: error.ctx.update.update_id, chatId: error.ctx.chat?.id },
      cause instanceof GrammyError ? 'telegram.api_failed' : 'telegram.update_failed',
    );
  });
  return bot;
}

/** The commands menu Telegram shows next to the text field. */
export async function registerCommands(bot: Bot): Promise<void> {
  const t = textsFor('en');
  await bot.api.setMyCommands(
    COMMANDS.map(({ command }) => ({
      command,
      description: t.commandDescriptions[command] ?? command,
    })),
  );
}

/**
 * Sends the core's messages to one chat, in order. With `parseMode`, the
 * texts of `text` and `link` messages are in that markup (already escaped by
 * whoever made them); captions stay plain.
 */
export async function sendOutbound(
  bot: Bot,
  chatId: number,
  messages: Outbound[],
  options: { parseMode?: 'HTML' } = {},
): Promise<void> {
  const markup = options.parseMode ? { parse_mode: options.parseMode } : {};
  for (const message of messages) {
    switch (message.kind) {
      case 'text': {
        const parts = splitText(message.text);
        for (const [index, part] of parts.entries()) {
          const last = index === parts.length - 1;
          await bot.api.sendMessage(chatId, part, {
            ...markup,
            link_preview_options: { is_disabled: true },
            ...(last && message.menu ? { reply_markup: keyboard(message.menu) } : {}),
          });
        }
        break;
      }
      case 'link':
        await bot.api.sendMessage(chatId, message.text, {
          ...markup,
          link_preview_options: { is_disabled: true },
          reply_markup: keyboard(message.menu ?? [], [{ text: message.label, url: message.url }]),
        });
        break;
      case 'image':
        await bot.api.sendPhoto(chatId, new InputFile(message.png, 'image.png'), {
          ...(message.caption ? { caption: message.caption } : {}),
          ...(message.menu ? { reply_markup: keyboard(message.menu) } : {}),
        });
        break;
      case 'document':
        await bot.api.sendDocument(chatId, new InputFile(message.bytes, message.filename), {
          ...(message.caption ? { caption: message.caption } : {}),
        });
        break;
    }
  }
}

function keyboard(
  menu: Menu,
  first?: InlineKeyboardButton[],
): { inline_keyboard: InlineKeyboardButton[][] } {
  const rows: InlineKeyboardButton[][] = first ? [first] : [];
  for (const row of menu) {
    rows.push(row.map((item) => ({ text: item.label, callback_data: item.action })));
  }
  return { inline_keyboard: rows };
}

/** Splits a text at line breaks into parts Telegram accepts. */
export function splitText(text: string, limit = MAX_MESSAGE_LENGTH): string[] {
  if (text.length <= limit) return [text];
  const parts: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const candidate = current === '' ? line : `${current}\n${line}`;
    if (candidate.length <= limit) {
      current = candidate;
      continue;
    }
    if (current !== '') parts.push(current);
    let rest = line;
    while (rest.length > limit) {
      parts.push(rest.slice(0, limit));
      rest = rest.slice(limit);
    }
    current = rest;
  }
  if (current !== '') parts.push(current);
  return parts;
}

/**
 * A fixed window per user: the first `updates` in a window pass, the next one
 * gets a "slow down" answer, the rest are dropped until the window ends.
 */
export class UserRateLimiter {
  private readonly windows = new Map<number, { start: number; count: number }>();

  constructor(private readonly limit: { updates: number; windowMs: number }) {}

  hit(userId: number, nowMs: number): 'pass' | 'warn' | 'drop' {
    let window = this.windows.get(userId);
    if (!window || nowMs - window.start >= this.limit.windowMs) {
      if (this.windows.size > 10_000) this.prune(nowMs);
      window = { start: nowMs, count: 0 };
      this.windows.set(userId, window);
    }
    window.count += 1;
    if (window.count <= this.limit.updates) return 'pass';
    return window.count === this.limit.updates + 1 ? 'warn' : 'drop';
  }

  private prune(nowMs: number): void {
    for (const [userId, window] of this.windows) {
      if (nowMs - window.start >= this.limit.windowMs) this.windows.delete(userId);
    }
  }
}

/** Says yes for a key at most once per `intervalMs`. */
export class EveryFor {
  private readonly last = new Map<number, number>();

  constructor(private readonly intervalMs: number) {}

  due(key: number, nowMs: number): boolean {
    const previous = this.last.get(key);
    if (previous !== undefined && nowMs - previous < this.intervalMs) return false;
    if (this.last.size > 10_000) this.last.clear();
    this.last.set(key, nowMs);
    return true;
  }
}
