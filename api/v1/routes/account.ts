/**
 * /api/v1/me: the account itself: who am I, changing the email (the new
 * address is proven with a mailed code first), notification preferences,
 * linking a Telegram or WhatsApp chat with a one-time code (both ways), and
 * deletion (what is erased and kept, then an explicit confirmation).
 *
 * Each route calls the same core functions as the bot's account journey
 * (bot/core/journeys/account.ts), so the rules and refusals are the bot's.
 */
import { z } from 'zod';
import { DomainError } from '../../../lib/errors.js';
import { getAccountView } from '../../../core/accounts/view.js';
import {
  confirmEmailCode,
  normaliseEmail,
  requestEmailCode,
} from '../../../core/accounts/email.js';
import {
  LINK_CODE_TTL_MS,
  createLinkCode,
  redeemLinkCodeForAccount,
} from '../../../core/accounts/link-codes.js';
import { deleteAccount, describeAccountDeletion } from '../../../core/accounts/deletion.js';
import { endAllLoginSessions } from '../../../core/accounts/login-sessions.js';
import {
  ADMIN_EVENTS,
  MANDATORY_EVENTS,
  getPreferences,
  notificationEvents,
  setPreferences,
  type NotificationEvent,
  type NotificationPreferencesView,
} from '../../../core/notifications.js';
import { getWallet } from '../../../core/wallet.js';
import { emptyRoute, jsonRoute, type AnyRoute } from '../route.js';
import { money } from '../schemas.js';

export const accountView = z.object({
  id: z.string(),
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  status: z.enum(['active', 'suspended', 'deleted']),
  roles: z.array(z.string()),
  termsAcceptedAt: z.date().nullable(),
  termsVersion: z.string().nullable(),
  identities: z.array(
    z.object({ channel: z.enum(['telegram', 'whatsapp']), externalId: z.string() }),
  ),
  createdAt: z.date(),
});

// --- notification preferences ----------------------------------------------------

const adminOnly: ReadonlySet<string> = new Set(ADMIN_EVENTS);
const mandatory: ReadonlySet<string> = new Set(MANDATORY_EVENTS);
/** The events a customer can hear about (admin alerts are not theirs). */
const customerEvents = notificationEvents.filter((event) => !adminOnly.has(event));
const customerEvent = z.enum(customerEvents as [NotificationEvent, ...NotificationEvent[]]);

const channelSwitches = z.object({
  telegram: z.boolean(),
  whatsapp: z.boolean(),
  email: z.boolean(),
});

const preferencesView = z.object({
  channels: channelSwitches.describe('Where notifications go; off = nothing optional goes there.'),
  events: z
    .array(
      z.object({
        event: customerEvent,
        on: z.boolean(),
        mandatory: z
          .boolean()
          .describe('Always sent (money, your plan ending): cannot be turned off.'),
      }),
    )
    .describe('Every notification a customer can get, and whether it is on.'),
  mutedEvents: z.array(customerEvent),
});

function toPreferencesView(preferences: NotificationPreferencesView) {
  const muted = new Set<string>(preferences.mutedEvents);
  return {
    channels: preferences.channels,
    events: customerEvents.map((event) => ({
      event,
      on: mandatory.has(event) || !muted.has(event),
      mandatory: mandatory.has(event),
    })),
    mutedEvents: preferences.mutedEvents.filter((event) => !adminOnly.has(event)),
  };
}

// --- link codes --------------------------------------------------------------------

const linkCodeView = z.object({
  code: z.string().describe('The code as shown, `ABCD-EFGH`.'),
  expiresAt: z.date(),
  telegram: z
    .object({
      botUsername: z.string(),
      message: z.string().describe('What to send to the bot, e.g. `LINK ABCD-EFGH`.'),
      link: z.string().describe('Opens the bot with the code filled in (`/start link_<code>`).'),
    })
    .nullable(),
  whatsapp: z
    .object({
      number: z.string(),
      message: z.string().describe('What to send to the number, e.g. `LINK ABCD-EFGH`.'),
      link: z.string().describe('Opens WhatsApp with the message typed in.'),
    })
    .nullable(),
});

