/**
 * The WhatsApp adapter: Baileys messages in, conversation core, messages out.
 * It only translates, against `WhatsAppSocketLike` (the part of Baileys'
 * socket it uses), so tests drive it with a fake socket and Baileys itself
 * is never loaded here.
 *
 *   messages.upsert (type 'notify') -> skip what is not a customer's own
 *   direct message -> per-number rate limit -> one turn at a time per chat
 *   -> text / command / contact as the core's Inbound -> Outbound rendered
 *
 * Who writes: the chat's phone number as E.164 digits. Baileys 7 may address
 * a chat by LID (`…@lid`); the number then comes from `key.remoteJidAlt` or
 * the socket's LID mapping, and the answer goes to the chat's own jid.
 *
 * Skipped without an answer: our own messages (`fromMe`), status updates and
 * other broadcasts, newsletters, and groups (the storefront is one customer
 * in a direct chat; answering in a group would show an account's details to
 * everyone in it), protocol messages, reactions and edits. A photo, voice
 * note, sticker, location and the like gets one short "send text" answer
 * (at most once a minute per number).
 *
 * Text: `/help` is the command `help` (WhatsApp users type commands too);
 * a single word that names a command (`menu`, `help`, `start`, `plans`,
 * `cancel`, … as in bot/core COMMANDS, any case) is that command too, since
 * WhatsApp has no command menu. Everything else is text: the core itself
 * resolves a number against the last menu it showed, "0" to the main menu,
 * and "LINK <code>". Menus are rendered as numbered lines in the flattened
 * order of the rows (the order the core resolves numbers in) with "0. Menu"
 * last; when one answer carries several menus only the last is numbered,
 * since only its numbers resolve. Links are the text with the URL, images
 * are sent as images and documents as documents.
 */
import type {
  AnyMessageContent,
  BaileysEventMap,
  WAMessage,
  WAMessageKey,
  proto,
} from '@whiskeysockets/baileys';
import type { Logger } from '../../lib/logger.js';
import { clearChannelFailing } from '../../core/notifications.js';
import { COMMANDS, type Conversation } from '../core/conversation.js';
import { textsFor } from '../core/texts/index.js';
import type { ChatIdentity, Inbound, Menu, Outbound } from '../core/types.js';
import { whatsappTexts } from './texts.js';

/** The Baileys events the WhatsApp role listens to. */
export type WhatsAppEvents = Pick<
  BaileysEventMap,
  'messages.upsert' | 'connection.update' | 'creds.update'
>;

/**
 * The part of Baileys' WASocket (`ReturnType<typeof makeWASocket>`) the
 * WhatsApp role uses; bot/whatsapp/baileys-socket.ts returns a real one.
 */
export interface WhatsAppSocketLike {
  ev: {
    on<E extends keyof WhatsAppEvents>(event: E, listener: (arg: WhatsAppEvents[E]) => void): void;
  };
  /** Our own account once logged in (`…@s.whatsapp.net`). */
  user?: { id: string } | undefined;
  sendMessage(jid: string, content: AnyMessageContent): Promise<unknown>;
  /**
   * Which of these numbers are on WhatsApp: one entry per number that is
   * (numbers that are not are left out); undefined when the query failed.
   */
  onWhatsApp(...phoneNumbers: string[]): Promise<{ jid: string; exists: boolean }[] | undefined>;
  readMessages?(keys: WAMessageKey[]): Promise<void>;
  requestPairingCode(phoneNumber: string): Promise<string>;
  end(error: Error | undefined): unknown;
  logout(message?: string): Promise<void>;
  signalRepository?: { lidMapping: { getPNForLID(lid: string): Promise<string | null> } };
}

export interface WhatsAppAdapterOptions {
  conversation: Conversation;
  logger: Logger;
  /** Messages per number per window before the bot stops answering for the window (default 20 per 10 s). */
  rateLimit?: { messages: number; windowMs: number };
  /** How often a number gets the "send text" answer at most (default 60 s). */
  textOnlyEveryMs?: number;
  /** Real time in ms for the limits (default Date.now). */
  nowMs?: () => number;
}

