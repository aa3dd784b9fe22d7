/**
 * The Telegram storefront end to end, everything real: the telegram role
 * (grammY with the runner, long polling) against the local Bot API emulator,
 * the conversation core, accounts with mail to a local SMTP server, payments
 * through our Paystack client and the Paystack emulator with its signed
 * webhooks, the outbox deliverer, and the proxy role with curl as the client.
 *
 * The purchase conversation is also the README's example transcript: this
 * test renders it and fails when the README's copy differs (run it with
 * UPDATE_TRANSCRIPT=1 to rewrite the README's block).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTelegramRole, type TelegramRole } from '../../../bot/telegram/role.js';
import { addExit, addLocation } from '../../../core/locations.js';
import { getQuotaUsage, recordUsage } from '../../../core/quota.js';
import { listRecentRefusals } from '../../../core/usage.js';
import { createLogger } from '../../../lib/logger.js';
import { createMailer } from '../../../lib/mailer.js';
import { Payment } from '../../../models/payment.js';
import type { ProxyRole } from '../../../proxy/index.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import {
  curl,
  hasCommand,
  selfSignedCertificate,
  startHttpsTarget,
  type HttpTarget,
  startTestProxyRole,
} from '../../support/proxy-wire.js';
import { startSmtpCapture, type SmtpCapture } from '../../support/smtp-capture.js';
import {
  startTelegramEmulator,
  type BotMessage,
  type SimulatedUser,
  type TelegramEmulator,
} from '../../support/telegram-emulator.js';

const TOKEN = '123456:test-token';
const certificate = selfSignedCertificate();
const withCurl = hasCommand('curl') && certificate !== undefined;

let emulator: TelegramEmulator;
let telegram: TelegramRole;
let proxy: ProxyRole;
let smtp: SmtpCapture;
let target: HttpTarget | undefined;

// Declared before the database hooks: the roles stop before the database goes.
afterAll(async () => {
  await telegram.stop();
  await proxy.stop();
  await emulator.stop();
  await smtp.stop();
  await target?.close();
});
useTestDatabase();
// Near real time: codes, refusals and failed logins have TTL indexes swept by real time.
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});

beforeAll(async () => {
  const logger = createLogger({ level: 'silent' });
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  if (certificate) target = await startHttpsTarget(certificate);
  const policy = { httpsOnlyPorts: [target?.port ?? 443], blockedPorts: [25] };
  proxy = await startTestProxyRole({
    clock: h.clock,
    ...policy,
    // Leases kept while idle (the default): returning them at once, with a
    // clock that does not move, could take one back between a tunnel's
    // lease and its first byte. The quota step below returns them itself.
    accessOptions: { refreshMs: 100, flushMs: 100 },
  });
  smtp = await startSmtpCapture();
  emulator = await startTelegramEmulator({
    token: TOKEN,
    botUser: { username: 'atlantic_test_bot' },
  });
  telegram = createTelegramRole({
    token: TOKEN,
    apiRoot: emulator.apiRoot,
    mode: 'polling',
    publicUrl: 'http://atlantic.test',
    adminIds: [],
    workerId: 'test-telegram',
    botInfo: emulator.botInfo,
    leaseTtlMs: 5_000,
    deliveryIdleMs: 50,
    deps: {
      clock: h.clock,
      payments: h.payments,
      settings: h.settings,
      mailer: createMailer({
        smtpUrl: smtp.url,
        from: 'Atlantic <no-reply@atlantic.test>',
        dataDir: '/tmp',
        isProduction: false,
        logger,
      }),
      logger,
      proxy: {
        host: '127.0.0.1',
        socksPort: proxy.addresses().socks.port,
        httpPort: proxy.addresses().http.port,
        policy,
      },
    },
  });
  await telegram.start();
});

/** The conversation as a transcript: what the customer did, and what came back. */
const transcript: string[] = [];

async function say(user: SimulatedUser, text: string, expect = 1): Promise<BotMessage[]> {
  transcript.push(`> ${text}`);
  user.sendText(text);
  return record(await user.waitForMessages(expect, { timeoutMs: 10_000 }));
}

