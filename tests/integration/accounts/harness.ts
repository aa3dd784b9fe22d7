/**
 * What the accounts tests share: the real mailer over SMTP to a local capture
 * server, a test clock, and helpers to read a code out of a captured mail.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AccountsContext } from '../../../core/accounts/index.js';
import { TestClock } from '../../../lib/clock.js';
import { createLogger } from '../../../lib/logger.js';
import { createMailer } from '../../../lib/mailer.js';
import {
  startSmtpCapture,
  type CapturedMail,
  type SmtpCapture,
} from '../../support/smtp-capture.js';

export interface AccountsHarness {
  readonly clock: TestClock;
  readonly ctx: AccountsContext;
  readonly smtp: SmtpCapture;
  /** The newest mail to `address` received so far (waits for the first). */
  latestMailTo(address: string): Promise<CapturedMail>;
  /** The code in the newest mail to `address`. */
  codeSentTo(address: string): Promise<string>;
}

/**
 * A clock a day ahead of real time, on the hour. Codes and rate limits carry
 * the business clock's time and have TTL indexes, which the test database
 * sweeps every second by real time: with a clock behind real time they would
 * vanish while a test reads them.
 */
export function clockAheadOfRealTime(): TestClock {
  return new TestClock(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 86_400_000);
}

/** Give `clock` to share one with another harness (the payments one). */
export function useAccountsHarness(clock: TestClock = clockAheadOfRealTime()): AccountsHarness {
  let smtp: SmtpCapture | undefined;
  let ctx: AccountsContext | undefined;
  let dataDir: string | undefined;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-accounts-'));
    const logger = createLogger({ level: 'silent' });
    ctx = {
      clock,
      logger,
      mailer: createMailer({
        smtpUrl: smtp.url,
        from: 'Atlantic <no-reply@atlantic.test>',
        dataDir,
        isProduction: false,
        logger,
      }),
    };
  });
  afterAll(async () => {
    await smtp?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('use the accounts harness inside tests');
    return value;
  };

  const latestMailTo = async (address: string): Promise<CapturedMail> => {
    const capture = need(smtp);
    await capture.waitForMail((mail) => mail.to.includes(address));
    const mails = capture.messages.filter((mail) => mail.to.includes(address));
    const latest = mails[mails.length - 1];
    if (!latest) throw new Error(`no mail to ${address}`);
    return latest;
  };

  return {
    clock,
    get ctx() {
      return need(ctx);
    },
    get smtp() {
      return need(smtp);
    },
    latestMailTo,
    async codeSentTo(address) {
      const mail = await latestMailTo(address);
      const code = /code is (\d{6})\./.exec(mail.text)?.[1];
      if (!code) throw new Error(`no code in the mail to ${address}: ${mail.text}`);
      return code;
    },
  };
}

/** A unique address for one test. */
export function newAddress(name = 'ada'): string {
  return `${name}.${randomBytes(4).toString('hex')}@example.com`;
}

let nextTelegramId = 700_000_000;
/** A Telegram identity nobody has used in this run. */
export function telegramUser(displayName = 'Ada'): {
  channel: 'telegram';
  externalId: string;
  displayName: string;
} {
  nextTelegramId += 1;
  return { channel: 'telegram', externalId: String(nextTelegramId), displayName };
}

let nextWhatsappNumber = 2348_030_000_000;
/** A WhatsApp identity (E.164 digits) nobody has used in this run. */
export function whatsappUser(displayName = 'Ada'): {
  channel: 'whatsapp';
  externalId: string;
  displayName: string;
} {
  nextWhatsappNumber += 1;
  return { channel: 'whatsapp', externalId: String(nextWhatsappNumber), displayName };
}
