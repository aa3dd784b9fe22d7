/**
 * The conversation core with real everything around it: the payments harness
 * (Paystack emulator, api role for its webhooks, TestClock), a real mailer
 * sending to a local SMTP capture server, and chat users that send text,
 * commands and button presses and read the answers.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { createConversation, type Conversation } from '../../bot/core/index.js';
import type { ConfiguredAdmins } from '../../bot/core/conversation.js';
import type { ChatIdentity, Inbound, Outbound } from '../../bot/core/types.js';
import { createLogger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { usePaymentsHarness, type PaymentsHarness } from './payments.js';
import { startSmtpCapture, testMailer, type SmtpCapture } from './smtp-capture.js';

export interface ChatUser {
  readonly identity: ChatIdentity;
  /** Everything the bot answered this user, oldest first. */
  readonly received: Outbound[];
  send(text: string): Promise<Outbound[]>;
  command(command: string, args?: string): Promise<Outbound[]>;
  /** Presses the button labelled `label` (or with this action) on the last menu shown. */
  press(labelOrAction: string): Promise<Outbound[]>;
  /** The text of the answers, joined. */
  lastText(): string;
}

export interface BotHarness {
  readonly payments: PaymentsHarness;
  readonly smtp: SmtpCapture;
  readonly mailer: Mailer;
  readonly conversation: Conversation;
  user(externalId?: string, channel?: 'telegram' | 'whatsapp'): ChatUser;
  /** A user signed up through the real journey (email, code from the captured mail, terms). */
  signedUp(email?: string): Promise<ChatUser>;
}

let users = 0;

export const PROXY = {
  host: 'proxy.atlantic.test',
  socksPort: 1080,
  httpPort: 8080,
  policy: { httpsOnlyPorts: [443], blockedPorts: [25] },
};

/**
 * The business clock starts at the real time (to the minute): verification
 * codes, refusals and failed logins have TTL indexes that the test database
 * sweeps by real time, so a clock far in the past would see them vanish.
 * `admins`: the admins "from configuration" (ConversationDeps.admins).
 */
export function useBotHarness(options: { admins?: ConfiguredAdmins } = {}): BotHarness {
  const start = new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString();
  const payments = usePaymentsHarness({ start });
  const logger = createLogger({ level: 'silent' });
  let smtp: SmtpCapture | undefined;
  let mailer: Mailer | undefined;
  let conversation: Conversation | undefined;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    mailer = testMailer(smtp);
    conversation = createConversation({
      clock: payments.clock,
      payments: payments.payments,
      settings: payments.settings,
      mailer,
      logger,
      proxy: PROXY,
      publicUrl: 'http://atlantic.test',
      ...(options.admins ? { admins: options.admins } : {}),
    });
  });
  afterAll(async () => {
    await smtp?.stop();
  });

  const harness: BotHarness = {
    payments,
    get smtp() {
      if (!smtp) throw new Error('harness not started');
      return smtp;
    },
    get mailer() {
      if (!mailer) throw new Error('harness not started');
      return mailer;
    },
    get conversation() {
      if (!conversation) throw new Error('harness not started');
      return conversation;
    },
    user(externalId, channel = 'telegram') {
      users += 1;
      const identity: ChatIdentity = {
        channel,
        externalId: externalId ?? String(700_000 + users + Math.floor(Math.random() * 1e6)),
        displayName: `User ${users}`,
      };
      const received: Outbound[] = [];
      let last: Outbound[] = [];
      const handle = async (inbound: Inbound): Promise<Outbound[]> => {
        const reply = await harness.conversation.handle(identity, inbound);
        received.push(...reply.messages);
        last = reply.messages;
        return reply.messages;
      };
      return {
        identity,
        received,
        send: (text) => handle({ kind: 'text', text }),
        command: (command, args = '') => handle({ kind: 'command', command, args }),
        press(labelOrAction) {
          const menu = [...received]
            .reverse()
            .find((m): m is Extract<Outbound, { menu?: unknown }> => 'menu' in m && !!m.menu);
          const items = menu && 'menu' in menu && menu.menu ? menu.menu.flat() : [];
          const item = items.find(
            (i) =>
              i.label === labelOrAction ||
              i.action === labelOrAction ||
              i.label.toLowerCase().includes(labelOrAction.toLowerCase()),
          );
          if (!item) {
            throw new Error(
              `no button "${labelOrAction}" on the last menu: ${items.map((i) => i.label).join(' | ')}`,
            );
          }
          return handle({ kind: 'action', action: item.action });
        },
        lastText: () =>
          last
            .map((m) => ('text' in m ? m.text : 'caption' in m ? (m.caption ?? '') : ''))
            .join('\n'),
      };
    },
    async signedUp(email) {
      const user = harness.user();
      const address = email ?? `u${users}${Math.floor(Math.random() * 1e6)}@example.com`;
      await user.command('start');
      await user.send(address);
      const mail = await harness.smtp.waitForMail((m) => m.to.includes(address));
      const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
      if (!code) throw new Error(`no code in the mail: ${mail.text}`);
      const verified = await user.send(code);
      if (!textOf(verified).includes('Email verified')) {
        throw new Error(`sign-up did not verify: ${textOf(verified)} (mail: ${mail.text})`);
      }
      await user.press('I agree');
      return user;
    },
  };
  return harness;
}

/** The text of an answer (text, link text or caption). */
export function textOf(messages: Outbound[]): string {
  return messages
    .map((m) => ('text' in m ? m.text : 'caption' in m ? (m.caption ?? '') : ''))
    .join('\n');
}