/** The jid of a phone number (E.164 digits). */
export function jidOfNumber(number: string): string {
  return `${number}@s.whatsapp.net`;
}

/** The E.164 digits of a phone-number jid (`2348012345678:3@s.whatsapp.net`), or null. */
export function numberOfJid(jid: string | null | undefined): string | null {
  if (!jid?.endsWith('@s.whatsapp.net')) return null;
  const user = jid.slice(0, jid.indexOf('@')).split(':')[0] ?? '';
  return /^\d{6,15}$/.test(user) ? user : null;
}

const COMMAND_WORDS: ReadonlySet<string> = new Set(COMMANDS.map((c) => c.command));

/** A customer's text as the core's Inbound: `/cmd args`, a bare command word, or text. */
export function inboundFromText(text: string): Inbound {
  const trimmed = text.trim();
  const command = /^\/([a-z0-9_]+)(?:\s+([\s\S]*))?$/i.exec(trimmed);
  if (command) {
    return {
      kind: 'command',
      command: (command[1] ?? '').toLowerCase(),
      args: (command[2] ?? '').trim(),
    };
  }
  const word = /^([a-z]+)[.!]?$/i.exec(trimmed)?.[1]?.toLowerCase();
  if (word && COMMAND_WORDS.has(word)) return { kind: 'command', command: word, args: '' };
  return { kind: 'text', text: trimmed };
}

/** What a received message means to the adapter. */
export type ParsedMessage =
  | { kind: 'inbound'; inbound: Inbound }
  /** Something a person sent that is not text (photo, voice note, sticker, ...). */
  | { kind: 'not-text' }
  /** Nothing to answer (protocol messages, reactions, edits, key distribution). */
  | { kind: 'nothing' };

/** Content a person sends that the bot cannot read: answered with "send text". */
const NOT_TEXT: readonly (keyof proto.IMessage)[] = [
  'imageMessage',
  'videoMessage',
  'ptvMessage',
  'audioMessage',
  'stickerMessage',
  'documentMessage',
  'locationMessage',
  'liveLocationMessage',
  'pollCreationMessage',
  'pollCreationMessageV2',
  'pollCreationMessageV3',
  'eventMessage',
  'productMessage',
  'orderMessage',
];

/** Unwraps disappearing, view-once and other envelope messages (as Baileys' normalizeMessageContent). */
function unwrap(content: proto.IMessage | null | undefined): proto.IMessage | undefined {
  let message = content ?? undefined;
  for (let i = 0; i < 5 && message; i++) {
    const inner =
      message.ephemeralMessage ??
      message.viewOnceMessage ??
      message.viewOnceMessageV2 ??
      message.viewOnceMessageV2Extension ??
      message.documentWithCaptionMessage;
    if (!inner?.message) break;
    message = inner.message;
  }
  return message;
}

/** The phone number on a shared contact's vCard (`waid=` first, else the TEL value's digits). */
export function phoneOfVcard(vcard: string | null | undefined): string | null {
  if (!vcard) return null;
  const waid = /waid=(\d{6,15})/i.exec(vcard)?.[1];
  if (waid) return waid;
  const tel = /^TEL[^:]*:(.+)$/im.exec(vcard)?.[1];
  const digits = tel?.replace(/\D/g, '') ?? '';
  return digits.length >= 6 ? digits : null;
}

export function parseMessage(content: proto.IMessage | null | undefined): ParsedMessage {
  const message = unwrap(content);
  if (!message) return { kind: 'nothing' };
  const text = message.conversation ?? message.extendedTextMessage?.text;
  if (typeof text === 'string') return { kind: 'inbound', inbound: inboundFromText(text) };
  const contact = message.contactMessage ?? message.contactsArrayMessage?.contacts?.[0];
  if (contact) {
    const phone = phoneOfVcard(contact.vcard);
    return phone ? { kind: 'inbound', inbound: { kind: 'contact', phone } } : { kind: 'not-text' };
  }
  if (NOT_TEXT.some((field) => message[field])) return { kind: 'not-text' };
  return { kind: 'nothing' };
}

