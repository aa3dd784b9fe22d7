/**
 * One-click unsubscribe from an email notification (RFC 8058): every mail of
 * an event the customer may mute carries a link, and `List-Unsubscribe`
 * headers, that mute that event for that account. The link's token is an
 * HMAC of (account, event) under a key from configuration, so nothing is
 * stored per mail and a token cannot be made for another account or event.
 * Muting is the same as turning the event off in the bot (Account >
 * Notifications) and is undone there.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Types } from 'mongoose';
import {
  ADMIN_EVENTS,
  MANDATORY_EVENTS,
  getPreferences,
  setPreferences,
} from '../notifications.js';
import { notificationEvents, type NotificationEvent } from '../../models/notification.js';

/** Signs and checks unsubscribe tokens. */
export interface UnsubscribeLinks {
  /** The token for (account, event). */
  token(accountId: string, event: NotificationEvent): string;
  /** The (account, event) of a genuine token, else null. */
  verify(token: string): { accountId: string; event: NotificationEvent } | null;
}

/** `secret`: a server secret (e.g. JWT_SECRET); a key for this purpose alone is derived from it. */
export function unsubscribeLinks(secret: string): UnsubscribeLinks {
  const key = createHmac('sha256', secret).update('atlantic:unsubscribe:v1').digest();
  const mac = (accountId: string, event: string): Buffer =>
    createHmac('sha256', key).update(`${accountId}.${event}`).digest().subarray(0, 16);
  return {
    token(accountId, event) {
      return `${accountId}.${event}.${mac(accountId, event).toString('base64url')}`;
    },
    verify(token) {
      const match = /^([0-9a-f]{24})\.([a-z0-9_]{1,40})\.([A-Za-z0-9_-]{22})$/.exec(token);
      if (!match) return null;
      const [, accountId = '', event = '', given = ''] = match;
      if (!Types.ObjectId.isValid(accountId) || !isEvent(event)) return null;
      const expected = mac(accountId, event);
      const actual = Buffer.from(given, 'base64url');
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return null;
      return { accountId, event };
    },
  };
}

const events: ReadonlySet<string> = new Set(notificationEvents);
const notMutable: ReadonlySet<string> = new Set([...MANDATORY_EVENTS, ...ADMIN_EVENTS]);

function isEvent(value: string): value is NotificationEvent {
  return events.has(value);
}

/** Whether a customer may switch this event off (so its mails carry the link). */
export function canUnsubscribe(event: NotificationEvent): boolean {
  return !notMutable.has(event);
}

/** Mutes `event` for the account (idempotent); false when it cannot be muted. */
export async function unsubscribe(accountId: string, event: NotificationEvent): Promise<boolean> {
  if (!canUnsubscribe(event)) return false;
  const { mutedEvents } = await getPreferences(accountId);
  if (!mutedEvents.includes(event)) {
    await setPreferences(accountId, { mutedEvents: [...mutedEvents, event] });
  }
  return true;
}
