/**
 * A local Telegram Bot API for tests: a real HTTP server (node:http, 127.0.0.1,
 * a free port) that answers the Bot API methods Atlantic's bot calls the way
 * api.telegram.org does, so the real grammY stack (`bot.start()` long polling,
 * `@grammyjs/runner`, webhooks) runs against it:
 *
 *   new Bot(token, { client: { apiRoot: emulator.apiRoot } })
 *
 * Flow of a request: `GET|POST /bot<token>/<method>` (method names are
 * case-insensitive, as on Telegram) -> token check (401 `Unauthorized`) ->
 * method lookup (404 `Not Found`) -> parameters from the query string and the
 * body (JSON, urlencoded or multipart/form-data; files by `attach://<name>`
 * reference or by field name) -> injected fault (`failNext`), if any -> the
 * method's handler, answering `{ ok: true, result }` or Telegram's refusal
 * `{ ok: false, error_code, description, parameters? }`. Every call is logged
 * in `calls`. Updates wait in one queue until `getUpdates` confirms them by
 * `offset`, or until a webhook (`setWebhook` / `deliverTo`) accepts them.
 *
 * Test control: `user()` gives a person in a private chat with the bot, who
 * writes, shares a contact, presses buttons, blocks the bot, and reads what
 * the bot sent (current text and keyboard after edits, uploaded bytes).
 * Every wait is event-driven and rejects after `timeoutMs` with what did
 * arrive; nothing polls and nothing sleeps.
 *
 * Facts checked against the Bot API server's source (tdlib/telegram-bot-api
 * 10.0: Client.cpp, WebhookActor.cpp) and TDLib's MessageEntity.cpp:
 * error texts and the order of checks in the send methods; getUpdates
 * (`offset` confirms older updates, a negative offset keeps the last N,
 * `limit` 1..100, `timeout` 0..50 s, `allowed_updates` kept until changed and
 * `[]` meaning the default set, which leaves out chat_member,
 * message_reaction and message_reaction_count; a second long poll ends the
 * first with 409; getUpdates while a webhook is set is 409); the HTML,
 * MarkdownV2 and Markdown parsers and their error texts (ported); the inline
 * keyboard checks; webhook delivery (secret token header, a `method` in the
 * webhook's answer is executed, `Wrong response from the webhook: ...`).
 * Texts and behaviour not taken from those sources are marked "(emulator)".
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

import type { Message, MessageEntity, Update, User, UserFromGetMe } from 'grammy/types';

import { systemClock } from '../../lib/clock.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';

// ----- public types

export interface TelegramEmulatorOptions {
  /** The token the bot must use; any other token is answered 401 `Unauthorized`. */
  token: string;
  /** What getMe answers. `id` defaults to the token's numeric prefix. */
  botUser?: { id?: number; firstName?: string; username?: string };
  /** Message dates (`date`, `edit_date`, unix seconds); default the system clock. */
  clock?: Clock;
  logger?: Logger;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Wait before a failed webhook delivery is tried again; default 1000 ms. */
  webhookRetryDelayMs?: number;
}

/**
 * A failure of the next call(s) to a method, answered instead of running it
 * (nothing is sent, nothing changes). 429 carries `parameters.retry_after`,
 * as Telegram's flood limit does; `network: 'reset'` drops the connection
 * without an answer (grammY throws an `HttpError`).
 */
export type InjectedFault =
  | { status: 429; retryAfter: number; description?: string }
  | { status: 400 | 401 | 403 | 404 | 409 | 500 | 502 | 503; description?: string }
  | { network: 'reset' };

/** A file part of a multipart/form-data request. */
export interface UploadedFile {
  /** The form field it came in (grammY uses a random name referenced by `attach://`). */
  field: string;
  fileName: string;
  contentType: string;
  bytes: Buffer;
}

export interface ApiCall {
  /** Canonical name (`sendMessage`), whatever casing the client used. */
  method: string;
  /**
   * Parameters as the server read them. Form-encoded values that are JSON
   * (numbers, objects like `reply_markup`) are decoded; texts, captions, ids
   * and file references stay strings.
   */
  params: Record<string, unknown>;
  files: UploadedFile[];
  status: number;
  /** The refusal's description, when `status` is not 200. */
  description?: string;
  /** True when `failNext` answered the call. */
  isFault: boolean;
  /** True when the call came as the answer to a webhook delivery. */
  isWebhookReply: boolean;
  at: Date;
}

export interface InlineButton {
  text: string;
  callbackData?: string;
  url?: string;
}

export interface ReplyButton {
  text: string;
  requestContact: boolean;
  requestLocation: boolean;
}

/** The reply keyboard the person currently sees under the input field. */
export interface ReplyKeyboard {
  rows: ReplyButton[][];
  isOneTime: boolean;
  isPersistent: boolean;
  isResized: boolean;
  placeholder?: string;
}

export interface EmulatedFile {
  fileId: string;
  fileUniqueId: string;
  fileSize: number;
  /** The bytes exactly as uploaded (or downloaded from the URL given). */
  bytes: Buffer;
}

export interface EmulatedPhoto extends EmulatedFile {
  width: number;
  height: number;
}

export interface EmulatedDocument extends EmulatedFile {
  fileName: string;
  mimeType: string;
}

/** A message the bot sent, as it stands when this snapshot was taken. */
export interface BotMessage {
  messageId: number;
  chatId: number;
  /** Unix seconds, as in the Bot API. */
  date: number;
  editDate?: number;
  editCount: number;
  /** Grows with every edit and with deletion; `waitForEdit` waits for it to move. */
  revision: number;
  isDeleted: boolean;
  /** The text as the person sees it (markup parsed out), for text messages. */
  text?: string;
  caption?: string;
  /** Entities of the text or the caption. */
  entities: MessageEntity[];
  /** The parse_mode the bot last used for this message's text or caption. */
  parseMode?: string;
  /** The inline keyboard attached now (edits included). */
  inlineKeyboard?: InlineButton[][];
  /** The inline keyboard's buttons, row after row. */
  buttons: InlineButton[];
  /** Set when this message brought a reply keyboard, removed it, or asked to force a reply. */
  replyKeyboardAction?: 'show' | 'remove' | 'force_reply';
  photo?: EmulatedPhoto;
  document?: EmulatedDocument;
  disableNotification: boolean;
  protectContent: boolean;
  linkPreviewOptions?: Record<string, unknown>;
  replyToMessageId?: number;
  /** The message as the Bot API would return it now. */
  raw: Message;
}

export interface CallbackAnswer {
  callbackQueryId: string;
  messageId: number;
  data: string;
  text?: string;
  showAlert: boolean;
  url?: string;
  cacheTimeSeconds: number;
}

export interface ButtonPress {
  callbackQueryId: string;
  update: Update;
  /** The bot's answerCallbackQuery for this press (already given or still to come). */
  answered(options?: WaitOptions): Promise<CallbackAnswer>;
}

export interface WaitOptions {
  /** Default 5000. */
  timeoutMs?: number;
}

export interface SimulatedUserOptions {
  id: number;
  firstName: string;
  lastName?: string;
  username?: string;
  languageCode?: string;
  /**
   * Whether the person has already opened the chat with the bot. Telegram
   * refuses to let a bot write first (403 `bot can't initiate conversation
   * with a user`); anything the person sends starts the chat. Default false.
   */
  hasStartedBot?: boolean;
}

export interface SimulatedUser {
  readonly id: number;
  /** A private chat's id is the user's id. */
  readonly chatId: number;
  /** The Telegram `User` object updates carry. */
  readonly info: User;
  readonly isBlocked: boolean;
  /** Sends a text message; `/command` words get `bot_command` entities as on Telegram. */
  sendText(text: string): Message;
  /** Shares a contact (by default the person's own, with `user_id`), e.g. after a request_contact button. */
  sendContact(
    phoneNumber: string,
    options?: { firstName?: string; lastName?: string; userId?: number | null },
  ): Message;
  /**
   * Taps a button of the current reply keyboard: a request_contact button shares
   * `contactPhoneNumber`, any other sends its text. Throws if no such button is shown.
   */
  pressReplyButton(text: string, options?: { contactPhoneNumber?: string }): Message;
  /** Presses an inline button; throws if the message's current keyboard has no button with that data. */
  pressButton(message: BotMessage | number, callbackData: string): ButtonPress;
  /** What the bot sent to this chat, in order, as it stands now (deleted ones left out unless asked). */
  messages(options?: { includeDeleted?: boolean }): BotMessage[];
  message(messageId: number): BotMessage | undefined;
  /**
   * The next message the bot sent that no `nextMessage`/`waitForMessages` has
   * returned yet: already sent, or the next to arrive.
   */
  nextMessage(options?: WaitOptions): Promise<BotMessage>;
  /** The next `count` unread messages, like `nextMessage`. */
  waitForMessages(count: number, options?: WaitOptions): Promise<BotMessage[]>;
  /** Resolves once the message changed (edit, new keyboard, deletion) after the snapshot (or after this call, given an id). */
  waitForEdit(message: BotMessage | number, options?: WaitOptions): Promise<BotMessage>;
  replyKeyboard(): ReplyKeyboard | undefined;
  /** sendChatAction actions for this chat, oldest first. */
  chatActions(): string[];
  callbackAnswers(): CallbackAnswer[];
  /** The person blocks the bot: sends fail with 403 and the bot gets a my_chat_member update. */
  block(): void;
  unblock(): void;
}

export interface WebhookState {
  url: string;
  secretToken?: string;
  maxConnections: number;
  /** Undefined: the default update types. */
  allowedUpdates?: string[];
  lastErrorDate?: number;
  lastErrorMessage?: string;
}

export interface WebhookDelivery {
  updateId: number;
  url: string;
  /** The webhook's HTTP status, when it answered. */
  status?: number;
  /** Why the delivery failed, as getWebhookInfo's last_error_message. */
  error?: string;
  at: Date;
}

export interface TelegramEmulator {
  /** `http://127.0.0.1:PORT`: grammY's `client.apiRoot`. */
  readonly apiRoot: string;
  readonly token: string;
  /** getMe's answer; pass as `botInfo` to skip the getMe call. */
  readonly botInfo: UserFromGetMe;
  /** A person in a private chat with the bot; the same id gives the same handle. */
  user(options: SimulatedUserOptions): SimulatedUser;
  /** Queues any update (a type the handles do not make); update_id is assigned. */
  sendUpdate(update: Record<string, unknown>): Update;
  /** The next `count` (default 1) calls to `method` fail as described. */
  failNext(method: string, fault: InjectedFault, count?: number): void;
  /** Every call, oldest first. */
  readonly calls: readonly ApiCall[];
  /** The first call to `method` (already made or still to come) that matches. */
  waitForCall(
    method: string,
    options?: WaitOptions & { where?: (call: ApiCall) => boolean },
  ): Promise<ApiCall>;
  /** Resolves when a getUpdates long poll is parked, waiting for an update. */
  waitForLongPoll(options?: WaitOptions): Promise<void>;
  /** Updates not yet confirmed (long polling) or accepted (webhook). */
  readonly pendingUpdates: readonly Update[];
  /** Deliver updates to `url` as if the bot had called setWebhook. */
  deliverTo(url: string, secretToken?: string): void;
  /** Back to long polling, as deleteWebhook. */
  stopDelivering(): void;
  readonly webhook: WebhookState | undefined;
  readonly deliveries: readonly WebhookDelivery[];
  /** Commands set with setMyCommands for a scope (default `{ type: 'default' }`) and language. */
  commands(scope?: Record<string, unknown>, languageCode?: string): unknown[];
  /** Ends any parked long poll with an empty result, fails pending waits, closes the server. */
  stop(): Promise<void>;
}

// ----- limits and tables

/** Bot API upload limit (50 MB) plus room for the form around it. */
const MAX_BODY_BYTES = 51 * 1024 * 1024;
const MAX_TEXT_LENGTH = 4096;
const MAX_CAPTION_LENGTH = 1024;
/** Raw text before parsing (Client.cpp get_formatted_text: 1 << 15 bytes). */
const MAX_RAW_TEXT_BYTES = 1 << 15;
const MAX_CALLBACK_DATA_BYTES = 64;
const LONG_POLL_MAX_TIMEOUT_SECONDS = 50;
const MAX_PHOTO_SIDE_SUM = 10_000;
const MAX_PHOTO_RATIO = 20;
const DEFAULT_WAIT_MS = 5000;
const URL_DOWNLOAD_TIMEOUT_MS = 10_000;
const MAX_URL_DOWNLOAD_BYTES = 20 * 1024 * 1024;
const WEBHOOK_TIMEOUT_MS = 30_000;
/** How long stop() lets requests in flight finish before cutting connections. */
const STOP_GRACE_MS = 1000;

const UPDATE_TYPES = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
] as const;
/** Left out unless asked for (Client.h DEFAULT_ALLOWED_UPDATE_TYPES). */
const OPT_IN_UPDATE_TYPES = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);

