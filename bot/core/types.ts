/**
 * The conversation core's vocabulary, the same for every channel: what a
 * customer sends (Inbound) and what the bot answers (Outbound). Adapters
 * (bot/telegram, bot/whatsapp) translate their platform's updates into
 * Inbound and render Outbound; the core never sees a platform object.
 */
import type { Channel } from '../../models/channel-identity.js';

export type { Channel };

/** Who is writing: one chat identity. */
export interface ChatIdentity {
  channel: Channel;
  /** Telegram user id (decimal) or WhatsApp number (E.164 digits). */
  externalId: string;
  displayName?: string;
}

export type Inbound =
  /** Free text (an email, a code, an amount, or a number choosing from the last menu). */
  | { kind: 'text'; text: string }
  /** `/start`, `/plans`, … (without the slash, lower case) and what followed it. */
  | { kind: 'command'; command: string; args: string }
  /** A button (Telegram) or a resolved numbered choice: the action of a menu item. */
  | { kind: 'action'; action: string }
  /** A shared contact's phone number. */
  | { kind: 'contact'; phone: string };

/** One choice: `action` is what comes back as an Inbound `action` when it is picked. */
export interface MenuItem {
  label: string;
  action: string;
}

/** Choices in rows (Telegram draws the rows; WhatsApp numbers the items in order). */
export type Menu = MenuItem[][];

export type Outbound =
  | { kind: 'text'; text: string; menu?: Menu }
  /** A text with a link to open (a Paystack payment page): a URL button, or the URL in the text. */
  | { kind: 'link'; text: string; url: string; label: string; menu?: Menu }
  | { kind: 'image'; png: Buffer; caption?: string; menu?: Menu }
  | { kind: 'document'; bytes: Buffer; filename: string; mimeType: string; caption?: string };

/** What handling one inbound message produced. */
export interface Reply {
  messages: Outbound[];
  /** The account the identity belongs to (after sign-up or linking, the new one). */
  accountId: string | null;
}
