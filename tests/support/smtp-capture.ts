/**
 * A local SMTP server that keeps every message it receives, for tests that
 * read a mail the app sent (a verification code, a receipt). Plain SMTP on
 * 127.0.0.1 with a free port, no TLS, no authentication required.
 */
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';

import { SMTPServer } from 'smtp-server';
import { createLogger } from '../../lib/logger.js';
import { createMailer, type Mailer } from '../../lib/mailer.js';

export interface CapturedMail {
  /** Envelope sender (MAIL FROM). */
  envelopeFrom: string;
  /** Envelope recipients (RCPT TO). */
  envelopeTo: string[];
  /** Header values, lower-case names, unfolded, encoded words decoded; the last one wins. */
  headers: Record<string, string>;
  from: string;
  /** Addresses in the To header, bare (`a@b.c`, no display names). */
  to: string[];
  subject: string;
  /** The text/plain body, decoded ('' if there is none). */
  text: string;
  /** The text/html body, decoded, if there is one. */
  html: string | undefined;
  /** The whole message as received. */
  raw: string;
}

export interface SmtpCapture {
  /** `smtp://127.0.0.1:<port>`, ready for SMTP_URL. */
  url: string;
  port: number;
  /** Every message received so far, oldest first. */
  messages: CapturedMail[];
  /**
   * The first message (already received or still to come) that matches, or a
   * rejection after `timeoutMs` (default 5000). It waits on the server's
   * event; nothing polls.
   */
  waitForMail(
    predicate?: (mail: CapturedMail) => boolean,
    timeoutMs?: number,
  ): Promise<CapturedMail>;
  /** From now on RCPT TO this address gets `code message` (e.g. 550 no such mailbox, 451 try later). */
  refuse(address: string, code: number, message: string): void;
  /** From now on RCPT TO this address is accepted again. */
  accept(address: string): void;
  /** How many times RCPT TO was refused for this address. */
  refusals(address: string): number;
  stop(): Promise<void>;
}

export async function startSmtpCapture(): Promise<SmtpCapture> {
  const messages: CapturedMail[] = [];
  const events = new EventEmitter();
  const rules = new Map<string, { code: number; message: string }>();
  const refused = new Map<string, number>();

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
        const raw = Buffer.concat(chunks).toString('utf8');
        const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const envelopeTo = session.envelope.rcptTo.map((rcpt) => rcpt.address);
        const mail = parseMail(raw, envelopeFrom, envelopeTo);
        messages.push(mail);
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
    port,
    messages,
    refuse: (address, code, message) => rules.set(address.toLowerCase(), { code, message }),
    accept: (address) => rules.delete(address.toLowerCase()),
    refusals: (address) => refused.get(address.toLowerCase()) ?? 0,
    waitForMail(predicate = () => true, timeoutMs = 5000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<CapturedMail>((resolve, reject) => {
        const onMail = (mail: CapturedMail): void => {
          if (!predicate(mail)) return;
          clearTimeout(timer);
          events.off('mail', onMail);
          resolve(mail);
        };
        const timer = setTimeout(() => {
          events.off('mail', onMail);
          reject(
            new Error(
              `no matching mail within ${timeoutMs} ms; received: ${messages.map((m) => `"${m.subject}" to ${m.to.join(',')}`).join('; ') || 'nothing'}`,
            ),
          );
        }, timeoutMs);
        events.on('mail', onMail);
      });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

interface Part {
  headers: Record<string, string>;
  body: string;
}

/** Splits a message or MIME part into headers (unfolded, lower-case names) and body. */
function splitPart(raw: string): Part {
  const text = raw.replace(/\r\n/g, '\n');
  const end = text.indexOf('\n\n');
  const head = end === -1 ? text : text.slice(0, end);
  const body = end === -1 ? '' : text.slice(end + 2);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers[line.slice(0, colon).trim().toLowerCase()] = decodeWords(line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** RFC 2047 encoded words (`=?UTF-8?Q?...?=`, `=?UTF-8?B?...?=`), as nodemailer writes them. */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(
      /=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g,
      (_match, _charset: string, kind: string, data: string) =>
        kind.toUpperCase() === 'B'
          ? Buffer.from(data, 'base64').toString('utf8')
          : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}

function decodeQuotedPrintable(data: string): string {
  const bytes: number[] = [];
  const text = data.replace(/=\n/g, '');
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    const hex = text.slice(i + 1, i + 3);
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(char ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeBody(part: Part): string {
  const encoding = (part.headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'base64')
    return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return part.body;
}

/** Depth-first walk of multipart bodies; yields leaf parts. */
function leafParts(part: Part): Part[] {
  const type = part.headers['content-type'] ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!/^multipart\//i.test(type) || boundary === undefined) return [part];
  const sections = part.body.split(`--${boundary}`).slice(1);
  return sections
    .filter((section) => !section.startsWith('--'))
    .flatMap((section) => leafParts(splitPart(section.replace(/^\n/, ''))));
}

function addresses(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((item) => (/<([^>]+)>/.exec(item)?.[1] ?? item).trim())
    .filter((item) => item !== '');
}

function parseMail(raw: string, envelopeFrom: string, envelopeTo: string[]): CapturedMail {
  const top = splitPart(raw);
  const leaves = leafParts(top);
  const ofType = (type: string): Part | undefined =>
    leaves.find((part) =>
      (part.headers['content-type'] ?? 'text/plain').toLowerCase().startsWith(type),
    );
  const textPart = ofType('text/plain');
  const htmlPart = ofType('text/html');
  return {
    envelopeFrom,
    envelopeTo,
    headers: top.headers,
    from: top.headers.from ?? '',
    to: addresses(top.headers.to),
    subject: top.headers.subject ?? '',
    text: textPart ? decodeBody(textPart).replace(/\n$/, '') : '',
    html: htmlPart ? decodeBody(htmlPart) : undefined,
    raw,
  };
}

/** Our real mailer (nodemailer over SMTP), sending to the capture server. */
export function testMailer(smtp: Pick<SmtpCapture, 'url'>): Mailer {
  return createMailer({
    smtpUrl: smtp.url,
    from: 'Atlantic <no-reply@atlantic.test>',
    dataDir: '/tmp',
    isProduction: false,
    logger: createLogger({ level: 'silent' }),
  });
}