const CHAT_ACTIONS = new Set([
  'cancel',
  'typing',
  'record_video',
  'upload_video',
  'record_audio',
  'record_voice',
  'upload_audio',
  'upload_voice',
  'upload_photo',
  'upload_document',
  'choose_sticker',
  'pick_up_location',
  'find_location',
  'record_video_note',
  'upload_video_note',
]);

/** Form values that are texts or ids, never decoded as JSON or numbers. */
const STRING_PARAMS = new Set([
  'text',
  'caption',
  'parse_mode',
  'callback_query_id',
  'inline_message_id',
  'url',
  'secret_token',
  'ip_address',
  'action',
  'language_code',
  'file_id',
  'photo',
  'document',
  'thumbnail',
  'business_connection_id',
  'message_effect_id',
  'description',
  'short_description',
  'name',
  'title',
  'query',
  'phone_number',
  'first_name',
  'last_name',
]);

/** Telegram guesses a document's MIME type from its file name (emulator: a short table). */
const MIME_BY_EXTENSION: Record<string, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  txt: 'text/plain',
  csv: 'text/csv',
  html: 'text/html',
  json: 'application/json',
  xml: 'application/xml',
  zip: 'application/zip',
  mp4: 'video/mp4',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
};

/** Telegram's photo sizes (s, m, x, y) below the full one, which is capped at 2560. */
const PHOTO_SIDES = [90, 320, 800, 1280];
const MAX_PHOTO_SIDE = 2560;

// ----- refusals

type Json = Record<string, unknown>;

/** A Bot API refusal; handlers throw it and the edge answers it. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly description: string,
    readonly parameters?: Json,
  ) {
    super(description);
  }
}

const badRequest = (text: string): Refusal => new Refusal(400, `Bad Request: ${text}`);

/** An error of TDLib's text parsers; reported as `can't parse entities: ...`. */
class EntityParseError extends Error {}

interface Answer {
  status: number;
  body: Json;
}

function refusalAnswer(refusal: Refusal): Answer {
  const body: Json = { ok: false, error_code: refusal.status, description: refusal.description };
  if (refusal.parameters !== undefined) body.parameters = refusal.parameters;
  return { status: refusal.status, body };
}

function faultAnswer(fault: Exclude<InjectedFault, { network: 'reset' }>): Answer {
  if (fault.status === 429) {
    return refusalAnswer(
      new Refusal(429, fault.description ?? `Too Many Requests: retry after ${fault.retryAfter}`, {
        retry_after: fault.retryAfter,
      }),
    );
  }
  const defaults: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
  };
  return refusalAnswer(
    new Refusal(fault.status, fault.description ?? defaults[fault.status] ?? ''),
  );
}

// ----- request parameters

class Params {
  constructor(
    readonly values: Json,
    readonly files: ReadonlyMap<string, UploadedFile>,
  ) {}

  value(name: string): unknown {
    const value = this.values[name];
    return value === null ? undefined : value;
  }

  string(name: string): string | undefined {
    const value = this.value(name);
    if (value === undefined) return undefined;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return JSON.stringify(value);
  }

  /** Like the server's td::to_integer: a non-number is 0; absent is undefined. */
  int(name: string): number | undefined {
    const value = this.value(name);
    if (typeof value === 'number') return Math.trunc(value);
    if (typeof value === 'string' && value.trim() !== '') {
      const parsed = Number(value.trim());
      return Number.isFinite(parsed) ? Math.trunc(parsed) : 0;
    }
    return undefined;
  }

  bool(name: string): boolean {
    const value = this.value(name);
    return value === true || value === 1 || value === 'true' || value === '1';
  }

  /** A JSON-valued parameter, given as JSON or as a JSON string. */
  json(name: string, what: string): unknown {
    const value = this.value(name);
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw badRequest(`can't parse ${what} JSON object`);
    }
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A form value decoded the way the server reads that parameter. */
function fromFormValue(key: string, value: string): unknown {
  if (STRING_PARAMS.has(key)) return value;
  const trimmed = value.trim();
  if (/^-?\d+$/.test(trimmed)) {
    const number = Number(trimmed);
    return Number.isSafeInteger(number) ? number : value;
  }
  if (trimmed === 'true') return true;
  if (trimmed === 'false') return false;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}

interface ParsedInput {
  values: Json;
  files: Map<string, UploadedFile>;
}

class BodyTooLarge extends Error {}

async function readRequestBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readInput(request: IncomingMessage, url: URL): Promise<ParsedInput> {
  const values: Json = {};
  for (const [key, value] of url.searchParams) values[key] = fromFormValue(key, value);
  const files = new Map<string, UploadedFile>();
  const body = await readRequestBody(request);
  if (body.length === 0) return { values, files };
  const type = (request.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/form-data')) {
    const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(
      request.headers['content-type'] ?? '',
    );
    const marker = boundary?.[1] ?? boundary?.[2];
    if (marker === undefined) throw badRequest('multipart boundary is missing (emulator)');
    for (const part of parseMultipart(body, marker)) {
      if (part.fileName === undefined) {
        values[part.name] = fromFormValue(part.name, part.body.toString('utf8'));
      } else {
        files.set(part.name, {
          field: part.name,
          fileName: part.fileName,
          contentType: part.contentType,
          bytes: part.body,
        });
      }
    }
  } else if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) {
      values[key] = fromFormValue(key, value);
    }
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw badRequest("can't parse JSON body (emulator)");
    }
    if (!isObject(parsed)) throw badRequest('JSON body must be an object (emulator)');
    Object.assign(values, parsed);
  }
  return { values, files };
}

interface MultipartPart {
  name: string;
  fileName?: string;
  contentType: string;
  body: Buffer;
}

/**
 * multipart/form-data (RFC 7578). grammY writes headers without spaces and
 * file names unquoted (`content-disposition:form-data;name="x";filename=a.pdf`),
 * so parameters are read leniently; bodies are binary and end at the next
 * CRLF + `--boundary`.
 */
function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: MultipartPart[] = [];
  let position = body.indexOf(delimiter);
  if (position === -1) throw badRequest('malformed multipart body (emulator)');
  position += delimiter.length;
  for (;;) {
    if (body[position] === 0x2d && body[position + 1] === 0x2d) break; // `--`: the last part ended
    const lineEnd = body.indexOf('\r\n', position);
    if (lineEnd === -1) throw badRequest('malformed multipart body (emulator)');
    const headersEnd = body.indexOf('\r\n\r\n', lineEnd);
    if (headersEnd === -1) throw badRequest('malformed multipart body (emulator)');
    const headers = body.subarray(lineEnd + 2, headersEnd).toString('utf8');
    const contentStart = headersEnd + 4;
    const contentEnd = body.indexOf(nextDelimiter, contentStart);
    if (contentEnd === -1) throw badRequest('malformed multipart body (emulator)');
    let disposition = '';
    let contentType = 'application/octet-stream';
    for (const line of headers.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-disposition') disposition = value;
      if (name === 'content-type') contentType = value;
    }
    const params = dispositionParams(disposition);
    const name = params.name;
    if (name !== undefined) {
      parts.push({
        name,
        fileName: params['filename*'] ?? params.filename,
        contentType,
        body: Buffer.from(body.subarray(contentStart, contentEnd)),
      });
    }
    position = contentEnd + nextDelimiter.length;
  }
  return parts;
}

/** `form-data; name="a"; filename=b.pdf` -> `{ name: 'a', filename: 'b.pdf' }`. */
function dispositionParams(value: string): Record<string, string> {
  const params: Record<string, string> = {};
  let index = value.indexOf(';');
  if (index === -1) return params;
  index += 1;
  while (index < value.length) {
    while (value[index] === ' ' || value[index] === ';') index += 1;
    const equals = value.indexOf('=', index);
    if (equals === -1) break;
    const key = value.slice(index, equals).trim().toLowerCase();
    index = equals + 1;
    let parsed = '';
    if (value[index] === '"') {
      index += 1;
      while (index < value.length && value[index] !== '"') {
        if (value[index] === '\\' && index + 1 < value.length) index += 1;
        parsed += value[index] ?? '';
        index += 1;
      }
      index += 1;
    } else if (key === 'filename') {
      // grammY writes the file name last and unquoted; it may hold `;`.
      parsed = value.slice(index).trim();
      index = value.length;
    } else {
      const end = value.indexOf(';', index);
      parsed = value.slice(index, end === -1 ? value.length : end).trim();
      index = end === -1 ? value.length : end;
    }
    if (key === 'filename*') {
      const encoded = /^[^']*'[^']*'(.*)$/.exec(parsed)?.[1];
      if (encoded !== undefined) parsed = decodeURIComponent(encoded);
    }
    params[key] = parsed;
  }
  return params;
}

// ----- formatted text (ported from TDLib's MessageEntity.cpp)

interface FormattedText {
  text: string;
  entities: MessageEntity[];
}

function entity(type: string, offset: number, length: number, extra: Json = {}): MessageEntity {
  return { type, offset, length, ...extra } as MessageEntity;
}

function sortEntities(entities: MessageEntity[]): MessageEntity[] {
  return entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
}

const isSpace = (char: string): boolean => /^[ \t\r\n\v\f]$/.test(char);

/** TDLib keeps links it can check; this approximates LinkManager::get_checked_link (emulator). */
function checkedLink(url: string): string {
  const trimmed = url.trim();
  if (trimmed === '') return '';
  if (/^(https?|tg|ton):/i.test(trimmed)) return trimmed;
  if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed)) return '';
  return `http://${trimmed}`;
}

function byteOffsetIn(input: string): (index: number) => number {
  return (index) => Buffer.byteLength(input.slice(0, index));
}

function decodeHtmlEntity(
  input: string,
  position: number,
): { text: string; end: number } | undefined {
  const at = (index: number): string => input[index] ?? '';
  let end = position + 1;
  let code = 0;
  if (at(position + 1) === '#') {
    end += 1;
    if (at(position + 2) === 'x') {
      end += 1;
      while (/^[0-9a-fA-F]$/.test(at(end))) {
        code = code * 16 + parseInt(at(end), 16);
        end += 1;
      }
    } else {
      while (/^[0-9]$/.test(at(end))) {
        code = code * 10 + Number(at(end));
        end += 1;
      }
    }
    if (code === 0 || code >= 0x10ffff || end - position >= 10) return undefined;
  } else {
    while (/^[a-zA-Z]$/.test(at(end))) end += 1;
    const named: Record<string, number> = { lt: 60, gt: 62, amp: 38, quot: 34 };
    code = named[input.slice(position + 1, end)] ?? 0;
    if (code === 0) return undefined;
  }
  if (at(end) === ';') end += 1;
  const text =
    code >= 0xd800 && code <= 0xdfff ? String.fromCharCode(code) : String.fromCodePoint(code);
  return { text, end };
}

const HTML_TAGS = new Set([
  'a',
  'b',
  'strong',
  'i',
  'em',
  's',
  'strike',
  'del',
  'u',
  'ins',
  'tg-spoiler',
  'tg-emoji',
  'span',
  'pre',
  'code',
  'blockquote',
]);

