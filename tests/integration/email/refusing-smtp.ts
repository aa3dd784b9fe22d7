/**
 * A local SMTP server that refuses chosen recipients with a chosen reply
 * (`550 no such mailbox`, `451 try again later`) and keeps what it accepts,
 * for tests of how the email deliverer settles refusals. The shared
 * tests/support/smtp-capture.ts accepts everything; this one adds the RCPT TO
 * refusal it cannot simulate. Also reads attachments out of a raw message.
 */
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';

import { SMTPServer } from 'smtp-server';

export interface AcceptedMail {
  envelopeTo: string[];
  raw: string;
}

export interface RefusingSmtp {
  /** `smtp://127.0.0.1:<port>` */
  url: string;
  accepted: AcceptedMail[];
  /** From now on RCPT TO this address gets `code message` (e.g. 550, 451). */
  refuse(address: string, code: number, message: string): void;
  /** From now on RCPT TO this address is accepted again. */
  accept(address: string): void;
  /** How many times RCPT TO was refused, per address. */
  refusals(address: string): number;
  /** The first accepted mail to `address` (already here or still to come); rejects after `timeoutMs`. */
  waitForMailTo(address: string, timeoutMs?: number): Promise<AcceptedMail>;
  stop(): Promise<void>;
}

export async function startRefusingSmtp(): Promise<RefusingSmtp> {
  const accepted: AcceptedMail[] = [];
  const rules = new Map<string, { code: number; message: string }>();
  const refused = new Map<string, number>();
  const events = new EventEmitter();

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    hideSTARTTLS: true,
    logger: false,
    onRcptTo(address, _session, callback) {
      const to = address.address.toLowerCase();
      const rule = rules.get(to);
      if (!rule) {
        callback();
        return;
      }
      refused.set(to, (refused.get(to) ?? 0) + 1);
      callback(Object.assign(new Error(rule.message), { responseCode: rule.code }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error: Error) => callback(error));
      stream.on('end', () => {
        const mail = {
          envelopeTo: session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase()),
          raw: Buffer.concat(chunks).toString('utf8'),
        };
        accepted.push(mail);
        callback(null);
        events.emit('mail', mail);
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const { port } = server.server.address() as AddressInfo;

  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted,
    refuse: (address, code, message) => rules.set(address.toLowerCase(), { code, message }),
    accept: (address) => rules.delete(address.toLowerCase()),
    refusals: (address) => refused.get(address.toLowerCase()) ?? 0,
    waitForMailTo(address, timeoutMs = 5000) {
      const to = address.toLowerCase();
      const isFor = (mail: AcceptedMail): boolean => mail.envelopeTo.includes(to);
      const found = accepted.find(isFor);
      if (found) return Promise.resolve(found);
      return new Promise<AcceptedMail>((resolve, reject) => {
        const onMail = (mail: AcceptedMail): void => {
          if (!isFor(mail)) return;
          clearTimeout(timer);
          events.off('mail', onMail);
          resolve(mail);
        };
        const timer = setTimeout(() => {
          events.off('mail', onMail);
          reject(new Error(`no mail to ${address} within ${timeoutMs} ms`));
        }, timeoutMs);
        events.on('mail', onMail);
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface MailAttachmentPart {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** The parts of a raw message with a `Content-Disposition: attachment`, decoded. */
export function attachmentsOf(raw: string): MailAttachmentPart[] {
  const found: MailAttachmentPart[] = [];
  const walk = (part: string): void => {
    const text = part.replace(/\r\n/g, '\n');
    const end = text.indexOf('\n\n');
    const head = (end === -1 ? text : text.slice(0, end)).replace(/\n[ \t]+/g, ' ');
    const body = end === -1 ? '' : text.slice(end + 2);
    const header = (name: string): string =>
      new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
    const type = header('content-type');
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (/^multipart\//i.test(type) && boundary !== undefined) {
      for (const section of body.split(`--${boundary}`).slice(1)) {
        if (!section.startsWith('--')) walk(section.replace(/^\n/, ''));
      }
      return;
    }
    const disposition = header('content-disposition');
    if (!/^attachment/i.test(disposition)) return;
    const encoding = header('content-transfer-encoding').toLowerCase();
    found.push({
      filename: /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? '',
      contentType: type.split(';')[0]?.trim().toLowerCase() ?? '',
      content:
        encoding === 'base64'
          ? Buffer.from(body.replace(/\s+/g, ''), 'base64')
          : Buffer.from(body, 'utf8'),
    });
  };
  walk(raw);
  return found;
}
