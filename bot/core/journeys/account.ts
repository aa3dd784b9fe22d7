/**
 * Account: the email (changed only once the new address is proven with a
 * mailed code), the chats linked to the account (a one-time code shown here,
 * sent from the other chat), notification preferences, and deletion (what is
 * erased and what is kept, shown before an explicit Confirm).
 *
 *   account                -> email, linked chats, the buttons
 *   account:email          -> step account.email -> step account.code
 *   account:linkcode       -> a link code for the other chat
 *   link[:<code>]          -> step account.linkcode: redeem a code from the
 *                             other chat (open before sign-up: the chat being
 *                             linked usually has no account of its own yet)
 *   account:notif[:ch|ev:<name>] -> preferences, each tap one toggle
 *   account:password       -> a single-use link to our page where the customer
 *                             chooses a password for the REST API (typed there,
 *                             never into chat history); needs a verified email
 *   account:delete -> account:deleteok
 */
import { isDomainError } from '../../../lib/errors.js';
import { formatMoney } from '../../../lib/money.js';
import {
  LINK_CODE_TTL_MS,
  PASSWORD_LINK_TTL_MS,
  confirmEmailCode,
  createLinkCode,
  createPasswordLink,
  deleteAccount,
  describeAccountDeletion,
  getAccountView,
  normaliseEmail,
  redeemLinkCode,
  requestEmailCode,
} from '../../../core/accounts/index.js';
import {
  ADMIN_EVENTS,
  MANDATORY_EVENTS,
  getPreferences,
  notificationChannels,
  notificationEvents,
  setPreferences,
  type NotificationChannel,
  type NotificationEvent,
} from '../../../core/notifications.js';
import { getWallet } from '../../../core/wallet.js';
import type { Journey, Turn } from '../conversation.js';
import type { Menu, MenuItem } from '../types.js';

const item = (label: string, action: string): MenuItem => ({ label, action });

const CHAT_CHANNELS = ['telegram', 'whatsapp'] as const;

/**
 * Mutable events shown as one switch each group: four usage thresholds are
 * one thing to a customer. A mutable event missing here gets a switch of its own.
 */
const EVENT_GROUPS: Readonly<Record<string, readonly NotificationEvent[]>> = {
  welcome: ['welcome'],
  trial: ['trial_started', 'trial_ending', 'trial_refused'],
  usage: ['usage_50', 'usage_80', 'usage_95', 'usage_100'],
  wallet: ['wallet_low', 'wallet_empty'],
};

const fixed: ReadonlySet<NotificationEvent> = new Set([...MANDATORY_EVENTS, ...ADMIN_EVENTS]);

/** The switches customers see: the groups above, then any mutable event none of them holds. */
function eventSwitches(): [string, readonly NotificationEvent[]][] {
  const grouped = new Set(Object.values(EVENT_GROUPS).flat());
  const rest = notificationEvents.filter((event) => !fixed.has(event) && !grouped.has(event));
  return [
    ...Object.entries(EVENT_GROUPS),
    ...rest.map((event): [string, NotificationEvent[]] => [event, [event]]),
  ];
}

function accountMenu(turn: Turn): Menu {
  const t = turn.t.account;
  const linked = new Set(turn.account.identities.map((identity) => identity.channel));
  const unlinked = CHAT_CHANNELS.find((channel) => !linked.has(channel));
  return [
    [item(t.changeEmailButton, 'account:email')],
    unlinked
      ? [item(t.linkOtherButton(unlinked), 'account:linkcode'), item(t.enterCodeButton, 'link')]
      : [item(t.enterCodeButton, 'link')],
    [item(t.notificationsButton, 'account:notif'), item(t.teamButton, 'team')],
    ...(turn.account.emailVerified && turn.deps.publicUrl
      ? [[item(t.apiPasswordButton, 'account:password')]]
      : []),
    [item(t.deleteButton, 'account:delete')],
    ...turn.t.backToMenu,
  ];
}

function backMenu(turn: Turn): Menu {
  return [[item(turn.t.account.backToAccount, 'account')], ...turn.t.backToMenu];
}