async function tap(
  user: SimulatedUser,
  message: BotMessage,
  action: string,
  expect = 1,
): Promise<BotMessage[]> {
  const button = message.buttons.find((b) => b.callbackData === action);
  if (!button) {
    throw new Error(
      `no button ${action}: ${message.buttons.map((b) => b.callbackData).join(', ')}`,
    );
  }
  transcript.push(`> [${button.text}]`);
  await user.pressButton(message, action).answered();
  return record(await user.waitForMessages(expect, { timeoutMs: 10_000 }));
}

function record(messages: BotMessage[]): BotMessage[] {
  for (const message of messages) {
    const body = message.text ?? (message.photo ? `(photo) ${message.caption ?? ''}` : '');
    const file = message.document
      ? `(document ${message.document.fileName}) ${message.caption ?? ''}`
      : '';
    transcript.push(
      ...(body || file ? [(body || file).trim()] : []),
      ...(message.buttons.length > 0 ? [message.buttons.map((b) => `[${b.text}]`).join(' ')] : []),
      '',
    );
  }
  return messages;
}

const last = (messages: BotMessage[]): BotMessage => {
  const message = messages[messages.length - 1];
  if (!message) throw new Error('no message');
  return message;
};

describe('the Telegram storefront', () => {
  const maybe = withCurl ? it : it.skip;

  maybe(
    'signs up, buys Starter, connects, proxies through the gateway with curl, explains a refusal and charts usage',
    async () => {
      const ada = emulator.user({ id: 424242, firstName: 'Ada' });

      // Sign-up with the code from the mail.
      const hello = await say(ada, '/start', 2);
      expect(hello[0]?.text).toContain('Welcome to Atlantic');
      expect(hello[1]?.text).toContain("what's your email address?");
      const [sent] = await say(ada, 'ada@example.com');
      expect(sent?.text).toContain('I sent a 6-digit code to ada@example.com');
      const mail = await smtp.waitForMail((m) => m.to.includes('ada@example.com'));
      const code = /\b(\d{6})\b/.exec(mail.text)?.[1] ?? '';
      const [verified] = await say(ada, code);
      expect(verified?.text).toContain('Email verified');
      const [guide] = await tap(ada, last([verified as BotMessage]), 'terms:accept');
      expect(guide?.text).toContain('What to do first');

      // Plans, compared; Starter bought through the Paystack link.
      const [plans] = await tap(ada, guide as BotMessage, 'plans');
      expect(plans?.text).toContain('Starter: ₦3,500.00 per month');
      const [link] = await tap(ada, plans as BotMessage, 'buy:starter');
      const pay = link?.inlineKeyboard?.[0]?.[0];
      expect(pay).toMatchObject({ text: 'Pay ₦3,500.00' });
      const payment = await Payment.findOne({ authorizationUrl: pay?.url }).lean().orFail();
      transcript.push('(pays on the Paystack page)', '');
      await h.payAndSettle(payment.reference);
      const confirmation = record(await ada.waitForMessages(2, { timeoutMs: 10_000 }));
      expect(confirmation[0]?.text).toContain(
        '✅ Payment received: ₦3,500.00. Your starter plan is active.',
      );
      expect(confirmation[1]?.document?.fileName).toMatch(/^ATL-\d{4}-\d{6}\.pdf$/);
      expect(confirmation[1]?.document?.bytes.subarray(0, 4).toString()).toBe('%PDF');

      // Connect: one location to keep, HTTPS only; credentials, QR code, how to use them.
      const [keep] = await say(ada, '/connect');
      const [protocols] = await tap(ada, keep as BotMessage, 'connect:keep:ng');
      expect(protocols?.buttons.map((b) => b.text)).toEqual(
        expect.arrayContaining(['HTTPS (CONNECT)', '🔒 SOCKS5']),
      );
      const credentials = await tap(ada, protocols as BotMessage, 'connect:proto:ng:https', 3);
      expect(credentials[1]?.photo).toBeDefined();
      const url = /^(http:\/\/\S+)$/m.exec(credentials[0]?.text ?? '')?.[1] ?? '';
      expect(url).toMatch(/^http:\/\/[a-z0-9]+-country-ng:[^@]+@127\.0\.0\.1:\d+$/);

      // The credentials work through the real gateway.
      await proxy.access.refresh();
      const through = await curl([
        '--proxy',
        url,
        '--insecure',
        `https://127.0.0.1:${target?.port}/hello`,
      ]);
      expect(through.code).toBe(0);
      expect(through.stdout).toContain('hello');

      // The quota runs out: the next connection is refused, and /why says why.
      const accountId = String(payment.accountId);
      // The gateway gives its lease back once it has seen curl's tunnel close
      // (while a tunnel is open, its background settle may take a new lease,
      // which the next connection would then spend past the booked usage).
      await waitFor(async () => {
        if (proxy.access.openTunnels(accountId) > 0) return false;
        await proxy.access.flush({ returnLeases: true });
        return (await getQuotaUsage(accountId, h.clock.now()))?.leasedBytes === 0;
      });
      const counter = await getQuotaUsage(accountId, h.clock.now());
      await recordUsage(accountId, counter?.remainingBytes ?? 0, h.clock.now());
      await proxy.access.refresh();
      const refused = await curl([
        '--proxy',
        url,
        '--insecure',
        `https://127.0.0.1:${target?.port}/hello`,
      ]);
      expect(refused.code).not.toBe(0);
      await waitFor(async () => (await listRecentRefusals(accountId)).length > 0);
      const [why] = await say(ada, '/why');
      expect(why?.text).toContain('Data limit reached');

      // Usage, and the 7-day chart as a photo.
      const [usage] = await say(ada, '/usage');
      expect(usage?.text).toContain('100 %');
      const [chart] = await tap(ada, usage as BotMessage, 'usage:chart:7');
      expect(chart?.photo?.bytes.subarray(1, 4).toString()).toBe('PNG');
      expect(chart?.caption).toContain('Your usage, last 7 days');

      await checkTranscript(transcript);
    },
    60_000,
  );

  it('registers the commands and answers a flood limit by retrying', async () => {
    expect(emulator.commands().map((c) => (c as { command: string }).command)).toEqual(
      expect.arrayContaining(['start', 'plans', 'connect', 'usage', 'why', 'cancel']),
    );
    const bob = emulator.user({ id: 515151, firstName: 'Bob' });
    emulator.failNext('sendMessage', { status: 429, retryAfter: 1 });
    bob.sendText('/help');
    const [help] = await bob.waitForMessages(1, { timeoutMs: 10_000 });
    expect(help?.text).toContain('/connect: your proxy address and password');
  });
});