export const accountRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getMe',
    method: 'get',
    path: '/me',
    tag: 'Account',
    summary: 'The logged-in account',
    access: 'customer',
    verifiedEmail: false,
    response: accountView,
    async handler({ caller }) {
      return getAccountView(caller.accountId);
    },
  }),

  jsonRoute({
    operationId: 'requestEmailChange',
    method: 'put',
    path: '/me/email',
    tag: 'Account',
    summary: 'Change the email address: mails a 6-digit code to the new address',
    description:
      'Nothing changes until the code is confirmed (POST /me/email/confirm); the current address stays meanwhile. Works with an unverified current address too (to correct a typo). At most one code a minute and five an hour (429 with Retry-After). 409 EMAIL_TAKEN when another account has the address.',
    access: 'customer',
    verifiedEmail: false,
    status: 202,
    body: z.object({ email: z.string().max(320) }),
    response: z.object({
      sentTo: z.string(),
      expiresAt: z.date().describe('The code works until then (15 minutes).'),
    }),
    async handler({ caller, body, deps, log }) {
      const address = normaliseEmail(body.email);
      if (caller.emailVerified && caller.email === address) {
        throw new DomainError('VALIDATION_FAILED', `${address} is already your email address.`, {
          details: { field: 'email', reason: 'SAME_EMAIL' },
        });
      }
      return requestEmailCode(
        { clock: deps.clock, mailer: deps.mailer, logger: log },
        caller.accountId,
        address,
      );
    },
  }),

  jsonRoute({
    operationId: 'confirmEmailChange',
    method: 'post',
    path: '/me/email/confirm',
    tag: 'Account',
    summary: 'Confirm the new email address with the mailed code',
    description:
      'Right code: the address becomes the account email, verified, and the old address (if any) is told. Wrong code: 400 WRONG_CODE with details.attemptsLeft (five tries per code); CODE_EXPIRED, NO_CODE, TOO_MANY_ATTEMPTS when a new code must be asked for.',
    access: 'customer',
    verifiedEmail: false,
    body: z.object({ code: z.string().max(20) }),
    response: accountView,
    async handler({ caller, body, deps, log }) {
      return confirmEmailCode(
        { clock: deps.clock, mailer: deps.mailer, logger: log },
        caller.accountId,
        body.code,
      );
    },
  }),

  jsonRoute({
    operationId: 'getNotificationPreferences',
    method: 'get',
    path: '/me/notification-preferences',
    tag: 'Account',
    summary: 'Where notifications go and which ones are on',
    access: 'customer',
    response: preferencesView,
    async handler({ caller }) {
      return toPreferencesView(await getPreferences(caller.accountId));
    },
  }),

  jsonRoute({
    operationId: 'updateNotificationPreferences',
    method: 'put',
    path: '/me/notification-preferences',
    tag: 'Account',
    summary: 'Switch notification channels and events on or off',
    description:
      'Fields left out stay as they are. `events` switches single events, e.g. `{"weekly_summary": false}` to stop the weekly summary. Mandatory events (receipts, failed payments, renewal reminders, your plan ending) cannot be switched off: 400 VALIDATION_FAILED.',
    access: 'customer',
    body: z
      .object({
        channels: channelSwitches.partial().optional(),
        events: z.partialRecord(customerEvent, z.boolean()).optional(),
      })
      .strict(),
    response: preferencesView,
    async handler({ caller, body }) {
      let mutedEvents: NotificationEvent[] | undefined;
      if (body.events) {
        const muted = new Set((await getPreferences(caller.accountId)).mutedEvents);
        for (const [event, on] of Object.entries(body.events) as [NotificationEvent, boolean][]) {
          if (on) muted.delete(event);
          else muted.add(event);
        }
        mutedEvents = [...muted];
      }
      const updated = await setPreferences(caller.accountId, {
        ...(body.channels ? { channels: body.channels } : {}),
        ...(mutedEvents ? { mutedEvents } : {}),
      });
      return toPreferencesView(updated);
    },
  }),

  jsonRoute({
    operationId: 'createLinkCode',
    method: 'post',
    path: '/me/link-codes',
    tag: 'Account',
    summary: 'A one-time code that links a Telegram or WhatsApp chat to this account',
    description:
      'Send `LINK <code>` to the bot (or open the Telegram link) within 10 minutes; the chat then uses this account. One code at a time: asking again replaces it. Whoever sends the code gets into the account: do not share it.',
    access: 'customer',
    status: 201,
    response: linkCodeView,
    async handler({ caller, deps }) {
      const created = await createLinkCode({ clock: deps.clock }, caller.accountId);
      const message = `LINK ${created.displayCode}`;
      const bot = deps.links?.telegramBotUsername;
      const number = deps.links?.whatsappNumber?.replace(/\D/g, '');
      return {
        code: created.displayCode,
        expiresAt: created.expiresAt,
        telegram: bot
          ? { botUsername: bot, message, link: `https://t.me/${bot}?start=link_${created.code}` }
          : null,
        whatsapp: number
          ? { number, message, link: `https://wa.me/${number}?text=${encodeURIComponent(message)}` }
          : null,
      };
    },
  }),

  jsonRoute({
    operationId: 'linkChat',
    method: 'post',
    path: '/me/link',
    tag: 'Account',
    summary: 'Link the chat that made a link code (Account → Link in the bot) to this account',
    description: `The chat's own account is closed once its chats have moved here; that is refused (409 IDENTITY_HAS_ACCOUNT) when it has a plan, payments, money or a team, and an account holds one chat per app (409 CHANNEL_ALREADY_LINKED). Codes live ${LINK_CODE_TTL_MS / 60_000} minutes and work once; 10 tries an hour per account (429).`,
    access: 'customer',
    body: z.object({ code: z.string().max(20) }),
    response: z.object({
      linked: z.array(z.enum(['telegram', 'whatsapp'])).describe('The chats that moved here.'),
      account: accountView,
    }),
    async handler({ caller, body, deps, log }) {
      const { linked } = await redeemLinkCodeForAccount(
        { clock: deps.clock, logger: log },
        caller.accountId,
        body.code,
      );
      return { linked, account: await getAccountView(caller.accountId) };
    },
  }),

  jsonRoute({
    operationId: 'describeAccountDeletion',
    method: 'get',
    path: '/me/deletion',
    tag: 'Account',
    summary: 'What deleting the account erases and what it keeps',
    access: 'customer',
    verifiedEmail: false,
    response: z.object({
      erased: z.array(z.string()),
      kept: z.array(z.string()),
      wallet: money
        .nullable()
        .describe('Money left in the wallet: not paid out automatically; ask support first.'),
    }),
    async handler({ caller }) {
      const { erased, kept } = describeAccountDeletion();
      const wallet = await getWallet(caller.accountId);
      return {
        erased,
        kept,
        wallet:
          wallet.balanceMinor > 0
            ? { amountMinor: wallet.balanceMinor, currency: wallet.currency }
            : null,
      };
    },
  }),

  emptyRoute({
    operationId: 'deleteMe',
    method: 'delete',
    path: '/me',
    tag: 'Account',
    summary: 'Delete the account (cannot be undone)',
    description:
      'Send `{"confirm": "DELETE"}`. The plan ends at once without a refund, the proxy password stops working, chats are unlinked and every login session ends; financial records are kept (GET /me/deletion lists both).',
    access: 'customer',
    verifiedEmail: false,
    status: 204,
    body: z.object({
      confirm: z.literal('DELETE', { error: 'send "DELETE" to confirm' }),
    }),
    async handler({ caller, deps, log }) {
      await deleteAccount({ clock: deps.clock, logger: log, via: 'api' }, caller.accountId);
      await endAllLoginSessions(caller.accountId, 'account_deleted', { clock: deps.clock });
    },
  }),
];