/** The numbered lines of a menu: items in row order from 1, then "0. Menu". */
export function menuLines(menu: Menu): string {
  const lines = menu.flat().map((item, index) => `${index + 1}. ${item.label}`);
  lines.push(whatsappTexts.menuLine);
  return lines.join('\n');
}

const withMenu = (text: string, menu: string | null): string =>
  menu === null ? text : text === '' ? menu : `${text}\n\n${menu}`;

/** Width and height from a PNG's IHDR chunk, so WhatsApp lays the image out before it loads. */
function pngSize(png: Buffer): { width: number; height: number } | Record<string, never> {
  const signature = '89504e470d0a1a0a';
  if (png.length < 24 || png.subarray(0, 8).toString('hex') !== signature) return {};
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Sends the core's messages to one chat, in order. */
export async function sendOutbound(
  socket: Pick<WhatsAppSocketLike, 'sendMessage'>,
  jid: string,
  messages: Outbound[],
): Promise<void> {
  // The core remembers the last menu of an answer; only its numbers resolve.
  let numbered = -1;
  messages.forEach((message, index) => {
    if ('menu' in message && message.menu) numbered = index;
  });
  for (const [index, message] of messages.entries()) {
    const menu =
      index === numbered && 'menu' in message && message.menu ? menuLines(message.menu) : null;
    switch (message.kind) {
      case 'text':
        await socket.sendMessage(jid, { text: withMenu(message.text, menu) });
        break;
      case 'link': {
        const label = message.label || whatsappTexts.openLink;
        await socket.sendMessage(jid, {
          text: withMenu(`${message.text}\n\n${label}: ${message.url}`, menu),
        });
        break;
      }
      case 'image': {
        const caption = withMenu(message.caption ?? '', menu);
        await socket.sendMessage(jid, {
          image: message.png,
          mimetype: 'image/png',
          ...pngSize(message.png),
          ...(caption ? { caption } : {}),
        });
        break;
      }
      case 'document':
        await socket.sendMessage(jid, {
          document: message.bytes,
          fileName: message.filename,
          mimetype: message.mimeType,
          ...(message.caption ? { caption: message.caption } : {}),
        });
        break;
    }
  }
}

export class WhatsAppAdapter {
  private readonly limiter: NumberRateLimiter;
  private readonly failingChecks = new EveryFor(60_000);
  private readonly textOnlyAnswers: EveryFor;
  /** The tail of each chat's queue of turns: one turn at a time per chat. */
  private readonly chats = new Map<string, Promise<void>>();
  private readonly nowMs: () => number;

  constructor(private readonly options: WhatsAppAdapterOptions) {
    this.limiter = new NumberRateLimiter(options.rateLimit ?? { messages: 20, windowMs: 10_000 });
    this.textOnlyAnswers = new EveryFor(options.textOnlyEveryMs ?? 60_000);
    this.nowMs = options.nowMs ?? Date.now;
  }

  /** Answers the socket's incoming messages (each new socket after a reconnect too). */
  attach(socket: WhatsAppSocketLike): void {
    socket.ev.on('messages.upsert', ({ messages, type }) => {
      // 'append' is history and our own sends from other devices, not new messages.
      if (type !== 'notify') return;
      for (const message of messages) this.enqueue(socket, message);
    });
  }

  /** Resolves once every turn queued so far has been answered. */
  async drain(): Promise<void> {
    while (this.chats.size > 0) await Promise.all([...this.chats.values()]);
  }

  private enqueue(socket: WhatsAppSocketLike, message: WAMessage): void {
    const jid = message.key.remoteJid;
    if (!jid || message.key.fromMe || !isDirectChat(jid)) return;
    const previous = this.chats.get(jid) ?? Promise.resolve();
    const turn = previous
      .then(() => this.handle(socket, jid, message))
      .catch((error: unknown) => {
        this.options.logger.error({ err: error, jid, id: message.key.id }, 'whatsapp.turn_failed');
      });
    this.chats.set(jid, turn);
    void turn.then(() => {
      if (this.chats.get(jid) === turn) this.chats.delete(jid);
    });
  }

  private async handle(socket: WhatsAppSocketLike, jid: string, message: WAMessage): Promise<void> {
    const { conversation, logger } = this.options;
    const number = await numberOf(socket, message.key);
    if (!number) {
      logger.warn({ jid }, 'whatsapp.no_phone_number');
      return;
    }
    const parsed = parseMessage(message.message);
    if (parsed.kind === 'nothing') return;
    const now = this.nowMs();
    const verdict = this.limiter.hit(number, now);
    if (verdict === 'drop') return;
    if (verdict === 'warn') {
      await socket.sendMessage(jid, { text: textsFor('en').slowDown });
      return;
    }
    // Writing again lifts a "not reachable" mark left by a failed delivery
    // (checked at most once a minute per number: it is a write).
    if (this.failingChecks.due(number, now)) await clearChannelFailing('whatsapp', number);
    if (socket.readMessages) {
      await socket.readMessages([message.key]).catch((error: unknown) => {
        logger.debug({ err: error }, 'whatsapp.read_receipt_failed');
      });
    }
    if (parsed.kind === 'not-text') {
      if (this.textOnlyAnswers.due(number, now)) {
        await socket.sendMessage(jid, { text: whatsappTexts.textOnly });
      }
      return;
    }
    const identity: ChatIdentity = {
      channel: 'whatsapp',
      externalId: number,
      ...(message.pushName ? { displayName: message.pushName } : {}),
    };
    const reply = await conversation.handle(identity, parsed.inbound);
    await sendOutbound(socket, jid, reply.messages);
  }
}

/** A one-to-one chat with a person (by phone number or by LID). */
function isDirectChat(jid: string): boolean {
  return jid.endsWith('@s.whatsapp.net') || jid.endsWith('@lid');
}

/** The writer's phone number: from the chat's jid, its phone-number alternative, or the LID mapping. */
async function numberOf(socket: WhatsAppSocketLike, key: WAMessageKey): Promise<string | null> {
  const direct = numberOfJid(key.remoteJid) ?? numberOfJid(key.remoteJidAlt);
  if (direct) return direct;
  const lid = key.remoteJid;
  if (!lid?.endsWith('@lid') || !socket.signalRepository) return null;
  const pn = await socket.signalRepository.lidMapping.getPNForLID(lid).catch(() => null);
  return numberOfJid(pn);
}

/**
 * A fixed window per number: the first `messages` in a window pass, the next
 * one gets a "slow down" answer, the rest are dropped until the window ends.
 */
export class NumberRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly limit: { messages: number; windowMs: number }) {}

  hit(number: string, nowMs: number): 'pass' | 'warn' | 'drop' {
    let window = this.windows.get(number);
    if (!window || nowMs - window.start >= this.limit.windowMs) {
      if (this.windows.size > 10_000) this.prune(nowMs);
      window = { start: nowMs, count: 0 };
      this.windows.set(number, window);
    }
    window.count += 1;
    if (window.count <= this.limit.messages) return 'pass';
    return window.count === this.limit.messages + 1 ? 'warn' : 'drop';
  }

  private prune(nowMs: number): void {
    for (const [number, window] of this.windows) {
      if (nowMs - window.start >= this.limit.windowMs) this.windows.delete(number);
    }
  }
}

/** Says yes for a key at most once per `intervalMs`. */
class EveryFor {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  due(key: string, nowMs: number): boolean {
    const previous = this.last.get(key);
    if (previous !== undefined && nowMs - previous < this.intervalMs) return false;
    if (this.last.size > 10_000) this.last.clear();
    this.last.set(key, nowMs);
    return true;
  }
}