function parseHtml(input: string): FormattedText {
  const at = (index: number): string => input[index] ?? '';
  const byteOffset = byteOffsetIn(input);
  const size = input.length;
  const entities: MessageEntity[] = [];
  const nested: { tag: string; argument: string; offset: number; isExpandable: boolean }[] = [];
  let out = '';
  for (let i = 0; i < size; i += 1) {
    const char = at(i);
    if (char === '&') {
      const decoded = decodeHtmlEntity(input, i);
      if (decoded !== undefined) {
        out += decoded.text;
        i = decoded.end - 1;
        continue;
      }
    }
    if (char !== '<') {
      out += char;
      continue;
    }
    const begin = i;
    i += 1;
    if (at(i) !== '/') {
      while (i < size && !isSpace(at(i)) && at(i) !== '>') i += 1;
      if (i >= size)
        throw new EntityParseError(`Unclosed start tag at byte offset ${byteOffset(begin)}`);
      const tag = input.slice(begin + 1, i).toLowerCase();
      if (!HTML_TAGS.has(tag)) {
        throw new EntityParseError(
          `Unsupported start tag "${tag}" at byte offset ${byteOffset(begin)}`,
        );
      }
      let argument = '';
      let isExpandable = false;
      while (at(i) !== '>') {
        while (i < size && isSpace(at(i))) i += 1;
        if (at(i) === '>') break;
        const attributeBegin = i;
        while (i < size && !isSpace(at(i)) && at(i) !== '=' && at(i) !== '>') i += 1;
        const attribute = input.slice(attributeBegin, i);
        if (attribute === '') {
          throw new EntityParseError(
            `Empty attribute name in the tag "${tag}" at byte offset ${byteOffset(begin)}`,
          );
        }
        while (i < size && isSpace(at(i))) i += 1;
        if (tag === 'blockquote' && attribute.toLowerCase() === 'expandable' && at(i) !== '=') {
          isExpandable = true;
          continue;
        }
        if (at(i) !== '=') {
          throw new EntityParseError(
            `Expected equal sign in declaration of an attribute of the tag "${tag}" at byte offset ${byteOffset(begin)}`,
          );
        }
        i += 1;
        while (i < size && isSpace(at(i))) i += 1;
        if (i >= size) {
          throw new EntityParseError(
            `Unclosed start tag "${tag}" at byte offset ${byteOffset(begin)}`,
          );
        }
        let value = '';
        if (at(i) !== "'" && at(i) !== '"') {
          const tokenBegin = i;
          while (/^[a-zA-Z0-9.-]$/.test(at(i))) i += 1;
          value = input.slice(tokenBegin, i).toLowerCase();
          if (!isSpace(at(i)) && at(i) !== '>') {
            throw new EntityParseError(
              `Unexpected end of name token at byte offset ${byteOffset(tokenBegin)}`,
            );
          }
        } else {
          const quote = at(i);
          i += 1;
          while (i < size && at(i) !== quote) {
            if (at(i) === '&') {
              const decoded = decodeHtmlEntity(input, i);
              if (decoded !== undefined) {
                value += decoded.text;
                i = decoded.end;
                continue;
              }
            }
            value += at(i);
            i += 1;
          }
          if (at(i) === quote) i += 1;
        }
        if (i >= size) {
          throw new EntityParseError(`Unclosed start tag at byte offset ${byteOffset(begin)}`);
        }
        const name = attribute.toLowerCase();
        if (tag === 'a' && name === 'href') argument = value;
        else if (tag === 'code' && name === 'class' && value.startsWith('language-')) {
          argument = value.slice('language-'.length);
        } else if (tag === 'span' && name === 'class' && value.startsWith('tg-')) {
          argument = value.slice(3);
        } else if (tag === 'tg-emoji' && name === 'emoji-id') argument = value;
      }
      if (tag === 'span' && argument !== 'spoiler') {
        throw new EntityParseError(
          `Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(begin)}`,
        );
      }
      nested.push({ tag, argument, offset: out.length, isExpandable });
      continue;
    }
    // An end tag.
    const open = nested.at(-1);
    if (open === undefined) {
      throw new EntityParseError(`Unexpected end tag at byte offset ${byteOffset(begin)}`);
    }
    while (i < size && !isSpace(at(i)) && at(i) !== '>') i += 1;
    const endTag = input.slice(begin + 2, i).toLowerCase();
    while (i < size && isSpace(at(i))) i += 1;
    if (at(i) !== '>') {
      throw new EntityParseError(`Unclosed end tag at byte offset ${byteOffset(begin)}`);
    }
    if (endTag !== '' && endTag !== open.tag) {
      throw new EntityParseError(
        `Unmatched end tag at byte offset ${byteOffset(begin)}, expected "</${open.tag}>", found "</${endTag}>"`,
      );
    }
    const length = out.length - open.offset;
    if (length > 0) {
      const last = entities.at(-1);
      const coversSame =
        last !== undefined && last.offset === open.offset && last.length === length;
      switch (open.tag) {
        case 'i':
        case 'em':
          entities.push(entity('italic', open.offset, length));
          break;
        case 'b':
        case 'strong':
          entities.push(entity('bold', open.offset, length));
          break;
        case 's':
        case 'strike':
        case 'del':
          entities.push(entity('strikethrough', open.offset, length));
          break;
        case 'u':
        case 'ins':
          entities.push(entity('underline', open.offset, length));
          break;
        case 'tg-spoiler':
        case 'span':
          entities.push(entity('spoiler', open.offset, length));
          break;
        case 'tg-emoji':
          if (!/^[1-9]\d*$/.test(open.argument)) {
            throw new EntityParseError('Invalid custom emoji identifier specified');
          }
          entities.push(
            entity('custom_emoji', open.offset, length, { custom_emoji_id: open.argument }),
          );
          break;
        case 'a': {
          const url = checkedLink(open.argument === '' ? out.slice(open.offset) : open.argument);
          if (url !== '') entities.push(entity('text_link', open.offset, length, { url }));
          break;
        }
        case 'pre':
          if (coversSame && last.type === 'code' && 'language' in last) {
            entities[entities.length - 1] = entity('pre', open.offset, length, {
              language: (last as { language: string }).language,
            });
          } else {
            entities.push(entity('pre', open.offset, length));
          }
          break;
        case 'code':
          if (coversSame && last.type === 'pre' && open.argument !== '') {
            entities[entities.length - 1] = entity('pre', open.offset, length, {
              language: open.argument,
            });
          } else if (open.argument !== '') {
            entities.push(entity('code', open.offset, length, { language: open.argument }));
          } else {
            entities.push(entity('code', open.offset, length));
          }
          break;
        case 'blockquote':
          entities.push(
            entity(open.isExpandable ? 'expandable_blockquote' : 'blockquote', open.offset, length),
          );
          break;
      }
    }
    nested.pop();
  }
  const unclosed = nested.at(-1);
  if (unclosed !== undefined) {
    throw new EntityParseError(`Can't find end tag corresponding to start tag ${unclosed.tag}`);
  }
  // A language on a code entity outside pre is dropped.
  const cleaned = entities.map((item) =>
    item.type === 'code' && 'language' in item ? entity('code', item.offset, item.length) : item,
  );
  return { text: out, entities: sortEntities(cleaned) };
}

type V2Kind =
  | 'Bold'
  | 'Italic'
  | 'Underline'
  | 'Strikethrough'
  | 'Spoiler'
  | 'Code'
  | 'Pre'
  | 'PreCode'
  | 'TextUrl'
  | 'CustomEmoji'
  | 'BlockQuote';

const V2_RESERVED = '_*[]()~`>#+-=|{}.!\n';

function parseMarkdownV2(input: string): FormattedText {
  const at = (index: number): string => input[index] ?? '';
  const byteOffset = byteOffsetIn(input);
  const size = input.length;
  const entities: MessageEntity[] = [];
  const nested: { kind: V2Kind; argument: string; offset: number; begin: number }[] = [];
  const reservedError = (char: string): EntityParseError =>
    new EntityParseError(
      `Character '${char}' is reserved and must be escaped with the preceding '\\'`,
    );
  const isEscapable = (char: string): boolean =>
    char !== '' && char.charCodeAt(0) > 0 && char.charCodeAt(0) <= 126;
  let out = '';
  let haveBlockquote = false;
  for (let i = 0; i < size; i += 1) {
    const char = at(i);
    const next = at(i + 1);
    if (char === '\\' && isEscapable(next)) {
      i += 1;
      out += next;
      continue;
    }
    const top = nested.at(-1);
    const inCode =
      top !== undefined && (top.kind === 'Code' || top.kind === 'Pre' || top.kind === 'PreCode');
    if (!(inCode ? '`' : V2_RESERVED).includes(char)) {
      out += char;
      continue;
    }
    let isEnd = false;
    if (top !== undefined) {
      if (haveBlockquote && char === '\n' && (i + 1 === size || next !== '>')) {
        isEnd = true;
      } else {
        switch (top.kind) {
          case 'Bold':
            isEnd = char === '*';
            break;
          case 'Italic':
            isEnd = char === '_' && next !== '_';
            break;
          case 'Code':
            isEnd = char === '`';
            break;
          case 'Pre':
          case 'PreCode':
            isEnd = char === '`' && next === '`' && at(i + 2) === '`';
            break;
          case 'TextUrl':
          case 'CustomEmoji':
            isEnd = char === ']';
            break;
          case 'Underline':
            isEnd = char === '_' && next === '_';
            break;
          case 'Strikethrough':
            isEnd = char === '~';
            break;
          case 'Spoiler':
            isEnd = char === '|' && next === '|';
            break;
          case 'BlockQuote':
            isEnd = false;
            break;
        }
      }
    }
    if (!isEnd || top === undefined) {
      let kind: V2Kind | undefined;
      let argument = '';
      const begin = i;
      switch (char) {
        case '_':
          if (next === '_') {
            kind = 'Underline';
            i += 1;
          } else {
            kind = 'Italic';
          }
          break;
        case '*':
          kind = 'Bold';
          break;
        case '~':
          kind = 'Strikethrough';
          break;
        case '|':
          if (next !== '|') throw reservedError(char);
          i += 1;
          kind = 'Spoiler';
          break;
        case '[':
          kind = 'TextUrl';
          break;
        case '`':
          if (next === '`' && at(i + 2) === '`') {
            i += 3;
            kind = 'Pre';
            let languageEnd = i;
            while (languageEnd < size && !isSpace(at(languageEnd)) && at(languageEnd) !== '`') {
              languageEnd += 1;
            }
            if (i !== languageEnd && languageEnd < size && at(languageEnd) !== '`') {
              kind = 'PreCode';
              argument = input.slice(i, languageEnd);
              i = languageEnd;
            }
            if (at(i) === '\n' || at(i) === '\r') {
              const after = at(i + 1);
              i += (after === '\n' || after === '\r') && at(i) !== after ? 2 : 1;
            }
            i -= 1;
          } else {
            kind = 'Code';
          }
          break;
        case '!':
          if (next !== '[') throw reservedError(char);
          i += 1;
          kind = 'CustomEmoji';
          break;
        case '\n':
          out += '\n';
          if (next === '>') {
            i += 1;
            if (!haveBlockquote) {
              kind = 'BlockQuote';
              haveBlockquote = true;
            }
          }
          break;
        case '>':
          if (i !== 0) throw reservedError(char);
          kind = 'BlockQuote';
          haveBlockquote = true;
          break;
        default:
          throw reservedError(char);
      }
      if (kind !== undefined) nested.push({ kind, argument, offset: out.length, begin });
      continue;
    }
    // The end of the innermost entity.
    if (char === '\n' && top.kind !== 'BlockQuote') {
      throw new EntityParseError(
        `Can't find end of ${top.kind} entity at byte offset ${byteOffset(top.begin)}`,
      );
    }
    let argument = top.argument;
    let isSkipped = out.length === top.offset;
    switch (top.kind) {
      case 'Underline':
      case 'Spoiler':
        i += 1;
        break;
      case 'Pre':
      case 'PreCode':
        i += 2;
        break;
      case 'TextUrl':
      case 'CustomEmoji': {
        let url = '';
        if (next !== '(') {
          if (top.kind === 'CustomEmoji') {
            throw new EntityParseError('Custom emoji entity must contain a tg://emoji URL');
          }
          url = out.slice(top.offset);
        } else {
          i += 2;
          const urlBegin = i;
          while (i < size && at(i) !== ')') {
            if (at(i) === '\\' && isEscapable(at(i + 1))) {
              url += at(i + 1);
              i += 2;
              continue;
            }
            url += at(i);
            i += 1;
          }
          if (at(i) !== ')') {
            const what = top.kind === 'CustomEmoji' ? 'a custom emoji URL' : 'a URL';
            throw new EntityParseError(
              `Can't find end of ${what} at byte offset ${byteOffset(urlBegin)}`,
            );
          }
        }
        if (top.kind === 'CustomEmoji') {
          const id = /^tg:\/\/emoji\?id=([1-9]\d*)$/.exec(url)?.[1];
          if (id === undefined)
            throw new EntityParseError('Invalid custom emoji URL specified (emulator)');
          argument = id;
        } else {
          argument = checkedLink(url);
          if (argument === '') isSkipped = true;
        }
        break;
      }
      case 'BlockQuote':
        haveBlockquote = false;
        out += char;
        break;
      default:
        break;
    }
    if (!isSkipped)
      entities.push(v2Entity(top.kind, top.offset, out.length - top.offset, argument));
    nested.pop();
  }
  const last = nested.at(-1);
  if (haveBlockquote && last?.kind === 'BlockQuote') {
    if (out.length > last.offset)
      entities.push(v2Entity('BlockQuote', last.offset, out.length - last.offset, ''));
    nested.pop();
  }
  const unclosed = nested.at(-1);
  if (unclosed !== undefined) {
    throw new EntityParseError(
      `Can't find end of ${unclosed.kind} entity at byte offset ${byteOffset(unclosed.begin)}`,
    );
  }
  return { text: out, entities: sortEntities(entities) };
}

function v2Entity(kind: V2Kind, offset: number, length: number, argument: string): MessageEntity {
  switch (kind) {
    case 'Bold':
      return entity('bold', offset, length);
    case 'Italic':
      return entity('italic', offset, length);
    case 'Underline':
      return entity('underline', offset, length);
    case 'Strikethrough':
      return entity('strikethrough', offset, length);
    case 'Spoiler':
      return entity('spoiler', offset, length);
    case 'Code':
      return entity('code', offset, length);
    case 'Pre':
      return entity('pre', offset, length);
    case 'PreCode':
      return entity('pre', offset, length, { language: argument });
    case 'TextUrl':
      return entity('text_link', offset, length, { url: argument });
    case 'CustomEmoji':
      return entity('custom_emoji', offset, length, { custom_emoji_id: argument });
    case 'BlockQuote':
      return entity('blockquote', offset, length);
  }
}

