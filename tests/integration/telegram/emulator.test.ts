/**
 * The Telegram Bot API emulator, driven by the real grammY stack over real
 * HTTP: `bot.start()` long polling, @grammyjs/runner, webhooks, InputFile
 * uploads. Nothing is mocked and nothing sleeps; every wait is on an event.
 *
 * @grammyjs/auto-retry is not installed, so the 429 case checks what a retry
 * layer would see (GrammyError 429 with parameters.retry_after) instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { run } from '@grammyjs/runner';
import { Bot, GrammyError, InlineKeyboard, InputFile, Keyboard, webhookCallback } from 'grammy';
import QRCode from 'qrcode';

import { startTelegramEmulator } from '../../support/telegram-emulator.js';
import type { TelegramEmulator } from '../../support/telegram-emulator.js';

const TOKEN = '123456789:AAH-emulator_self_test-0123456789abc';

let emulator: TelegramEmulator;
/** Stops whatever a test started (bot, runner, webhook server) before the emulator goes. */
let cleanup: (() => Promise<void>) | undefined;

beforeEach(async () => {
  emulator = await startTelegramEmulator({ token: TOKEN });
});

afterEach(async () => {
  const stopStarted = cleanup;
  cleanup = undefined;
  try {
    await stopStarted?.();
  } finally {
    await emulator.stop();
  }
});

function newBot(): Bot {
  return new Bot(TOKEN, { client: { apiRoot: emulator.apiRoot } });
}