/** Resolves when `condition` holds, re-checking on the gateway's own timers (every 50 ms). */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The purchase part of the conversation, with what changes from run to run
 * (codes, passwords, usernames, ports, invoice numbers) replaced by names,
 * must match the README's block.
 */
async function checkTranscript(lines: string[]): Promise<void> {
  const stable = lines
    .join('\n')
    .replace(/\b\d{6}\b/g, '123456')
    .replace(/ATL-\d{4}-\d{6}/g, 'ATL-2026-000001')
    .replace(/[a-z][a-z0-9]{5,31}-country-ng(:[^@\s']+)?/g, (_m, pass: string | undefined) =>
      pass ? 'ada7k2-country-ng:PASSWORD' : 'ada7k2-country-ng',
    )
    .replace(/Password: \S+/g, 'Password: PASSWORD')
    .replace(/127\.0\.0\.1:\d+/g, 'proxy.example.com:8080')
    .replace(/Port: \d+/g, 'Port: 8080')
    .replace(/Host: \S+/g, 'Host: proxy.example.com')
    .replace(/\d{1,2} [A-Z][a-z]{2} \d\d:\d\d UTC/g, '26 Nov 10:00 UTC');
  const start = stable.indexOf('> /start');
  const end = stable.indexOf('> /why');
  const purchase = stable.slice(start, end).trimEnd();
  const readmePath = path.resolve(import.meta.dirname, '../../../README.md');
  const readme = await readFile(readmePath, 'utf8');
  const open = '<!-- transcript:purchase:start -->';
  const close = '<!-- transcript:purchase:end -->';
  const block = `${open}\n\n\`\`\`text\n${purchase}\n\`\`\`\n\n${close}`;
  const from = readme.indexOf(open);
  const to = readme.indexOf(close);
  if (process.env.UPDATE_TRANSCRIPT === '1') {
    if (from < 0 || to < 0) throw new Error('README has no transcript markers');
    await writeFile(
      readmePath,
      `${readme.slice(0, from)}${block}${readme.slice(to + close.length)}`,
    );
    return;
  }
  expect(readme.slice(from, to + close.length)).toBe(block);
}