/** The legacy `Markdown` parse mode. */
function parseMarkdown(input: string): FormattedText {
  const at = (index: number): string => input[index] ?? '';
  const byteOffset = byteOffsetIn(input);
  const size = input.length;
  const entities: MessageEntity[] = [];
  let out = '';
  for (let i = 0; i < size; i += 1) {
    const char = at(i);
    if (char === '\\' && '_*`['.includes(at(i + 1)) && at(i + 1) !== '') {
      i += 1;
      out += at(i);
      continue;
    }
    if (!'_*`['.includes(char)) {
      out += char;
      continue;
    }
    const begin = i;
    const endChar = char === '[' ? ']' : char;
    let isPre = false;
    let language = '';
    i += 1;
    if (char === '`' && at(i) === '`' && at(i + 1) === '`') {
      i += 2;
      isPre = true;
      let languageEnd = i;
      while (languageEnd < size && !isSpace(at(languageEnd)) && at(languageEnd) !== '`')
        languageEnd += 1;
      if (i !== languageEnd && languageEnd < size && at(languageEnd) !== '`') {
        language = input.slice(i, languageEnd);
        i = languageEnd;
      }
      if (at(i) === '\n' || at(i) === '\r') {
        const after = at(i + 1);
        i += (after === '\n' || after === '\r') && at(i) !== after ? 2 : 1;
      }
    }
    const offset = out.length;
    while (
      i < size &&
      (at(i) !== endChar || (isPre && !(at(i + 1) === '`' && at(i + 2) === '`')))
    ) {
      out += at(i);
      i += 1;
    }
    if (i >= size) {
      throw new EntityParseError(
        `Can't find end of the entity starting at byte offset ${byteOffset(begin)}`,
      );
    }
    const length = out.length - offset;
    if (length > 0) {
      if (char === '_') entities.push(entity('italic', offset, length));
      else if (char === '*') entities.push(entity('bold', offset, length));
      else if (char === '[') {
        let url = '';
        if (at(i + 1) !== '(') {
          url = input.slice(begin + 1, i);
        } else {
          i += 2;
          while (i < size && at(i) !== ')') {
            url += at(i);
            i += 1;
          }
        }
        const checked = checkedLink(url);
        if (checked !== '') entities.push(entity('text_link', offset, length, { url: checked }));
      } else if (isPre) {
        entities.push(entity('pre', offset, length, language === '' ? {} : { language }));
      } else {
        entities.push(entity('code', offset, length));
      }
    }
    if (isPre) i += 2;
  }
  return { text: out, entities: sortEntities(entities) };
}

/** Text as Telegram stores it: parse_mode applied (or explicit entities kept). */
function formatText(raw: string, parseMode: string | undefined, explicit: unknown): FormattedText {
  if (Buffer.byteLength(raw) > MAX_RAW_TEXT_BYTES) throw badRequest('text is too long');
  const mode = (parseMode ?? '').toLowerCase();
  if (raw !== '' && mode !== '' && mode !== 'none') {
    const parser = { markdown: parseMarkdown, markdownv2: parseMarkdownV2, html: parseHtml }[mode];
    if (parser === undefined) throw badRequest('unsupported parse_mode');
    try {
      return parser(raw);
    } catch (error) {
      if (error instanceof EntityParseError)
        throw badRequest(`can't parse entities: ${error.message}`);
      throw error;
    }
  }
  const entities = Array.isArray(explicit)
    ? explicit.filter(isObject).map((item) => item as unknown as MessageEntity)
    : [];
  return { text: raw, entities };
}

/** Length as Telegram counts it for the 4096/1024 limits (emulator: Unicode code points). */
const visibleLength = (text: string): number => [...text].length;

/** Telegram's automatic `bot_command` entities (TDLib match_bot_commands). */
function botCommandEntities(text: string): MessageEntity[] {
  const found: MessageEntity[] = [];
  const pattern =
    /(?<![\p{L}\p{N}_/<>])\/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\p{L}\p{N}_/<>@])/gu;
  for (const match of text.matchAll(pattern)) {
    found.push(entity('bot_command', match.index, match[0].length));
  }
  return found;
}

// ----- keyboards

type ParsedMarkup =
  | { kind: 'inline'; rows: InlineButton[][]; json: Json[][] }
  | { kind: 'keyboard'; keyboard: ReplyKeyboard }
  | { kind: 'remove' }
  | { kind: 'force_reply'; placeholder?: string };

const INLINE_BUTTON_KINDS = [
  'callback_game',
  'pay',
  'switch_inline_query',
  'switch_inline_query_chosen_chat',
  'switch_inline_query_current_chat',
  'login_url',
  'web_app',
  'copy_text',
] as const;

function requiredText(button: Json, what: string): string {
  const text = button.text;
  if (text === undefined) throw badRequest(`can't parse ${what}: Can't find field "text"`);
  if (typeof text !== 'string')
    throw badRequest(`can't parse ${what}: Field "text" must be of type String`);
  return text;
}

function inlineButton(value: unknown): { button: InlineButton; json: Json } {
  const what = 'inline keyboard button';
  if (!isObject(value))
    throw badRequest(`can't parse ${what}: InlineKeyboardButton must be an Object`);
  const text = requiredText(value, what);
  if (typeof value.url === 'string' && value.url !== '') {
    return { button: { text, url: value.url }, json: { text, url: value.url } };
  }
  if (typeof value.callback_data === 'string' && value.callback_data !== '') {
    return {
      button: { text, callbackData: value.callback_data },
      json: { text, callback_data: value.callback_data },
    };
  }
  const kind = INLINE_BUTTON_KINDS.find((name) => name in value);
  if (kind === undefined) {
    throw badRequest(`can't parse ${what}: Text buttons are unallowed in the inline keyboard`);
  }
  return { button: { text }, json: { text, [kind]: value[kind] } };
}

function replyButton(value: unknown): ReplyButton {
  const what = 'keyboard button';
  if (typeof value === 'string')
    return { text: value, requestContact: false, requestLocation: false };
  if (!isObject(value))
    throw badRequest(`can't parse ${what}: KeyboardButton must be a String or an Object`);
  return {
    text: requiredText(value, what),
    requestContact: value.request_contact === true,
    requestLocation: value.request_location === true,
  };
}

function rowsOf(value: unknown, field: string, message: string): unknown[][] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badRequest(`field "${field}" must be of type Array`);
  return value.map((row) => {
    if (!Array.isArray(row)) throw badRequest(message);
    return row as unknown[];
  });
}

/** reply_markup as the Bot API reads it (Client.cpp get_reply_markup). */
function readReplyMarkup(params: Params): ParsedMarkup | undefined {
  const value = params.json('reply_markup', 'reply keyboard markup');
  if (value === undefined) return undefined;
  if (!isObject(value)) throw badRequest('object expected as reply markup');
  const keyboard = rowsOf(
    value.keyboard,
    'keyboard',
    'Field "keyboard" must be an Array of Arrays',
  ).map((row) => row.map(replyButton));
  const inline = rowsOf(
    value.inline_keyboard,
    'inline_keyboard',
    'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays',
  ).map((row) => row.map(inlineButton));
  const placeholder =
    typeof value.input_field_placeholder === 'string' ? value.input_field_placeholder : undefined;
  if (keyboard.length > 0) {
    return {
      kind: 'keyboard',
      keyboard: {
        rows: keyboard,
        isOneTime: value.one_time_keyboard === true,
        isPersistent: value.is_persistent === true,
        isResized: value.resize_keyboard === true,
        ...(placeholder === undefined ? {} : { placeholder }),
      },
    };
  }
  if (inline.length > 0) {
    return {
      kind: 'inline',
      rows: inline.map((row) => row.map((item) => item.button)),
      json: inline.map((row) => row.map((item) => item.json)),
    };
  }
  if (value.remove_keyboard === true || value.hide_keyboard === true) return { kind: 'remove' };
  if (value.force_reply === true) {
    return { kind: 'force_reply', ...(placeholder === undefined ? {} : { placeholder }) };
  }
  return undefined;
}

/** Telegram's server refuses callback data over 64 bytes. */
function checkCallbackData(markup: ParsedMarkup | undefined): void {
  if (markup?.kind !== 'inline') return;
  for (const row of markup.rows) {
    for (const button of row) {
      if (
        button.callbackData !== undefined &&
        Buffer.byteLength(button.callbackData) > MAX_CALLBACK_DATA_BYTES
      ) {
        throw badRequest('BUTTON_DATA_INVALID');
      }
    }
  }
}

// ----- images

interface ImageSize {
  width: number;
  height: number;
}

/** Width and height from a PNG, JPEG, GIF, WebP or BMP header; undefined for anything else. */
function imageSize(bytes: Buffer): ImageSize | undefined {
  if (
    bytes.length >= 24 &&
    bytes.readUInt32BE(0) === 0x89504e47 &&
    bytes.toString('ascii', 12, 16) === 'IHDR'
  ) {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (
    bytes.length >= 10 &&
    (bytes.toString('ascii', 0, 6) === 'GIF87a' || bytes.toString('ascii', 0, 6) === 'GIF89a')
  ) {
    return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) };
  }
  if (bytes.length >= 26 && bytes.toString('ascii', 0, 2) === 'BM') {
    return { width: Math.abs(bytes.readInt32LE(18)), height: Math.abs(bytes.readInt32LE(22)) };
  }
  if (
    bytes.length >= 30 &&
    bytes.toString('ascii', 0, 4) === 'RIFF' &&
    bytes.toString('ascii', 8, 12) === 'WEBP'
  ) {
    const chunk = bytes.toString('ascii', 12, 16);
    if (chunk === 'VP8X') {
      return { width: bytes.readUIntLE(24, 3) + 1, height: bytes.readUIntLE(27, 3) + 1 };
    }
    if (chunk === 'VP8L') {
      const bits = bytes.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8 ') {
      return { width: bytes.readUInt16LE(26) & 0x3fff, height: bytes.readUInt16LE(28) & 0x3fff };
    }
    return undefined;
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let offset = 2;
    while (offset + 9 < bytes.length) {
      if (bytes[offset] !== 0xff) return undefined;
      const marker = bytes[offset + 1] ?? 0;
      if (marker === 0xff) {
        offset += 1;
        continue;
      }
      const isStartOfFrame =
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isStartOfFrame) {
        return { height: bytes.readUInt16BE(offset + 5), width: bytes.readUInt16BE(offset + 7) };
      }
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
        offset += 2;
        continue;
      }
      offset += 2 + bytes.readUInt16BE(offset + 2);
    }
  }
  return undefined;
}

// ----- stored state

interface StoredFile {
  fileId: string;
  fileUniqueId: string;
  kind: 'photo' | 'document';
  bytes: Buffer;
  fileName?: string;
  mimeType?: string;
  filePath: string;
}

interface PhotoRecord {
  file: StoredFile;
  width: number;
  height: number;
  sizes: Json[];
}

interface MessageRecord {
  messageId: number;
  chatId: number;
  isFromBot: boolean;
  date: number;
  editDate?: number;
  editCount: number;
  revision: number;
  isDeleted: boolean;
  text?: string;
  caption?: string;
  entities: MessageEntity[];
  parseMode?: string;
  inline?: { rows: InlineButton[][]; json: Json[][] };
  replyKeyboardAction?: 'show' | 'remove' | 'force_reply';
  photo?: PhotoRecord;
  document?: StoredFile;
  contact?: Json;
  disableNotification: boolean;
  protectContent: boolean;
  linkPreviewOptions?: Json;
  replyToMessageId?: number;
}

interface ChatRecord {
  id: number;
  user: User;
  hasStarted: boolean;
  isBlocked: boolean;
  nextMessageId: number;
  byId: Map<number, MessageRecord>;
  botMessages: MessageRecord[];
  /** How many of botMessages nextMessage/waitForMessages have handed out. */
  readCursor: number;
  replyKeyboard?: ReplyKeyboard;
  actions: string[];
  callbackAnswers: CallbackAnswer[];
  handle: SimulatedUser;
}

interface CallbackRecord {
  id: string;
  chatId: number;
  messageId: number;
  data: string;
  answer?: CallbackAnswer;
}

interface LongPoll {
  offset: number;
  limit: number;
  finish(result: Update[] | Refusal): void;
}

interface CallContext {
  onClientGone?: (listener: () => void) => void;
  dropConnection?: () => void;
  isWebhookReply: boolean;
}

type Handler = (params: Params, context: CallContext) => unknown;

interface Waiter {
  fail(error: Error): void;
}

const isChatId = (value: unknown, chatId: number): boolean =>
  (typeof value === 'number' || typeof value === 'string') &&
  String(value).trim() === String(chatId);

const asMessage = (json: Json): Message => json as unknown as Message;
const asUpdate = (json: Json): Update => json as unknown as Update;

// ----- the emulator

