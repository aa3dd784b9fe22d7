/**
 * The three outbox deliverers as production runs them, each against a local
 * stand-in for its network: email through a real SMTP conversation with the
 * capture server, Telegram through the real grammY bot and the Bot API
 * emulator, WhatsApp through the fake Baileys socket. For tests that follow a
 * notification all the way to the customer.
 */
import { createConversation } from '../../../bot/core/index.js';
import { createTelegramBot } from '../../../bot/telegram/bot.js';
import { TelegramDeliverer } from '../../../bot/telegram/deliver.js';
import { WhatsAppDeliverer } from '../../../bot/whatsapp/deliver.js';
import { EmailDeliverer } from '../../../core/email/deliver.js';
import { createLogger } from '../../../lib/logger.js';
import type { PaymentsHarness } from '../../support/payments.js';
import { startSmtpCapture, testMailer, type SmtpCapture } from '../../support/smtp-capture.js';
import { startTelegramEmulator, type TelegramEmulator } from '../../support/telegram-emulator.js';
import { FakeSocket } from '../whatsapp/fake-socket.js';

export interface ChannelDeliverers {
  smtp: SmtpCapture;
  emulator: TelegramEmulator;
  socket: FakeSocket;
  email: EmailDeliverer;
  telegram: TelegramDeliverer;
  whatsapp: WhatsAppDeliverer;
  stop(): Promise<void>;
}

/** Starts the capture servers and the deliverers; `name` tells the workers apart. */
export async function startChannelDeliverers(
  h: Pick<PaymentsHarness, 'clock' | 'payments' | 'settings'>,
  options: { token: string; name: string },
): Promise<ChannelDeliverers> {
  const logger = createLogger({ level: 'silent' });
  const smtp = await startSmtpCapture();
  const emulator = await startTelegramEmulator({ token: options.token });
  const socket = new FakeSocket();
  const mailer = testMailer(smtp);
  const conversation = createConversation({
    clock: h.clock,
    payments: h.payments,
    settings: h.settings,
    mailer,
    logger,
    proxy: {
      host: 'p',
      socksPort: 1,
      httpPort: 2,
      policy: { httpsOnlyPorts: [443], blockedPorts: [] },
    },
  });
  const bot = createTelegramBot({
    token: options.token,
    apiRoot: emulator.apiRoot,
    conversation,
    logger,
    botInfo: emulator.botInfo,
  });
  return {
    smtp,
    emulator,
    socket,
    email: new EmailDeliverer({
      mailer,
      clock: h.clock,
      logger,
      workerId: `${options.name}-email`,
    }),
    telegram: new TelegramDeliverer({
      bot,
      clock: h.clock,
      logger,
      workerId: `${options.name}-telegram`,
      adminChatIds: () => Promise.resolve([]),
    }),
    whatsapp: new WhatsAppDeliverer({
      socket: () => socket,
      clock: h.clock,
      logger,
      workerId: `${options.name}-whatsapp`,
      adminNumbers: () => Promise.resolve([]),
    }),
    async stop() {
      await emulator.stop();
      await smtp.stop();
    },
  };
}