function overview(turn: Turn): Promise<void> {
  const t = turn.t.account;
  turn.endStep();
  const linked = new Set(turn.account.identities.map((identity) => identity.channel));
  const chats = CHAT_CHANNELS.map((channel) =>
    linked.has(channel) ? t.chatLinked(channel) : t.chatNotLinked(channel),
  ).join(', ');
  turn.text(t.overview({ email: turn.account.email ?? t.noEmail, chats }), accountMenu(turn));
  return Promise.resolve();
}

// --- email change ------------------------------------------------------------------

function accountsContext(turn: Turn) {
  const { clock, mailer, logger } = turn.deps;
  return { clock, mailer, logger };
}

async function sendEmailCode(turn: Turn, text: string): Promise<void> {
  const t = turn.t.account;
  if (turn.account.email && normaliseEmail(text) === turn.account.email) {
    turn.text(t.sameEmail(turn.account.email));
    return;
  }
  const sent = await requestEmailCode(accountsContext(turn), turn.account.id, text);
  const minutes = Math.round((sent.expiresAt.getTime() - turn.deps.clock.now().getTime()) / 60_000);
  turn.ask('account.code', t.codeSent(sent.sentTo, minutes), { email: sent.sentTo });
}

async function confirmCode(turn: Turn, text: string): Promise<void> {
  try {
    turn.account = await confirmEmailCode(
      accountsContext(turn),
      turn.account.id,
      text.replace(/\s+/g, ''),
    );
  } catch (error) {
    // A code that can no longer work ends the step; a wrong one leaves it for another try.
    if (isDomainError(error, 'VALIDATION_FAILED') && error.details?.attemptsLeft === 0) {
      turn.endStep();
      turn.text(`${error.message} ${turn.t.account.codeDead}`, backMenu(turn));
      return;
    }
    throw error;
  }
  turn.endStep();
  turn.text(turn.t.account.emailChanged(turn.account.email ?? ''), backMenu(turn));
}

// --- linking the other chat --------------------------------------------------------------

async function showLinkCode(turn: Turn): Promise<void> {
  const t = turn.t.account;
  const created = await createLinkCode({ clock: turn.deps.clock }, turn.account.id);
  const other = turn.identity.channel === 'telegram' ? 'whatsapp' : 'telegram';
  turn.text(
    t.linkCode({
      code: created.displayCode,
      minutes: Math.round(LINK_CODE_TTL_MS / 60_000),
      other: t.channelName(other),
      how: t.linkHowOn(other, created.displayCode),
    }),
    backMenu(turn),
  );
}

async function redeem(turn: Turn, code: string): Promise<void> {
  const { accountId } = await redeemLinkCode(
    { clock: turn.deps.clock },
    {
      channel: turn.identity.channel,
      externalId: turn.identity.externalId,
      ...(turn.identity.displayName ? { displayName: turn.identity.displayName } : {}),
    },
    code,
  );
  turn.account = await getAccountView(accountId);
  turn.endStep();
  turn.text(turn.t.account.linked(turn.account.email ?? ''), turn.t.mainMenu(turn.account));
}

// --- a password for the REST API ------------------------------------------------------

async function showPasswordLink(turn: Turn): Promise<void> {
  const t = turn.t.account;
  const { publicUrl } = turn.deps;
  if (!turn.account.email || !turn.account.emailVerified) {
    turn.text(t.apiPasswordNeedsEmail, backMenu(turn));
    return;
  }
  if (!publicUrl) {
    turn.text(t.apiPasswordUnavailable, backMenu(turn));
    return;
  }
  const { clock, mailer, logger } = turn.deps;
  const link = await createPasswordLink({ clock, mailer, logger, publicUrl }, turn.account.id);
  turn.text(
    t.apiPasswordLink({
      url: link.url,
      email: link.email,
      minutes: Math.round(PASSWORD_LINK_TTL_MS / 60_000),
    }),
    backMenu(turn),
  );
}

// --- notifications ----------------------------------------------------------------------