/** `bot.start()` long polling; a crash of the loop fails the test when it is stopped. */
function startPolling(bot: Bot): void {
  const polling = bot.start();
  polling.catch(() => undefined);
  cleanup = async () => {
    await bot.stop();
    await polling;
  };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** Length and SHA-256: jest's deep equality on 200 KB Buffers takes most of a second. */
function fingerprint(bytes: Buffer | undefined): string {
  if (bytes === undefined) return 'nothing';
  return `${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`;
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

describe('Telegram Bot API emulator with the real grammY stack', () => {
  it('answers /start with a message carrying its inline keyboard', async () => {
    const bot = newBot();
    let commandEntities: unknown;
    bot.command('start', async (ctx) => {
      commandEntities = ctx.message?.entities;
      await ctx.reply('Welcome to Atlantic', {
        reply_markup: new InlineKeyboard()
          .text('Buy a plan', 'buy')
          .row()
          .url('Help', 'https://atlantic.example/help'),
      });
    });
    startPolling(bot);
    const user = emulator.user({ id: 1001, firstName: 'Ada', username: 'ada' });

    user.sendText('/start');
    const welcome = await user.nextMessage();

    expect(welcome.text).toBe('Welcome to Atlantic');
    expect(welcome.inlineKeyboard).toEqual([
      [{ text: 'Buy a plan', callbackData: 'buy' }],
      [{ text: 'Help', url: 'https://atlantic.example/help' }],
    ]);
    expect(welcome.raw.from).toMatchObject({ id: emulator.botInfo.id, is_bot: true });
    expect(welcome.raw.chat).toMatchObject({ id: 1001, type: 'private', username: 'ada' });
    expect(commandEntities).toEqual([{ type: 'bot_command', offset: 0, length: 6 }]);
  });

  it('answers a button press by editing the message and answering the callback query', async () => {
    const bot = newBot();
    bot.command('start', (ctx) =>
      ctx.reply('Pick a plan', {
        reply_markup: new InlineKeyboard()
          .text('Weekly', 'plan:weekly')
          .text('Monthly', 'plan:monthly'),
      }),
    );
    bot.callbackQuery(/^plan:(.+)$/, async (ctx) => {
      await ctx.editMessageText(`You chose ${ctx.match[1] ?? ''}`, {
        reply_markup: new InlineKeyboard().text('Pay', 'pay'),
      });
      await ctx.answerCallbackQuery({ text: 'Plan saved' });
    });
    startPolling(bot);
    const user = emulator.user({ id: 1002, firstName: 'Bola' });
    user.sendText('/start');
    const menu = await user.nextMessage();

    const answer = await user.pressButton(menu, 'plan:monthly').answered();

    expect(answer).toMatchObject({
      text: 'Plan saved',
      data: 'plan:monthly',
      messageId: menu.messageId,
      showAlert: false,
    });
    const edited = user.message(menu.messageId);
    expect(edited?.text).toBe('You chose monthly');
    expect(edited?.buttons).toEqual([{ text: 'Pay', callbackData: 'pay' }]);
    expect(edited?.editCount).toBe(1);
    expect(user.messages()).toHaveLength(1);
    expect(user.callbackAnswers()).toEqual([answer]);
    expect(() => user.pressButton(menu, 'plan:weekly')).toThrow(
      /no button with callback_data "plan:weekly"/,
    );
  });

  it('drops the inline keyboard on a text edit without reply_markup and refuses an edit that changes nothing', async () => {
    const bot = newBot();
    const user = emulator.user({ id: 1003, firstName: 'Chidi', hasStartedBot: true });
    const sent = await bot.api.sendMessage(user.chatId, 'Menu', {
      reply_markup: new InlineKeyboard().text('Renew', 'renew'),
    });

    await bot.api.editMessageText(user.chatId, sent.message_id, 'Menu, updated');

    expect(user.message(sent.message_id)?.inlineKeyboard).toBeUndefined();
    await expect(
      bot.api.editMessageText(user.chatId, sent.message_id, 'Menu, updated'),
    ).rejects.toMatchObject({
      error_code: 400,
      description: expect.stringContaining('Bad Request: message is not modified'),
    });
    await expect(bot.api.deleteMessage(user.chatId, sent.message_id)).resolves.toBe(true);
    await expect(bot.api.deleteMessage(user.chatId, sent.message_id)).rejects.toMatchObject({
      description: 'Bad Request: message to delete not found',
    });
    expect(user.messages()).toEqual([]);
  });

  it('delivers photos and documents uploaded from Buffers byte for byte', async () => {
    const png = await QRCode.toBuffer('https://atlantic.example/pay/42');
    // Random bytes plus CRLFs and a fake delimiter, so a sloppy multipart parser shows.
    const pdf = Buffer.concat([
      Buffer.from('%PDF-1.7\r\n'),
      randomBytes(200_000),
      Buffer.from('\r\n--not-the-boundary\r\n\r\n'),
      randomBytes(1000),
    ]);
    const bot = newBot();
    bot.command('pay', async (ctx) => {
      await ctx.replyWithPhoto(new InputFile(png, 'qr.png'), { caption: 'Scan to pay' });
      await ctx.replyWithDocument(new InputFile(pdf, 'invoice-42.pdf'), {
        caption: 'Your invoice',
      });
    });
    startPolling(bot);
    const user = emulator.user({ id: 1004, firstName: 'Dayo' });

    user.sendText('/pay');
    const [photo, invoice] = await user.waitForMessages(2);

    expect(photo?.caption).toBe('Scan to pay');
    expect(fingerprint(photo?.photo?.bytes)).toBe(fingerprint(png));
    expect(photo?.photo).toMatchObject({
      width: png.readUInt32BE(16),
      height: png.readUInt32BE(20),
      fileSize: png.length,
    });
    expect(invoice?.caption).toBe('Your invoice');
    expect(invoice?.document).toMatchObject({
      fileName: 'invoice-42.pdf',
      mimeType: 'application/pdf',
      fileSize: pdf.length,
    });
    expect(fingerprint(invoice?.document?.bytes)).toBe(fingerprint(pdf));
    const file = await bot.api.getFile(invoice?.document?.fileId ?? '');
    const download = await fetch(`${emulator.apiRoot}/file/bot${TOKEN}/${file.file_path ?? ''}`);
    expect(fingerprint(Buffer.from(await download.arrayBuffer()))).toBe(fingerprint(pdf));
  });

  it('hands a long poll the update that arrives while it waits, and keeps it until an offset confirms it', async () => {
    const bot = newBot();
    const user = emulator.user({ id: 1005, firstName: 'Emeka' });

    const poll = bot.api.getUpdates({ timeout: 30 });
    await emulator.waitForLongPoll();
    const sent = user.sendText('hello');
    const updates = await poll;

    expect(updates.map((update) => update.message?.text)).toEqual(['hello']);
    expect(updates[0]?.message?.message_id).toBe(sent.message_id);
    const updateId = updates[0]?.update_id ?? 0;
    expect(await bot.api.getUpdates({ timeout: 0 })).toHaveLength(1);
    expect(await bot.api.getUpdates({ offset: updateId + 1, timeout: 0 })).toEqual([]);
    expect(emulator.pendingUpdates).toEqual([]);
  });

  it('runs under @grammyjs/runner and stops cleanly', async () => {
    const bot = newBot();
    bot.command('start', (ctx) => ctx.reply('Hi from the runner'));
    const runner = run(bot);
    cleanup = async () => {
      if (runner.isRunning()) await runner.stop();
    };
    const user = emulator.user({ id: 1006, firstName: 'Funmi' });

    user.sendText('/start');
    const reply = await user.nextMessage();
    await runner.stop();

    expect(reply.text).toBe('Hi from the runner');
    expect(runner.isRunning()).toBe(false);
  });

  it('turns an injected 429 into a GrammyError with retry_after and sends nothing', async () => {
    const bot = newBot();
    const user = emulator.user({ id: 1007, firstName: 'Gbenga', hasStartedBot: true });
    emulator.failNext('sendMessage', { status: 429, retryAfter: 3 });

    const refused = await bot.api
      .sendMessage(user.chatId, 'Your proxy is ready')
      .catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(GrammyError);
    expect(refused).toMatchObject({
      error_code: 429,
      description: 'Too Many Requests: retry after 3',
      parameters: { retry_after: 3 },
    });
    expect(user.messages()).toEqual([]);
    await bot.api.sendMessage(user.chatId, 'Your proxy is ready');
    expect(user.messages().map((message) => message.text)).toEqual(['Your proxy is ready']);
    expect(
      emulator.calls
        .filter((call) => call.method === 'sendMessage')
        .map((call) => [call.status, call.isFault]),
    ).toEqual([
      [429, true],
      [200, false],
    ]);
  });

  it('refuses sends to a person who blocked the bot with 403 and tells the bot through my_chat_member', async () => {
    const bot = newBot();
    const blocked = deferred<string>();
    bot.command('start', (ctx) => ctx.reply('Welcome'));
    bot.on('my_chat_member', (ctx) => blocked.resolve(ctx.myChatMember.new_chat_member.status));
    startPolling(bot);
    const user = emulator.user({ id: 1008, firstName: 'Halima' });
    user.sendText('/start');
    await user.nextMessage();

    user.block();

    expect(await blocked.promise).toBe('kicked');
    const refused = await bot.api
      .sendMessage(user.chatId, 'Renewal reminder')
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GrammyError);
    expect(refused).toMatchObject({
      error_code: 403,
      description: 'Forbidden: bot was blocked by the user',
    });
  });

  it('refuses an unknown chat with 400 and a person who never opened the chat with 403', async () => {
    const bot = newBot();
    const stranger = emulator.user({ id: 1009, firstName: 'Ifeoma' });

    const unknown = await bot.api.sendMessage(999_999, 'hello').catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(GrammyError);
    expect(unknown).toMatchObject({ error_code: 400, description: 'Bad Request: chat not found' });
    await expect(bot.api.sendMessage(stranger.chatId, 'hello')).rejects.toMatchObject({
      error_code: 403,
      description: "Forbidden: bot can't initiate conversation with a user",
    });
  });

  it('refuses what Telegram refuses: empty and oversized texts, long callback data, bad markup', async () => {
    const bot = newBot();
    const user = emulator.user({ id: 1010, firstName: 'Jide', hasStartedBot: true });

    await expect(bot.api.sendMessage(user.chatId, '')).rejects.toMatchObject({
      error_code: 400,
      description: 'Bad Request: message text is empty',
    });
    await expect(bot.api.sendMessage(user.chatId, 'x'.repeat(4097))).rejects.toMatchObject({
      description: 'Bad Request: message is too long',
    });
    await expect(bot.api.sendMessage(user.chatId, 'x'.repeat(4096))).resolves.toMatchObject({
      text: 'x'.repeat(4096),
    });
    await expect(
      bot.api.sendMessage(user.chatId, 'Pick', {
        reply_markup: new InlineKeyboard().text('Too much data', 'd'.repeat(65)),
      }),
    ).rejects.toMatchObject({ description: 'Bad Request: BUTTON_DATA_INVALID' });
    await expect(
      bot.api.sendMessage(user.chatId, 'Price < 100', { parse_mode: 'HTML' }),
    ).rejects.toMatchObject({
      description: `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 6`,
    });
    await expect(
      bot.api.sendMessage(user.chatId, 'Costs 5.00', { parse_mode: 'MarkdownV2' }),
    ).rejects.toMatchObject({
      description: `Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'`,
    });
    expect(user.messages()).toHaveLength(1);
  });

  it('parses HTML into the text and entities the person sees', async () => {
    const bot = newBot();
    const user = emulator.user({ id: 1011, firstName: 'Kemi', hasStartedBot: true });

    const sent = await bot.api.sendMessage(
      user.chatId,
      '<b>Weekly</b> plan &amp; <a href="https://atlantic.example">site</a>',
      { parse_mode: 'HTML' },
    );

    expect(sent.text).toBe('Weekly plan & site');
    expect(sent.entities).toEqual([
      { type: 'bold', offset: 0, length: 6 },
      { type: 'text_link', offset: 14, length: 4, url: 'https://atlantic.example' },
    ]);
    expect(user.messages()[0]?.parseMode).toBe('HTML');
  });

  it('shows a reply keyboard and shares the contact from its request_contact button', async () => {
    const bot = newBot();
    bot.command('start', (ctx) =>
      ctx.reply('Share your number', {
        reply_markup: new Keyboard().requestContact('Share phone').oneTime(),
      }),
    );
    bot.on('message:contact', (ctx) =>
      ctx.reply(`Got ${ctx.message.contact.phone_number}`, {
        reply_markup: { remove_keyboard: true },
      }),
    );
    startPolling(bot);
    const user = emulator.user({ id: 1012, firstName: 'Lola' });
    user.sendText('/start');
    await user.nextMessage();
    expect(user.replyKeyboard()?.rows).toEqual([
      [{ text: 'Share phone', requestContact: true, requestLocation: false }],
    ]);

    user.pressReplyButton('Share phone', { contactPhoneNumber: '+2348012345678' });

    expect((await user.nextMessage()).text).toBe('Got +2348012345678');
    expect(user.replyKeyboard()).toBeUndefined();
  });

  it('answers an unknown token with 401 and an unknown method with 404', async () => {
    const stranger = new Bot('987654321:AAF-not-this-bot', {
      client: { apiRoot: emulator.apiRoot },
    });

    await expect(stranger.api.getMe()).rejects.toMatchObject({
      error_code: 401,
      description: 'Unauthorized',
    });
    const response = await fetch(`${emulator.apiRoot}/bot${TOKEN}/sendTelepathy`, {
      method: 'POST',
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ ok: false, error_code: 404, description: 'Not Found' });
  });

  it('delivers updates to a webhook with the secret token and runs a method sent back in its answer', async () => {
    const bot = new Bot(TOKEN, {
      client: {
        apiRoot: emulator.apiRoot,
        canUseWebhookReply: (method) => method === 'sendMessage',
      },
    });
    bot.command('start', (ctx) => ctx.reply('Hello over the webhook'));
    const handleUpdate = webhookCallback(bot, 'http', { secretToken: 'wh-secret_1' });
    const server = createServer((request, response) => {
      handleUpdate(request, response).catch((error: unknown) => {
        response.writeHead(500).end(String(error));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup = () => closeServer(server);
    const { port } = server.address() as AddressInfo;
    emulator.deliverTo(`http://127.0.0.1:${port}/telegram`, 'wh-secret_1');
    const user = emulator.user({ id: 1013, firstName: 'Musa' });

    user.sendText('/start');
    const reply = await user.nextMessage();

    expect(reply.text).toBe('Hello over the webhook');
    expect((await emulator.waitForCall('sendMessage')).isWebhookReply).toBe(true);
    expect(emulator.deliveries).toEqual([expect.objectContaining({ status: 200 })]);
    expect(await bot.api.getWebhookInfo()).toMatchObject({
      url: `http://127.0.0.1:${port}/telegram`,
      pending_update_count: 0,
    });
    await expect(bot.api.getUpdates()).rejects.toMatchObject({ error_code: 409 });
  });
});
