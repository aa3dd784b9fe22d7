/**
 * A stand-in for Baileys' socket (WhatsApp's network cannot run here): it
 * implements WhatsAppSocketLike, lets a test emit the events Baileys would
 * (messages.upsert, connection.update) and records what the bot sends.
 * Everything else in these tests is real.
 */
import { EventEmitter } from 'node:events';
import type { AnyMessageContent, WAMessage } from '@whiskeysockets/baileys';
import type { WhatsAppEvents, WhatsAppSocketLike } from '../../../bot/whatsapp/adapter.js';

export interface SentMessage {
  jid: string;
  content: AnyMessageContent;
}

let ids = 0;

/** An error shaped like the Boom Baileys closes a connection with. */
export function boom(statusCode: number, message = `closed with ${statusCode}`): Error {
  return Object.assign(new Error(message), {
    isBoom: true,
    output: { statusCode, payload: { statusCode, message } },
  });
}

export class FakeSocket implements WhatsAppSocketLike {
  private readonly events = new EventEmitter();
  readonly sent: SentMessage[] = [];
  readonly pairingRequests: string[] = [];
  readonly readKeys: string[] = [];
  /** Numbers onWhatsApp says yes to. */
  readonly onWhatsAppNumbers = new Set<string>();
  /** onWhatsApp answers undefined (the query failed) while true. */
  lookupFails = false;
  ended = false;
  user: { id: string } | undefined = { id: '2349000000000:7@s.whatsapp.net' };

  readonly ev = {
    on: <E extends keyof WhatsAppEvents>(
      event: E,
      listener: (arg: WhatsAppEvents[E]) => void,
    ): void => {
      this.events.on(event, listener);
    },
  };

  emit<E extends keyof WhatsAppEvents>(event: E, arg: WhatsAppEvents[E]): void {
    this.events.emit(event, arg);
  }

  sendMessage(jid: string, content: AnyMessageContent): Promise<unknown> {
    this.sent.push({ jid, content });
    this.events.emit('sent');
    ids += 1;
    return Promise.resolve({ key: { id: `SENT${ids}`, remoteJid: jid, fromMe: true } });
  }

  onWhatsApp(...numbers: string[]): Promise<{ jid: string; exists: boolean }[] | undefined> {
    if (this.lookupFails) return Promise.resolve(undefined);
    // Like Baileys: numbers that are not on WhatsApp are left out.
    return Promise.resolve(
      numbers
        .filter((n) => this.onWhatsAppNumbers.has(n))
        .map((n) => ({ jid: `${n}@s.whatsapp.net`, exists: true })),
    );
  }

  readMessages(keys: WAMessage['key'][]): Promise<void> {
    for (const key of keys) this.readKeys.push(key.id ?? '');
    return Promise.resolve();
  }

  requestPairingCode(phoneNumber: string): Promise<string> {
    this.pairingRequests.push(phoneNumber);
    return Promise.resolve('ABCD1234');
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }

  logout(): Promise<void> {
    return this.end();
  }

  /** Resolves once `count` messages in all have been sent (counting earlier ones). */
  waitForSent(count: number): Promise<SentMessage[]> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.sent.length < count) return;
        this.events.off('sent', check);
        resolve(this.sent.slice(0, count));
      };
      this.events.on('sent', check);
      check();
    });
  }

  /** A customer's message arriving, as Baileys emits it. */
  receive(
    from: string,
    message: WAMessage['message'],
    extra: { pushName?: string; key?: Partial<WAMessage['key']> } = {},
  ): WAMessage {
    ids += 1;
    const received: WAMessage = {
      key: { remoteJid: `${from}@s.whatsapp.net`, fromMe: false, id: `IN${ids}`, ...extra.key },
      message,
      messageTimestamp: Math.floor(Date.now() / 1000),
      ...(extra.pushName ? { pushName: extra.pushName } : {}),
    };
    this.emit('messages.upsert', { messages: [received], type: 'notify' });
    return received;
  }

  open(): void {
    this.emit('connection.update', { connection: 'open' });
  }

  close(statusCode: number): void {
    this.emit('connection.update', {
      connection: 'close',
      lastDisconnect: { error: boom(statusCode), date: new Date() },
    });
  }
}

/** The text a sent message shows (text or caption). */
export function shownText(content: AnyMessageContent): string {
  if ('text' in content && typeof content.text === 'string') return content.text;
  if ('caption' in content && typeof content.caption === 'string') return content.caption;
  return '';
}