async function notifications(turn: Turn, kind: string, name: string): Promise<void> {
  const t = turn.t.account;
  const accountId = turn.account.id;
  let preferences = await getPreferences(accountId);
  const switches = eventSwitches();
  if (kind === 'ch' && (notificationChannels as readonly string[]).includes(name)) {
    const channel = name as NotificationChannel;
    preferences = await setPreferences(accountId, {
      channels: { [channel]: !preferences.channels[channel] },
    });
  }
  const toggled = kind === 'ev' ? switches.find(([key]) => key === name) : undefined;
  if (toggled) {
    const [, events] = toggled;
    const muted = new Set(preferences.mutedEvents);
    const isOn = events.every((event) => !muted.has(event));
    for (const event of events) {
      if (isOn) muted.add(event);
      else muted.delete(event);
    }
    preferences = await setPreferences(accountId, { mutedEvents: [...muted] });
  }

  const muted = new Set(preferences.mutedEvents);
  const nameOf = (key: string) => t.eventNames[key] ?? key.replace(/_/g, ' ');
  const channelOn = (channel: NotificationChannel) => preferences.channels[channel];
  const switchOn = (events: readonly NotificationEvent[]) =>
    events.every((event) => !muted.has(event));
  const lines = [
    t.notificationsTitle,
    '',
    t.channelsTitle,
    ...notificationChannels.map((channel) =>
      t.channelLine(t.channelName(channel), channelOn(channel)),
    ),
    '',
    t.eventsTitle,
    ...switches.map(([key, events]) => t.eventLine(nameOf(key), switchOn(events))),
    '',
    t.mandatoryTitle,
    ...MANDATORY_EVENTS.map((event) => t.mandatoryLine(nameOf(event))),
  ];
  if (notificationChannels.every((channel) => !channelOn(channel))) {
    lines.push('', t.allChannelsOff);
  }
  const menu: Menu = [
    notificationChannels.map((channel) =>
      item(
        t.toggleLabel(t.channelName(channel), channelOn(channel)),
        `account:notif:ch:${channel}`,
      ),
    ),
  ];
  for (let i = 0; i < switches.length; i += 2) {
    menu.push(
      switches
        .slice(i, i + 2)
        .map(([key, events]) =>
          item(t.toggleLabel(nameOf(key), switchOn(events)), `account:notif:ev:${key}`),
        ),
    );
  }
  menu.push(...backMenu(turn));
  turn.text(lines.join('\n'), menu);
}

// --- deletion ------------------------------------------------------------------------------

async function askDelete(turn: Turn): Promise<void> {
  const t = turn.t.account;
  const { erased, kept } = describeAccountDeletion();
  const wallet = await getWallet(turn.account.id);
  const lines = [
    t.deleteIntro,
    '',
    t.deleteErased,
    ...erased.map((line) => `• ${line}`),
    '',
    t.deleteKept,
    ...kept.map((line) => `• ${line}`),
  ];
  if (wallet.balanceMinor > 0) {
    lines.push(
      '',
      t.deleteWallet(formatMoney({ amountMinor: wallet.balanceMinor, currency: wallet.currency })),
    );
  }
  turn.text(lines.join('\n'), [
    [item(t.deleteConfirmButton, 'account:deleteok')],
    [item(t.deleteKeepButton, 'account')],
  ]);
}

async function confirmDelete(turn: Turn): Promise<void> {
  await deleteAccount(
    { clock: turn.deps.clock, logger: turn.deps.logger, via: turn.identity.channel },
    turn.account.id,
  );
  // deleteAccount erased this chat's state too; nothing is waiting any more.
  turn.endStep();
  turn.text(turn.t.account.deleted);
}

export const accountJourney: Journey = {
  actions: {
    async account(turn) {
      // A button of this journey keeps its step (conversation.ts); none of these continues one.
      turn.endStep();
      const [sub, first = '', second = ''] = turn.args;
      switch (sub) {
        case 'email':
          turn.ask('account.email', turn.t.account.askNewEmail(turn.account.email ?? ''));
          return;
        case 'linkcode':
          return showLinkCode(turn);
        case 'notif':
          return notifications(turn, first, second);
        case 'password':
          return showPasswordLink(turn);
        case 'delete':
          return askDelete(turn);
        case 'deleteok':
          return confirmDelete(turn);
        default:
          return overview(turn);
      }
    },
    async link(turn) {
      const code = turn.args.join(':').trim();
      if (code) return redeem(turn, code);
      turn.ask('account.linkcode', turn.t.account.askLinkCode);
      return Promise.resolve();
    },
  },
  steps: {
    'account.email': sendEmailCode,
    'account.code': confirmCode,
    'account.linkcode': redeem,
  },
};
