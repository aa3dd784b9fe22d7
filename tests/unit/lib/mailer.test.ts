import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { createLogger } from '../../../lib/logger.js';
import { createMailer } from '../../../lib/mailer.js';
import { startSmtpCapture } from '../../support/smtp-capture.js';
import type { SmtpCapture } from '../../support/smtp-capture.js';

function capturedLogger() {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line) => lines.push(line) },
  });
  return { logger, output: () => lines.join('') };
}

describe('mailer over SMTP', () => {
  let smtp: SmtpCapture;
  let dataDir: string;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-mail-'));
  });
  afterAll(async () => {
    await smtp.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers a verification mail that a test can read back', async () => {
    const { logger } = capturedLogger();
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'Atlantic <no-reply@atlantic.test>',
      dataDir,
      isProduction: true,
      logger,
    });
    const waiting = smtp.waitForMail((mail) => mail.to.includes('ada@example.com'));
    const { messageId } = await mailer.send({
      to: 'ada@example.com',
      subject: 'Your Atlantic code: 482913 ✓',
      text: 'Your verification code is 482913.\nIt expires in 10 minutes. Déjà vu? Ignore this mail.',
      html: '<p>Your verification code is <b>482913</b>.</p>',
    });
    const mail = await waiting;

    expect(messageId).toMatch(/@/);
    expect(mail.envelopeTo).toEqual(['ada@example.com']);
    expect(mail.from).toBe('Atlantic <no-reply@atlantic.test>');
    expect(mail.subject).toBe('Your Atlantic code: 482913 ✓');
    expect(mail.text).toBe(
      'Your verification code is 482913.\nIt expires in 10 minutes. Déjà vu? Ignore this mail.',
    );
    expect(mail.html).toContain('<b>482913</b>');
    expect(/code is (\d{6})/.exec(mail.text)?.[1]).toBe('482913');
    // Nothing was written to disk when SMTP is configured.
    await expect(readdir(path.join(dataDir, 'mail'))).rejects.toThrow();
  });

  it('waitForMail returns a mail that already arrived and rejects when none comes', async () => {
    const { logger } = capturedLogger();
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'a@b.test',
      dataDir,
      isProduction: false,
      logger,
    });
    await mailer.send({ to: 'early@example.com', subject: 'early', text: 'hi' });
    const mail = await smtp.waitForMail((m) => m.subject === 'early');
    expect(mail.to).toEqual(['early@example.com']);
    await expect(smtp.waitForMail((m) => m.subject === 'never', 50)).rejects.toThrow(
      /no matching mail within 50 ms/,
    );
  });
});

describe('mailer without SMTP', () => {
  it('writes each mail as an .eml file and logs its path, not its body', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-mail-'));
    try {
      const { logger, output } = capturedLogger();
      const mailer = createMailer({
        from: 'Atlantic <no-reply@localhost>',
        dataDir,
        isProduction: false,
        logger,
      });
      await mailer.send({ to: 'bo@example.com', subject: 'Welcome', text: 'Your code is 123456' });

      const mailDir = path.join(dataDir, 'mail');
      const files = await readdir(mailDir);
      expect(files).toHaveLength(1);
      const file = path.join(mailDir, files[0] ?? '');
      expect(file).toMatch(/\.eml$/);
      const eml = await readFile(file, 'utf8');
      expect(eml).toMatch(/^From: Atlantic <no-reply@localhost>$/m);
      expect(eml).toMatch(/^To: bo@example.com$/m);
      expect(eml).toMatch(/^Subject: Welcome$/m);
      expect(eml).toContain('Your code is 123456');
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      expect(output()).toContain(file);
      expect(output()).not.toContain('123456');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses to start in production without SMTP_URL', () => {
    const { logger } = capturedLogger();
    expect(() =>
      createMailer({ from: 'a@b.test', dataDir: os.tmpdir(), isProduction: true, logger }),
    ).toThrow(/NODE_ENV=production needs SMTP_URL/);
  });
});
