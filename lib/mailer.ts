import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import nodemailer from 'nodemailer';

import type { Logger } from './logger.js';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Files sent with the mail, e.g. an invoice PDF. */
  attachments?: MailAttachment[];
  /** Extra headers, e.g. `List-Unsubscribe`. */
  headers?: Record<string, string>;
}

export interface MailAttachment {
  filename: string;
  content: Buffer;
  /** e.g. `application/pdf` */
  contentType: string;
}

/** How core sends email; the adapter below is the only implementation outside tests. */
export interface Mailer {
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
}

export interface CreateMailerOptions {
  /** `smtp://user:pass@host:587` or `smtps://...:465`; without it mail goes to files (not in production). */
  smtpUrl?: string | undefined;
  /** The From header, e.g. `Atlantic <no-reply@example.com>`. */
  from: string;
  /** Mail without SMTP is written to `${dataDir}/mail/*.eml`. */
  dataDir: string;
  isProduction: boolean;
  logger: Logger;
}

/** SMTP timeouts well under nodemailer's minutes-long defaults, so a dead server fails a job fast. */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

/**
 * With an SMTP URL, mail goes through nodemailer's SMTP transport. Outside
 * production without one, each mail is written as an RFC 822 `.eml` file under
 * `${dataDir}/mail/` (open it in any mail client) and only its path is logged.
 * In production without SMTP this throws: mail must not vanish silently.
 */
export function createMailer(options: CreateMailerOptions): Mailer {
  const log = options.logger.child({ module: 'mailer' });
  if (options.smtpUrl !== undefined && options.smtpUrl !== '') {
    const transport = nodemailer.createTransport(
      { url: options.smtpUrl, ...SMTP_TIMEOUTS },
      { from: options.from },
    );
    return {
      async send(mail) {
        const info = await transport.sendMail(toMessage(mail));
        log.info({ messageId: info.messageId, to: mail.to }, 'mail sent');
        return { messageId: info.messageId };
      },
    };
  }
  if (options.isProduction) {
    throw new Error(
      'NODE_ENV=production needs SMTP_URL to send mail (e.g. smtps://user:password@smtp.example.com:465)',
    );
  }

  const mailDir = path.join(options.dataDir, 'mail');
  const transport = nodemailer.createTransport(
    { streamTransport: true, buffer: true, newline: 'unix' },
    { from: options.from },
  );
  log.warn({ mailDir }, 'SMTP_URL is not set: mail is written to files, not sent');
  return {
    async send(mail) {
      const info = await transport.sendMail(toMessage(mail));
      if (!Buffer.isBuffer(info.message)) throw new Error('nodemailer did not return a buffer');
      await mkdir(mailDir, { recursive: true, mode: 0o700 });
      const file = path.join(mailDir, `${fileStamp(new Date())}-${safeName(info.messageId)}.eml`);
      await writeFile(file, info.message, { mode: 0o600 });
      log.info({ file, to: mail.to }, 'mail written to file');
      return { messageId: info.messageId };
    },
  };
}

function toMessage(mail: OutgoingMail): OutgoingMail {
  return {
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    ...(mail.html === undefined ? {} : { html: mail.html }),
    ...(mail.attachments === undefined ? {} : { attachments: mail.attachments }),
    ...(mail.headers === undefined ? {} : { headers: mail.headers }),
  };
}

/** `2025-01-01T00-00-00-000Z`: sorts by time and is a valid file name everywhere. */
function fileStamp(date: Date): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

function safeName(messageId: string): string {
  return messageId.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 80) || 'mail';
}