export async function startTelegramEmulator(
  options: TelegramEmulatorOptions,
): Promise<TelegramEmulator> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger?.child({ module: 'telegram-emulator' });
  const webhookRetryDelayMs = options.webhookRetryDelayMs ?? 1000;
  const tokenId = Number(/^(\d+):/.exec(options.token)?.[1] ?? Number.NaN);
  const botInfo: UserFromGetMe = {
    id: options.botUser?.id ?? (Number.isSafeInteger(tokenId) ? tokenId : 7_000_000_001),
    is_bot: true,
    first_name: options.botUser?.firstName ?? 'Atlantic Test Bot',
    username: options.botUser?.username ?? 'atlantic_test_bot',
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
    can_connect_to_business: false,
    has_main_web_app: false,
    has_topics_enabled: false,
    allows_users_to_create_topics: false,
    can_manage_bots: false,
    supports_join_request_queries: false,
  };
  const botFrom: Json = {
    id: botInfo.id,
    is_bot: true,
    first_name: botInfo.first_name,
    username: botInfo.username,
  };

  const events = new EventEmitter();
  events.setMaxListeners(0);
  const waiters = new Set<Waiter>();
  const chats = new Map<number, ChatRecord>();
  const files = new Map<string, StoredFile>();
  const filesByPath = new Map<string, StoredFile>();
  const callbacks = new Map<string, CallbackRecord>();
  const faults = new Map<string, InjectedFault[]>();
  const commandSets = new Map<string, unknown[]>();
  const calls: ApiCall[] = [];
  const deliveries: WebhookDelivery[] = [];
  let queue: Update[] = [];
  let nextUpdateId = 500_000_001;
  let nextCallbackQueryId = 1n;
  let nextFileNumber = 0;
  let allowedUpdates: Set<string> | undefined;
  let longPoll: LongPoll | undefined;
  let webhook: WebhookState | undefined;
  let isDelivering = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let deliveryRequest: ClientRequest | undefined;
  let isStopped = false;
  let apiRoot = '';

  const unixNow = (): number => Math.floor(clock.now().getTime() / 1000);

  // ----- waiting on events

  function waitFor<T>(
    event: string,
    check: () => T | undefined,
    timeoutMs: number,
    describe: () => string,
  ): Promise<T> {
    const found = check();
    if (found !== undefined) return Promise.resolve(found);
    if (isStopped) return Promise.reject(new Error('the Telegram emulator has stopped'));
    return new Promise<T>((resolve, reject) => {
      const onEvent = (): void => {
        const value = check();
        if (value === undefined) return;
        cleanup();
        resolve(value);
      };
      const waiter: Waiter = {
        fail(error) {
          cleanup();
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(describe())), timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        events.off(event, onEvent);
        waiters.delete(waiter);
      };
      events.on(event, onEvent);
      waiters.add(waiter);
    });
  }

  const chatEvent = (chatId: number): string => `chat:${chatId}`;
  const changed = (chatId: number): boolean => events.emit(chatEvent(chatId));

  // ----- updates

  const updateType = (update: Json): string =>
    Object.keys(update).find((key) => key !== 'update_id') ?? '';
  const isAllowed = (type: string): boolean =>
    allowedUpdates === undefined ? !OPT_IN_UPDATE_TYPES.has(type) : allowedUpdates.has(type);

  function enqueue(body: Json): Update {
    const update = asUpdate({ update_id: nextUpdateId++, ...body });
    const type = updateType(body);
    if (!isAllowed(type)) {
      // Telegram does not create updates of types the bot did not ask for.
      logger?.debug({ type }, 'telegram_emulator.update_filtered');
      return update;
    }
    queue.push(update);
    events.emit('update');
    if (webhook !== undefined) scheduleDelivery();
    else if (longPoll !== undefined) {
      // Answer on the next turn so updates queued together arrive together.
      setImmediate(() => wakeLongPoll());
    }
    return update;
  }

  function available(offset: number, limit: number): Update[] {
    return queue.filter((update) => update.update_id >= offset).slice(0, limit);
  }

  function wakeLongPoll(): void {
    const poll = longPoll;
    if (poll === undefined) return;
    const ready = available(poll.offset, poll.limit);
    if (ready.length > 0) poll.finish(ready);
  }

  function confirm(offset: number): number {
    if (offset < 0) queue = queue.slice(Math.max(0, queue.length + offset));
    if (offset <= 0) return queue[0]?.update_id ?? nextUpdateId;
    queue = queue.filter((update) => update.update_id >= offset);
    return offset;
  }

  function setAllowedUpdates(value: unknown): void {
    let list = value;
    if (typeof list === 'string') {
      if (list === '') return;
      try {
        list = JSON.parse(list) as unknown;
      } catch {
        return;
      }
    }
    if (!Array.isArray(list)) return;
    if (!list.every((item) => typeof item === 'string')) return;
    const known = new Set<string>(UPDATE_TYPES);
    const chosen = new Set(
      list.map((item) => item.toLowerCase()).filter((item) => known.has(item)),
    );
    allowedUpdates = chosen.size === 0 ? undefined : chosen;
  }

  function abortLongPoll(description: string): void {
    longPoll?.finish(new Refusal(409, description));
  }

  // ----- messages

  function chatJson(chat: ChatRecord): Json {
    const json: Json = { id: chat.id, first_name: chat.user.first_name };
    if (chat.user.last_name !== undefined) json.last_name = chat.user.last_name;
    if (chat.user.username !== undefined) json.username = chat.user.username;
    json.type = 'private';
    return json;
  }

  function messageJson(record: MessageRecord, withReply = true): Json {
    const chat = chats.get(record.chatId);
    if (chat === undefined) throw new Error(`no chat ${record.chatId}`);
    const json: Json = {
      message_id: record.messageId,
      from: record.isFromBot ? botFrom : { ...chat.user },
      chat: chatJson(chat),
      date: record.date,
    };
    if (record.editDate !== undefined) json.edit_date = record.editDate;
    if (withReply && record.replyToMessageId !== undefined) {
      const target = chat.byId.get(record.replyToMessageId);
      if (target !== undefined && !target.isDeleted)
        json.reply_to_message = messageJson(target, false);
    }
    if (record.text !== undefined) {
      json.text = record.text;
      if (record.entities.length > 0) json.entities = record.entities;
    }
    if (record.photo !== undefined) json.photo = record.photo.sizes;
    if (record.document !== undefined) {
      json.document = {
        file_name: record.document.fileName,
        mime_type: record.document.mimeType,
        file_id: record.document.fileId,
        file_unique_id: record.document.fileUniqueId,
        file_size: record.document.bytes.length,
      };
    }
    if (record.caption !== undefined) {
      json.caption = record.caption;
      if (record.entities.length > 0) json.caption_entities = record.entities;
    }
    if (record.contact !== undefined) json.contact = record.contact;
    if (record.inline !== undefined) json.reply_markup = { inline_keyboard: record.inline.json };
    return json;
  }

  function snapshot(record: MessageRecord): BotMessage {
    const message: BotMessage = {
      messageId: record.messageId,
      chatId: record.chatId,
      date: record.date,
      editCount: record.editCount,
      revision: record.revision,
      isDeleted: record.isDeleted,
      entities: [...record.entities],
      buttons: record.inline?.rows.flat().map((button) => ({ ...button })) ?? [],
      disableNotification: record.disableNotification,
      protectContent: record.protectContent,
      raw: asMessage(messageJson(record)),
    };
    if (record.editDate !== undefined) message.editDate = record.editDate;
    if (record.text !== undefined) message.text = record.text;
    if (record.caption !== undefined) message.caption = record.caption;
    if (record.parseMode !== undefined) message.parseMode = record.parseMode;
    if (record.inline !== undefined) {
      message.inlineKeyboard = record.inline.rows.map((row) =>
        row.map((button) => ({ ...button })),
      );
    }
    if (record.replyKeyboardAction !== undefined)
      message.replyKeyboardAction = record.replyKeyboardAction;
    if (record.photo !== undefined) {
      const { file, width, height } = record.photo;
      message.photo = {
        fileId: file.fileId,
        fileUniqueId: file.fileUniqueId,
        fileSize: file.bytes.length,
        bytes: file.bytes,
        width,
        height,
      };
    }
    if (record.document !== undefined) {
      const file = record.document;
      message.document = {
        fileId: file.fileId,
        fileUniqueId: file.fileUniqueId,
        fileSize: file.bytes.length,
        bytes: file.bytes,
        fileName: file.fileName ?? '',
        mimeType: file.mimeType ?? 'application/octet-stream',
      };
    }
    if (record.linkPreviewOptions !== undefined)
      message.linkPreviewOptions = { ...record.linkPreviewOptions };
    if (record.replyToMessageId !== undefined) message.replyToMessageId = record.replyToMessageId;
    return message;
  }

  function describeMessage(message: MessageRecord): string {
    const parts = [`#${message.messageId}`];
    if (message.photo !== undefined)
      parts.push(`photo ${message.photo.width}x${message.photo.height}`);
    if (message.document !== undefined) {
      parts.push(
        `document ${message.document.fileName ?? ''} (${message.document.bytes.length} bytes)`,
      );
    }
    const text = message.text ?? message.caption;
    if (text !== undefined)
      parts.push(JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text));
    if (message.inline !== undefined) {
      parts.push(
        `[${message.inline.rows.map((row) => row.map((button) => button.text).join(' | ')).join(' / ')}]`,
      );
    }
    if (message.isDeleted) parts.push('(deleted)');
    return parts.join(' ');
  }

  function refusedCallsTo(chatId: number): string {
    const refused = calls
      .filter(
        (call) =>
          call.status !== 200 &&
          (call.params.chat_id === undefined || isChatId(call.params.chat_id, chatId)),
      )
      .slice(-3)
      .map((call) => `${call.method} ${call.status} ${call.description ?? ''}`);
    return refused.length === 0
      ? ''
      : `; refused calls (this chat or unreadable): ${refused.join('; ')}`;
  }

  function newMessage(chat: ChatRecord, isFromBot: boolean): MessageRecord {
    const record: MessageRecord = {
      messageId: chat.nextMessageId++,
      chatId: chat.id,
      isFromBot,
      date: unixNow(),
      editCount: 0,
      revision: 0,
      isDeleted: false,
      entities: [],
      disableNotification: false,
      protectContent: false,
    };
    chat.byId.set(record.messageId, record);
    if (isFromBot) chat.botMessages.push(record);
    return record;
  }

  // ----- checks shared by the methods

  function chatOf(params: Params): ChatRecord {
    const raw = params.string('chat_id')?.trim() ?? '';
    if (raw === '') throw badRequest('chat_id is empty');
    const chat = /^-?\d+$/.test(raw) ? chats.get(Number(raw)) : undefined;
    if (chat === undefined) throw badRequest('chat not found');
    return chat;
  }

  function ensureCanWrite(chat: ChatRecord): void {
    if (chat.isBlocked) throw new Refusal(403, 'Forbidden: bot was blocked by the user');
    if (!chat.hasStarted)
      throw new Refusal(403, "Forbidden: bot can't initiate conversation with a user");
  }

  function messageIdOf(params: Params): number {
    if (params.string('inline_message_id') !== undefined) {
      throw badRequest('inline messages are not emulated (emulator)');
    }
    const id = params.int('message_id');
    if (id === undefined) throw badRequest('message identifier is not specified');
    return id;
  }

  function liveMessage(chat: ChatRecord, messageId: number, what: string): MessageRecord {
    const record = chat.byId.get(messageId);
    if (record === undefined || record.isDeleted) throw badRequest(`${what} not found`);
    return record;
  }

  function replyTarget(params: Params, chat: ChatRecord): number | undefined {
    const parameters = params.json('reply_parameters', 'reply parameters');
    let messageId = params.int('reply_to_message_id');
    let isOptional = params.bool('allow_sending_without_reply');
    if (isObject(parameters)) {
      if (typeof parameters.message_id === 'number') messageId = parameters.message_id;
      isOptional = parameters.allow_sending_without_reply === true;
    }
    if (messageId === undefined || messageId === 0) return undefined;
    const target = chat.byId.get(messageId);
    if (target === undefined || target.isDeleted) {
      if (isOptional) return undefined;
      throw badRequest('message to be replied not found');
    }
    return messageId;
  }

  function checkLength(text: string, kind: 'text' | 'caption'): void {
    if (kind === 'text') {
      if (text.trim() === '') throw badRequest('message must be non-empty');
      if (visibleLength(text) > MAX_TEXT_LENGTH) throw badRequest('message is too long');
    } else if (visibleLength(text) > MAX_CAPTION_LENGTH) {
      throw badRequest('message caption is too long');
    }
  }

  function applyMarkup(
    chat: ChatRecord,
    record: MessageRecord,
    markup: ParsedMarkup | undefined,
  ): void {
    if (markup === undefined) return;
    switch (markup.kind) {
      case 'inline':
        record.inline = { rows: markup.rows, json: markup.json };
        break;
      case 'keyboard':
        chat.replyKeyboard = markup.keyboard;
        record.replyKeyboardAction = 'show';
        break;
      case 'remove':
        chat.replyKeyboard = undefined;
        record.replyKeyboardAction = 'remove';
        break;
      case 'force_reply':
        record.replyKeyboardAction = 'force_reply';
        break;
    }
  }

  /** The common part of every send method, after the content was read. */
  function sendToChat(
    params: Params,
    fill: (record: MessageRecord) => void,
    markup: ParsedMarkup | undefined,
    text: { value: string; kind: 'text' | 'caption' } | undefined,
  ): Json {
    const chat = chatOf(params);
    const replyTo = replyTarget(params, chat);
    if (text !== undefined) checkLength(text.value, text.kind);
    checkCallbackData(markup);
    ensureCanWrite(chat);
    const record = newMessage(chat, true);
    fill(record);
    applyMarkup(chat, record, markup);
    record.disableNotification = params.bool('disable_notification');
    record.protectContent = params.bool('protect_content');
    if (replyTo !== undefined) record.replyToMessageId = replyTo;
    changed(chat.id);
    return messageJson(record);
  }

  // ----- files

  function storeFile(
    kind: StoredFile['kind'],
    bytes: Buffer,
    extra: { fileName?: string; mimeType?: string } = {},
  ): StoredFile {
    const number = nextFileNumber++;
    const prefix = kind === 'photo' ? 'AgACAgIAAxkDAAI' : 'BQACAgIAAxkDAAI';
    const extension = (extra.fileName ?? '').split('.').pop() ?? '';
    const file: StoredFile = {
      fileId: `${prefix}${randomBytes(30).toString('base64url')}`,
      fileUniqueId: `AQAD${randomBytes(9).toString('base64url')}`,
      kind,
      bytes,
      ...extra,
      filePath: `${kind === 'photo' ? 'photos' : 'documents'}/file_${number}${extension === '' ? (kind === 'photo' ? '.jpg' : '') : `.${extension}`}`,
    };
    files.set(file.fileId, file);
    filesByPath.set(file.filePath, file);
    return file;
  }

  type InputFile =
    | { kind: 'upload'; file: UploadedFile }
    | { kind: 'stored'; file: StoredFile }
    | { kind: 'url'; url: string };

  /** A file parameter as the server reads it (Client.cpp get_input_file). */
  function inputFile(params: Params, field: string): InputFile | undefined {
    const value = params.string(field) ?? '';
    if (value.startsWith('attach://')) {
      const upload = params.files.get(value.slice('attach://'.length));
      return upload === undefined ? undefined : { kind: 'upload', file: upload };
    }
    if (value !== '') {
      if (/^https?:\/\//i.test(value)) return { kind: 'url', url: value };
      const stored = files.get(value);
      if (stored === undefined) throw badRequest('wrong file identifier/HTTP URL specified');
      return { kind: 'stored', file: stored };
    }
    const upload = params.files.get(field);
    return upload === undefined ? undefined : { kind: 'upload', file: upload };
  }

  async function bytesOf(input: InputFile): Promise<{ bytes: Buffer; fileName: string }> {
    if (input.kind === 'upload') return { bytes: input.file.bytes, fileName: input.file.fileName };
    if (input.kind === 'stored')
      return { bytes: input.file.bytes, fileName: input.file.fileName ?? '' };
    const bytes = await download(input.url);
    const name = decodeURIComponent(new URL(input.url).pathname.split('/').pop() ?? '');
    return { bytes, fileName: name === '' ? 'file' : name };
  }

  function photoSizes(file: StoredFile, size: ImageSize): Json[] {
    const longest = Math.max(size.width, size.height);
    const scaled = (side: number): Json => {
      const ratio = Math.min(1, side / longest);
      // Smaller sizes get their own ids; the emulator serves the original bytes for them.
      const fileId = `${file.fileId}_${side}`;
      files.set(fileId, file);
      return {
        file_id: fileId,
        file_unique_id: `${file.fileUniqueId}${side}`,
        // Telegram re-encodes smaller sizes; the emulator estimates their size by area.
        file_size: Math.max(1, Math.round(file.bytes.length * ratio * ratio)),
        width: Math.max(1, Math.round(size.width * ratio)),
        height: Math.max(1, Math.round(size.height * ratio)),
      };
    };
    const sides = PHOTO_SIDES.filter((side) => side < longest);
    const full = scaled(Math.min(longest, MAX_PHOTO_SIDE));
    full.file_id = file.fileId;
    full.file_unique_id = file.fileUniqueId;
    full.file_size = file.bytes.length;
    return [...sides.map(scaled), full];
  }

  // ----- methods

  const sendMessage: Handler = (params) => {
    const raw = params.string('text') ?? '';
    if (raw === '') throw badRequest('message text is empty');
    const formatted = formatText(
      raw,
      params.string('parse_mode'),
      params.json('entities', 'entities'),
    );
    const linkPreview = params.json('link_preview_options', 'link preview options');
    if (linkPreview !== undefined && !isObject(linkPreview)) {
      throw badRequest('object expected as link preview options');
    }
    const markup = readReplyMarkup(params);
    return sendToChat(
      params,
      (record) => {
        record.text = formatted.text;
        record.entities = formatted.entities;
        const parseMode = params.string('parse_mode');
        if (parseMode !== undefined) record.parseMode = parseMode;
        if (isObject(linkPreview)) record.linkPreviewOptions = linkPreview;
        else if (params.bool('disable_web_page_preview'))
          record.linkPreviewOptions = { is_disabled: true };
      },
      markup,
      { value: formatted.text, kind: 'text' },
    );
  };

  function readCaption(params: Params): FormattedText | undefined {
    const raw = params.string('caption');
    if (raw === undefined || raw === '') return undefined;
    return formatText(
      raw,
      params.string('parse_mode'),
      params.json('caption_entities', 'caption entities'),
    );
  }

  const sendPhoto: Handler = async (params) => {
    const input = inputFile(params, 'photo');
    if (input === undefined) throw badRequest('there is no photo in the request');
    if (input.kind === 'stored' && input.file.kind !== 'photo') {
      throw badRequest(`can't use file of type Document as Photo`);
    }
    const caption = readCaption(params);
    const markup = readReplyMarkup(params);
    chatOf(params);
    const { bytes } = await bytesOf(input);
    const size = imageSize(bytes);
    if (size === undefined) throw badRequest('IMAGE_PROCESS_FAILED');
    const longest = Math.max(size.width, size.height);
    const shortest = Math.max(1, Math.min(size.width, size.height));
    if (size.width + size.height > MAX_PHOTO_SIDE_SUM || longest / shortest > MAX_PHOTO_RATIO) {
      throw badRequest('PHOTO_INVALID_DIMENSIONS');
    }
    return sendToChat(
      params,
      (record) => {
        const file = input.kind === 'stored' ? input.file : storeFile('photo', bytes);
        record.photo = { file, ...size, sizes: photoSizes(file, size) };
        if (caption !== undefined) {
          record.caption = caption.text;
          record.entities = caption.entities;
        }
        const parseMode = params.string('parse_mode');
        if (parseMode !== undefined) record.parseMode = parseMode;
      },
      markup,
      caption === undefined ? undefined : { value: caption.text, kind: 'caption' },
    );
  };

  const sendDocument: Handler = async (params) => {
    const input = inputFile(params, 'document');
    if (input === undefined) throw badRequest('there is no document in the request');
    if (input.kind === 'stored' && input.file.kind !== 'document') {
      throw badRequest(`can't use file of type Photo as Document`);
    }
    const caption = readCaption(params);
    const markup = readReplyMarkup(params);
    chatOf(params);
    const { bytes, fileName } = await bytesOf(input);
    if (bytes.length === 0) throw badRequest('file must be non-empty');
    return sendToChat(
      params,
      (record) => {
        const extension = fileName.includes('.')
          ? (fileName.split('.').pop() ?? '').toLowerCase()
          : '';
        record.document =
          input.kind === 'stored'
            ? input.file
            : storeFile('document', bytes, {
                fileName,
                mimeType: MIME_BY_EXTENSION[extension] ?? 'application/octet-stream',
              });
        if (caption !== undefined) {
          record.caption = caption.text;
          record.entities = caption.entities;
        }
        const parseMode = params.string('parse_mode');
        if (parseMode !== undefined) record.parseMode = parseMode;
      },
      markup,
      caption === undefined ? undefined : { value: caption.text, kind: 'caption' },
    );
  };

  const sendChatAction: Handler = (params) => {
    const action = params.string('action') ?? '';
    if (!CHAT_ACTIONS.has(action)) throw badRequest('wrong parameter action in request');
    const chat = chatOf(params);
    ensureCanWrite(chat);
    chat.actions.push(action);
    changed(chat.id);
    return true;
  };

  function inlineMarkupOf(params: Params): ParsedMarkup | undefined {
    const markup = readReplyMarkup(params);
    if (markup !== undefined && markup.kind !== 'inline') {
      throw badRequest('inline keyboard expected (emulator)');
    }
    checkCallbackData(markup);
    return markup;
  }

  const sameInline = (record: MessageRecord, markup: ParsedMarkup | undefined): boolean =>
    JSON.stringify(record.inline?.json ?? null) ===
    JSON.stringify(markup?.kind === 'inline' ? markup.json : null);

  const notModified = (): Refusal =>
    badRequest(
      'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
    );

  function finishEdit(
    chat: ChatRecord,
    record: MessageRecord,
    markup: ParsedMarkup | undefined,
  ): Json {
    // An edit without reply_markup removes the inline keyboard, as on Telegram.
    record.inline =
      markup?.kind === 'inline' ? { rows: markup.rows, json: markup.json } : undefined;
    record.editDate = unixNow();
    record.editCount += 1;
    record.revision += 1;
    changed(chat.id);
    return messageJson(record);
  }

  const editMessageText: Handler = (params) => {
    const chat = chatOf(params);
    const messageId = messageIdOf(params);
    const raw = params.string('text') ?? '';
    if (raw === '') throw badRequest('message text is empty');
    const formatted = formatText(
      raw,
      params.string('parse_mode'),
      params.json('entities', 'entities'),
    );
    const markup = inlineMarkupOf(params);
    const record = liveMessage(chat, messageId, 'message to edit');
    if (!record.isFromBot) throw badRequest("message can't be edited");
    if (record.text === undefined) throw badRequest('there is no text in the message to edit');
    checkLength(formatted.text, 'text');
    const isSame =
      record.text === formatted.text &&
      JSON.stringify(record.entities) === JSON.stringify(formatted.entities) &&
      sameInline(record, markup);
    if (isSame) throw notModified();
    record.text = formatted.text;
    record.entities = formatted.entities;
    const parseMode = params.string('parse_mode');
    if (parseMode !== undefined) record.parseMode = parseMode;
    else delete record.parseMode;
    return finishEdit(chat, record, markup);
  };

  const editMessageCaption: Handler = (params) => {
    const chat = chatOf(params);
    const messageId = messageIdOf(params);
    const caption = readCaption(params) ?? { text: '', entities: [] };
    const markup = inlineMarkupOf(params);
    const record = liveMessage(chat, messageId, 'message to edit');
    if (!record.isFromBot) throw badRequest("message can't be edited");
    if (record.photo === undefined && record.document === undefined) {
      throw badRequest('there is no caption in the message to edit');
    }
    checkLength(caption.text, 'caption');
    const isSame =
      (record.caption ?? '') === caption.text &&
      JSON.stringify(record.entities) === JSON.stringify(caption.entities) &&
      sameInline(record, markup);
    if (isSame) throw notModified();
    if (caption.text === '') delete record.caption;
    else record.caption = caption.text;
    record.entities = caption.entities;
    return finishEdit(chat, record, markup);
  };

  const editMessageReplyMarkup: Handler = (params) => {
    const chat = chatOf(params);
    const messageId = messageIdOf(params);
    const markup = inlineMarkupOf(params);
    const record = liveMessage(chat, messageId, 'message to edit');
    if (!record.isFromBot) throw badRequest("message can't be edited");
    if (sameInline(record, markup)) throw notModified();
    return finishEdit(chat, record, markup);
  };

  const deleteMessage: Handler = (params) => {
    const chat = chatOf(params);
    const messageId = messageIdOf(params);
    const record = liveMessage(chat, messageId, 'message to delete');
    record.isDeleted = true;
    record.revision += 1;
    changed(chat.id);
    return true;
  };

  const answerCallbackQuery: Handler = (params) => {
    const id = params.string('callback_query_id') ?? '';
    const query = callbacks.get(id);
    if (query === undefined || query.answer !== undefined) {
      throw badRequest('query is too old and response timeout expired or query ID is invalid');
    }
    const answer: CallbackAnswer = {
      callbackQueryId: id,
      messageId: query.messageId,
      data: query.data,
      showAlert: params.bool('show_alert'),
      cacheTimeSeconds: params.int('cache_time') ?? 0,
    };
    const text = params.string('text');
    if (text !== undefined && text !== '') answer.text = text;
    const url = params.string('url');
    if (url !== undefined && url !== '') answer.url = url;
    query.answer = answer;
    const chat = chats.get(query.chatId);
    chat?.callbackAnswers.push(answer);
    changed(query.chatId);
    return true;
  };

  const getUpdates: Handler = (params, context) => {
    if (webhook !== undefined) {
      throw new Refusal(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
    }
    const limit = Math.min(100, Math.max(1, params.int('limit') ?? 100));
    const timeoutSeconds = Math.min(
      LONG_POLL_MAX_TIMEOUT_SECONDS,
      Math.max(0, params.int('timeout') ?? 0),
    );
    setAllowedUpdates(params.value('allowed_updates'));
    const offset = confirm(params.int('offset') ?? 0);
    const ready = available(offset, limit);
    if (ready.length > 0 || timeoutSeconds === 0 || isStopped) return ready;
    abortLongPoll(
      'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
    );
    return new Promise<Update[]>((resolve, reject) => {
      const poll: LongPoll = {
        offset,
        limit,
        finish(result) {
          if (longPoll !== poll) return;
          longPoll = undefined;
          clearTimeout(timer);
          if (result instanceof Refusal) reject(result);
          else resolve(result);
        },
      };
      const timer = setTimeout(() => poll.finish([]), timeoutSeconds * 1000);
      longPoll = poll;
      // A client that gave up (grammY aborts its poll on bot.stop()) frees the slot.
      context.onClientGone?.(() => poll.finish([]));
      events.emit('longPoll');
    });
  };

  function webhookInfo(): Json {
    const info: Json = {
      url: webhook?.url ?? '',
      has_custom_certificate: false,
      pending_update_count: queue.length,
    };
    if (webhook !== undefined) {
      info.max_connections = webhook.maxConnections;
      if (webhook.lastErrorDate !== undefined) info.last_error_date = webhook.lastErrorDate;
      if (webhook.lastErrorMessage !== undefined)
        info.last_error_message = webhook.lastErrorMessage;
    }
    if (allowedUpdates !== undefined) info.allowed_updates = [...allowedUpdates];
    return info;
  }

  function setWebhookState(state: WebhookState | undefined): void {
    clearTimeout(retryTimer);
    retryTimer = undefined;
    webhook = state;
    if (state !== undefined) {
      abortLongPoll('Conflict: terminated by setWebhook request');
      scheduleDelivery();
    }
  }

  const setWebhook: Handler = (params) => {
    const url = params.string('url') ?? '';
    if (params.bool('drop_pending_updates')) queue = [];
    if (url === '') {
      const wasSet = webhook !== undefined;
      setWebhookState(undefined);
      return {
        result: true,
        description: wasSet ? 'Webhook was deleted' : 'Webhook is already deleted',
      };
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badRequest('invalid webhook URL specified');
    }
    // Telegram wants HTTPS on port 443, 80, 88 or 8443; the emulator also takes
    // plain HTTP on any port, for webhook servers started by tests.
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw badRequest('invalid webhook URL specified');
    }
    const secretToken = params.string('secret_token') ?? '';
    if (secretToken.length > 256) throw badRequest('secret token is too long');
    if (!/^[A-Za-z0-9_-]*$/.test(secretToken)) {
      throw badRequest('secret token contains unallowed characters');
    }
    setAllowedUpdates(params.value('allowed_updates'));
    setWebhookState({
      url,
      maxConnections: params.int('max_connections') ?? 40,
      ...(secretToken === '' ? {} : { secretToken }),
      ...(allowedUpdates === undefined ? {} : { allowedUpdates: [...allowedUpdates] }),
    });
    return { result: true, description: 'Webhook was set' };
  };

  const deleteWebhook: Handler = (params) => {
    if (params.bool('drop_pending_updates')) queue = [];
    const wasSet = webhook !== undefined;
    setWebhookState(undefined);
    return {
      result: true,
      description: wasSet ? 'Webhook was deleted' : 'Webhook is already deleted',
    };
  };

  function commandsKey(scope: unknown, languageCode: string | undefined): string {
    const scopeObject = isObject(scope) ? scope : { type: 'default' };
    return JSON.stringify([scopeObject, languageCode ?? '']);
  }

  const setMyCommands: Handler = (params) => {
    const commands = params.json('commands', 'bot commands');
    if (!Array.isArray(commands))
      throw badRequest('field "commands" must be of type Array (emulator)');
    for (const command of commands) {
      if (!isObject(command)) throw badRequest('BotCommand must be an Object (emulator)');
      const name = command.command;
      const description = command.description;
      if (typeof name !== 'string' || !/^[a-z0-9_]{1,32}$/.test(name))
        throw badRequest('BOT_COMMAND_INVALID');
      if (typeof description !== 'string' || description.length < 1 || description.length > 256) {
        throw badRequest('BOT_COMMAND_DESCRIPTION_INVALID (emulator)');
      }
    }
    const key = commandsKey(
      params.json('scope', 'bot command scope'),
      params.string('language_code'),
    );
    commandSets.set(
      key,
      commands.map((command: unknown) => ({ ...(command as Json) })),
    );
    return true;
  };

  const getMyCommands: Handler = (params) =>
    commandSets.get(
      commandsKey(params.json('scope', 'bot command scope'), params.string('language_code')),
    ) ?? [];

  const deleteMyCommands: Handler = (params) => {
    commandSets.delete(
      commandsKey(params.json('scope', 'bot command scope'), params.string('language_code')),
    );
    return true;
  };

  const getFile: Handler = (params) => {
    const file = files.get(params.string('file_id') ?? '');
    if (file === undefined)
      throw badRequest('wrong file_id or the file is temporarily unavailable');
    return {
      file_id: file.fileId,
      file_unique_id: file.fileUniqueId,
      file_size: file.bytes.length,
      file_path: file.filePath,
    };
  };

  const methods = new Map<string, { name: string; handler: Handler }>();
  const methodTable: Record<string, Handler> = {
    getMe: () => botInfo,
    getUpdates,
    setWebhook,
    deleteWebhook,
    getWebhookInfo: () => webhookInfo(),
    setMyCommands,
    getMyCommands,
    deleteMyCommands,
    sendMessage,
    sendPhoto,
    sendDocument,
    sendChatAction,
    editMessageText,
    editMessageCaption,
    editMessageReplyMarkup,
    deleteMessage,
    answerCallbackQuery,
    getFile,
  };
  for (const [name, handler] of Object.entries(methodTable))
    methods.set(name.toLowerCase(), { name, handler });

  // ----- calling a method (from HTTP or from a webhook's answer)

  function logCall(
    method: string,
    input: ParsedInput,
    outcome: {
      status: number;
      description: string | undefined;
      isFault: boolean;
      isWebhookReply: boolean;
    },
  ): void {
    const entry: ApiCall = {
      method,
      params: { ...input.values },
      files: [...input.files.values()],
      status: outcome.status,
      isFault: outcome.isFault,
      isWebhookReply: outcome.isWebhookReply,
      at: clock.now(),
    };
    if (outcome.description !== undefined) entry.description = outcome.description;
    calls.push(entry);
    events.emit('call', entry);
  }

  async function call(
    method: { name: string; handler: Handler },
    input: ParsedInput,
    context: CallContext,
  ): Promise<Answer> {
    const params = new Params(input.values, input.files);
    const record = (status: number, description: string | undefined, isFault: boolean): void =>
      logCall(method.name, input, {
        status,
        description,
        isFault,
        isWebhookReply: context.isWebhookReply,
      });
    const fault = faults.get(method.name.toLowerCase())?.shift();
    if (fault !== undefined) {
      if ('network' in fault) {
        record(0, 'connection reset (injected)', true);
        context.dropConnection?.();
        return { status: 0, body: {} };
      }
      const answer = faultAnswer(fault);
      record(
        answer.status,
        typeof answer.body.description === 'string' ? answer.body.description : '',
        true,
      );
      return answer;
    }
    try {
      const outcome = await method.handler(params, context);
      const body: Json =
        isObject(outcome) && 'result' in outcome && 'description' in outcome
          ? { ok: true, ...outcome }
          : { ok: true, result: outcome };
      record(200, undefined, false);
      return { status: 200, body };
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      record(error.status, error.description, false);
      return refusalAnswer(error);
    }
  }

  // ----- webhook delivery

  function scheduleDelivery(): void {
    if (isDelivering || retryTimer !== undefined || webhook === undefined || isStopped) return;
    deliverQueued().catch((error: unknown) => {
      logger?.error({ err: error }, 'telegram_emulator.delivery_failed');
    });
  }

  /** One update at a time, in order (Telegram may run up to max_connections in parallel). */
  async function deliverQueued(): Promise<void> {
    isDelivering = true;
    try {
      for (;;) {
        const hook = webhook;
        const update = queue[0];
        if (hook === undefined || update === undefined || isStopped) return;
        const outcome = await post(hook, update);
        const delivery: WebhookDelivery = {
          updateId: update.update_id,
          url: hook.url,
          at: clock.now(),
        };
        if (outcome.status !== undefined) delivery.status = outcome.status;
        if (outcome.error !== undefined) delivery.error = outcome.error;
        deliveries.push(delivery);
        events.emit('delivery', delivery);
        if (webhook !== hook || isStopped) continue;
        if (outcome.error !== undefined) {
          hook.lastErrorDate = unixNow();
          hook.lastErrorMessage = outcome.error;
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            scheduleDelivery();
          }, webhookRetryDelayMs);
          return;
        }
        queue = queue.filter((item) => item.update_id !== update.update_id);
        if (outcome.reply !== undefined) await runWebhookReply(outcome.reply);
      }
    } finally {
      isDelivering = false;
    }
  }

  function post(
    hook: WebhookState,
    update: Update,
  ): Promise<{ status?: number; error?: string; reply?: Json }> {
    const body = JSON.stringify(update);
    const target = new URL(hook.url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    if (hook.secretToken !== undefined)
      headers['X-Telegram-Bot-Api-Secret-Token'] = hook.secretToken;
    return new Promise((resolve) => {
      const request = send(target, { method: 'POST', headers, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => resolve({ error: error.message }));
        response.on('end', () => {
          deliveryRequest = undefined;
          const status = response.statusCode ?? 0;
          if (status < 200 || status > 299) {
            resolve({
              status,
              error:
                `Wrong response from the webhook: ${status} ${response.statusMessage ?? ''}`.trim(),
            });
            return;
          }
          let reply: Json | undefined;
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
            if (isObject(parsed) && typeof parsed.method === 'string') reply = parsed;
          } catch {
            // Any 2xx answer accepts the update; only a JSON body with `method` is a request.
          }
          resolve(reply === undefined ? { status } : { status, reply });
        });
      });
      deliveryRequest = request;
      request.setTimeout(WEBHOOK_TIMEOUT_MS, () => request.destroy(new Error('Timeout expired')));
      request.on('error', (error) => {
        deliveryRequest = undefined;
        resolve({ error: error.message });
      });
      request.end(body);
    });
  }

  /** A method sent back as the answer to a webhook delivery (WebhookActor.cpp). */
  async function runWebhookReply(reply: Json): Promise<void> {
    const name = typeof reply.method === 'string' ? reply.method.toLowerCase() : '';
    const excluded = ['deletewebhook', 'setwebhook', 'close', 'logout'];
    if (excluded.includes(name) || name.startsWith('get')) return;
    const method = methods.get(name);
    if (method === undefined) return;
    const values: Json = { ...reply };
    delete values.method;
    await call(method, { values, files: new Map() }, { isWebhookReply: true });
  }

  function download(url: string): Promise<Buffer> {
    const target = new URL(url);
    const get = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Buffer>((resolve, reject) => {
      const failed = (): void => reject(badRequest('failed to get HTTP URL content'));
      const request = get(target, { agent: false }, (response) => {
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299) {
          response.resume();
          failed();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_URL_DOWNLOAD_BYTES) request.destroy();
          else chunks.push(chunk);
        });
        response.on('end', () => resolve(Buffer.concat(chunks)));
        response.on('error', failed);
      });
      request.setTimeout(URL_DOWNLOAD_TIMEOUT_MS, () => request.destroy());
      request.on('error', failed);
      request.end();
    });
  }

  // ----- simulated users

  function userHandle(options: SimulatedUserOptions): SimulatedUser {
    const existing = chats.get(options.id);
    if (existing !== undefined) return existing.handle;
    const info: User = { id: options.id, is_bot: false, first_name: options.firstName };
    if (options.lastName !== undefined) info.last_name = options.lastName;
    if (options.username !== undefined) info.username = options.username;
    if (options.languageCode !== undefined) info.language_code = options.languageCode;
    const label = `user ${options.id} (${options.firstName})`;

    const chatRef = (): ChatRecord => {
      const chat = chats.get(options.id);
      if (chat === undefined) throw new Error(`no chat for ${label}`);
      return chat;
    };

    function fromUser(fill: (record: MessageRecord) => void): Message {
      const chat = chatRef();
      if (chat.isBlocked) throw new Error(`${label} has blocked the bot; call unblock() first`);
      chat.hasStarted = true;
      const record = newMessage(chat, false);
      fill(record);
      const json = messageJson(record);
      enqueue({ message: json });
      return asMessage(json);
    }

    function myChatMember(oldStatus: string, newStatus: string): void {
      const member = (status: string): Json =>
        status === 'kicked' ? { user: botFrom, status, until_date: 0 } : { user: botFrom, status };
      enqueue({
        my_chat_member: {
          chat: chatJson(chatRef()),
          from: { ...info },
          date: unixNow(),
          old_chat_member: member(oldStatus),
          new_chat_member: member(newStatus),
        },
      });
    }

    const handle: SimulatedUser = {
      id: options.id,
      chatId: options.id,
      info,
      get isBlocked() {
        return chatRef().isBlocked;
      },
      sendText(text) {
        if (text === '') throw new Error('a Telegram message cannot be empty');
        if (visibleLength(text) > MAX_TEXT_LENGTH)
          throw new Error('Telegram messages are at most 4096 characters');
        const message = fromUser((record) => {
          record.text = text;
          record.entities = botCommandEntities(text);
        });
        const chat = chatRef();
        const keyboard = chat.replyKeyboard;
        if (
          keyboard?.isOneTime === true &&
          keyboard.rows.flat().some((button) => button.text === text)
        ) {
          chat.replyKeyboard = undefined;
        }
        return message;
      },
      sendContact(phoneNumber, contact = {}) {
        return fromUser((record) => {
          const json: Json = {
            phone_number: phoneNumber,
            first_name: contact.firstName ?? info.first_name,
          };
          const lastName =
            contact.lastName ?? (contact.firstName === undefined ? info.last_name : undefined);
          if (lastName !== undefined) json.last_name = lastName;
          const userId = contact.userId === undefined ? info.id : contact.userId;
          if (userId !== null) json.user_id = userId;
          record.contact = json;
        });
      },
      pressReplyButton(text, press = {}) {
        const keyboard = chatRef().replyKeyboard;
        const button = keyboard?.rows.flat().find((item) => item.text === text);
        if (keyboard === undefined || button === undefined) {
          const shown = keyboard?.rows
            .map((row) => row.map((item) => item.text).join(' | '))
            .join(' / ');
          throw new Error(`${label} sees no reply button "${text}"; keyboard: ${shown ?? 'none'}`);
        }
        if (button.requestContact) {
          if (press.contactPhoneNumber === undefined) {
            throw new Error(`"${text}" requests the contact: pass contactPhoneNumber`);
          }
          const message = handle.sendContact(press.contactPhoneNumber);
          if (keyboard.isOneTime) chatRef().replyKeyboard = undefined;
          return message;
        }
        return handle.sendText(text);
      },
      pressButton(message, callbackData) {
        const chat = chatRef();
        const messageId = typeof message === 'number' ? message : message.messageId;
        const record = chat.byId.get(messageId);
        if (record === undefined || !record.isFromBot || record.isDeleted) {
          throw new Error(
            `${label} has no message #${messageId} from the bot to press a button on`,
          );
        }
        const buttons = record.inline?.rows.flat() ?? [];
        if (!buttons.some((button) => button.callbackData === callbackData)) {
          const shown = buttons.map(
            (button) => `${button.text}=${button.callbackData ?? button.url ?? '?'}`,
          );
          throw new Error(
            `message #${messageId} has no button with callback_data "${callbackData}"; its buttons: ${shown.join(', ') || 'none'}`,
          );
        }
        const id = String(4_000_000_000_000_000_000n + nextCallbackQueryId++);
        callbacks.set(id, { id, chatId: chat.id, messageId, data: callbackData });
        const update = enqueue({
          callback_query: {
            id,
            from: { ...info },
            message: messageJson(record),
            chat_instance: String(-(7_000_000_000_000_000_000n + BigInt(chat.id))),
            data: callbackData,
          },
        });
        return {
          callbackQueryId: id,
          update,
          answered(wait = {}) {
            const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
            return waitFor(
              chatEvent(chat.id),
              () => callbacks.get(id)?.answer,
              timeoutMs,
              () =>
                `the bot did not answer the press of "${callbackData}" on message #${messageId} within ${timeoutMs} ms${refusedCallsTo(chat.id)}`,
            );
          },
        };
      },
      messages(list = {}) {
        return chatRef()
          .botMessages.filter((record) => list.includeDeleted === true || !record.isDeleted)
          .map(snapshot);
      },
      message(messageId) {
        const record = chatRef().byId.get(messageId);
        return record?.isFromBot === true ? snapshot(record) : undefined;
      },
      nextMessage(wait = {}) {
        return handle.waitForMessages(1, wait).then(([first]) => {
          if (first === undefined) throw new Error('unreachable: waitForMessages(1) gave nothing');
          return first;
        });
      },
      waitForMessages(count, wait = {}) {
        const chat = chatRef();
        const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
        return waitFor(
          chatEvent(chat.id),
          () => {
            if (chat.botMessages.length < chat.readCursor + count) return undefined;
            const taken = chat.botMessages.slice(chat.readCursor, chat.readCursor + count);
            chat.readCursor += count;
            return taken.map(snapshot);
          },
          timeoutMs,
          () => {
            const unread = chat.botMessages.slice(chat.readCursor).map(describeMessage);
            const earlier = chat.botMessages
              .slice(Math.max(0, chat.readCursor - 3), chat.readCursor)
              .map(describeMessage);
            return (
              `${label} expected ${count} new message(s) from the bot within ${timeoutMs} ms; ` +
              `arrived: ${unread.join('; ') || 'nothing'}` +
              (earlier.length > 0 ? `; read before: ${earlier.join('; ')}` : '') +
              refusedCallsTo(chat.id)
            );
          },
        );
      },
      waitForEdit(message, wait = {}) {
        const chat = chatRef();
        const messageId = typeof message === 'number' ? message : message.messageId;
        const record = chat.byId.get(messageId);
        if (record === undefined || !record.isFromBot) {
          return Promise.reject(new Error(`${label} has no message #${messageId} from the bot`));
        }
        const since = typeof message === 'number' ? record.revision : message.revision;
        const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
        return waitFor(
          chatEvent(chat.id),
          () => (record.revision > since ? snapshot(record) : undefined),
          timeoutMs,
          () =>
            `message #${messageId} was not edited within ${timeoutMs} ms; it is ${describeMessage(record)}${refusedCallsTo(chat.id)}`,
        );
      },
      replyKeyboard() {
        const keyboard = chatRef().replyKeyboard;
        return keyboard === undefined ? undefined : structuredClone(keyboard);
      },
      chatActions() {
        return [...chatRef().actions];
      },
      callbackAnswers() {
        return chatRef().callbackAnswers.map((answer) => ({ ...answer }));
      },
      block() {
        const chat = chatRef();
        if (chat.isBlocked) return;
        chat.isBlocked = true;
        myChatMember('member', 'kicked');
      },
      unblock() {
        const chat = chatRef();
        if (!chat.isBlocked) return;
        chat.isBlocked = false;
        myChatMember('kicked', 'member');
      },
    };

    chats.set(options.id, {
      id: options.id,
      user: info,
      hasStarted: options.hasStartedBot ?? false,
      isBlocked: false,
      nextMessageId: 1,
      byId: new Map(),
      botMessages: [],
      readCursor: 0,
      actions: [],
      callbackAnswers: [],
      handle,
    });
    return handle;
  }

  // ----- HTTP

  function sendJson(response: ServerResponse, answer: Answer): void {
    if (response.writableEnded || response.destroyed) return;
    const payload = JSON.stringify(answer.body);
    response.writeHead(answer.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    });
    response.end(payload);
  }

  const notFound: Answer = {
    status: 404,
    body: { ok: false, error_code: 404, description: 'Not Found' },
  };

  async function drain(request: IncomingMessage): Promise<void> {
    for await (const _chunk of request) {
      // Discarded: the request is refused before its body matters.
    }
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://emulator.local');
    const fileMatch = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (fileMatch !== null) {
      await drain(request);
      const file = filesByPath.get(decodeURIComponent(fileMatch[2] ?? ''));
      if (decodeURIComponent(fileMatch[1] ?? '') !== options.token || file === undefined) {
        sendJson(response, notFound);
        return;
      }
      response.writeHead(200, {
        'content-type': file.mimeType ?? 'application/octet-stream',
        'content-length': file.bytes.length,
      });
      response.end(file.bytes);
      return;
    }
    const match = /^\/bot([^/]+)\/([^/]+)\/?$/.exec(url.pathname);
    if (match === null) {
      await drain(request);
      sendJson(response, notFound);
      return;
    }
    if (decodeURIComponent(match[1] ?? '') !== options.token) {
      await drain(request);
      sendJson(response, {
        status: 401,
        body: { ok: false, error_code: 401, description: 'Unauthorized' },
      });
      return;
    }
    const method = methods.get((match[2] ?? '').toLowerCase());
    if (method === undefined) {
      await drain(request);
      sendJson(response, notFound);
      return;
    }
    let input: ParsedInput;
    try {
      input = await readInput(request, url);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        sendJson(response, {
          status: 413,
          body: { ok: false, error_code: 413, description: 'Request Entity Too Large' },
        });
        request.destroy();
        return;
      }
      if (error instanceof Refusal) {
        // Logged without parameters: the body that carried them could not be read.
        logCall(
          method.name,
          { values: {}, files: new Map() },
          {
            status: error.status,
            description: error.description,
            isFault: false,
            isWebhookReply: false,
          },
        );
        sendJson(response, refusalAnswer(error));
        return;
      }
      throw error;
    }
    const answer = await call(method, input, {
      isWebhookReply: false,
      onClientGone: (listener) => {
        response.on('close', () => {
          if (!response.writableFinished) listener();
        });
      },
      dropConnection: () => request.socket.destroy(),
    });
    if (answer.status !== 0) sendJson(response, answer);
  }

  const activeRequests = new Set<Promise<void>>();
  const server = createServer((request, response) => {
    const task: Promise<void> = route(request, response)
      .catch((error: unknown) => {
        logger?.error({ err: error }, 'telegram_emulator.request_failed');
        const description = `Internal Server Error: ${error instanceof Error ? error.message : String(error)}`;
        sendJson(response, { status: 500, body: { ok: false, error_code: 500, description } });
      })
      .finally(() => activeRequests.delete(task));
    activeRequests.add(task);
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const reachableHost = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  apiRoot = `http://${reachableHost}:${address.port}`;
  logger?.info({ apiRoot }, 'telegram_emulator.listening');

  const emulator: TelegramEmulator = {
    get apiRoot() {
      return apiRoot;
    },
    token: options.token,
    botInfo,
    user: userHandle,
    sendUpdate: (update) => enqueue(update),
    failNext(method, fault, count = 1) {
      const key = method.toLowerCase();
      if (!methods.has(key)) throw new Error(`the emulator does not implement ${method}`);
      const list = faults.get(key) ?? [];
      for (let i = 0; i < count; i += 1) list.push(fault);
      faults.set(key, list);
    },
    calls,
    waitForCall(method, wait = {}) {
      const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
      const matches = (entry: ApiCall): boolean =>
        entry.method.toLowerCase() === method.toLowerCase() && (wait.where?.(entry) ?? true);
      return waitFor(
        'call',
        () => calls.find(matches),
        timeoutMs,
        () =>
          `no matching ${method} call within ${timeoutMs} ms; calls made: ${
            calls.map((entry) => `${entry.method} ${entry.status}`).join(', ') || 'none'
          }`,
      );
    },
    waitForLongPoll(wait = {}) {
      const timeoutMs = wait.timeoutMs ?? DEFAULT_WAIT_MS;
      return waitFor(
        'longPoll',
        () => (longPoll === undefined ? undefined : true),
        timeoutMs,
        () => `no getUpdates long poll was waiting within ${timeoutMs} ms`,
      ).then(() => undefined);
    },
    get pendingUpdates() {
      return [...queue];
    },
    deliverTo(url, secretToken) {
      setWebhookState({
        url,
        maxConnections: 40,
        ...(secretToken === undefined ? {} : { secretToken }),
      });
    },
    stopDelivering() {
      setWebhookState(undefined);
    },
    get webhook() {
      return webhook === undefined ? undefined : { ...webhook };
    },
    deliveries,
    commands(scope, languageCode) {
      return structuredClone(commandSets.get(commandsKey(scope, languageCode)) ?? []);
    },
    async stop() {
      if (isStopped) return;
      isStopped = true;
      longPoll?.finish([]);
      clearTimeout(retryTimer);
      deliveryRequest?.destroy();
      for (const waiter of [...waiters])
        waiter.fail(new Error('the Telegram emulator has stopped'));
      // Let the answers already on their way (the released long poll) be
      // written, but do not wait on a client that never finishes its request.
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...activeRequests]),
        new Promise<void>((resolve) => {
          graceTimer = setTimeout(resolve, STOP_GRACE_MS);
        }),
      ]);
      clearTimeout(graceTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
  return emulator;
}
